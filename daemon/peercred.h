/* SPDX-License-Identifier: Apache-2.0 */
/* peercred: who is on the other end of a local socket (SO_PEERCRED, SO_PEERGROUPS) and whether
 * they belong to a group named in the configuration. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct peercred {
	uid_t uid;
	gid_t gid;
	pid_t pid;
};

/* 0 or -errno. */
int peercred_get(int fd, struct peercred *ret);
/* The peer's groups as the kernel saw them at connect time (SO_PEERGROUPS); on kernels
 * without it, the user's groups from the user database. Fills at most max; returns how many
 * (0 when they cannot be known). */
int peercred_groups(int fd, const struct peercred *pc, gid_t *groups, int max);
/* True for root, the daemon's own uid, and members of group (primary or supplementary as the
 * kernel saw them at connect time; from the user database on kernels without SO_PEERGROUPS).
 * An empty or unknown group admits nobody else. */
bool peercred_allowed(int fd, const struct peercred *pc, const char *group);
