/* SPDX-License-Identifier: Apache-2.0 */
/* ctl: the control socket (design §7, docs/control-protocol.md). Owns the listening socket (its
 * own or systemd's) and every client connection; authorises peers with SO_PEERCRED and answers
 * requests from the broker's state. Never blocks the loop on a client. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The protocol codec (proto/ctlproto.h), named by path: this header has the same name. */
#include "../proto/ctlproto.h"
#include "manager.h"

/* Connections served at once; more are answered EBUSY and closed. */
#define CTL_CLIENTS_MAX 256
/* Of those, kept for administrators (root, the daemon's uid, the admin group): peers with any
 * other role are refused once CTL_CLIENTS_MAX - CTL_CLIENTS_RESERVED slots are taken. */
#define CTL_CLIENTS_RESERVED 32
/* At most this many connections of one non-administrator uid. */
#define CTL_CLIENTS_PER_UID 16
/* At most this many connections of peers with no role (all they can get is EACCES). */
#define CTL_CLIENTS_NOROLE_MAX 32
/* A client with nothing in flight (no partial request, no reply unread) is closed after this
 * (or after [control] request_timeout if that is longer).
 * A request in progress has [control] request_timeout instead, from its first byte. */
#define CTL_IDLE_TIMEOUT_SEC 30.0
/* Replies queued for one client beyond which it is not read until it takes them. */
#define CTL_OUT_HIGH_WATER (1024 * 1024)

extern const struct manager_module ctl_module;

struct ctl_stats {
	uint64_t requests; /* request lines answered */
	uint64_t errors;   /* answered with an error (malformed, refused by the daemon, ...) */
	uint64_t refused;  /* not authorised */
	uint64_t dropped;  /* connections dropped (oversized line, idle, too many) */
	uint64_t clients;  /* connected now */
};
/* -ENOENT when the control socket is not running. */
int ctl_get_stats(struct manager *m, struct ctl_stats *ret);

/* The role of a peer with these credentials under the configured groups (exposed for tests).
 * groups are the peer's supplementary groups. */
enum ctl_role ctl_role_for(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
			   const char *admin_group, const char *readonly_group);
