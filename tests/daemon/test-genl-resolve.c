/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's generic netlink family lookup against the kernel this test runs on. The kernel
 * answers on the requester's port id (nlmsg_pid is ours, not 0): a lookup that only accepted
 * nlmsg_pid 0 skipped every answer and waited forever, which no simulator test could see.
 * "nlctrl" exists on every kernel with generic netlink (its id is fixed: GENL_ID_CTRL); an
 * unknown name must come back as -ENOENT (the kernel's NLMSG_ERROR), not as a hang. */
#include "testutil.h"

#include <errno.h>

#include <linux/genetlink.h>

#include "nlsock.h"

START_TEST(test_resolve_table)
{
	static const struct {
		const char *name;
		int ret;
		uint16_t id; /* checked when ret == 0 */
	} cases[] = {
		{"nlctrl", 0, GENL_ID_CTRL},
		{"snp_attest_nx", -ENOENT, 0}, /* a valid name no kernel registers */
		{"x", -ENOENT, 0},
		{"", -EINVAL, 0},
		{"a_name_too_long_for_genl", -EINVAL, 0}, /* GENL_NAMSIZ is 16 with the NUL */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t id = 0xbeef;
		int r = nlsock_resolve_family(cases[i].name, &id);

		ck_assert_msg(r == cases[i].ret, "'%s': %d (%s), expected %d", cases[i].name, r,
			      strerror(r < 0 ? -r : 0), cases[i].ret);
		if (r == 0)
			ck_assert_msg(id == cases[i].id, "'%s': id %u, expected %u", cases[i].name,
				      id, cases[i].id);
		else
			ck_assert_msg(id == 0xbeef, "'%s': id written on failure", cases[i].name);
	}
}
END_TEST

/* Many lookups in a row: each one closes its socket and finds its own answer (a stale answer
 * of an earlier lookup on a reused port id must not be taken for this one's). */
START_TEST(test_resolve_repeated)
{
	for (int i = 0; i < 200; i++) {
		uint16_t id = 0;

		ck_assert_int_eq(nlsock_resolve_family("nlctrl", &id), 0);
		ck_assert_uint_eq(id, GENL_ID_CTRL);
		ck_assert_int_eq(nlsock_resolve_family("snp_attest_nx", &id), -ENOENT);
	}
}
END_TEST

static Suite *resolve_suite(void)
{
	Suite *s = suite_create("genl-resolve");
	TCase *tc = tcase_create("host-kernel");

	tcase_add_test(tc, test_resolve_table);
	tcase_add_test(tc, test_resolve_repeated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(resolve_suite());
}
