/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-auth: who may do what on the control socket (ctl_role_for, design §7). Root and the
 * daemon's own effective uid are administrators; otherwise the configured admin group (primary
 * or supplementary) gives admin, the read-only (monitor) group gives reader, and everyone else
 * gets nothing. Group names that do not exist, or are not configured, grant nothing. */
#include "testutil.h"

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

/* Two groups of this machine with distinct, non-zero gids, and a uid and gid that are neither
 * root, nor the test's effective uid, nor either group. */
static char admin_name[64], monitor_name[64];
static gid_t admin_gid, monitor_gid;
static uid_t other_uid;
static gid_t other_gid;

static void pick_groups(void)
{
	struct group *g;
	int found = 0;

	setgrent();
	while (found < 2 && (g = getgrent()) != NULL) {
		if (g->gr_gid == 0 || strlen(g->gr_name) >= sizeof(admin_name))
			continue;
		if (found == 0) {
			snprintf(admin_name, sizeof(admin_name), "%s", g->gr_name);
			admin_gid = g->gr_gid;
			found = 1;
		} else if (g->gr_gid != admin_gid) {
			snprintf(monitor_name, sizeof(monitor_name), "%s", g->gr_name);
			monitor_gid = g->gr_gid;
			found = 2;
		}
	}
	endgrent();
	ck_assert_msg(found == 2, "this machine has fewer than two non-root groups");
	/* A gid no group uses and a uid that is neither 0 nor ours. */
	for (other_gid = 54321; getgrgid(other_gid); other_gid++)
		;
	other_uid = geteuid() == 54321 ? 54322 : 54321;
}

static enum ctl_role role(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
	return ctl_role_for(uid, gid, groups, n, admin_name, monitor_name);
}

START_TEST(root_is_admin)
{
	pick_groups();
	ck_assert_int_eq(role(0, other_gid, NULL, 0), CTL_ROLE_ADMIN);
	/* Also with no groups configured at all. */
	ck_assert_int_eq(ctl_role_for(0, other_gid, NULL, 0, NULL, NULL), CTL_ROLE_ADMIN);
	ck_assert_int_eq(ctl_role_for(0, other_gid, NULL, 0, "", ""), CTL_ROLE_ADMIN);
}
END_TEST

/* The daemon's own effective uid is admin (a daemon run by an unprivileged user is controlled
 * by that user). When the test runs as root, a child takes another effective uid so that the
 * grant is seen apart from the root rule. */
START_TEST(euid_owner_is_admin)
{
	pid_t pid;
	int st;

	pick_groups();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uid_t me;

		if (geteuid() == 0 && seteuid(other_uid) != 0)
			_exit(10);
		me = geteuid();
		if (me == 0)
			_exit(11);
		/* The owner, with no group: admin. */
		if (ctl_role_for(me, other_gid, NULL, 0, admin_name, monitor_name) !=
		    CTL_ROLE_ADMIN)
			_exit(12);
		/* Even with only the monitor group and no groups configured: admin. */
		if (ctl_role_for(me, monitor_gid, NULL, 0, admin_name, monitor_name) !=
		    CTL_ROLE_ADMIN)
			_exit(13);
		if (ctl_role_for(me, other_gid, NULL, 0, NULL, NULL) != CTL_ROLE_ADMIN)
			_exit(14);
		/* Another unprivileged uid in no group: nothing. */
		if (ctl_role_for(me + 1 == 0 ? me + 2 : me + 1, other_gid, NULL, 0, admin_name,
				 monitor_name) != CTL_ROLE_NONE)
			_exit(15);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed at step %d",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
END_TEST

START_TEST(admin_group)
{
	gid_t sup[3];

	pick_groups();
	/* As the primary group. */
	ck_assert_int_eq(role(other_uid, admin_gid, NULL, 0), CTL_ROLE_ADMIN);
	/* As a supplementary group, first, last or alone. */
	sup[0] = admin_gid;
	sup[1] = other_gid;
	sup[2] = monitor_gid;
	ck_assert_int_eq(role(other_uid, other_gid, sup, 3), CTL_ROLE_ADMIN);
	sup[0] = other_gid;
	sup[2] = admin_gid;
	ck_assert_int_eq(role(other_uid, other_gid, sup, 3), CTL_ROLE_ADMIN);
	/* In both groups: the higher role. */
	sup[0] = monitor_gid;
	ck_assert_int_eq(role(other_uid, monitor_gid, sup, 3), CTL_ROLE_ADMIN);
	/* The list is read only up to n: the admin gid past it grants nothing. */
	ck_assert_int_eq(role(other_uid, other_gid, sup, 2), CTL_ROLE_READER);
}
END_TEST

START_TEST(monitor_group)
{
	gid_t sup[2];

	pick_groups();
	ck_assert_int_eq(role(other_uid, monitor_gid, NULL, 0), CTL_ROLE_READER);
	sup[0] = other_gid;
	sup[1] = monitor_gid;
	ck_assert_int_eq(role(other_uid, other_gid, sup, 2), CTL_ROLE_READER);
	/* The monitor group does not make an admin, whatever the other settings. */
	ck_assert_int_eq(ctl_role_for(other_uid, monitor_gid, NULL, 0, NULL, monitor_name),
			 CTL_ROLE_READER);
}
END_TEST

START_TEST(other_gets_nothing)
{
	gid_t sup[2];

	pick_groups();
	ck_assert_int_eq(role(other_uid, other_gid, NULL, 0), CTL_ROLE_NONE);
	sup[0] = other_gid;
	sup[1] = other_gid + 1 == admin_gid || other_gid + 1 == monitor_gid ? other_gid
									    : other_gid + 1;
	ck_assert_int_eq(role(other_uid, other_gid, sup, 2), CTL_ROLE_NONE);
	/* Groups not configured, empty or unknown: nobody but root and the owner is let in. */
	ck_assert_int_eq(ctl_role_for(other_uid, admin_gid, NULL, 0, NULL, NULL), CTL_ROLE_NONE);
	ck_assert_int_eq(ctl_role_for(other_uid, admin_gid, NULL, 0, "", ""), CTL_ROLE_NONE);
	ck_assert_int_eq(ctl_role_for(other_uid, admin_gid, &admin_gid, 1,
				      "no-such-group-snp-attestd", "no-such-group-snp-attestd-2"),
			 CTL_ROLE_NONE);
	/* A group named like a number is a name, not a gid. */
	{
		char num[32];

		snprintf(num, sizeof(num), "%u", (unsigned)admin_gid);
		if (!getgrnam(num))
			ck_assert_int_eq(ctl_role_for(other_uid, admin_gid, NULL, 0, num, num),
					 CTL_ROLE_NONE);
	}
}
END_TEST

static Suite *ctl_auth_suite(void)
{
	Suite *s = suite_create("ctl-auth");
	TCase *tc = tcase_create("role");

	tcase_add_test(tc, root_is_admin);
	tcase_add_test(tc, euid_owner_is_admin);
	tcase_add_test(tc, admin_group);
	tcase_add_test(tc, monitor_group);
	tcase_add_test(tc, other_gets_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(ctl_auth_suite());
}
