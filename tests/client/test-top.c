/* SPDX-License-Identifier: Apache-2.0 */
/* test-top: Check tests for the numbers of 'snpctl top' (client/top-model.c): rates between
 * two samples, counter resets, new VMs, BUSY reasons, ordering, hostile replies. */
#include <errno.h>

#include "testutil.h"
#include "top-model.h"
#include "util.h"

/* A sample from a vm.list "vms" array in JSON text, plus optional vm.show details. */
static json_t *sample(const char *vms_text, const char *details_text)
{
	json_error_t e;
	json_t *vms = json_loads(vms_text, 0, &e), *s = json_object(), *d, *v;
	size_t i;

	ck_assert_msg(vms, "bad test JSON: %s", e.text);
	ck_assert_int_eq(top_sample_add_list(s, vms), 0);
	json_decref(vms);
	if (details_text) {
		d = json_loads(details_text, 0, &e);
		ck_assert_msg(d, "bad test JSON: %s", e.text);
		json_array_foreach(d, i, v) ck_assert_int_eq(top_sample_add_detail(s, v), 0);
		json_decref(d);
	}
	return s;
}

static bool near(double a, double b)
{
	return a - b < 1e-9 && b - a < 1e-9;
}

START_TEST(test_rates_and_order)
{
	static const struct {
		uint64_t vm;
		double req_s, adm_s, busy_s;
		const char *state, *quota;
	} want[] = {
		{9, 5.0, 4.0, 1.0, "in-flight", "0.5/s b4 w2*"}, /* busiest first */
		{7, 1.0, 0.0, 1.0, "idle", "2/s b4 w1"},	 /* new VM: counts from zero */
		{3, 1.0, 1.0, 0.0, "queued", "2/s b4 w1"},	 /* same req/s, fewer BUSY */
		{2, 0.0, 0.0, 0.0, "idle", "2/s b4 w1"},	 /* idle: more in total than 1 */
		{1, 0.0, 0.0, 0.0, "idle", "2/s b4 w1"},	 /* reset counter: from zero */
	};
	const char *q = "\"quota\":{\"rate\":\"2\",\"burst\":4,\"weight\":1}";
	char prev_text[1024], cur_text[2048];
	struct top_row *rows = NULL;
	json_t *prev, *cur;
	size_t n;

	snprintf(prev_text, sizeof(prev_text),
		 "[{\"vm\":9,\"requests\":100,\"admitted\":90,\"busy\":10},"
		 "{\"vm\":3,\"requests\":10,\"admitted\":10,\"busy\":0},"
		 "{\"vm\":1,\"requests\":500,\"admitted\":500,\"busy\":0},"
		 "{\"vm\":2,\"requests\":4,\"admitted\":4,\"busy\":0}]");
	snprintf(cur_text, sizeof(cur_text),
		 "[{\"vm\":1,\"requests\":0,\"admitted\":0,\"busy\":0,%s},"
		 "{\"vm\":2,\"requests\":4,\"admitted\":4,\"busy\":0,%s},"
		 "{\"vm\":3,\"requests\":12,\"admitted\":12,\"busy\":0,\"queued\":true,%s},"
		 "{\"vm\":7,\"requests\":2,\"admitted\":0,\"busy\":2,%s},"
		 "{\"vm\":9,\"requests\":110,\"admitted\":98,\"busy\":12,\"inflight\":true,"
		 "\"custom_quota\":true,\"quota\":{\"rate\":\"0.5\",\"burst\":4,\"weight\":2}}]",
		 q, q, q, q);
	prev = sample(prev_text, NULL);
	cur = sample(cur_text, NULL);
	ck_assert_int_eq(top_rows(prev, cur, 2.0, &rows, &n), 0);
	ck_assert_uint_eq(n, ELEMENTSOF(want));
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(rows[i].vm == want[i].vm, "row %zu: vm %llu", i,
			      (unsigned long long)rows[i].vm);
		ck_assert_msg(near(rows[i].req_s, want[i].req_s), "row %zu req/s %f", i,
			      rows[i].req_s);
		ck_assert_msg(near(rows[i].adm_s, want[i].adm_s), "row %zu adm/s %f", i,
			      rows[i].adm_s);
		ck_assert_msg(near(rows[i].busy_s, want[i].busy_s), "row %zu busy/s %f", i,
			      rows[i].busy_s);
		ck_assert_str_eq(rows[i].state, want[i].state);
		ck_assert_str_eq(rows[i].quota, want[i].quota);
	}
	free(rows);
	json_decref(prev);
	json_decref(cur);
}
END_TEST

START_TEST(test_busy_reasons)
{
	static const struct {
		const char *prev, *cur;
		double interval;
		const char *want;
	} cases[] = {
		{"{\"rate\":1,\"fairness\":0}", "{\"rate\":5,\"fairness\":2}", 2.0,
		 "rate 2.0 fairness 1.0"},
		{"{\"rate\":5}", "{\"rate\":5}", 1.0, ""},	   /* nothing moved */
		{"{\"rate\":9}", "{\"rate\":3}", 1.0, "rate 3.0"}, /* reset: from zero */
		{"{}", "{\"in-flight\":1}", 0.5, "in-flight 2.0"}, /* new reason */
		{"{\"rate\":1}", "{\"rate\":\"x\"}", 1.0, ""},	   /* hostile value: 0 */
		{"{\"rate\":1}", "[1,2]", 1.0, ""},		   /* not an object */
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		json_t *a = json_loads(cases[i].prev, 0, NULL),
		       *b = json_loads(cases[i].cur, 0, NULL);
		char buf[TOP_REASONS_MAX];

		ck_assert(a && b);
		top_reason_rates(a, b, cases[i].interval, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, cases[i].want) == 0, "case %zu: '%s', want '%s'", i, buf,
			      cases[i].want);
		json_decref(a);
		json_decref(b);
	}
}
END_TEST

START_TEST(test_reasons_truncate_whole_entries)
{
	json_t *cur = json_object();
	char buf[24];

	for (int i = 0; i < 10; i++) {
		char k[16];
		snprintf(k, sizeof(k), "reason%d", i);
		json_object_set_new(cur, k, json_integer(10));
	}
	top_reason_rates(NULL, cur, 1.0, buf, sizeof(buf));
	/* "reason0 10.0 reason1 10.0" does not fit in 23 characters: only the first entry. */
	ck_assert_str_eq(buf, "reason0 10.0");
	json_decref(cur);
}
END_TEST

START_TEST(test_details_merge_into_rows)
{
	json_t *prev = sample("[{\"vm\":5,\"requests\":1,\"busy\":1},{\"vm\":6,\"busy\":1}]",
			      "[{\"vm\":5,\"busy_by_reason\":{\"rate\":1}}]");
	json_t *cur = sample("[{\"vm\":5,\"requests\":3,\"busy\":4},{\"vm\":6,\"busy\":3}]",
			     "[{\"vm\":5,\"busy_by_reason\":{\"rate\":4}},"
			     "{\"vm\":6,\"busy_by_reason\":{\"rate\":3}}]");
	struct top_row *rows = NULL;
	size_t n;

	ck_assert_int_eq(top_rows(prev, cur, 1.0, &rows, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rows[0].vm, 5);
	ck_assert_str_eq(rows[0].reasons, "rate 3.0");
	/* VM 6 had no detail in the previous sample: no rate rather than a made-up one. */
	ck_assert_uint_eq(rows[1].vm, 6);
	ck_assert_str_eq(rows[1].reasons, "");
	free(rows);
	json_decref(prev);
	json_decref(cur);
}
END_TEST

START_TEST(test_hostile_samples)
{
	/* Entries without a usable id are skipped; a duplicate keeps the first; huge ids as
	 * strings (the protocol's form above INT64_MAX) work. */
	json_t *s = sample("[1, \"x\", {\"novm\":1}, {\"vm\":-3}, {\"vm\":\"abc\"},"
			   "{\"vm\":4,\"requests\":1}, {\"vm\":4,\"requests\":99},"
			   "{\"vm\":\"18446744073709551615\",\"requests\":\"7\"}]",
			   NULL);
	json_t *bad = json_loads("{\"vm\":4}", 0, NULL), *unknown;
	struct top_row *rows = NULL;
	size_t n;

	ck_assert_uint_eq(json_object_size(s), 2);
	ck_assert_int_eq(top_rows(NULL, s, 1.0, &rows, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rows[0].vm, UINT64_MAX); /* 7 req/s */
	ck_assert_msg(near(rows[0].req_s, 7.0), "req/s %f", rows[0].req_s);
	ck_assert_uint_eq(rows[1].vm, 4);
	ck_assert_uint_eq(rows[1].requests, 1);
	ck_assert_str_eq(rows[1].quota, "?/s b0 w0"); /* no quota object: shown as unknown */
	free(rows);

	ck_assert_int_eq(top_sample_add_detail(s, bad), -EINVAL); /* no busy_by_reason */
	unknown = json_loads("{\"vm\":77,\"busy_by_reason\":{}}", 0, NULL);
	ck_assert_int_eq(top_sample_add_detail(s, unknown), -ENOENT);
	ck_assert_int_eq(top_rows(NULL, s, 0, &rows, &n), -EINVAL);
	ck_assert_int_eq(top_rows(NULL, bad, -1, &rows, &n), -EINVAL);

	json_decref(unknown);
	json_decref(bad);
	json_decref(s);
}
END_TEST

START_TEST(test_empty)
{
	json_t *s = json_object();
	struct top_row *rows = (struct top_row *)1;
	size_t n = 9;

	ck_assert_int_eq(top_rows(NULL, s, 1.0, &rows, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(rows);
	json_decref(s);
}
END_TEST

static Suite *top_suite(void)
{
	Suite *s = suite_create("snpctl-top");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, test_rates_and_order);
	tcase_add_test(tc, test_busy_reasons);
	tcase_add_test(tc, test_reasons_truncate_whole_entries);
	tcase_add_test(tc, test_details_merge_into_rows);
	tcase_add_test(tc, test_hostile_samples);
	tcase_add_test(tc, test_empty);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(top_suite());
}
