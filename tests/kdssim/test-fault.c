/* SPDX-License-Identifier: Apache-2.0 */
/* test-fault: --fault spec parsing and the seeded, counted and probabilistic fault decisions. */
#include <errno.h>

#include "fault.h"
#include "testutil.h"
#include "util.h"

static const struct {
	const char *spec;
	int ret;
	enum sim_fault_kind kind;
	unsigned arg;
	bool by_count;
	unsigned remaining;
	double p;
} parse_cases[] = {
#define BAD(s)                                                                                     \
	{                                                                                          \
		.spec = (s), .ret = -EINVAL                                                        \
	}
	{"429", 0, SIM_FAULT_STATUS, 429, false, 0, 1.0},
	{"429:p=0.3", 0, SIM_FAULT_STATUS, 429, false, 0, 0.3},
	{"429-retry-after=5:next=3", 0, SIM_FAULT_RETRY_AFTER, 5, true, 3, 1.0},
	{"404:next=1", 0, SIM_FAULT_STATUS, 404, true, 1, 1.0},
	{"500:p=0.1", 0, SIM_FAULT_STATUS, 500, false, 0, 0.1},
	{"delay=2000ms:p=0.5", 0, SIM_FAULT_DELAY, 2000, false, 0, 0.5},
	{"delay=3s", 0, SIM_FAULT_DELAY, 3000, false, 0, 1.0},
	{"delay=150", 0, SIM_FAULT_DELAY, 150, false, 0, 1.0},
	{"truncate:next=2", 0, SIM_FAULT_TRUNCATE, 0, true, 2, 1.0},
	{"garbage:p=0.2", 0, SIM_FAULT_GARBAGE, 0, false, 0, 0.2},
	{"garbage:p=0", 0, SIM_FAULT_GARBAGE, 0, false, 0, 0.0},
	/* hostile / malformed */
	BAD(""),
	BAD("200"),
	BAD("600"),
	BAD("42"),
	BAD("429:p=1.5"),
	BAD("429:p=-0.1"),
	BAD("429:p="),
	BAD("429:p=0.3x"),
	BAD("429:next=0"),
	BAD("429:next=-1"),
	BAD("429:next="),
	BAD("429:every=2"),
	BAD("429:"),
	BAD("delay="),
	BAD("delay=0ms"),
	BAD("delay=ms"),
	BAD("delay=601s"),
	BAD("delay=99999999999"),
	BAD("429-retry-after="),
	BAD("429-retry-after=x"),
	BAD("truncat"),
	BAD("garbage2"),
	BAD("TRUNCATE"),
	BAD("429:p=0.5:next=2"),
	BAD("4 29"),
#undef BAD
};

START_TEST(test_parse)
{
	struct sim_fault_rule r = {.kind = _SIM_FAULT_KIND_MAX, .arg = 12345};
	int k = sim_fault_parse(parse_cases[_i].spec, &r);

	ck_assert_msg(k == parse_cases[_i].ret, "'%s': %d", parse_cases[_i].spec, k);
	if (k < 0) {
		ck_assert_int_eq(r.arg, 12345); /* untouched */
		return;
	}
	ck_assert_int_eq(r.kind, parse_cases[_i].kind);
	ck_assert_uint_eq(r.arg, parse_cases[_i].arg);
	ck_assert_int_eq(r.by_count, parse_cases[_i].by_count);
	ck_assert_uint_eq(r.remaining, parse_cases[_i].remaining);
	if (!r.by_count)
		ck_assert_double_eq_tol(r.p, parse_cases[_i].p, 1e-9);
}
END_TEST

START_TEST(test_next_n_counts_down)
{
	struct sim_fault_set s;
	unsigned seen[3] = {0};

	sim_fault_init(&s, 1);
	ck_assert_int_eq(sim_fault_add(&s, "404:next=1"), 0);
	ck_assert_int_eq(sim_fault_add(&s, "429-retry-after=5:next=2"), 0);
	for (int i = 0; i < 3; i++) {
		struct sim_fault_decision d = {0};
		sim_fault_decide_head(&s, &d);
		seen[i] = d.status * 1000 + d.retry_after;
	}
	/* first 404; the 429 rule does not fire while the 404 wins, so it is not used up */
	ck_assert_uint_eq(seen[0], 404000);
	ck_assert_uint_eq(seen[1], 429005);
	ck_assert_uint_eq(seen[2], 429005);
	{
		struct sim_fault_decision d = {0};
		sim_fault_decide_head(&s, &d);
		ck_assert_uint_eq(d.status, 0);
	}
}
END_TEST

static unsigned count_hits(uint64_t seed, const char *spec, int n)
{
	struct sim_fault_set s;
	unsigned hits = 0;

	sim_fault_init(&s, seed);
	ck_assert_int_eq(sim_fault_add(&s, spec), 0);
	for (int i = 0; i < n; i++) {
		struct sim_fault_decision d = {0};
		sim_fault_decide_head(&s, &d);
		sim_fault_decide_body(&s, &d);
		hits += d.status || d.delay_ms || d.truncate || d.garbage;
	}
	return hits;
}

START_TEST(test_probability_seeded)
{
	unsigned a = count_hits(42, "500:p=0.3", 2000), b = count_hits(42, "500:p=0.3", 2000);

	ck_assert_uint_eq(a, b); /* same seed, same run */
	ck_assert_uint_gt(a, 450);
	ck_assert_uint_lt(a, 750);
	ck_assert_uint_eq(count_hits(7, "garbage:p=0", 500), 0);
	ck_assert_uint_eq(count_hits(7, "garbage:p=1", 500), 500);
	ck_assert_uint_eq(count_hits(7, "truncate:next=3", 500), 3);
}
END_TEST

START_TEST(test_delay_adds_and_body_faults)
{
	struct sim_fault_set s;
	struct sim_fault_decision d = {0};
	char buf[128];

	sim_fault_init(&s, 3);
	ck_assert_int_eq(sim_fault_add(&s, "delay=100ms"), 0);
	ck_assert_int_eq(sim_fault_add(&s, "delay=1s"), 0);
	ck_assert_int_eq(sim_fault_add(&s, "truncate:next=1"), 0);
	ck_assert_int_eq(sim_fault_add(&s, "garbage"), 0);
	sim_fault_decide_head(&s, &d);
	ck_assert_uint_eq(d.delay_ms, 1100);
	ck_assert_uint_eq(d.status, 0);
	ck_assert(!d.truncate && !d.garbage); /* head phase leaves body faults alone */
	sim_fault_decide_body(&s, &d);
	ck_assert(d.truncate && !d.garbage); /* one body fault at a time */
	ck_assert_str_eq(sim_fault_describe(&d, buf, sizeof(buf)), "delay=1100ms,truncate");
	memset(&d, 0, sizeof(d));
	sim_fault_decide_body(&s, &d);
	ck_assert(!d.truncate && d.garbage);
	memset(&d, 0, sizeof(d));
	ck_assert_str_eq(sim_fault_describe(&d, buf, sizeof(buf)), "-");
	d.status = 429;
	d.retry_after = 5;
	ck_assert_str_eq(sim_fault_describe(&d, buf, sizeof(buf)), "429,retry-after=5");
	ck_assert_str_eq(sim_fault_describe(&d, buf, 4), "429");
}
END_TEST

START_TEST(test_set_full_and_fill)
{
	struct sim_fault_set s, t;
	uint8_t a[37], b[37];

	sim_fault_init(&s, 9);
	for (int i = 0; i < SIM_FAULT_MAX_RULES; i++)
		ck_assert_int_eq(sim_fault_add(&s, "500:p=0"), 0);
	ck_assert_int_eq(sim_fault_add(&s, "500"), -E2BIG);
	ck_assert_int_eq(sim_fault_add(&s, "bogus"), -E2BIG);
	sim_fault_init(&t, 9);
	ck_assert_int_eq(sim_fault_add(&t, "bogus"), -EINVAL);
	ck_assert_uint_eq(t.n, 0);
	sim_fault_init(&s, 9);
	sim_fault_fill(&s, a, sizeof(a));
	sim_fault_fill(&t, b, sizeof(b));
	ck_assert_mem_eq(a, b, sizeof(a));
	ck_assert(!mem_is_zero(a, sizeof(a)));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kdssim-fault");
	TCase *tc = tcase_create("fault");

	tcase_add_loop_test(tc, test_parse, 0, ELEMENTSOF(parse_cases));
	tcase_add_test(tc, test_next_n_counts_down);
	tcase_add_test(tc, test_probability_seeded);
	tcase_add_test(tc, test_delay_adds_and_body_faults);
	tcase_add_test(tc, test_set_full_and_fill);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
