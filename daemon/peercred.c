/* SPDX-License-Identifier: Apache-2.0 */
/* peercred: socket peer credentials and group membership (peercred.h). */
#include "peercred.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_GROUPS_MAX 256

int peercred_get(int fd, struct peercred *ret)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (len != sizeof(uc))
		return -EIO;
	*ret = (struct peercred){.uid = uc.uid, .gid = uc.gid, .pid = uc.pid};
	return 0;
}

int peercred_groups(int fd, const struct peercred *pc, gid_t *groups, int max)
{
	socklen_t len = (socklen_t)((size_t)max * sizeof(gid_t));
	int n = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		n = (int)(len / sizeof(gid_t));
	} else if (errno == ENOPROTOOPT) {
		struct passwd *pw = getpwuid(pc->uid);
		n = max;
		if (!pw || getgrouplist(pw->pw_name, pc->gid, groups, &n) < 0)
			n = 0;
	}
	return n;
}

bool peercred_allowed(int fd, const struct peercred *pc, const char *group)
{
	gid_t groups[PEER_GROUPS_MAX];
	struct group *g;
	int n;

	if (pc->uid == 0 || pc->uid == geteuid())
		return true;
	if (!group || !group[0] || !(g = getgrnam(group)))
		return false;
	if (pc->gid == g->gr_gid)
		return true;
	n = peercred_groups(fd, pc, groups, PEER_GROUPS_MAX);
	for (int i = 0; i < n; i++)
		if (groups[i] == g->gr_gid)
			return true;
	return false;
}
