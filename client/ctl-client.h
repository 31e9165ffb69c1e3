/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-client: snpctl's side of the control socket: connect, send one request, read one reply,
 * and turn every failure into a sentence an operator can act on. */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "ctl.h"

/* How long snpctl waits for the daemon's reply (the daemon answers from memory at once). */
#define CTL_CLIENT_TIMEOUT_MSEC 30000

/* The socket path snpctl uses without --socket: the configuration's default. Never NULL. */
const char *ctl_client_default_socket(void);

/* Sends q to the daemon at path and reads the reply. 0 with *ret_body (the reply object, new
 * reference) on {"ok":true}. Otherwise a negative errno and one line in err:
 *   not running  -> "snp-attestd is not running (no socket at PATH)" (-ENOENT, -ECONNREFUSED)
 *   EACCES/EPERM -> "permission denied" (on the socket, or refused by the daemon)
 *   other        -> the daemon's message, or what went wrong on the wire. */
int ctl_client_call(const char *path, const struct ctl_request *q, json_t **ret_body, char *err,
		    size_t err_size);

/* The online commands (cmd-online.c), rows of snpctl's command table. */
int snpctl_status(int argc, char **argv);
int snpctl_vm_list(int argc, char **argv);
int snpctl_vm_show(int argc, char **argv);
int snpctl_quota_get(int argc, char **argv);
int snpctl_quota_set(int argc, char **argv);
int snpctl_quota_reset(int argc, char **argv);
int snpctl_quota_list(int argc, char **argv);

/* Their help texts, for the command table. */
extern const char snpctl_help_status[], snpctl_help_vm_list[], snpctl_help_vm_show[],
	snpctl_help_quota_get[], snpctl_help_quota_set[], snpctl_help_quota_reset[],
	snpctl_help_quota_list[];
