/* SPDX-License-Identifier: Apache-2.0 */
/* test-nl: the snp_attest netlink codec: round trips, and every way a peer can break it. */
#include <dirent.h>
#include <errno.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include "exitinfo.h"
#include "nl.h"
#include "testutil.h"
#include "util.h"

#define A(x) (1u << SNPA_A_##x)
#define FAM SNPA_USERSOCK_FAMILY
#define GUEST_REQ_ATTRS                                                                            \
	(A(REQ_ID) | A(VM_ID) | A(EXIT_CODE) | A(MSG_SEQNO) | A(MSG_TYPE) | A(MSG_VERSION) |       \
	 A(MSG_VMPCK) | A(MSG_SIZE))

static const uint8_t small_table[40] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99};

/* One valid message of every command and every variant. */
static const struct snpa_msg templates[] = {
	{.cmd = SNPA_CMD_REGISTER,
	 .present = A(ABI_VERSION) | A(FEATURES),
	 .abi_version = SNPA_ABI_VERSION,
	 .features = SNPA_F_CERT_TABLE},
	{.cmd = SNPA_CMD_VM_ADD,
	 .present = A(VM_ID) | A(VMM_PID) | A(ASID) | A(POLICY),
	 .vm_id = 0x1122334455667788ull,
	 .vmm_pid = 4242,
	 .asid = 17,
	 .policy = 0x30000},
	{.cmd = SNPA_CMD_VM_ADD,
	 .present = A(VM_ID) | A(VMM_PID) | A(ASID) | A(POLICY) | A(DUMP) | A(INFLIGHT_REQ),
	 .vm_id = 7,
	 .vmm_pid = 1,
	 .asid = 1,
	 .policy = 0x1f0000ull,
	 .inflight_req = 99},
	{.cmd = SNPA_CMD_VM_REMOVE, .present = A(VM_ID), .vm_id = UINT64_MAX},
	{.cmd = SNPA_CMD_VM_DUMP, .present = 0},
	{.cmd = SNPA_CMD_VM_DUMP, .present = A(VM_COUNT), .vm_count = 3},
	{.cmd = SNPA_CMD_GUEST_REQ,
	 .present = GUEST_REQ_ATTRS,
	 .req_id = 1,
	 .vm_id = 7,
	 .exit_code = SVM_VMGEXIT_GUEST_REQUEST,
	 .msg_seqno = 5,
	 .msg_type = 5,
	 .msg_version = 1,
	 .msg_vmpck = 0,
	 .msg_size = 96},
	{.cmd = SNPA_CMD_GUEST_REQ,
	 .present = GUEST_REQ_ATTRS | A(DATA_NPAGES),
	 .req_id = 2,
	 .vm_id = 7,
	 .exit_code = SVM_VMGEXIT_EXT_GUEST_REQUEST,
	 .msg_seqno = 0xfffffffdull,
	 .msg_type = 5,
	 .msg_version = 1,
	 .msg_vmpck = 3,
	 .msg_size = 0xffff,
	 .data_npages = 0},
	{.cmd = SNPA_CMD_VERDICT,
	 .present = A(REQ_ID) | A(VERDICT),
	 .req_id = 1,
	 .verdict = SNPA_VERDICT_ALLOW},
	{.cmd = SNPA_CMD_VERDICT,
	 .present = A(REQ_ID) | A(VERDICT) | A(EXITINFO2) | A(CERT_TABLE),
	 .req_id = 2,
	 .verdict = SNPA_VERDICT_ALLOW,
	 .exitinfo2 = 0,
	 .cert_table = small_table,
	 .cert_table_len = 37 /* odd: exercises padding */},
	{.cmd = SNPA_CMD_VERDICT,
	 .present = A(REQ_ID) | A(VERDICT) | A(EXITINFO2),
	 .req_id = 3,
	 .verdict = SNPA_VERDICT_ANSWER,
	 .exitinfo2 = EXITINFO2_BUSY},
	{.cmd = SNPA_CMD_VERDICT,
	 .present = A(REQ_ID) | A(VERDICT) | A(EXITINFO2) | A(NPAGES),
	 .req_id = 4,
	 .verdict = SNPA_VERDICT_ANSWER,
	 .exitinfo2 = EXITINFO2_INVALID_LEN,
	 .npages = 4},
	{.cmd = SNPA_CMD_GUEST_DONE,
	 .present = A(REQ_ID) | A(VM_ID) | A(OUTCOME) | A(FW_STATUS) | A(FW_TIME_NS),
	 .req_id = 1,
	 .vm_id = 7,
	 .outcome = SNPA_OUTCOME_FIRMWARE,
	 .fw_status = 0x16,
	 .fw_time_ns = 8000000},
	{.cmd = SNPA_CMD_GUEST_DONE,
	 .present = A(REQ_ID) | A(VM_ID) | A(OUTCOME),
	 .req_id = 5,
	 .vm_id = 8,
	 .outcome = SNPA_OUTCOME_EXPIRED},
	{.cmd = SNPA_CMD_GUEST_DONE,
	 .present = A(REQ_ID) | A(VM_ID) | A(OUTCOME),
	 .req_id = 6,
	 .vm_id = 9,
	 .outcome = SNPA_OUTCOME_NO_FW},
};

/* The wire length of each attribute, restated from the comments in nl.h (not from nl.c). */
static int expected_len(uint16_t type)
{
	switch (type) {
	case SNPA_A_MSG_TYPE:
	case SNPA_A_MSG_VERSION:
	case SNPA_A_MSG_VMPCK:
		return 1;
	case SNPA_A_MSG_SIZE:
		return 2;
	case SNPA_A_ABI_VERSION:
	case SNPA_A_FEATURES:
	case SNPA_A_VMM_PID:
	case SNPA_A_ASID:
	case SNPA_A_EXIT_CODE:
	case SNPA_A_DATA_NPAGES:
	case SNPA_A_VERDICT:
	case SNPA_A_NPAGES:
	case SNPA_A_OUTCOME:
	case SNPA_A_FW_STATUS:
	case SNPA_A_VM_COUNT:
		return 4;
	case SNPA_A_VM_ID:
	case SNPA_A_POLICY:
	case SNPA_A_REQ_ID:
	case SNPA_A_MSG_SEQNO:
	case SNPA_A_EXITINFO2:
	case SNPA_A_FW_TIME_NS:
	case SNPA_A_INFLIGHT_REQ:
		return 8;
	case SNPA_A_DUMP:
		return 0;
	default:
		return -1; /* CERT_TABLE: variable */
	}
}

/* Test-side accessor, independent of nl.c's offset table. */
static void set_field(struct snpa_msg *m, uint16_t type, uint64_t v)
{
	switch (type) {
	case SNPA_A_ABI_VERSION:
		m->abi_version = (uint32_t)v;
		break;
	case SNPA_A_FEATURES:
		m->features = (uint32_t)v;
		break;
	case SNPA_A_VM_ID:
		m->vm_id = v;
		break;
	case SNPA_A_VMM_PID:
		m->vmm_pid = (uint32_t)v;
		break;
	case SNPA_A_ASID:
		m->asid = (uint32_t)v;
		break;
	case SNPA_A_POLICY:
		m->policy = v;
		break;
	case SNPA_A_REQ_ID:
		m->req_id = v;
		break;
	case SNPA_A_EXIT_CODE:
		m->exit_code = (uint32_t)v;
		break;
	case SNPA_A_MSG_SEQNO:
		m->msg_seqno = v;
		break;
	case SNPA_A_MSG_TYPE:
		m->msg_type = (uint8_t)v;
		break;
	case SNPA_A_MSG_VERSION:
		m->msg_version = (uint8_t)v;
		break;
	case SNPA_A_MSG_VMPCK:
		m->msg_vmpck = (uint8_t)v;
		break;
	case SNPA_A_MSG_SIZE:
		m->msg_size = (uint16_t)v;
		break;
	case SNPA_A_DATA_NPAGES:
		m->data_npages = (uint32_t)v;
		break;
	case SNPA_A_VERDICT:
		m->verdict = (uint32_t)v;
		break;
	case SNPA_A_EXITINFO2:
		m->exitinfo2 = v;
		break;
	case SNPA_A_NPAGES:
		m->npages = (uint32_t)v;
		break;
	case SNPA_A_OUTCOME:
		m->outcome = (uint32_t)v;
		break;
	case SNPA_A_FW_STATUS:
		m->fw_status = (uint32_t)v;
		break;
	case SNPA_A_FW_TIME_NS:
		m->fw_time_ns = v;
		break;
	case SNPA_A_INFLIGHT_REQ:
		m->inflight_req = v;
		break;
	case SNPA_A_VM_COUNT:
		m->vm_count = (uint32_t)v;
		break;
	case SNPA_A_CERT_TABLE:
		m->cert_table = small_table;
		m->cert_table_len = (uint32_t)v;
		break;
	default:
		break;
	}
	m->present |= 1u << type;
}

static void assert_msg_eq(const struct snpa_msg *a, const struct snpa_msg *b, size_t i)
{
	ck_assert_msg(a->cmd == b->cmd, "%zu: cmd", i);
	ck_assert_msg(a->present == b->present, "%zu: present %#x != %#x", i, a->present,
		      b->present);
#define EQ(f) ck_assert_msg(a->f == b->f, "%zu: " #f, i)
	EQ(abi_version);
	EQ(features);
	EQ(vm_id);
	EQ(vmm_pid);
	EQ(asid);
	EQ(policy);
	EQ(req_id);
	EQ(exit_code);
	EQ(msg_seqno);
	EQ(msg_type);
	EQ(msg_version);
	EQ(msg_vmpck);
	EQ(msg_size);
	EQ(data_npages);
	EQ(verdict);
	EQ(exitinfo2);
	EQ(cert_table_len);
	EQ(npages);
	EQ(outcome);
	EQ(fw_status);
	EQ(fw_time_ns);
	EQ(inflight_req);
	EQ(vm_count);
#undef EQ
	if (a->cert_table_len)
		ck_assert_msg(memcmp(a->cert_table, b->cert_table, a->cert_table_len) == 0,
			      "%zu: table", i);
}

/* Message buffers: netlink wants 4-byte alignment; room for a 16 KiB + 1 table. */
static _Alignas(8) uint8_t wire[SNPA_MSG_MAX + 64];
static _Alignas(8) uint8_t wire2[SNPA_MSG_MAX + 64];

static int build_template(size_t i, void *buf)
{
	int r = nl_build(buf, SNPA_MSG_MAX, FAM, NLM_F_REQUEST, (uint32_t)i + 1, 4242,
			 &templates[i]);
	ck_assert_msg(r > 0, "template %zu: build %d", i, r);
	return r;
}

static struct nlmsghdr *hdr(void *buf)
{
	return buf;
}

/* Removes the first attribute of this type from the message; false if none. */
static bool strip_attr(void *buf, uint16_t type)
{
	struct nlmsghdr *nlh = hdr(buf);
	struct nlattr *a;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN)
	{
		if (mnl_attr_get_type(a) == type) {
			size_t sz = MNL_ALIGN(a->nla_len);
			uint8_t *p = (uint8_t *)a, *end = (uint8_t *)buf + nlh->nlmsg_len;
			memmove(p, p + sz, (size_t)(end - p) - sz);
			nlh->nlmsg_len -= (uint32_t)sz;
			return true;
		}
	}
	return false;
}

static const struct nlattr *find_attr(void *buf, uint16_t type)
{
	struct nlattr *a;

	mnl_attr_for_each(a, hdr(buf), GENL_HDRLEN) if (mnl_attr_get_type(a) == type) return a;
	return NULL;
}

static void append_attr(void *buf, uint16_t type, size_t len, const void *data)
{
	static const uint8_t junk[SNPA_CERT_TABLE_MAX + 8];
	ck_assert(mnl_attr_put_check(hdr(buf), SNPA_MSG_MAX, type, len, data ? data : junk));
}

/* Replaces (or adds) attribute type with value v at its proper width. */
static void wire_set(void *buf, uint16_t type, uint64_t v)
{
	uint8_t b8 = (uint8_t)v;
	uint16_t b16 = (uint16_t)v;
	uint32_t b32 = (uint32_t)v;
	int len = expected_len(type);

	strip_attr(buf, type);
	if (type == SNPA_A_CERT_TABLE)
		append_attr(buf, type, (size_t)v, NULL);
	else
		append_attr(buf, type, (size_t)len,
			    len == 1   ? (void *)&b8
			    : len == 2 ? (void *)&b16
			    : len == 4 ? (void *)&b32
				       : (void *)&v);
}

static int parse_expect_fail(const void *buf, size_t len, const char *reason, size_t i)
{
	struct snpa_msg out, before;
	const char *why = NULL;
	int r;

	memset(&out, 0x5a, sizeof(out));
	before = out;
	r = nl_parse_reason(buf, len, FAM, &out, &why);
	ck_assert_msg(r < 0, "case %zu: accepted, expected '%s'", i, reason ? reason : "?");
	ck_assert_msg(memcmp(&out, &before, sizeof(out)) == 0, "case %zu: ret written", i);
	ck_assert_msg(why != NULL, "case %zu: no reason", i);
	if (reason)
		ck_assert_msg(strcmp(why, reason) == 0, "case %zu: reason '%s', expected '%s'", i,
			      why, reason);
	return r;
}

START_TEST(test_answer_msg)
{
	const char *why = NULL;
	struct snpa_msg busy = nl_answer_msg(7, EXITINFO2_BUSY, 99);
	struct snpa_msg len = nl_answer_msg(8, EXITINFO2_INVALID_LEN, 3);

	ck_assert_int_eq(busy.cmd, SNPA_CMD_VERDICT);
	ck_assert_int_eq(busy.verdict, SNPA_VERDICT_ANSWER);
	ck_assert_uint_eq(busy.req_id, 7);
	ck_assert_uint_eq(busy.exitinfo2, EXITINFO2_BUSY);
	ck_assert_uint_eq(busy.present & (1u << SNPA_A_NPAGES), 0); /* BUSY carries no pages */
	ck_assert_int_eq(nl_validate(&busy, &why), 0);
	ck_assert_uint_ne(len.present & (1u << SNPA_A_NPAGES), 0);
	ck_assert_uint_eq(len.npages, 3);
	ck_assert_int_eq(nl_validate(&len, &why), 0);
}
END_TEST

START_TEST(test_roundtrip)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		struct snpa_msg out;
		const struct genlmsghdr *gh;
		int r, r2;

		memset(wire, 0x00, sizeof(wire));
		memset(wire2, 0xff, sizeof(wire2));
		r = build_template(i, wire);
		r2 = build_template(i, wire2);
		/* Same bytes whatever the buffer held before: padding is zeroed. */
		ck_assert_int_eq(r, r2);
		ck_assert_msg(memcmp(wire, wire2, (size_t)r) == 0, "%zu: stale bytes", i);
		ck_assert_uint_eq(hdr(wire)->nlmsg_len, (unsigned)r);
		ck_assert_uint_eq(hdr(wire)->nlmsg_type, FAM);
		gh = mnl_nlmsg_get_payload(hdr(wire));
		ck_assert_uint_eq(gh->cmd, templates[i].cmd);
		ck_assert_uint_eq(gh->version, 1);

		ck_assert_int_eq(nl_parse(wire, (size_t)r, FAM, &out), 0);
		assert_msg_eq(&out, &templates[i], i);
		ck_assert_uint_eq(out.version, 1);
		ck_assert_uint_eq(out.nlmsg_seq, i + 1);
		ck_assert_uint_eq(out.nlmsg_pid, 4242);
		ck_assert_uint_eq(out.nlmsg_flags, NLM_F_REQUEST);
		if (out.cert_table_len) /* borrowed from the buffer, not copied */
			ck_assert(out.cert_table > wire && out.cert_table < wire + r);
		/* Trailing bytes (a further message in the datagram) are not parsed. */
		ck_assert_int_eq(nl_parse(wire, (size_t)r + 16, FAM, &out), 0);
	}
}
END_TEST

/* Every attribute on the wire has the width the ABI documents, in ascending id order. */
START_TEST(test_wire_widths)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		const struct nlattr *a;
		uint32_t seen = 0;
		int last = 0;

		build_template(i, wire);
		mnl_attr_for_each(a, hdr(wire), GENL_HDRLEN)
		{
			uint16_t t = mnl_attr_get_type(a);
			int want = expected_len(t);

			ck_assert_int_gt(t, last);
			last = t;
			seen |= 1u << t;
			if (want >= 0)
				ck_assert_msg(mnl_attr_get_payload_len(a) == want, "%zu: attr %u",
					      i, t);
			else
				ck_assert_uint_eq(mnl_attr_get_payload_len(a),
						  templates[i].cert_table_len);
		}
		ck_assert_uint_eq(seen, templates[i].present);
	}
	/* Spot-check the byte order (host, as netlink) of a u64 and a u16. */
	build_template(7, wire);
	{
		uint64_t seq;
		uint16_t sz;
		memcpy(&seq, mnl_attr_get_payload(find_attr(wire, SNPA_A_MSG_SEQNO)), 8);
		memcpy(&sz, mnl_attr_get_payload(find_attr(wire, SNPA_A_MSG_SIZE)), 2);
		ck_assert_uint_eq(seq, 0xfffffffdull);
		ck_assert_uint_eq(sz, 0xffff);
	}
}
END_TEST

START_TEST(test_truncated_buffer)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		int r = build_template(i, wire);

		for (size_t len = 0; len < (size_t)r; len++)
			ck_assert_int_eq(parse_expect_fail(wire, len, "truncated message", i),
					 -EMSGSIZE);
	}
}
END_TEST

/* nlmsg_len itself says the message is shorter: the parse must fail, or yield a message
 * that only lacks optional attributes (a cut at an attribute boundary). */
START_TEST(test_truncated_nlmsg_len)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		int r = build_template(i, wire);

		for (uint32_t cut = 0; cut < (uint32_t)r; cut++) {
			struct snpa_msg out;
			int pr;

			memcpy(wire2, wire, (size_t)r);
			hdr(wire2)->nlmsg_len = cut;
			pr = nl_parse(wire2, (size_t)r, FAM, &out);
			if (cut < MNL_NLMSG_HDRLEN + GENL_HDRLEN) {
				ck_assert_int_eq(pr, -EBADMSG);
				continue;
			}
			if (pr < 0) {
				ck_assert_int_eq(pr, -EBADMSG);
				continue;
			}
			ck_assert_msg((out.present & ~templates[i].present) == 0, "%zu/%u", i, cut);
			ck_assert_msg((out.present & nl_required_attrs(out.cmd)) ==
					      nl_required_attrs(out.cmd),
				      "%zu/%u", i, cut);
			/* Only the final attribute's padding may be cut without losing it. */
			if (out.present == templates[i].present)
				ck_assert_msg(cut + 3 >= (uint32_t)r, "%zu/%u", i, cut);
		}
	}
}
END_TEST

/* Every known attribute at a wrong width, in a command that accepts it. */
START_TEST(test_bad_attr_length)
{
	for (uint16_t t = 1; t <= SNPA_A_MAX; t++) {
		size_t ti = ELEMENTSOF(templates);
		size_t lens[6], n = 0;
		int want = expected_len(t);

		for (size_t i = 0; i < ELEMENTSOF(templates); i++)
			if (nl_allowed_attrs(templates[i].cmd) & (1u << t)) {
				ti = i;
				break;
			}
		ck_assert_msg(ti < ELEMENTSOF(templates), "no template for attr %u", t);
		ck_assert_int_ne(nl_attr_kind(t), NL_KIND_NONE);

		if (want < 0) {
			lens[n++] = 0;
			lens[n++] = SNPA_CERT_TABLE_MAX + 1;
		} else if (want == 0) {
			lens[n++] = 1;
			lens[n++] = 4;
			lens[n++] = 8;
		} else {
			lens[n++] = 0;
			lens[n++] = (size_t)want - 1;
			lens[n++] = (size_t)want + 1;
			lens[n++] = (size_t)want * 2;
			if (want != 8)
				lens[n++] = 8;
		}
		for (size_t k = 0; k < n; k++) {
			if (lens[k] == (size_t)want)
				continue;
			build_template(ti, wire);
			strip_attr(wire, t);
			append_attr(wire, t, lens[k], NULL);
			parse_expect_fail(wire, hdr(wire)->nlmsg_len, "bad attribute length", t);
		}
	}
}
END_TEST

START_TEST(test_duplicates)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		for (uint16_t t = 1; t <= SNPA_A_MAX; t++) {
			const struct nlattr *a;
			uint8_t copy[SNPA_CERT_TABLE_MAX];
			size_t plen;

			if (!(templates[i].present & (1u << t)))
				continue;
			build_template(i, wire);
			a = find_attr(wire, t);
			ck_assert(a);
			plen = mnl_attr_get_payload_len(a);
			memcpy(copy, mnl_attr_get_payload(a), plen);
			append_attr(wire, t, plen, copy);
			parse_expect_fail(wire, hdr(wire)->nlmsg_len, "duplicate attribute", i);
		}
	}
}
END_TEST

START_TEST(test_missing_required)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		uint32_t req = nl_required_attrs(templates[i].cmd);

		for (uint16_t t = 1; t <= SNPA_A_MAX; t++) {
			struct snpa_msg m = templates[i];
			const char *why = NULL;

			if (!(req & (1u << t)))
				continue;
			build_template(i, wire);
			ck_assert(strip_attr(wire, t));
			parse_expect_fail(wire, hdr(wire)->nlmsg_len, "missing required attribute",
					  i);
			m.present &= ~(1u << t);
			ck_assert_int_eq(nl_validate(&m, &why), -EINVAL);
			ck_assert_str_eq(why, "missing required attribute");
			ck_assert_int_eq(nl_build(wire, SNPA_MSG_MAX, FAM, 0, 0, 0, &m), -EINVAL);
		}
	}
}
END_TEST

START_TEST(test_unknown_attrs_skipped)
{
	static const struct {
		uint16_t type;
		size_t len;
	} unknown[] = {
		{SNPA_A_MAX + 1, 3},
		{SNPA_A_MAX + 1, 0},
		{0x3fff, 64},
		{SNPA_A_UNSPEC, 8},
		{(SNPA_A_MAX + 2) | NLA_F_NESTED, 4},
	};
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		uint32_t req = nl_required_attrs(templates[i].cmd);
		struct snpa_msg out;
		int r;

		build_template(i, wire);
		for (size_t k = 0; k < ELEMENTSOF(unknown); k++)
			append_attr(wire, unknown[k].type, unknown[k].len, NULL);
		/* Move a required attribute behind the unknown ones, so they sit in between. */
		for (uint16_t t = 1; t <= SNPA_A_MAX; t++) {
			const struct nlattr *a;
			uint8_t copy[16];
			size_t plen;

			if (!(req & (1u << t)))
				continue;
			a = find_attr(wire, t);
			plen = mnl_attr_get_payload_len(a);
			memcpy(copy, mnl_attr_get_payload(a), plen);
			strip_attr(wire, t);
			append_attr(wire, t, plen, copy);
			break;
		}
		r = nl_parse(wire, hdr(wire)->nlmsg_len, FAM, &out);
		ck_assert_msg(r == 0, "template %zu: %d", i, r);
		assert_msg_eq(&out, &templates[i], i);
	}
}
END_TEST

enum patch {
	P_FAMILY,      /* parse expecting another family */
	P_VERSION,     /* genl version byte */
	P_CMD,	       /* genl cmd byte */
	P_NESTED_FLAG, /* NLA_F_NESTED on the first (known) attribute */
	P_BYTEORDER_FLAG,
	P_GARBAGE_TAIL, /* 1..3 bytes after the last attribute, inside nlmsg_len */
};

START_TEST(test_header_rejects)
{
	static const struct {
		enum patch p;
		unsigned v;
		const char *reason;
	} cases[] = {
		{P_FAMILY, FAM + 1, "wrong family"},
		{P_FAMILY, NLMSG_ERROR, "wrong family"},
		{P_FAMILY, 0, "wrong family"},
		{P_VERSION, 0, "unsupported genl version"},
		{P_VERSION, 2, "unsupported genl version"},
		{P_VERSION, 255, "unsupported genl version"},
		{P_CMD, SNPA_CMD_UNSPEC, "unknown command"},
		{P_CMD, SNPA_CMD_MAX + 1, "unknown command"},
		{P_CMD, 255, "unknown command"},
		{P_NESTED_FLAG, 0, "nested or byte-order flag on attribute"},
		{P_BYTEORDER_FLAG, 0, "nested or byte-order flag on attribute"},
		{P_GARBAGE_TAIL, 1, "truncated attribute"},
		{P_GARBAGE_TAIL, 3, "truncated attribute"},
	};
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
			struct genlmsghdr *gh = mnl_nlmsg_get_payload(hdr(wire));
			struct snpa_msg out, before;
			const char *why = NULL;
			uint16_t fam = FAM;
			int r = build_template(i, wire);

			switch (cases[c].p) {
			case P_FAMILY:
				fam = (uint16_t)cases[c].v;
				break;
			case P_VERSION:
				gh->version = (uint8_t)cases[c].v;
				break;
			case P_CMD:
				gh->cmd = (uint8_t)cases[c].v;
				break;
			case P_NESTED_FLAG:
			case P_BYTEORDER_FLAG: {
				struct nlattr *a = (struct nlattr *)(gh + 1);
				if (templates[i].present == 0)
					continue;
				a->nla_type |= cases[c].p == P_NESTED_FLAG ? NLA_F_NESTED
									   : NLA_F_NET_BYTEORDER;
				break;
			}
			case P_GARBAGE_TAIL:
				memset(wire + r, 0xee, cases[c].v);
				hdr(wire)->nlmsg_len += cases[c].v;
				r += (int)cases[c].v;
				break;
			}
			memset(&out, 0x5a, sizeof(out));
			before = out;
			ck_assert_int_eq(nl_parse_reason(wire, (size_t)r, fam, &out, &why),
					 -EBADMSG);
			ck_assert_msg(strcmp(why, cases[c].reason) == 0, "case %zu/%zu: %s", c, i,
				      why);
			ck_assert(memcmp(&out, &before, sizeof(out)) == 0);
		}
	}
}
END_TEST

START_TEST(test_hostile_headers)
{
	static const struct {
		uint32_t nlmsg_len;
		size_t len;
		int ret;
	} cases[] = {
		{0, 64, -EBADMSG},   {15, 64, -EBADMSG},  {16, 64, -EBADMSG},
		{19, 64, -EBADMSG},  {65, 64, -EMSGSIZE}, {UINT32_MAX, 64, -EMSGSIZE},
		{20, 19, -EMSGSIZE},
	};
	struct snpa_msg out;

	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		build_template(4, wire); /* VM_DUMP: a bare header is a valid message */
		hdr(wire)->nlmsg_len = cases[c].nlmsg_len;
		ck_assert_msg(nl_parse(wire, cases[c].len, FAM, &out) == cases[c].ret, "case %zu",
			      c);
	}
	/* Headers are read in place: a misaligned buffer is refused, not read. */
	build_template(1, wire);
	memmove(wire + 1, wire, hdr(wire)->nlmsg_len);
	ck_assert_int_eq(nl_parse(wire + 1, SNPA_MSG_MAX, FAM, &out), -EINVAL);
	ck_assert_int_eq(nl_parse(NULL, 0, FAM, &out), -EINVAL);
	ck_assert_int_eq(nl_build(wire + 1, SNPA_MSG_MAX, FAM, 0, 0, 0, &templates[0]), -EINVAL);
}
END_TEST

enum op { SET, DEL };
struct edit {
	enum op op;
	uint16_t type;
	uint64_t v;
};

/* Semantic rules: each case breaks one, both on the wire (nl_parse) and in a struct handed
 * to nl_build/nl_validate, and must be refused for the named reason. */
START_TEST(test_semantics)
{
	static const struct {
		size_t tmpl;
		struct edit e[2];
		const char *reason;
	} cases[] = {
		/* GUEST_REQ */
		{6, {{SET, SNPA_A_EXIT_CODE, 0x80000013u}}, "unknown EXIT_CODE"},
		{6, {{SET, SNPA_A_EXIT_CODE, 0}}, "unknown EXIT_CODE"},
		{6, {{SET, SNPA_A_DATA_NPAGES, 1}}, "DATA_NPAGES must be present iff extended"},
		{7, {{DEL, SNPA_A_DATA_NPAGES, 0}}, "DATA_NPAGES must be present iff extended"},
		{6,
		 {{SET, SNPA_A_EXIT_CODE, SVM_VMGEXIT_EXT_GUEST_REQUEST}},
		 "DATA_NPAGES must be present iff extended"},
		/* VERDICT */
		{8, {{SET, SNPA_A_VERDICT, 0}}, "unknown VERDICT"},
		{8, {{SET, SNPA_A_VERDICT, 3}}, "unknown VERDICT"},
		{8, {{SET, SNPA_A_NPAGES, 1}}, "NPAGES with ALLOW"},
		{8, {{SET, SNPA_A_EXITINFO2, EXITINFO2_BUSY}}, "non-zero EXITINFO2 with ALLOW"},
		{10, {{DEL, SNPA_A_EXITINFO2, 0}}, "ANSWER without EXITINFO2"},
		{10, {{SET, SNPA_A_CERT_TABLE, 8}}, "CERT_TABLE with ANSWER"},
		{10, {{SET, SNPA_A_NPAGES, 2}}, "NPAGES with a BUSY answer"},
		{10, {{SET, SNPA_A_EXITINFO2, 0}}, "EXITINFO2 is neither BUSY nor INVALID_LEN"},
		{10,
		 {{SET, SNPA_A_EXITINFO2, 0xffffffff00000000ull}},
		 "EXITINFO2 is neither BUSY nor INVALID_LEN"},
		{10, {{SET, SNPA_A_EXITINFO2, 0x16}}, "EXITINFO2 is neither BUSY nor INVALID_LEN"},
		{10,
		 {{SET, SNPA_A_EXITINFO2, EXITINFO2_BUSY | 1}},
		 "EXITINFO2 is neither BUSY nor INVALID_LEN"},
		{11, {{DEL, SNPA_A_NPAGES, 0}}, "INVALID_LEN answer without NPAGES"},
		{11, {{SET, SNPA_A_NPAGES, 0}}, "NPAGES out of range"},
		{11, {{SET, SNPA_A_NPAGES, SNPA_NPAGES_MAX + 1}}, "NPAGES out of range"},
		{11, {{SET, SNPA_A_NPAGES, UINT32_MAX}}, "NPAGES out of range"},
		/* GUEST_DONE */
		{12, {{SET, SNPA_A_OUTCOME, 0}}, "unknown OUTCOME"},
		{12, {{SET, SNPA_A_OUTCOME, 4}}, "unknown OUTCOME"},
		{12,
		 {{DEL, SNPA_A_FW_STATUS, 0}},
		 "FW_STATUS/FW_TIME_NS must be present iff FIRMWARE"},
		{12,
		 {{DEL, SNPA_A_FW_TIME_NS, 0}},
		 "FW_STATUS/FW_TIME_NS must be present iff FIRMWARE"},
		{13,
		 {{SET, SNPA_A_FW_STATUS, 0}},
		 "FW_STATUS/FW_TIME_NS must be present iff FIRMWARE"},
		{14,
		 {{SET, SNPA_A_FW_TIME_NS, 5}},
		 "FW_STATUS/FW_TIME_NS must be present iff FIRMWARE"},
		/* VM_ADD and attributes foreign to a command */
		{2, {{DEL, SNPA_A_DUMP, 0}}, "INFLIGHT_REQ outside a dump"},
		{1, {{SET, SNPA_A_VM_COUNT, 1}}, "attribute not allowed in this command"},
		{0, {{SET, SNPA_A_VM_ID, 1}}, "attribute not allowed in this command"},
		{4, {{SET, SNPA_A_DUMP, 0}}, "attribute not allowed in this command"},
		{6, {{SET, SNPA_A_CERT_TABLE, 4}}, "attribute not allowed in this command"},
		{3, {{SET, SNPA_A_FEATURES, 1}}, "attribute not allowed in this command"},
	};
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		struct snpa_msg m = templates[cases[c].tmpl];
		const char *why = NULL;

		build_template(cases[c].tmpl, wire);
		for (size_t k = 0; k < ELEMENTSOF(cases[c].e); k++) {
			const struct edit *e = &cases[c].e[k];
			if (e->type == 0)
				continue;
			if (e->op == DEL) {
				ck_assert(strip_attr(wire, e->type));
				m.present &= ~(1u << e->type);
			} else {
				wire_set(wire, e->type, e->v);
				set_field(&m, e->type, e->v);
			}
		}
		parse_expect_fail(wire, hdr(wire)->nlmsg_len, cases[c].reason, c);
		ck_assert_msg(nl_validate(&m, &why) == -EINVAL, "case %zu validates", c);
		ck_assert_msg(strcmp(why, cases[c].reason) == 0, "case %zu: %s", c, why);
		ck_assert_int_eq(nl_build(wire2, SNPA_MSG_MAX, FAM, 0, 0, 0, &m), -EINVAL);
	}
}
END_TEST

START_TEST(test_cert_table_limit)
{
	static uint8_t big[SNPA_CERT_TABLE_MAX + 1];
	struct snpa_msg m = templates[9], out;
	int r;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	m.cert_table = big;
	m.cert_table_len = SNPA_CERT_TABLE_MAX;
	r = nl_build(wire, SNPA_MSG_MAX, FAM, 0, 1, 0, &m);
	ck_assert_int_gt(r, SNPA_CERT_TABLE_MAX);
	ck_assert_int_le(r, SNPA_MSG_MAX);
	ck_assert_int_eq(nl_parse(wire, (size_t)r, FAM, &out), 0);
	ck_assert_uint_eq(out.cert_table_len, SNPA_CERT_TABLE_MAX);
	ck_assert(memcmp(out.cert_table, big, SNPA_CERT_TABLE_MAX) == 0);

	/* One byte over: refused by the builder and by the parser. */
	m.cert_table_len = SNPA_CERT_TABLE_MAX + 1;
	ck_assert_int_eq(nl_build(wire2, sizeof(wire2), FAM, 0, 1, 0, &m), -EINVAL);
	m.cert_table_len = 0;
	ck_assert_int_eq(nl_build(wire2, sizeof(wire2), FAM, 0, 1, 0, &m), -EINVAL);
	m.cert_table_len = 10;
	m.cert_table = NULL;
	ck_assert_int_eq(nl_build(wire2, sizeof(wire2), FAM, 0, 1, 0, &m), -EINVAL);
	strip_attr(wire, SNPA_A_CERT_TABLE);
	append_attr(wire, SNPA_A_CERT_TABLE, SNPA_CERT_TABLE_MAX + 1, big);
	parse_expect_fail(wire, hdr(wire)->nlmsg_len, "bad attribute length", 0);
}
END_TEST

START_TEST(test_build_nospc)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		int r = build_template(i, wire);

		for (size_t size = 0; size < (size_t)r; size++)
			ck_assert_int_eq(nl_build(wire2, size, FAM, 0, 0, 0, &templates[i]),
					 -ENOSPC);
		ck_assert_int_eq(nl_build(wire2, (size_t)r, FAM, 0, 0, 0, &templates[i]), r);
	}
}
END_TEST

START_TEST(test_ack)
{
	static const int errs[] = {0, -EBUSY, -EPROTONOSUPPORT, -EPERM, -4095};
	struct nlmsghdr req = {.nlmsg_len = 36,
			       .nlmsg_type = FAM,
			       .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			       .nlmsg_seq = 77,
			       .nlmsg_pid = 1234};

	for (size_t i = 0; i < ELEMENTSOF(errs); i++) {
		uint32_t seq = 0;
		int err = 1, r;

		r = nl_build_ack(wire, SNPA_MSG_MAX, &req, errs[i]);
		ck_assert_int_eq(r, 16 + 4 + 16);
		ck_assert_int_eq(nl_msg_class(wire, (size_t)r, FAM), NL_MSG_ACK);
		ck_assert_int_eq(nl_parse_ack(wire, (size_t)r, &seq, &err), 0);
		ck_assert_uint_eq(seq, 77);
		ck_assert_int_eq(err, errs[i]);
		ck_assert_uint_eq(hdr(wire)->nlmsg_pid, 1234);
		/* An ACK is not an snp_attest message. */
		ck_assert_int_eq(nl_parse(wire, (size_t)r, FAM, &(struct snpa_msg){0}), -EBADMSG);
		for (size_t len = 0; len < (size_t)r; len++)
			ck_assert_int_eq(nl_parse_ack(wire, len, &seq, &err), -EMSGSIZE);
	}
	ck_assert_int_eq(nl_build_ack(wire, SNPA_MSG_MAX, &req, 1), -EINVAL);
	ck_assert_int_eq(nl_build_ack(wire, SNPA_MSG_MAX, &req, -4096), -EINVAL);
	ck_assert_int_eq(nl_build_ack(wire, 35, &req, 0), -ENOSPC);
}
END_TEST

START_TEST(test_ack_hostile)
{
	static const struct {
		uint16_t type;
		uint32_t nlmsg_len;
		int error;
		int ret;
	} cases[] = {
		{NLMSG_ERROR, 36, 0, 0},
		{NLMSG_ERROR, 35, -EBUSY, -EBADMSG}, /* echoed header cut (the kernel never does) */
		{NLMSG_ERROR, 20, -EBUSY, -EBADMSG},
		{NLMSG_ERROR, 19, 0, -EBADMSG}, /* error field cut */
		{NLMSG_ERROR, 16, 0, -EBADMSG},
		{NLMSG_ERROR, 8, 0, -EBADMSG},
		{NLMSG_ERROR, 36, 5, -EBADMSG}, /* positive errno */
		{NLMSG_ERROR, 36, -4096, -EBADMSG},
		{NLMSG_ERROR, 36, INT32_MIN, -EBADMSG},
		{NLMSG_DONE, 36, 0, -EBADMSG},
		{FAM, 36, 0, -EBADMSG},
	};
	struct nlmsghdr req = {.nlmsg_seq = 9};

	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		uint32_t seq = 0xdead;
		int err = 0x5a5a, r;

		nl_build_ack(wire, SNPA_MSG_MAX, &req, 0);
		hdr(wire)->nlmsg_type = cases[c].type;
		hdr(wire)->nlmsg_len = cases[c].nlmsg_len;
		memcpy(wire + 16, &cases[c].error, 4);
		r = nl_parse_ack(wire, 36, &seq, &err);
		ck_assert_msg(r == cases[c].ret, "case %zu: %d", c, r);
		if (r == 0) {
			ck_assert_uint_eq(seq, 9);
			ck_assert_int_eq(err, cases[c].error);
		} else {
			ck_assert_uint_eq(seq, 0xdead);
			ck_assert_int_eq(err, 0x5a5a);
		}
	}
}
END_TEST

START_TEST(test_msg_class)
{
	static const struct {
		uint16_t type;
		int cls;
	} cases[] = {
		{NLMSG_NOOP, NL_MSG_NOOP}, {NLMSG_ERROR, NL_MSG_ACK},
		{NLMSG_DONE, NL_MSG_DONE}, {NLMSG_OVERRUN, NL_MSG_OVERRUN},
		{FAM, NL_MSG_SNPA},	   {0x10, NL_MSG_OTHER},
		{FAM + 1, NL_MSG_OTHER},
	};
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(wire);
		nlh->nlmsg_type = cases[c].type;
		ck_assert_int_eq(nl_msg_class(wire, 16, FAM), cases[c].cls);
		ck_assert_int_eq(nl_msg_class(wire, 15, FAM), -EMSGSIZE);
		nlh->nlmsg_len = 8;
		ck_assert_int_eq(nl_msg_class(wire, 16, FAM), -EBADMSG);
	}
	ck_assert_int_eq(nl_msg_class(wire + 2, 16, FAM), -EINVAL);
}
END_TEST

START_TEST(test_names_and_tables)
{
	for (uint8_t c = 1; c <= SNPA_CMD_MAX; c++) {
		uint32_t req = nl_required_attrs(c), all = nl_allowed_attrs(c);

		ck_assert_str_ne(nl_cmd_name(c), "UNKNOWN");
		for (uint8_t d = c + 1; d <= SNPA_CMD_MAX; d++)
			ck_assert_str_ne(nl_cmd_name(c), nl_cmd_name(d));
		ck_assert_uint_eq(req & ~all, 0);
		ck_assert_uint_eq(all & 1u, 0); /* UNSPEC is never an attribute */
	}
	ck_assert_str_eq(nl_cmd_name(SNPA_CMD_GUEST_REQ), "GUEST_REQ");
	ck_assert_str_eq(nl_cmd_name(0), "UNKNOWN");
	ck_assert_str_eq(nl_cmd_name(SNPA_CMD_MAX + 1), "UNKNOWN");
	ck_assert_uint_eq(nl_required_attrs(0), 0);
	ck_assert_uint_eq(nl_allowed_attrs(200), 0);
	ck_assert_uint_eq(nl_required_attrs(SNPA_CMD_VM_REMOVE), A(VM_ID));
	ck_assert_uint_eq(nl_required_attrs(SNPA_CMD_GUEST_REQ), GUEST_REQ_ATTRS);
	ck_assert_uint_eq(nl_required_attrs(SNPA_CMD_VM_DUMP), 0);
	for (uint16_t t = 1; t <= SNPA_A_MAX; t++) {
		ck_assert_str_ne(nl_attr_name(t), "UNKNOWN");
		ck_assert_int_ne(nl_attr_kind(t), NL_KIND_NONE);
	}
	ck_assert_str_eq(nl_attr_name(SNPA_A_CERT_TABLE), "CERT_TABLE");
	ck_assert_int_eq(nl_attr_kind(SNPA_A_CERT_TABLE), NL_KIND_BINARY);
	ck_assert_int_eq(nl_attr_kind(SNPA_A_DUMP), NL_KIND_FLAG);
	ck_assert_int_eq(nl_attr_kind(SNPA_A_MAX + 1), NL_KIND_NONE);
	ck_assert_int_eq(nl_attr_kind(0), NL_KIND_NONE);
	ck_assert_str_eq(nl_attr_name(0), "UNKNOWN");
	/* Every attribute bit fits the 32-bit present mask. */
	ck_assert_int_lt(SNPA_A_MAX, 32);
}
END_TEST

/* The fuzz seeds: ok-* must parse, bad-* must be refused. */
START_TEST(test_corpus)
{
	const char *root = getenv("SNP_SOURCE_ROOT");
	char dir[4096];
	struct dirent *de;
	size_t ok = 0, bad = 0;
	DIR *d;

	ck_assert_msg(root, "SNP_SOURCE_ROOT not set");
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/nl", root);
	d = opendir(dir);
	ck_assert_msg(d, "no corpus at %s", dir);
	while ((de = readdir(d))) {
		char path[8192];
		struct snpa_msg out;
		uint8_t *data;
		size_t len;
		int r;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		data = test_read_file(path, &len);
		r = len ? nl_parse(data, len, FAM, &out) : -EMSGSIZE;
		if (strncmp(de->d_name, "ok-", 3) == 0) {
			ck_assert_msg(r == 0, "%s: %d", de->d_name, r);
			ok++;
		} else {
			ck_assert_msg(r < 0, "%s parses", de->d_name);
			bad++;
		}
		free(data);
	}
	closedir(d);
	ck_assert_uint_ge(ok, ELEMENTSOF(templates));
	ck_assert_uint_ge(bad, 1);
}
END_TEST

/* NL_WRITE_CORPUS=dir: (re)writes the seed corpus from the templates and some hostile
 * variants, so the committed seeds follow the ABI. */
static int write_corpus(const char *dir)
{
	for (size_t i = 0; i < ELEMENTSOF(templates); i++) {
		char path[4096];
		FILE *f;
		int r;

		r = nl_build(wire, SNPA_MSG_MAX, FAM, NLM_F_REQUEST, (uint32_t)i + 1, 0,
			     &templates[i]);
		if (r < 0)
			return 1;
		for (int v = 0; v < 3; v++) {
			struct genlmsghdr *gh = mnl_nlmsg_get_payload(hdr(wire));
			size_t len = (size_t)r;

			if (v == 1) { /* hostile: duplicate every attribute */
				if (i != 6 && i != 12)
					continue;
				memcpy(wire2, wire, (size_t)r);
				memcpy(wire + r, wire2 + 20, (size_t)r - 20);
				hdr(wire)->nlmsg_len = (uint32_t)(2 * r - 20);
				len = hdr(wire)->nlmsg_len;
			} else if (v == 2) { /* hostile: wrong genl version */
				if (i != 8)
					continue;
				gh->version = 2;
			}
			snprintf(path, sizeof(path), "%s/%s-%s-%02zu.bin", dir, v ? "bad" : "ok",
				 nl_cmd_name(templates[i].cmd), i);
			f = fopen(path, "wb");
			if (!f || fwrite(wire, 1, len, f) != len || fclose(f) != 0)
				return 1;
			nl_build(wire, SNPA_MSG_MAX, FAM, NLM_F_REQUEST, (uint32_t)i + 1, 0,
				 &templates[i]);
		}
	}
	return 0;
}

static Suite *nl_suite(void)
{
	Suite *s = suite_create("nl");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_answer_msg);
	tcase_add_test(tc, test_wire_widths);
	tcase_add_test(tc, test_truncated_buffer);
	tcase_add_test(tc, test_truncated_nlmsg_len);
	tcase_add_test(tc, test_bad_attr_length);
	tcase_add_test(tc, test_duplicates);
	tcase_add_test(tc, test_missing_required);
	tcase_add_test(tc, test_unknown_attrs_skipped);
	tcase_add_test(tc, test_header_rejects);
	tcase_add_test(tc, test_hostile_headers);
	tcase_add_test(tc, test_semantics);
	tcase_add_test(tc, test_cert_table_limit);
	tcase_add_test(tc, test_build_nospc);
	tcase_add_test(tc, test_ack);
	tcase_add_test(tc, test_ack_hostile);
	tcase_add_test(tc, test_msg_class);
	tcase_add_test(tc, test_names_and_tables);
	tcase_add_test(tc, test_corpus);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *corpus = getenv("NL_WRITE_CORPUS");

	if (corpus)
		return write_corpus(corpus);
	return test_run_suite(nl_suite());
}
