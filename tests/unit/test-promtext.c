/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for proto/metrics: exposition text, escaping, histograms, the per-VM series set and
 * listen-address syntax. */
#include <errno.h>
#include <math.h>

#include "promtext.h"
#include "testutil.h"

static char *finish_ok(struct metrics_writer *w)
{
	char *text = NULL;
	size_t len = 0;
	int r = metrics_writer_finish(w, &text, &len);

	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	return text;
}

START_TEST(test_counter_and_gauge_text)
{
	const struct metrics_label l[] = {{"vm", "7"}, {"type", "report"}};
	struct metrics_writer w;
	char *text;

	metrics_writer_init(&w);
	metrics_family(&w, "snp_x_total", METRICS_COUNTER, "Things.");
	metrics_sample_u64(&w, l, 2, 18446744073709551615ull);
	metrics_family(&w, "snp_g", METRICS_GAUGE, "A gauge.");
	metrics_sample_u64(&w, NULL, 0, 0);
	metrics_sample_double(&w, l, 1, 0.25);
	text = finish_ok(&w);
	ck_assert_str_eq(text, "# HELP snp_x_total Things.\n"
			       "# TYPE snp_x_total counter\n"
			       "snp_x_total{vm=\"7\",type=\"report\"} 18446744073709551615\n"
			       "# HELP snp_g A gauge.\n"
			       "# TYPE snp_g gauge\n"
			       "snp_g 0\n"
			       "snp_g{vm=\"7\"} 0.25\n");
	free(text);
	metrics_writer_done(&w);
}
END_TEST

START_TEST(test_escaping)
{
	static const struct {
		const char *value;
		const char *expect;
	} cases[] = {
		{"plain", "x{v=\"plain\"} 1\n"},
		{"a\"b", "x{v=\"a\\\"b\"} 1\n"},
		{"back\\slash", "x{v=\"back\\\\slash\"} 1\n"},
		{"two\nlines", "x{v=\"two\\nlines\"} 1\n"},
		{"tab\there\r", "x{v=\"tab?here?\"} 1\n"},
		{"\xc3\xa9\xff", "x{v=\"???\"} 1\n"},
		{"", "x{v=\"\"} 1\n"},
		{"} 99\nfake_metric 1", "x{v=\"} 99\\nfake_metric 1\"} 1\n"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct metrics_label l = {"v", cases[i].value};
		struct metrics_writer w;
		char *text, *sample;

		metrics_writer_init(&w);
		metrics_family(&w, "x", METRICS_GAUGE, "help \\ with\nnewline");
		metrics_sample_u64(&w, &l, 1, 1);
		text = finish_ok(&w);
		ck_assert_msg(strncmp(text, "# HELP x help \\\\ with\\nnewline\n", 31) == 0,
			      "case %zu: %s", i, text);
		sample = strstr(text, "gauge\n");
		ck_assert_ptr_nonnull(sample);
		ck_assert_msg(strcmp(sample + 6, cases[i].expect) == 0, "case %zu: got %s", i,
			      sample + 6);
		/* Exactly three lines whatever the value: no injected line. */
		size_t nl = 0;
		for (const char *p = text; *p; p++)
			nl += *p == '\n';
		ck_assert_uint_eq(nl, 3);
		free(text);
		metrics_writer_done(&w);
	}
}
END_TEST

START_TEST(test_misuse_is_refused)
{
	static const struct {
		const char *family;
		enum metrics_type type;
		const char *label;
		bool hist_sample;
		int expect;
	} cases[] = {
		{"ok_total", METRICS_COUNTER, "vm", false, 0},
		{"no_suffix", METRICS_COUNTER, "vm", false, -EINVAL},
		{"9starts_with_digit", METRICS_GAUGE, "vm", false, -EINVAL},
		{"has-dash", METRICS_GAUGE, "vm", false, -EINVAL},
		{"", METRICS_GAUGE, "vm", false, -EINVAL},
		{"ns:ok", METRICS_GAUGE, "vm", false, 0},
		{"g", METRICS_GAUGE, "__reserved", false, -EINVAL},
		{"g", METRICS_GAUGE, "a:b", false, -EINVAL},
		{"g", METRICS_GAUGE, "1x", false, -EINVAL},
		{"g", METRICS_GAUGE, "vm", true, -EINVAL},	/* histogram sample in a gauge */
		{"h", METRICS_HISTOGRAM, "vm", false, -EINVAL}, /* plain sample in a histogram */
		{"h", METRICS_HISTOGRAM, "le", true, -EINVAL},	/* le is the writer's */
		{"h", METRICS_HISTOGRAM, "vm", true, 0},
	};
	static const uint64_t bounds[] = {1, 2};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct metrics_label l = {cases[i].label, "1"};
		struct metrics_writer w;
		struct metrics_hist h;
		char *text = NULL;
		int r;

		ck_assert_int_eq(metrics_hist_init(&h, bounds, 2, 1), 0);
		metrics_writer_init(&w);
		metrics_family(&w, cases[i].family, cases[i].type, "h");
		if (cases[i].hist_sample)
			metrics_sample_hist(&w, &l, 1, &h);
		else
			metrics_sample_u64(&w, &l, 1, 1);
		r = metrics_writer_finish(&w, &text, NULL);
		ck_assert_msg(r == cases[i].expect, "case %zu: %d", i, r);
		ck_assert(r == 0 ? text != NULL : text == NULL);
		free(text);
		metrics_writer_done(&w);
	}
}
END_TEST

START_TEST(test_duplicate_family_and_orphan_sample)
{
	struct metrics_writer w;
	char *text = NULL;

	metrics_writer_init(&w);
	metrics_sample_u64(&w, NULL, 0, 1); /* before any family */
	ck_assert_int_eq(metrics_writer_finish(&w, &text, NULL), -EINVAL);
	ck_assert_ptr_null(text);

	metrics_family(&w, "a", METRICS_GAUGE, "x");
	metrics_family(&w, "ab", METRICS_GAUGE, "x"); /* a prefix of another name is fine */
	metrics_family(&w, "b", METRICS_GAUGE, "x");
	ck_assert_int_eq(metrics_writer_finish(&w, &text, NULL), 0);
	free(text);
	text = NULL;

	metrics_family(&w, "a", METRICS_GAUGE, "x");
	metrics_family(&w, "b", METRICS_GAUGE, "x");
	metrics_family(&w, "a", METRICS_GAUGE, "x");
	ck_assert_int_eq(metrics_writer_finish(&w, &text, NULL), -EEXIST);
	ck_assert_ptr_null(text);

	/* An empty exposition is valid. */
	ck_assert_int_eq(metrics_writer_finish(&w, &text, NULL), 0);
	ck_assert_str_eq(text, "");
	free(text);
	metrics_writer_done(&w);
}
END_TEST

START_TEST(test_format_double)
{
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{0, "0"},
		{70, "70"},
		{-3, "-3"},
		{1e15, "1000000000000000"},
		{1e300, "1e+300"},
		{0.0001, "0.0001"},
		{0.0025, "0.0025"},
		{1, "1"},
		{1e-9, "1e-09"},
		{123456.789, "123456.789"},
		{0.1 + 0.2, "0.30000000000000004"},
		{INFINITY, "+Inf"},
		{-INFINITY, "-Inf"},
		{NAN, "NaN"},
	};
	char buf[64];

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_str_eq(metrics_format_double(cases[i].v, buf, sizeof(buf)), cases[i].s);
}
END_TEST

START_TEST(test_hist_buckets)
{
	static const uint64_t bounds[] = {100, 1000, 5000}; /* usec */
	static const struct {
		uint64_t value;
		size_t bucket;
	} obs[] = {
		{0, 0},	   {100, 0},  {101, 1},	 {1000, 1},
		{4999, 2}, {5000, 2}, {5001, 3}, {UINT64_MAX, 3},
	};
	struct metrics_hist h;

	ck_assert_int_eq(metrics_hist_init(&h, bounds, ELEMENTSOF(bounds), 1e6), 0);
	for (size_t i = 0; i < ELEMENTSOF(obs); i++) {
		uint64_t before = h.counts[obs[i].bucket];
		metrics_hist_observe(&h, obs[i].value);
		ck_assert_msg(h.counts[obs[i].bucket] == before + 1, "obs %zu", i);
	}
	ck_assert_uint_eq(h.count, ELEMENTSOF(obs));
	ck_assert_uint_eq(h.sum, UINT64_MAX); /* saturated, not wrapped */
}
END_TEST

START_TEST(test_hist_text)
{
	static const uint64_t bounds[] = {100, 2500};
	const struct metrics_label l = {"vm", "3"};
	struct metrics_writer w;
	struct metrics_hist h;
	char *text;

	ck_assert_int_eq(metrics_hist_init(&h, bounds, 2, 1e6), 0);
	metrics_hist_observe(&h, 50);
	metrics_hist_observe(&h, 2000);
	metrics_hist_observe(&h, 2500);
	metrics_hist_observe(&h, 9000);
	metrics_writer_init(&w);
	metrics_family(&w, "wait_seconds", METRICS_HISTOGRAM, "Wait.");
	metrics_sample_hist(&w, &l, 1, &h);
	metrics_sample_hist(&w, NULL, 0, &h);
	text = finish_ok(&w);
	ck_assert_str_eq(text, "# HELP wait_seconds Wait.\n"
			       "# TYPE wait_seconds histogram\n"
			       "wait_seconds_bucket{vm=\"3\",le=\"0.0001\"} 1\n"
			       "wait_seconds_bucket{vm=\"3\",le=\"0.0025\"} 3\n"
			       "wait_seconds_bucket{vm=\"3\",le=\"+Inf\"} 4\n"
			       "wait_seconds_sum{vm=\"3\"} 0.01355\n"
			       "wait_seconds_count{vm=\"3\"} 4\n"
			       "wait_seconds_bucket{le=\"0.0001\"} 1\n"
			       "wait_seconds_bucket{le=\"0.0025\"} 3\n"
			       "wait_seconds_bucket{le=\"+Inf\"} 4\n"
			       "wait_seconds_sum 0.01355\n"
			       "wait_seconds_count 4\n");
	free(text);
	metrics_writer_done(&w);
}
END_TEST

START_TEST(test_hist_init_and_merge)
{
	static const uint64_t good[] = {1, 2, 3}, flat[] = {1, 1}, down[] = {2, 1};
	uint64_t many[METRICS_HIST_MAX_BOUNDS + 1];
	struct metrics_hist a, b, c;

	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = i + 1;
	ck_assert_int_eq(metrics_hist_init(&a, good, 0, 1), -EINVAL);
	ck_assert_int_eq(metrics_hist_init(&a, flat, 2, 1), -EINVAL);
	ck_assert_int_eq(metrics_hist_init(&a, down, 2, 1), -EINVAL);
	ck_assert_int_eq(metrics_hist_init(&a, many, ELEMENTSOF(many), 1), -EINVAL);
	ck_assert_int_eq(metrics_hist_init(&a, many, METRICS_HIST_MAX_BOUNDS, 1), 0);
	ck_assert_int_eq(metrics_hist_init(&a, good, 3, 0), -EINVAL);
	ck_assert_int_eq(metrics_hist_init(&a, good, 3, NAN), -EINVAL);

	ck_assert_int_eq(metrics_hist_init(&a, good, 3, 1), 0);
	ck_assert_int_eq(metrics_hist_init(&b, good, 3, 1), 0);
	ck_assert_int_eq(metrics_hist_init(&c, good, 2, 1), 0);
	metrics_hist_observe(&a, 1);
	metrics_hist_observe(&b, 3);
	metrics_hist_observe(&b, 7);
	ck_assert_int_eq(metrics_hist_merge(&a, &c), -EINVAL);
	ck_assert_uint_eq(a.count, 1);
	ck_assert_int_eq(metrics_hist_merge(&a, &b), 0);
	ck_assert_uint_eq(a.count, 3);
	ck_assert_uint_eq(a.sum, 11);
	ck_assert_uint_eq(a.counts[0], 1);
	ck_assert_uint_eq(a.counts[2], 1);
	ck_assert_uint_eq(a.counts[3], 1);
}
END_TEST

/* Collects the own-series VMs of a set into a sorted list "id=c0,c1;" for comparison. */
static void own_series(const struct metrics_vmset *s, char *buf, size_t size)
{
	uint64_t ids[64], vals[64][2], id;
	const uint64_t *c;
	size_t n = 0, it = 0, off = 0;

	while (metrics_vmset_next(s, &it, &id, &c)) {
		ck_assert_uint_lt(n, 64);
		ids[n] = id;
		vals[n][0] = c[0];
		vals[n][1] = c[1];
		n++;
	}
	for (size_t i = 0; i < n; i++) /* selection sort: tiny n */
		for (size_t j = i + 1; j < n; j++)
			if (ids[j] < ids[i]) {
				uint64_t t = ids[i], v0 = vals[i][0], v1 = vals[i][1];
				ids[i] = ids[j], vals[i][0] = vals[j][0], vals[i][1] = vals[j][1];
				ids[j] = t, vals[j][0] = v0, vals[j][1] = v1;
			}
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, size - off, "%llu=%llu,%llu;",
					(unsigned long long)ids[i], (unsigned long long)vals[i][0],
					(unsigned long long)vals[i][1]);
}

START_TEST(test_vmset_rounds)
{
	/* Each round lists the live VMs and their counters (2 each); the expectation is the set
	 * of own series and the "other" vector after the round. max_series = 2. */
	static const struct {
		struct {
			uint64_t id, c0, c1;
		} vms[4];
		size_t n;
		const char *own;
		uint64_t other0, other1, other_vms;
	} rounds[] = {
		/* 1 and 2 take the two slots; 3 goes to other. */
		{{{1, 5, 0}, {2, 1, 1}, {3, 4, 2}}, 3, "1=5,0;2=1,1;", 4, 2, 1},
		/* 3 moves on by (3, 1): other grows by the delta only. */
		{{{1, 6, 0}, {2, 1, 1}, {3, 7, 3}}, 3, "1=6,0;2=1,1;", 7, 3, 1},
		/* 2 goes away: its series is removed at the end of the round; other counts 3's
		 * last delta. */
		{{{1, 6, 0}, {3, 8, 3}}, 2, "1=6,0;", 8, 3, 1},
		/* 3 takes the freed slot with its full count and "other" keeps what it counted
		 * (still monotonic); 4 and 5 arrive: no slot, both in other. */
		{{{1, 6, 0}, {3, 8, 3}, {4, 2, 0}, {5, 1, 9}}, 4, "1=6,0;3=8,3;", 11, 12, 2},
		/* 4 leaves: other keeps its share; 5 was re-created (a counter went down): all it
		 * reports is new. */
		{{{1, 6, 0}, {3, 8, 3}, {5, 1, 1}}, 3, "1=6,0;3=8,3;", 12, 13, 1},
		/* Everyone leaves. */
		{{{0, 0, 0}}, 0, "", 12, 13, 0},
		/* A fresh VM 2 gets a slot again, with new values (the old series is gone). */
		{{{2, 1, 0}}, 1, "2=1,0;", 12, 13, 0},
	};
	struct metrics_vmset s;
	char got[512];

	ck_assert_int_eq(metrics_vmset_init(&s, 2, 2, 42), 0);
	for (size_t r = 0; r < ELEMENTSOF(rounds); r++) {
		metrics_vmset_begin(&s);
		for (size_t i = 0; i < rounds[r].n; i++) {
			uint64_t c[2] = {rounds[r].vms[i].c0, rounds[r].vms[i].c1};
			ck_assert_int_eq(metrics_vmset_update(&s, rounds[r].vms[i].id, c), 0);
		}
		metrics_vmset_end(&s);
		own_series(&s, got, sizeof(got));
		ck_assert_msg(strcmp(got, rounds[r].own) == 0, "round %zu: %s", r, got);
		ck_assert_msg(metrics_vmset_other(&s)[0] == rounds[r].other0 &&
				      metrics_vmset_other(&s)[1] == rounds[r].other1,
			      "round %zu: other %llu,%llu", r,
			      (unsigned long long)metrics_vmset_other(&s)[0],
			      (unsigned long long)metrics_vmset_other(&s)[1]);
		ck_assert_uint_eq(s.other_vms, rounds[r].other_vms);
		ck_assert_uint_le(s.n_series, 2);
	}
	metrics_vmset_done(&s);
	metrics_vmset_done(&s); /* idempotent */
}
END_TEST

START_TEST(test_vmset_bound_holds_at_scale)
{
	struct metrics_vmset s;
	uint64_t c[3], id, total = 0;
	const uint64_t *v;
	size_t it = 0, own = 0;

	ck_assert_int_eq(metrics_vmset_init(&s, 3, 10, 1), 0);
	metrics_vmset_begin(&s);
	for (uint64_t vm = 0; vm < 5000; vm++) {
		c[0] = vm;
		c[1] = 1;
		c[2] = 0;
		ck_assert_int_eq(metrics_vmset_update(&s, vm * 0x9e3779b97f4a7c15ull, c), 0);
	}
	metrics_vmset_end(&s);
	while (metrics_vmset_next(&s, &it, &id, &v)) {
		own++;
		total += v[1];
	}
	ck_assert_uint_eq(own, 10);
	/* Nothing lost or counted twice: own + other = every VM's one request. */
	ck_assert_uint_eq(total + metrics_vmset_other(&s)[1], 5000);
	ck_assert_uint_eq(s.other_vms, 4990);
	metrics_vmset_done(&s);

	ck_assert_int_eq(metrics_vmset_init(&s, 0, 10, 1), -EINVAL);
	ck_assert_int_eq(metrics_vmset_init(&s, METRICS_VMSET_MAX_COUNTERS + 1, 10, 1), -EINVAL);
}
END_TEST

START_TEST(test_listen_split)
{
	static const struct {
		const char *in;
		int r;
		const char *host;
		uint16_t port;
	} cases[] = {
		{"127.0.0.1:9477", 0, "127.0.0.1", 9477},
		{"0.0.0.0:1", 0, "0.0.0.0", 1},
		{"[::1]:9477", 0, "::1", 9477},
		{"[fe80::1:2]:65535", 0, "fe80::1:2", 65535},
		{"", -EINVAL, NULL, 0},
		{"127.0.0.1", -EINVAL, NULL, 0},
		{"127.0.0.1:", -EINVAL, NULL, 0},
		{"127.0.0.1:0", -EINVAL, NULL, 0},
		{"127.0.0.1:65536", -EINVAL, NULL, 0},
		{"127.0.0.1:0x10", -EINVAL, NULL, 0},
		{"127.0.0.1:+80", -EINVAL, NULL, 0},
		{"127.0.0.1:80 ", -EINVAL, NULL, 0},
		{"::1:9477", -EINVAL, NULL, 0},
		{"[::1]9477", -EINVAL, NULL, 0},
		{"[::1:9477", -EINVAL, NULL, 0},
		{"[]:9477", -EINVAL, NULL, 0},
		{":9477", -EINVAL, NULL, 0},
		{"localhost:9477", -EINVAL, NULL, 0},
		{"1.2.3.4/8:80", -EINVAL, NULL, 0},
		{"[0000000000000000000000000000000000000000000000000000000000000000]:1", -EINVAL,
		 NULL, 0},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char host[48] = "untouched";
		uint16_t port = 7;
		int r = metrics_listen_split(cases[i].in, host, sizeof(host), &port);

		ck_assert_msg(r == cases[i].r, "case %zu (%s): %d", i, cases[i].in, r);
		if (r == 0) {
			ck_assert_str_eq(host, cases[i].host);
			ck_assert_uint_eq(port, cases[i].port);
		} else {
			ck_assert_str_eq(host, "untouched");
			ck_assert_uint_eq(port, 7);
		}
	}
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_counter_and_gauge_text);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_misuse_is_refused);
	tcase_add_test(tc, test_duplicate_family_and_orphan_sample);
	tcase_add_test(tc, test_format_double);
	tcase_add_test(tc, test_hist_buckets);
	tcase_add_test(tc, test_hist_text);
	tcase_add_test(tc, test_hist_init_and_merge);
	tcase_add_test(tc, test_vmset_rounds);
	tcase_add_test(tc, test_vmset_bound_holds_at_scale);
	tcase_add_test(tc, test_listen_split);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(metrics_suite());
}
