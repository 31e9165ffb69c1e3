/* SPDX-License-Identifier: Apache-2.0 */
/* test-vmmproto: the VMM socket codec: round trips of every message type (every field
 * compared), the exact wire bytes of one message, and hostile input by error class. */
#include "testutil.h"
#include "util.h"
#include "vmmproto.h"

static uint8_t table_bytes[64];

static void msgs_equal(const struct vmmproto_msg *a, const struct vmmproto_msg *b)
{
	ck_assert_int_eq(a->type, b->type);
	switch (a->type) {
	case VMMPROTO_HELLO:
		ck_assert_mem_eq(a->hello.uuid, b->hello.uuid, 16);
		ck_assert_uint_eq(a->hello.vmm_pid, b->hello.vmm_pid);
		ck_assert_str_eq(a->hello.name, b->hello.name);
		break;
	case VMMPROTO_HELLO_ACK:
		ck_assert_uint_eq(a->hello_ack.vm_id, b->hello_ack.vm_id);
		break;
	case VMMPROTO_CERTS:
		ck_assert_uint_eq(a->certs.req_id, b->certs.req_id);
		ck_assert_uint_eq(a->certs.npages, b->certs.npages);
		break;
	case VMMPROTO_ALLOW:
		ck_assert_uint_eq(a->allow.req_id, b->allow.req_id);
		ck_assert_uint_eq(a->allow.table_len, b->allow.table_len);
		if (a->allow.table_len)
			ck_assert_mem_eq(a->allow.table, b->allow.table, a->allow.table_len);
		else
			ck_assert_ptr_null(b->allow.table);
		break;
	case VMMPROTO_BUSY:
		ck_assert_uint_eq(a->busy.req_id, b->busy.req_id);
		break;
	case VMMPROTO_ENOSPC:
		ck_assert_uint_eq(a->enospc.req_id, b->enospc.req_id);
		ck_assert_uint_eq(a->enospc.npages, b->enospc.npages);
		break;
	case VMMPROTO_DONE:
		ck_assert_uint_eq(a->done.req_id, b->done.req_id);
		ck_assert_int_eq(a->done.outcome, b->done.outcome);
		break;
	case VMMPROTO_ERROR:
		ck_assert_uint_eq(a->error.req_id, b->error.req_id);
		ck_assert_int_eq(a->error.code, b->error.code);
		break;
	}
}

static struct vmmproto_msg sample(size_t i)
{
	struct vmmproto_msg m;

	memset(&m, 0, sizeof(m));
	switch (i) {
	case 0:
		m.type = VMMPROTO_HELLO;
		for (int k = 0; k < 16; k++)
			m.hello.uuid[k] = (uint8_t)(0xa0 + k);
		m.hello.vmm_pid = 0xfedcba98;
		strcpy(m.hello.name, "vm-07");
		break;
	case 1:
		m.type = VMMPROTO_HELLO;
		m.hello.vmm_pid = 1;
		memset(m.hello.name, 'x', VMMPROTO_NAME_MAX); /* the longest name */
		break;
	case 2:
		m.type = VMMPROTO_HELLO_ACK;
		m.hello_ack.vm_id = 0x0102030405060708ull;
		break;
	case 3:
		m.type = VMMPROTO_CERTS;
		m.certs.req_id = UINT64_MAX;
		m.certs.npages = 0; /* RBX = 0 is legal: the guest asks for the length */
		break;
	case 4:
		m.type = VMMPROTO_ALLOW;
		m.allow.req_id = 42;
		m.allow.table = table_bytes;
		m.allow.table_len = sizeof(table_bytes);
		break;
	case 5:
		m.type = VMMPROTO_ALLOW;
		m.allow.req_id = 43; /* no table */
		break;
	case 6:
		m.type = VMMPROTO_BUSY;
		m.busy.req_id = 7;
		break;
	case 7:
		m.type = VMMPROTO_ENOSPC;
		m.enospc.req_id = 8;
		m.enospc.npages = 4;
		break;
	case 8:
		m.type = VMMPROTO_DONE;
		m.done.req_id = 9;
		m.done.outcome = VMMPROTO_DONE_ABANDONED;
		break;
	case 9:
		m.type = VMMPROTO_ERROR;
		m.error.req_id = 0;
		m.error.code = VMMPROTO_E_DENIED;
		break;
	case 10:
		m.type = VMMPROTO_CERTS;
		m.certs.req_id = 1;
		m.certs.npages = UINT32_MAX;
		break;
	}
	return m;
}
#define N_SAMPLES 11

START_TEST(test_round_trip)
{
	uint8_t buf[VMMPROTO_MSG_MAX];

	for (size_t k = 0; k < sizeof(table_bytes); k++)
		table_bytes[k] = (uint8_t)(k * 7 + 1);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		struct vmmproto_msg m = sample(i), back;
		size_t len = 0;
		uint16_t ver = 0;

		ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), 0);
		ck_assert_uint_eq(get_le32(buf + 8), len);
		ck_assert_int_eq(vmmproto_parse(buf, len, &back, &ver), 0);
		ck_assert_uint_eq(ver, VMMPROTO_VERSION);
		ck_assert_uint_eq(back.version, VMMPROTO_VERSION);
		msgs_equal(&m, &back);
		/* Every truncation and a trailing byte are refused. */
		for (size_t cut = 0; cut < len; cut++) {
			put_le32(buf + 8, (uint32_t)cut);
			ck_assert_msg(vmmproto_parse(buf, cut, &back, NULL) < 0,
				      "sample %zu cut %zu", i, cut);
		}
		put_le32(buf + 8, (uint32_t)len + 1);
		buf[len] = 0;
		ck_assert_int_eq(vmmproto_parse(buf, len + 1, &back, NULL), -EMSGSIZE);
		/* Too small an output buffer. */
		ck_assert_int_eq(vmmproto_build(&m, buf, len - 1, &len), -ENOBUFS);
	}
}
END_TEST

START_TEST(test_wire_bytes)
{
	/* CERTS req 0x1122334455667788, 3 pages: the layout docs/vmm-protocol.md shows. */
	static const uint8_t want[] = {
		'S',  'N',  'P',  'V',	0x01, 0x00, 0x03, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x88, 0x77,
		0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	struct vmmproto_msg m = {.type = VMMPROTO_CERTS};
	uint8_t buf[64];
	size_t len;

	m.certs.req_id = 0x1122334455667788ull;
	m.certs.npages = 3;
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

/* A valid message of sample i, then one byte patched. */
struct patch {
	size_t sample;
	size_t off;
	uint8_t val;
	int err;
	const char *what;
};

START_TEST(test_hostile)
{
	static const struct patch cases[] = {
		{6, 0, 'X', -EBADMSG, "magic"},
		{6, 8, 0x13, -EBADMSG, "length field != datagram"},
		{6, 4, 2, -EPROTONOSUPPORT, "version 2"},
		{6, 4, 0, -EPROTONOSUPPORT, "version 0"},
		{6, 6, 0, -EOPNOTSUPP, "type 0"},
		{6, 6, 9, -EOPNOTSUPP, "type 9"},
		{6, 7, 1, -EOPNOTSUPP, "type 0x105"},
		{6, 6, 2, 0, "BUSY body read as HELLO_ACK is fine"},
		{0, 12 + 22, 1, -EINVAL, "HELLO reserved"},
		{0, 12 + 24, ' ', -EINVAL, "HELLO name with a space"},
		{0, 12 + 24, 0, -EINVAL, "HELLO name with a NUL"},
		{0, 12 + 24, 0x80, -EINVAL, "HELLO name not ASCII"},
		{0, 12 + 20, 6, -EMSGSIZE, "HELLO name length past the body"},
		{3, 12 + 12, 1, -EINVAL, "CERTS reserved"},
		{4, 12 + 12, 1, -EINVAL, "ALLOW reserved"},
		{4, 12 + 8, 65, -EMSGSIZE, "ALLOW table length past the body"},
		{6, 12, 0, -EINVAL, "BUSY request id 0"},
		{7, 12 + 8, 0, -EINVAL, "ENOSPC 0 pages"},
		{8, 12 + 8, 2, -EINVAL, "DONE unknown outcome"},
		{9, 12 + 8, 0, -EINVAL, "ERROR code 0"},
		{9, 12 + 8, 10, -EINVAL, "ERROR code 10"},
	};
	uint8_t buf[VMMPROTO_MSG_MAX];

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct vmmproto_msg m = sample(cases[i].sample), back;
		size_t len;
		uint16_t ver = 0;
		int r;

		if (cases[i].sample == 6 && cases[i].off == 6 && cases[i].val == 2) {
			/* BUSY and HELLO_ACK have the same 8-byte body: the type decides. */
			ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), 0);
			buf[6] = 2;
			ck_assert_int_eq(vmmproto_parse(buf, len, &back, NULL), 0);
			ck_assert_int_eq(back.type, VMMPROTO_HELLO_ACK);
			ck_assert_uint_eq(back.hello_ack.vm_id, 7);
			continue;
		}
		m.allow.table = m.type == VMMPROTO_ALLOW ? table_bytes : m.allow.table;
		ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), 0);
		buf[cases[i].off] = cases[i].val;
		memset(&back, 0x5a, sizeof(back));
		r = vmmproto_parse(buf, len, &back, &ver);
		ck_assert_msg(r == cases[i].err, "%s: %d, want %d", cases[i].what, r, cases[i].err);
		if (r == -EPROTONOSUPPORT)
			ck_assert_uint_eq(ver, cases[i].val);
		ck_assert_msg(back.type == (enum vmmproto_type)0x5a5a5a5a, "%s: *ret written",
			      cases[i].what);
	}
	ck_assert_int_eq(vmmproto_parse(NULL, 0, NULL, NULL), -EBADMSG);
	ck_assert_int_eq(vmmproto_parse(buf, 11, NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_build_refuses)
{
	static uint8_t big[VMMPROTO_TABLE_MAX + 1];
	struct vmmproto_msg m;
	uint8_t buf[VMMPROTO_MSG_MAX + 16];
	size_t len;

	memset(&m, 0, sizeof(m));
	m.type = VMMPROTO_HELLO; /* empty name */
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);
	memset(m.hello.name, 'a', VMMPROTO_NAME_MAX + 1); /* 65 characters, unterminated */
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);

	memset(&m, 0, sizeof(m));
	m.type = VMMPROTO_ALLOW;
	m.allow.req_id = 1;
	m.allow.table = big;
	m.allow.table_len = sizeof(big);
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);
	m.allow.table_len = VMMPROTO_TABLE_MAX; /* the largest table fits in MSG_MAX */
	ck_assert_int_eq(vmmproto_build(&m, buf, VMMPROTO_MSG_MAX, &len), 0);
	ck_assert_uint_eq(len, VMMPROTO_MSG_MAX);
	m.allow.table_len = 23; /* shorter than the terminator */
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);
	m.allow.table_len = 24;
	m.allow.table = NULL;
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);

	memset(&m, 0, sizeof(m));
	m.type = (enum vmmproto_type)0;
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);
	m.type = VMMPROTO_DONE; /* request id 0 */
	ck_assert_int_eq(vmmproto_build(&m, buf, sizeof(buf), &len), -EINVAL);
}
END_TEST

START_TEST(test_names)
{
	ck_assert(vmmproto_from_vmm(VMMPROTO_HELLO));
	ck_assert(vmmproto_from_vmm(VMMPROTO_CERTS));
	ck_assert(vmmproto_from_vmm(VMMPROTO_DONE));
	ck_assert(vmmproto_from_vmm(VMMPROTO_ERROR));
	ck_assert(!vmmproto_from_vmm(VMMPROTO_ALLOW));
	ck_assert(!vmmproto_from_vmm(VMMPROTO_HELLO_ACK));
	ck_assert_str_eq(vmmproto_type_name(VMMPROTO_ENOSPC), "ENOSPC");
	ck_assert_str_eq(vmmproto_type_name((enum vmmproto_type)0), "UNKNOWN");
	ck_assert_str_eq(vmmproto_type_name((enum vmmproto_type)99), "UNKNOWN");
	ck_assert_str_eq(vmmproto_error_name(VMMPROTO_E_DUPLICATE), "duplicate");
	ck_assert_str_eq(vmmproto_error_name((enum vmmproto_error)0), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmmproto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_wire_bytes);
	tcase_add_test(tc, test_hostile);
	tcase_add_test(tc, test_build_refuses);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
