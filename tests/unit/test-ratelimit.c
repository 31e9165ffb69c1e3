/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include "ratelimit.h"
#include "util.h"

START_TEST(test_window)
{
	static const struct {
		uint64_t at;
		bool pass;
		uint64_t suppressed; /* reported at this step */
	} steps[] = {
		{1000, true, 0},     {1001, true, 0},	 {1002, false, 0},    {500000, false, 0},
		{1000999, false, 0}, /* window is [1000, 1001000) */
		{1001000, true, 3},  {1001001, true, 0}, {1001002, false, 0}, {5000000, true, 1},
	};
	struct ratelimit rl;

	ratelimit_init(&rl, 1000000, 2);
	for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
		uint64_t sup = 99;
		ck_assert_msg(ratelimit_pass(&rl, steps[i].at, &sup) == steps[i].pass, "step %zu",
			      i);
		ck_assert_msg(sup == steps[i].suppressed, "step %zu: suppressed %llu", i,
			      (unsigned long long)sup);
	}
}
END_TEST

START_TEST(test_clock_backwards)
{
	struct ratelimit rl;

	ratelimit_init(&rl, 1000, 1);
	ck_assert(ratelimit_pass(&rl, 5000, NULL));
	ck_assert(!ratelimit_pass(&rl, 5001, NULL));
	ck_assert(ratelimit_pass(&rl, 10, NULL)); /* time went backwards: new window */
}
END_TEST

static Suite *rl_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_clock_backwards);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(rl_suite());
}
