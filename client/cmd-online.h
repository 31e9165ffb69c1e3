/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-online: the argument parsing and the request step that the snpctl commands talking to
 * the daemon's control socket share (cmd-online.c's own commands and cmd-rotation.c's). */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "ctl-client.h"

/* Which options a command takes besides --socket; an option not allowed is refused as
 * unknown. */
enum {
	ONLINE_OPT_JSON = 1u << 0,
	ONLINE_OPT_QUOTA = 1u << 1, /* --rate --burst --weight (at least one required) */
	ONLINE_OPT_FORCE = 1u << 2,
	ONLINE_OPT_VM = 1u << 3, /* the positional argument is a VM id, put into q.vm_id */
};

struct online_args {
	const char *socket;
	bool json;
	bool force;
	const char *arg; /* the positional argument, if the command takes one */
	struct ctl_request q;
};

/* Parses [--socket PATH] and the allowed options into *a (whose q.cmd the caller has set),
 * then the one positional argument arg_name when not NULL. Returns the exit code; a usage
 * error is already printed. */
int online_parse(int argc, char **argv, unsigned allowed, const char *arg_name,
		 struct online_args *a);
/* Sends a->q and, with --json, prints the reply (then *ret_body is NULL). Otherwise *ret_body
 * is the reply, for the caller's human output. Returns the exit code. */
int online_call(const char *cmd_name, const struct online_args *a, json_t **ret_body);
