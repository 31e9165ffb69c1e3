/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include "conf.h"
#include "util.h"

START_TEST(test_defaults_valid)
{
	struct conf c;
	char err[256] = "";

	ck_assert_int_eq(conf_init_defaults(&c), 0);
	ck_assert_int_eq(conf_validate(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.backend, CONF_BACKEND_SEV);
	ck_assert_uint_eq(c.busy_budget_usec, 20000000);
	ck_assert_uint_eq(c.max_queue_wait_usec, 50000);
	ck_assert_uint_eq(c.guest_retry_interval_usec, 2000000);
	ck_assert_uint_eq(c.psp_concurrency, 1);
	ck_assert_str_eq(c.sev_device, "/dev/sev");
	ck_assert_str_eq(c.vmm_socket, "/run/snp-attestd/vmm.sock");
	ck_assert_str_eq(c.vmm_group, "kvm");
	ck_assert_uint_eq(c.vmm_max_clients, 1024);
	ck_assert_uint_eq(c.vmm_hello_timeout_usec, 5000000);
	conf_done(&c);
}
END_TEST

static const struct {
	const char *text;
	int apply;    /* conf_apply_string result */
	int validate; /* conf_validate result when apply succeeded */
	const char *err_contains;
} cases[] = {
	{"[scheduler]\nbusy_budget = 30s\n", 0, 0, NULL},
	{"[scheduler]\nbusy_budget = 60s\n", 0, -EINVAL, "must be below 60s"},
	{"[scheduler]\nbusy_budget = 1min\n", 0, -EINVAL, "busy_budget 1min must be below 60s"},
	{"[scheduler]\nbusy_budget = 59.999s\n", 0, 0, NULL},
	{"[scheduler]\nbusy_budget = 1s\n", -EINVAL, 0, "out of range"},
	{"[scheduler]\nbusy_budget = soon\n", -EINVAL, 0, "not a duration"},
	{"[quota]\nrate = 0.049\n", 0, -EINVAL, "slower than one request per busy_budget"},
	{"[quota]\nrate = 0.04\n[scheduler]\nbusy_budget = 20s\n", 0, -EINVAL, "rate 0.04/s"},
	{"[quota]\nrate = 0.05\n", 0, 0, NULL}, /* exactly one per 20 s budget */
	{"[quota]\nrate = 0.05\n[scheduler]\nbusy_budget = 25s\n", 0, 0, NULL},
	{"[quota]\nrate = 1.2345\n", -EINVAL, 0, "at most 3 decimals"},
	{"[quota]\nburst = 0\n", -EINVAL, 0, "out of range"},
	{"[nosuch]\nkey = 1\n", -EINVAL, 0, "unknown section [nosuch]"},
	{"[daemon]\nbogus = 1\n", -EINVAL, 0, "unknown key 'bogus' in [daemon]"},
	{"[daemon]\nbackend = sim\nbackend = sev\n", -EINVAL, 0, "given twice"},
	{"[daemon]\nbackend = tpm\n", -EINVAL, 0, "backend must be sev or sim"},
	{"[daemon]\ntransport = usersock\nusersock_port = 0\n", -EINVAL, 0, "out of range"},
	{"[daemon]\nstate_dir = relative\n", 0, -EINVAL, "absolute"},
	{"[daemon]\nlog_level = LOUD\n", -EINVAL, 0, "unknown log level"},
	{"this is not ini\n", -EINVAL, 0, "test.conf:1:"},
	{"[scheduler]\nmax_queue_wait = 100ms\n", -EINVAL, 0, "out of range"},
	{"[scheduler]\nguest_retry_interval = 200ms\nbusy_budget = 3s\n", 0, 0, NULL},
	{"[scheduler]\nguest_retry_interval = 0\n", -EINVAL, 0, "out of range"},
	{"[scheduler]\nguest_retry_interval = 1min\n", -EINVAL, 0, "out of range"},
	{"[scheduler]\nguest_retry_interval = later\n", -EINVAL, 0, "not a duration"},
	{"[scheduler]\nbusy_budget = 2s\n", 0, -EINVAL,
	 "busy_budget 2s must exceed guest_retry_interval 2s"},
	{"[scheduler]\nguest_retry_interval = 19.95s\n", 0, -EINVAL, "must exceed"},
	{"[scheduler]\nguest_retry_interval = 19.949s\n", 0, 0, NULL},
	{"[certs]\ntrust_sim_ark = maybe\n", -EINVAL, 0, "not a boolean"},
	{"[daemon]\nguest_log_burst = 010\n", -EINVAL, 0, "not a number"},
	{"[daemon]\nguest_log_burst = 0x10\n", -EINVAL, 0, "not a number"},
	{"[daemon]\nguest_log_burst = 10\n", 0, 0, NULL},
	{"[certs]\nkds_url =; ==\n", -EINVAL, 0, "comment marker"}, /* found by fuzz-conf */
	{"[certs]\nkds_url = #x\n", -EINVAL, 0, "comment marker"},
	{"; comment\n# comment\n[control]\nsocket = /run/x.sock\n", 0, 0, NULL},
	/* [metrics] listen: what the daemon could not bind is refused here (issue 13 point 18). */
	{"[metrics]\nlisten = garbage\n", -EINVAL, 0, "[metrics] listen: 'garbage' is not"},
	{"[metrics]\nlisten = localhost:9477\n", -EINVAL, 0, "numeric address"},
	{"[metrics]\nlisten = 127.0.0.1:99999\n", -EINVAL, 0, "port 1..65535"},
	{"[metrics]\nlisten = 127.0.0.1:0\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = 127.0.0.1\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = 1.2:80\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = abc:80\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = ::1:9477\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = [127.0.0.1]:9477\n", -EINVAL, 0, "is not ADDRESS:PORT"},
	{"[metrics]\nlisten = 0.0.0.0:9477\n", 0, 0, NULL},
	{"[metrics]\nlisten = [::1]:9477\n", 0, 0, NULL},
	{"[metrics]\nlisten = [fe80::1]:65535\n", 0, 0, NULL},
	{"[metrics]\nlisten =\n", 0, 0, NULL},
	{"[metrics]\nrequest_timeout = 50ms\n", -EINVAL, 0, "out of range"},
	{"[metrics]\nrequest_timeout = 2s\n", 0, 0, NULL},
	{"[control]\nrequest_timeout = 11min\n", -EINVAL, 0, "out of range"},
	{"[control]\nrequest_timeout = 500ms\n", 0, 0, NULL},
	/* [vmm]: the VMM socket (issue 12). */
	{"[vmm]\nsocket = none\n", 0, 0, NULL},
	{"[vmm]\nsocket = auto\n", 0, 0, NULL},
	{"[vmm]\nsocket = /tmp/v.sock\ngroup =\n", 0, 0, NULL},
	{"[vmm]\nsocket = vmm.sock\n", 0, -EINVAL,
	 "[vmm] socket must be auto, none or an absolute"},
	{"[vmm]\nsocket = Auto\n", 0, -EINVAL, "[vmm] socket must be"},
	{"[vmm]\nsocket =\n", 0, -EINVAL, "[vmm] socket must be"},
	{"[vmm]\nsocket = /run/snp-attestd/control.sock\n", 0, -EINVAL, "must differ"},
	{"[vmm]\nmax_clients = 0\n", -EINVAL, 0, "out of range"},
	{"[vmm]\nmax_clients = 65537\n", -EINVAL, 0, "out of range"},
	{"[vmm]\nmax_clients = 1\n", 0, 0, NULL},
	{"[vmm]\nhello_timeout = 5ms\n", -EINVAL, 0, "out of range"},
	{"[vmm]\nhello_timeout = 11min\n", -EINVAL, 0, "out of range"},
	{"[vmm]\nhello_timeout = 250ms\n", 0, 0, NULL},
	{"[vmm]\nbacklog = 5\n", -EINVAL, 0, "unknown key 'backlog' in [vmm]"},
};

START_TEST(test_apply_table)
{
	struct conf c;
	char err[256] = "";
	int r;

	ck_assert_int_eq(conf_init_defaults(&c), 0);
	r = conf_apply_string(&c, cases[_i].text, "test.conf", err, sizeof(err));
	ck_assert_msg(r == cases[_i].apply, "case %d: apply %d (%s)", _i, r, err);
	if (r == 0) {
		err[0] = '\0';
		r = conf_validate(&c, err, sizeof(err));
		ck_assert_msg(r == cases[_i].validate, "case %d: validate %d (%s)", _i, r, err);
	}
	if (cases[_i].err_contains)
		ck_assert_msg(strstr(err, cases[_i].err_contains), "case %d: '%s' lacks '%s'", _i,
			      err, cases[_i].err_contains);
	conf_done(&c);
}
END_TEST

START_TEST(test_failed_apply_leaves_old)
{
	struct conf c;
	char err[256];

	ck_assert_int_eq(conf_init_defaults(&c), 0);
	ck_assert_int_eq(conf_apply_string(&c, "[quota]\nrate = 5\n", "a", err, sizeof(err)), 0);
	ck_assert_int_eq(
		conf_apply_string(&c, "[quota]\nrate = 7\nburst = x\n", "b", err, sizeof(err)),
		-EINVAL);
	ck_assert_uint_eq(c.quota_rate_milli, 5000); /* unchanged by the failed file */
	ck_assert_int_eq(conf_apply_string(&c, "[quota]\nrate = 7\n", "c", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.quota_rate_milli, 7000); /* later drop-in overrides */
	conf_done(&c);
}
END_TEST

START_TEST(test_format_roundtrip)
{
	struct conf c, d;
	char err[256];
	char *a, *b;

	ck_assert_int_eq(conf_init_defaults(&c), 0);
	ck_assert_int_eq(
		conf_apply_string(&c,
				  "[daemon]\nbackend=sim\nlog_level=DEBUG\n"
				  "[scheduler]\nmax_queue_wait=20000us\n[quota]\nrate=0.25\n"
				  "[scheduler]\nbusy_budget=10s\nguest_retry_interval=500ms\n",
				  "x", err, sizeof(err)),
		0);
	a = conf_format(&c);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(strstr(a, "max_queue_wait = 20ms\n"));
	ck_assert_ptr_nonnull(strstr(a, "guest_retry_interval = 500ms\n"));
	ck_assert_ptr_nonnull(strstr(a, "rate = 0.25\n"));
	ck_assert_ptr_nonnull(strstr(a, "log_level = debug\n"));
	ck_assert_ptr_nonnull(strstr(a, "backend = sim\n"));
	ck_assert_int_eq(conf_init_defaults(&d), 0);
	ck_assert_int_eq(conf_apply_string(&d, a, "normalised", err, sizeof(err)), 0);
	b = conf_format(&d);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	conf_done(&c);
	conf_done(&d);
}
END_TEST

/* A string value is accepted only if its printed line "key = value" fits what inih reads in
 * one line: otherwise --check-config would print a file that does not parse (fuzz-conf found a
 * 188-byte cache_dir written without spaces around '='). */
START_TEST(test_long_string_value)
{
	char text[512], val[256], err[256] = "";
	struct conf c;
	char *printed;
	size_t fit = (size_t)200 - strlen("cache_dir") - 5; /* Debian's inih: 200-byte lines */

	ck_assert_int_eq(conf_init_defaults(&c), 0);
	memset(val, 'a', sizeof(val));
	val[0] = '/';
	val[fit + 1] = '\0';
	snprintf(text, sizeof(text), "[daemon]\ncache_dir=%s\n", val);
	ck_assert_int_eq(conf_apply_string(&c, text, "t", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "too long"), "'%s'", err);
	val[fit] = '\0';
	snprintf(text, sizeof(text), "[daemon]\ncache_dir=%s\n", val);
	ck_assert_int_eq(conf_apply_string(&c, text, "t", err, sizeof(err)), 0);
	ck_assert_str_eq(c.cache_dir, val);
	printed = conf_format(&c);
	ck_assert_ptr_nonnull(printed);
	conf_done(&c);
	ck_assert_int_eq(conf_init_defaults(&c), 0);
	ck_assert_int_eq(conf_apply_string(&c, printed, "printed", err, sizeof(err)), 0);
	ck_assert_str_eq(c.cache_dir, val);
	free(printed);
	conf_done(&c);
}
END_TEST

START_TEST(test_durations)
{
	static const struct {
		const char *in;
		int r;
		uint64_t usec;
		const char *out;
	} d[] = {
		{"50ms", 0, 50000, "50ms"},	{"20s", 0, 20000000, "20s"},
		{"1.5s", 0, 1500000, "1500ms"}, {"2min", 0, 120000000, "2min"},
		{"7", 0, 7000000, "7s"},	{"10us", 0, 10, "10us"},
		{"", -EINVAL, 0, NULL},		{"ms", -EINVAL, 0, NULL},
		{"5 s", -EINVAL, 0, NULL},	{"99999999999999999999s", -ERANGE, 0, NULL},
	};
	for (size_t i = 0; i < ELEMENTSOF(d); i++) {
		uint64_t u = 12345;
		char buf[32];
		int r = parse_duration_usec(d[i].in, &u);
		ck_assert_msg(r == d[i].r, "case %zu: %d", i, r);
		if (r == 0) {
			ck_assert_uint_eq(u, d[i].usec);
			ck_assert_str_eq(format_duration_usec(u, buf, sizeof(buf)), d[i].out);
		} else {
			ck_assert_uint_eq(u, 12345);
		}
	}
}
END_TEST

START_TEST(test_key_table)
{
	size_t n = 0;
	const char *sec, *def, *help, *k;

	while ((k = conf_key_name(n, &sec, &def, &help))) {
		ck_assert(k[0] && sec[0] && help[0]);
		ck_assert_ptr_nonnull(def);
		n++;
	}
	ck_assert_uint_ge(n, 20);
}
END_TEST

static Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults_valid);
	tcase_add_loop_test(tc, test_apply_table, 0, (int)ELEMENTSOF(cases));
	tcase_add_test(tc, test_failed_apply_leaves_old);
	tcase_add_test(tc, test_format_roundtrip);
	tcase_add_test(tc, test_long_string_value);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_key_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(conf_suite());
}
