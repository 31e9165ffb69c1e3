/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-client: snpctl's side of the control socket: connect, send one request, read one reply,
 * and turn every failure into a sentence an operator can act on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ctlproto.h"

/* How long snpctl waits for the daemon's reply (the daemon answers from memory at once). */
#define CTL_CLIENT_TIMEOUT_MSEC 30000

/* What snpctl knows of the daemon's configuration: the socket it listens on and the groups it
 * grants roles to. Read once from snp-attestd.conf when that file is readable (it usually is:
 * 0644), else the built-in defaults. Never NULL. */
const char *ctl_client_default_socket(void);
const char *ctl_client_admin_group(void);    /* "" = root only */
const char *ctl_client_readonly_group(void); /* "" = nobody but admins */

/* How a call failed, for the exit code: the daemon could not be reached at all (not running,
 * no socket, connection refused) versus anything after that. */
struct ctl_client_error {
	bool unreachable;
	char msg[768];
};

/* Sends q to the daemon at path and reads the reply. 0 with *ret_body (the reply object, new
 * reference) on {"ok":true}. Otherwise a negative errno and one line in err->msg:
 *   not running  -> "snp-attestd is not running (no socket at PATH)", err->unreachable
 *   EACCES/EPERM -> "permission denied: ... (needs root or group X)" (on the socket, or the
 *                   daemon's role check)
 *   other        -> the daemon's message, or what went wrong on the wire. */
int ctl_client_call(const char *path, const struct ctl_request *q, json_t **ret_body,
		    struct ctl_client_error *err);

/* ctl_client_call for a command named cmd: prints "snpctl: CMD: reason" on failure and returns
 * the exit code (SNPCTL_EXIT_OK, _FAIL, or _UNREACHABLE). */
int snpctl_call(const char *cmd, const char *path, const struct ctl_request *q, json_t **ret_body);
/* --json of an online command: the reply without its envelope ("ok", "id"); steals body. */
int snpctl_print_reply_json(json_t *body);

/* The online commands (cmd-online.c), rows of snpctl's command table. */
int snpctl_status(int argc, char **argv);
int snpctl_vm_list(int argc, char **argv);
int snpctl_vm_show(int argc, char **argv);
int snpctl_quota_get(int argc, char **argv);
int snpctl_quota_set(int argc, char **argv);
int snpctl_quota_reset(int argc, char **argv);
int snpctl_quota_list(int argc, char **argv);
/* cmd-top.c */
int snpctl_top(int argc, char **argv);

/* Their help texts, for the command table. */
extern const char snpctl_help_status[], snpctl_help_vm_list[], snpctl_help_vm_show[],
	snpctl_help_quota_get[], snpctl_help_quota_set[], snpctl_help_quota_reset[],
	snpctl_help_quota_list[], snpctl_help_top[];
