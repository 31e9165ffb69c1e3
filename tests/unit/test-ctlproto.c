/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of proto/ctl: request parsing (valid and hostile), roles, reply building and parsing. */
#include "ctlproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util.h"

static int parse_str(const char *s, struct ctl_request *ret, struct ctl_parse_error *err)
{
	return ctl_request_parse(s, strlen(s), ret, err);
}

START_TEST(test_valid_requests)
{
	static const struct {
		const char *line;
		enum ctl_cmd cmd;
		bool has_vm;
		uint64_t vm;
		unsigned fields;
		uint64_t rate_milli;
		uint32_t burst, weight;
	} t[] = {
		{"{\"cmd\":\"status\"}", CTL_CMD_STATUS, false, 0, 0, 0, 0, 0},
		{" {\"cmd\":\"vm.list\",\"id\":7} ", CTL_CMD_VM_LIST, false, 0, 0, 0, 0, 0},
		{"{\"cmd\":\"vm.show\",\"vm\":42}", CTL_CMD_VM_SHOW, true, 42, 0, 0, 0, 0},
		{"{\"cmd\":\"vm.show\",\"vm\":\"18446744073709551615\"}", CTL_CMD_VM_SHOW, true,
		 UINT64_MAX, 0, 0, 0, 0},
		{"{\"cmd\":\"quota.get\",\"vm\":0}", CTL_CMD_QUOTA_GET, true, 0, 0, 0, 0, 0},
		{"{\"cmd\":\"quota.list\",\"id\":\"abc\"}", CTL_CMD_QUOTA_LIST, false, 0, 0, 0, 0,
		 0},
		{"{\"cmd\":\"quota.set\",\"vm\":42,\"rate\":\"0.5\",\"burst\":4,\"weight\":2}",
		 CTL_CMD_QUOTA_SET, true, 42, CTL_QUOTA_RATE | CTL_QUOTA_BURST | CTL_QUOTA_WEIGHT,
		 500, 4, 2},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":3}", CTL_CMD_QUOTA_SET, true, 1,
		 CTL_QUOTA_RATE, 3000, 0, 0},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"weight\":1000}", CTL_CMD_QUOTA_SET, true, 1,
		 CTL_QUOTA_WEIGHT, 0, 0, 1000},
		{"{\"vm\":9,\"cmd\":\"quota.reset\"}", CTL_CMD_QUOTA_RESET, true, 9, 0, 0, 0, 0},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ctl_request q;
		struct ctl_parse_error err;
		int r = parse_str(t[i].line, &q, &err);

		ck_assert_msg(r == 0, "case %zu: %d %s", i, r, err.msg ? err.msg : "");
		ck_assert_ptr_null(err.id);
		ck_assert_int_eq(q.cmd, t[i].cmd);
		ck_assert_int_eq(q.has_vm, t[i].has_vm);
		ck_assert_uint_eq(q.vm_id, t[i].vm);
		ck_assert_uint_eq(q.quota_fields, t[i].fields);
		if (t[i].fields & CTL_QUOTA_RATE)
			ck_assert_uint_eq(q.quota.rate_milli, t[i].rate_milli);
		if (t[i].fields & CTL_QUOTA_BURST)
			ck_assert_uint_eq(q.quota.burst, t[i].burst);
		if (t[i].fields & CTL_QUOTA_WEIGHT)
			ck_assert_uint_eq(q.quota.weight, t[i].weight);
		ctl_request_done(&q);
	}
}
END_TEST

/* VMs of the VMM socket are named by UUID or name; the text travels as given, and a request
 * built from it parses back to the same reference. */
START_TEST(test_vm_references)
{
	static const struct {
		const char *line, *ref;
	} t[] = {
		{"{\"cmd\":\"vm.show\",\"vm\":\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"}",
		 "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
		{"{\"cmd\":\"quota.get\",\"vm\":\"web-01\"}", "web-01"},
		{"{\"cmd\":\"quota.reset\",\"vm\":\"0x10\"}", "0x10"},
		{"{\"cmd\":\"quota.set\",\"vm\":\"-1\",\"burst\":2}", "-1"},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ctl_request q, back;
		struct ctl_parse_error err;
		char *line;

		ck_assert_msg(parse_str(t[i].line, &q, &err) == 0, "case %zu: %s", i,
			      err.msg ? err.msg : "");
		ck_assert(q.has_vm);
		ck_assert_uint_eq(q.vm_id, 0);
		ck_assert_str_eq(q.vm_ref, t[i].ref);
		line = ctl_request_build(&q);
		ck_assert_ptr_nonnull(line);
		ck_assert_int_eq(parse_str(line, &back, &err), 0);
		ck_assert_str_eq(back.vm_ref, t[i].ref);
		free(line);
		ctl_request_done(&q);
		ctl_request_done(&back);
	}
}
END_TEST

START_TEST(test_hostile_requests)
{
	static const struct {
		const char *line;
		int r;
		bool id_echoed;
	} t[] = {
		{"", -EBADMSG, false},
		{"   ", -EBADMSG, false},
		{"[\"status\"]", -EBADMSG, false},
		{"\"status\"", -EBADMSG, false},
		{"42", -EBADMSG, false},
		{"null", -EBADMSG, false},
		{"{\"cmd\":\"status\"", -EBADMSG, false},
		{"{\"cmd\":\"status\"} {}", -EBADMSG, false},
		{"{\"cmd\":\"status\",\"cmd\":\"quota.set\"}", -EBADMSG, false},
		{"{\"cmd\":\"st\\u0000atus\"}", -EBADMSG, false},
		{"{}", -EINVAL, false},
		{"{\"id\":5}", -EINVAL, true},
		{"{\"cmd\":1}", -EINVAL, false},
		{"{\"cmd\":null}", -EINVAL, false},
		{"{\"cmd\":[\"status\"]}", -EINVAL, false},
		{"{\"cmd\":\"reboot\",\"id\":\"x\"}", -EOPNOTSUPP, true},
		{"{\"cmd\":\"STATUS\"}", -EOPNOTSUPP, false},
		{"{\"cmd\":\"status\",\"extra\":1}", -EINVAL, false},
		{"{\"cmd\":\"status\",\"vm\":1}", -EINVAL, false},
		{"{\"cmd\":\"quota.list\",\"rate\":\"1\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":-1}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":1.5}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":true}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"vm one\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"caf\\u00e9\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"a\\u0000b\"}", -EBADMSG, false},
		{"{\"cmd\":\"vm.show\",\"vm\":"
		 "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
		 -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"18446744073709551616\"}", -EINVAL, false},
		{"{\"cmd\":\"vm.show\",\"vm\":\"99999999999999999999999999\"}", -EINVAL, false},
		/* Larger than any JSON integer jansson holds: a parse error, not a wrapped value.
		 */
		{"{\"cmd\":\"vm.show\",\"vm\":99999999999999999999999999}", -EBADMSG, false},
		{"{\"cmd\":\"vm.show\",\"vm\":1e30}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"0\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":0}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"-1\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"0.0001\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"1e3\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"1000000.001\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":0.5}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":9223372036854775807}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"burst\":0}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"burst\":1000001}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"burst\":\"4\"}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"weight\":1001}", -EINVAL, false},
		{"{\"cmd\":\"quota.set\",\"vm\":1,\"weight\":4294967297}", -EINVAL, false},
		{"{\"cmd\":\"status\",\"id\":{\"a\":1}}", -EINVAL, false},
		{"{\"cmd\":\"status\",\"id\":1.5}", -EINVAL, false},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ctl_request q = {.cmd = CTL_CMD_STATUS, .vm_id = 77};
		struct ctl_parse_error err;
		int r = parse_str(t[i].line, &q, &err);

		ck_assert_msg(r == t[i].r, "case %zu (%s): got %d, want %d", i, t[i].line, r,
			      t[i].r);
		ck_assert_msg(err.msg && *err.msg, "case %zu: no reason", i);
		ck_assert_msg((err.id != NULL) == t[i].id_echoed, "case %zu: id", i);
		/* ret is untouched on failure. */
		ck_assert_uint_eq(q.vm_id, 77);
		ck_assert_ptr_null(q.id);
		json_decref(err.id);
	}
}
END_TEST

START_TEST(test_oversized_and_binary)
{
	size_t n = CTL_REQUEST_MAX + 10;
	char *big = malloc(n);
	struct ctl_request q;
	struct ctl_parse_error err;
	static const char nul_inside[] = "{\"cmd\":\"status\"}\0garbage";

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	ck_assert_int_eq(ctl_request_parse(big, CTL_REQUEST_MAX, &q, &err), -EMSGSIZE);
	ck_assert_int_eq(ctl_request_parse(big, n, &q, &err), -EMSGSIZE);
	/* Just under the limit with padding is fine. */
	ck_assert_int_eq(ctl_request_parse(big, CTL_REQUEST_MAX - 1, &q, &err), 0);
	ctl_request_done(&q);
	free(big);
	/* An embedded NUL byte is not JSON. */
	ck_assert_int_eq(ctl_request_parse(nul_inside, sizeof(nul_inside) - 1, &q, &err), -EBADMSG);
	ck_assert_int_eq(ctl_request_parse(NULL, 0, &q, NULL), -EMSGSIZE);
	/* Deep nesting is refused without exhausting the stack. */
	big = malloc(200001);
	ck_assert_ptr_nonnull(big);
	memset(big, '[', 200000);
	big[200000] = '\0';
	ck_assert_int_eq(ctl_request_parse(big, 60000, &q, &err), -EBADMSG);
	free(big);
}
END_TEST

START_TEST(test_roles)
{
	static const struct {
		enum ctl_cmd c;
		const char *name;
		enum ctl_role role;
	} t[] = {
		{CTL_CMD_STATUS, "status", CTL_ROLE_READER},
		{CTL_CMD_VM_LIST, "vm.list", CTL_ROLE_READER},
		{CTL_CMD_VM_SHOW, "vm.show", CTL_ROLE_READER},
		{CTL_CMD_QUOTA_GET, "quota.get", CTL_ROLE_READER},
		{CTL_CMD_QUOTA_LIST, "quota.list", CTL_ROLE_READER},
		{CTL_CMD_QUOTA_SET, "quota.set", CTL_ROLE_ADMIN},
		{CTL_CMD_QUOTA_RESET, "quota.reset", CTL_ROLE_ADMIN},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		ck_assert_str_eq(ctl_cmd_name(t[i].c), t[i].name);
		ck_assert_int_eq(ctl_cmd_role(t[i].c), t[i].role);
	}
	ck_assert_ptr_null(ctl_cmd_name(0));
	ck_assert_ptr_null(ctl_cmd_name(_CTL_CMD_MAX));
	/* Unknown commands need the highest role (fail closed). */
	ck_assert_int_eq(ctl_cmd_role(_CTL_CMD_MAX), CTL_ROLE_ADMIN);
	ck_assert(CTL_ROLE_ADMIN > CTL_ROLE_READER && CTL_ROLE_READER > CTL_ROLE_NONE);
	ck_assert_str_eq(ctl_role_name(CTL_ROLE_NONE), "none");
}
END_TEST

START_TEST(test_request_roundtrip)
{
	static const struct ctl_request t[] = {
		{.cmd = CTL_CMD_STATUS},
		{.cmd = CTL_CMD_VM_SHOW, .has_vm = true, .vm_id = UINT64_MAX},
		{.cmd = CTL_CMD_QUOTA_SET,
		 .has_vm = true,
		 .vm_id = 42,
		 .quota_fields = CTL_QUOTA_RATE | CTL_QUOTA_WEIGHT,
		 .quota = {.rate_milli = 125, .weight = 3}},
		{.cmd = CTL_CMD_QUOTA_RESET, .has_vm = true, .vm_id = 0},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ctl_request in = t[i], out;
		char *line;

		in.id = json_integer((json_int_t)i + 100);
		line = ctl_request_build(&in);
		ck_assert_ptr_nonnull(line);
		ck_assert_msg(line[strlen(line) - 1] == '\n' && !strchr(line, '\n')[1], "%s", line);
		ck_assert_int_eq(ctl_request_parse(line, strlen(line) - 1, &out, NULL), 0);
		ck_assert_int_eq(out.cmd, in.cmd);
		ck_assert_int_eq(out.has_vm, in.has_vm);
		ck_assert_uint_eq(out.vm_id, in.vm_id);
		ck_assert_uint_eq(out.quota_fields, in.quota_fields);
		ck_assert_mem_eq(&out.quota, &in.quota, sizeof(in.quota));
		ck_assert(json_equal(out.id, in.id));
		ctl_request_done(&out);
		ctl_request_done(&in);
		free(line);
	}
}
END_TEST

START_TEST(test_replies)
{
	json_t *id = json_string("r1"), *body = NULL;
	char err[256];
	char *line;

	/* A body cannot forge the envelope. */
	line = ctl_reply_ok(id, json_pack("{s:b, s:s, s:i}", "ok", 0, "id", "forged", "vms", 3));
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(ctl_reply_parse(line, strlen(line), &body, err, sizeof(err)), 0);
	ck_assert(json_is_true(json_object_get(body, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(body, "id")), "r1");
	ck_assert_int_eq(json_integer_value(json_object_get(body, "vms")), 3);
	json_decref(body);
	free(line);

	line = ctl_reply_error(id, -EACCES, "permission denied");
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, "\"code\":\"EACCES\""));
	ck_assert_int_eq(ctl_reply_parse(line, strlen(line), &body, err, sizeof(err)), -EACCES);
	ck_assert_str_eq(err, "permission denied");
	free(line);

	/* An errno outside the table travels as EIO. */
	line = ctl_reply_error(NULL, -ENOTTY, NULL);
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(ctl_reply_parse(line, strlen(line), &body, err, sizeof(err)), -EIO);
	free(line);
	json_decref(id);
}
END_TEST

START_TEST(test_hostile_replies)
{
	static const struct {
		const char *line;
		int r;
	} t[] = {
		{"", -EBADMSG},
		{"[]", -EBADMSG},
		{"{\"error\":\"x\"}", -EBADMSG},
		{"{\"ok\":1}", -EBADMSG},
		{"{\"ok\":true,\"ok\":false}", -EBADMSG},
		{"{\"ok\":false}", -EIO},
		{"{\"ok\":false,\"code\":\"EWHATEVER\",\"error\":\"x\"}", -EIO},
		{"{\"ok\":false,\"code\":\"ENOENT\",\"error\":7}", -ENOENT},
	};

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		json_t *body = (json_t *)0x1;
		char err[64];

		ck_assert_int_eq(
			ctl_reply_parse(t[i].line, strlen(t[i].line), &body, err, sizeof(err)),
			t[i].r);
		ck_assert_msg(body == (json_t *)0x1, "case %zu wrote ret_body", i);
		ck_assert_msg(err[0], "case %zu: no message", i);
	}
}
END_TEST

START_TEST(test_errno_names)
{
	static const int known[] = {EINVAL, EBADMSG, EMSGSIZE, EOPNOTSUPP, EACCES, EPERM, ENOENT,
				    ENOMEM, EBUSY,   EAGAIN,   ERANGE,	   ENOSPC, EIO};

	for (size_t i = 0; i < ELEMENTSOF(known); i++)
		ck_assert_int_eq(ctl_errno_from_name(ctl_errno_name(-known[i])), -known[i]);
	ck_assert_str_eq(ctl_errno_name(-EINVAL), "EINVAL");
	ck_assert_str_eq(ctl_errno_name(ENOENT), "ENOENT");
	ck_assert_int_eq(ctl_errno_from_name(NULL), -EIO);
	ck_assert_int_eq(ctl_errno_from_name("einval"), -EIO);
}
END_TEST

START_TEST(test_cert_requests)
{
	static const struct {
		const char *line;
		int r;
	} t[] = {
		{"{\"cmd\":\"cert.show\"}", 0},
		{"{\"cmd\":\"cert.fetch\",\"id\":3}", 0},
		{"{\"cmd\":\"cert.import\",\"leaf\":\"TUlJ\",\"ask\":\"-----BEGIN\\nx\","
		 "\"ark\":\"QQ==\"}",
		 0},
		{"{\"cmd\":\"cert.import\",\"leaf\":\"a\",\"ask\":\"b\"}", -EINVAL},
		{"{\"cmd\":\"cert.import\"}", -EINVAL},
		{"{\"cmd\":\"cert.import\",\"leaf\":\"\",\"ask\":\"b\",\"ark\":\"c\"}", -EINVAL},
		{"{\"cmd\":\"cert.import\",\"leaf\":1,\"ask\":\"b\",\"ark\":\"c\"}", -EINVAL},
		{"{\"cmd\":\"cert.import\",\"leaf\":\"a\\u0001\",\"ask\":\"b\",\"ark\":\"c\"}",
		 -EINVAL},
		{"{\"cmd\":\"cert.import\",\"leaf\":\"a\\u0000b\",\"ask\":\"b\",\"ark\":\"c\"}",
		 -EBADMSG}, /* jansson refuses NUL in strings */
		{"{\"cmd\":\"cert.show\",\"leaf\":\"a\"}", -EINVAL},
		{"{\"cmd\":\"cert.fetch\",\"vm\":1}", -EINVAL},
	};
	struct ctl_request q, back;
	char *big, *line;

	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ctl_parse_error err;
		int r = parse_str(t[i].line, &q, &err);
		ck_assert_msg(r == t[i].r, "case %zu: %d", i, r);
		if (r == 0)
			ctl_request_done(&q);
		else
			json_decref(err.id);
	}
	ck_assert_int_eq(ctl_cmd_role(CTL_CMD_CERT_SHOW), CTL_ROLE_READER);
	ck_assert_int_eq(ctl_cmd_role(CTL_CMD_CERT_FETCH), CTL_ROLE_ADMIN);
	ck_assert_int_eq(ctl_cmd_role(CTL_CMD_CERT_IMPORT), CTL_ROLE_ADMIN);

	/* One byte over the cap is refused; the cap itself round-trips through the builder. */
	big = malloc(CTL_CERT_TEXT_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'A', CTL_CERT_TEXT_MAX + 1);
	big[CTL_CERT_TEXT_MAX + 1] = '\0';
	q = (struct ctl_request){
		.cmd = CTL_CMD_CERT_IMPORT, .leaf = big, .ask = "x\ny", .ark = "z"};
	line = ctl_request_build(&q);
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(ctl_request_parse(line, strlen(line) - 1, &back, NULL), -EINVAL);
	free(line);
	big[CTL_CERT_TEXT_MAX] = '\0';
	line = ctl_request_build(&q);
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(ctl_request_parse(line, strlen(line) - 1, &back, NULL), 0);
	ck_assert_int_eq(back.cmd, CTL_CMD_CERT_IMPORT);
	ck_assert_str_eq(back.leaf, big);
	ck_assert_str_eq(back.ask, "x\ny");
	ck_assert_str_eq(back.ark, "z");
	ctl_request_done(&back);
	ck_assert_ptr_null(back.leaf);
	free(line);
	free(big);
}
END_TEST

START_TEST(test_u64_and_quota_json)
{
	static const uint64_t vals[] = {
		0, 1, 42, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
	struct sched_quota q = {.rate_milli = 2500, .burst = 8, .weight = 3}, back;
	const char *why = NULL;
	json_t *o;

	for (size_t i = 0; i < ELEMENTSOF(vals); i++) {
		json_t *v = ctl_json_u64(vals[i]);
		uint64_t out = 0;

		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(json_is_integer(v), vals[i] <= (uint64_t)INT64_MAX);
		ck_assert_int_eq(ctl_json_get_u64(v, &out), 0);
		ck_assert_uint_eq(out, vals[i]);
		json_decref(v);
	}

	o = ctl_quota_to_json(&q);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "rate")), "2.5");
	ck_assert_int_eq(ctl_quota_from_json(o, &back, &why), 0);
	ck_assert_mem_eq(&back, &q, sizeof(q));
	json_object_set_new(o, "burst", json_integer(0));
	ck_assert_int_eq(ctl_quota_from_json(o, &back, &why), -EINVAL);
	ck_assert_str_eq(why, "bad or missing burst");
	json_decref(o);
}
END_TEST

static Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_valid_requests);
	tcase_add_test(tc, test_hostile_requests);
	tcase_add_test(tc, test_vm_references);
	tcase_add_test(tc, test_oversized_and_binary);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_request_roundtrip);
	tcase_add_test(tc, test_replies);
	tcase_add_test(tc, test_hostile_replies);
	tcase_add_test(tc, test_errno_names);
	tcase_add_test(tc, test_u64_and_quota_json);
	tcase_add_test(tc, test_cert_requests);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(ctl_suite());
}
