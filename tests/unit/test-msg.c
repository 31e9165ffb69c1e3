/* SPDX-License-Identifier: Apache-2.0 */
/* test-msg: guest message header, AES-256-GCM seal/open (with an independent known answer)
 * and payload codecs. */
#include "msg.h"
#include "testutil.h"
#include "util.h"

#include <openssl/evp.h>

static const uint8_t test_key[MSG_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
	0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static struct msg_hdr good_hdr(uint8_t type, uint8_t version, uint64_t seqno)
{
	return (struct msg_hdr){
		.seqno = seqno,
		.algo = MSG_ALGO_AES_256_GCM,
		.hdr_version = MSG_HDR_VERSION,
		.hdr_sz = MSG_HDR_SIZE,
		.type = type,
		.version = version,
		.vmpck = 2,
	};
}

START_TEST(test_type_names)
{
	static const struct {
		uint8_t type;
		const char *name;
		bool req, rsp;
		uint8_t pair;
	} cases[] = {
		{0, "INVALID", false, false, 0},	 {1, "CPUID_REQ", true, false, 2},
		{2, "CPUID_RSP", false, true, 0},	 {3, "KEY_REQ", true, false, 4},
		{4, "KEY_RSP", false, true, 0},		 {5, "REPORT_REQ", true, false, 6},
		{6, "REPORT_RSP", false, true, 0},	 {7, "EXPORT_REQ", true, false, 8},
		{8, "EXPORT_RSP", false, true, 0},	 {9, "IMPORT_REQ", true, false, 10},
		{10, "IMPORT_RSP", false, true, 0},	 {11, "ABSORB_REQ", true, false, 12},
		{12, "ABSORB_RSP", false, true, 0},	 {13, "VMRK_REQ", true, false, 14},
		{14, "VMRK_RSP", false, true, 0},	 {15, "ABSORB_NOMA_REQ", true, false, 16},
		{16, "ABSORB_NOMA_RSP", false, true, 0}, {17, "TSC_INFO_REQ", true, false, 18},
		{18, "TSC_INFO_RSP", false, true, 0},	 {19, "UNKNOWN", false, false, 0},
		{0x80, "UNKNOWN", false, false, 0},	 {0xff, "UNKNOWN", false, false, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ck_assert_str_eq(msg_type_name(cases[i].type), cases[i].name);
		ck_assert_msg(msg_type_is_request(cases[i].type) == cases[i].req, "case %zu", i);
		ck_assert_msg(msg_type_is_response(cases[i].type) == cases[i].rsp, "case %zu", i);
		ck_assert_uint_eq(msg_type_response(cases[i].type), cases[i].pair);
	}
}
END_TEST

START_TEST(test_hdr_layout)
{
	struct msg_hdr h = good_hdr(MSG_KEY_REQ, 2, 0x1122334455667788ull), p;
	uint8_t buf[MSG_HDR_SIZE + 4];

	for (size_t i = 0; i < sizeof(h.authtag); i++)
		h.authtag[i] = (uint8_t)(0xa0 + i);
	h.sz = 0x0123;
	h.vmpck = 3;
	memset(buf, 0xee, sizeof(buf));
	msg_hdr_build(&h, buf);

	/* Field offsets from facts §2.1, checked byte by byte. */
	ck_assert_uint_eq(buf[0x00], 0xa0);
	ck_assert_uint_eq(buf[0x1f], 0xa0 + 31);
	ck_assert_uint_eq(buf[0x20], 0x88);
	ck_assert_uint_eq(buf[0x27], 0x11);
	ck_assert(mem_is_zero(buf + 0x28, 8));
	ck_assert_uint_eq(buf[0x30], 1);
	ck_assert_uint_eq(buf[0x31], 1);
	ck_assert_uint_eq(buf[0x32], 0x60);
	ck_assert_uint_eq(buf[0x33], 0x00);
	ck_assert_uint_eq(buf[0x34], MSG_KEY_REQ);
	ck_assert_uint_eq(buf[0x35], 2);
	ck_assert_uint_eq(buf[0x36], 0x23);
	ck_assert_uint_eq(buf[0x37], 0x01);
	ck_assert(mem_is_zero(buf + 0x38, 4));
	ck_assert_uint_eq(buf[0x3c], 3);
	ck_assert(mem_is_zero(buf + 0x3d, 35));
	ck_assert_uint_eq(buf[MSG_HDR_SIZE], 0xee); /* build writes exactly 96 bytes */

	ck_assert_int_eq(msg_hdr_parse(buf, MSG_HDR_SIZE, &p), 0);
	ck_assert_mem_eq(p.authtag, h.authtag, 32);
	ck_assert_uint_eq(p.seqno, h.seqno);
	ck_assert_uint_eq(p.algo, h.algo);
	ck_assert_uint_eq(p.hdr_version, h.hdr_version);
	ck_assert_uint_eq(p.hdr_sz, h.hdr_sz);
	ck_assert_uint_eq(p.type, h.type);
	ck_assert_uint_eq(p.version, h.version);
	ck_assert_uint_eq(p.sz, h.sz);
	ck_assert_uint_eq(p.vmpck, h.vmpck);

	/* Truncated input: every length below 96 is refused and leaves the output alone. */
	for (size_t len = 0; len < MSG_HDR_SIZE; len++) {
		struct msg_hdr untouched = {.seqno = 42};
		ck_assert_int_eq(msg_hdr_parse(buf, len, &untouched), -EMSGSIZE);
		ck_assert_uint_eq(untouched.seqno, 42);
	}
	ck_assert_int_eq(msg_hdr_parse(NULL, MSG_HDR_SIZE, &p), -EMSGSIZE);
}
END_TEST

START_TEST(test_hdr_check)
{
	static const struct {
		const char *what;
		int field;
		unsigned value;
		int ret;
	} cases[] = {
		/* field: 0 algo, 1 hdr_version, 2 hdr_sz, 3 type, 4 sz, 5 vmpck, 6 seqno, 7 version
		 */
		{"valid", -1, 0, 0},
		{"algo 0 (invalid)", 0, 0, -EBADMSG},
		{"algo 2", 0, 2, -EBADMSG},
		{"hdr_version 0", 1, 0, -EBADMSG},
		{"hdr_version 2", 1, 2, -EBADMSG},
		{"hdr_sz 0x5f", 2, 0x5f, -EBADMSG},
		{"hdr_sz 0x61", 2, 0x61, -EBADMSG},
		{"hdr_sz 0xffff", 2, 0xffff, -EBADMSG},
		{"type INVALID", 3, 0, -EBADMSG},
		{"type 19", 3, 19, -EBADMSG},
		{"type 255", 3, 255, -EBADMSG},
		{"type TSC_INFO_RSP", 3, MSG_TSC_INFO_RSP, 0},
		{"sz 0", 4, 0, 0},
		{"sz 4000", 4, MSG_PAYLOAD_MAX, 0},
		{"sz 4001", 4, MSG_PAYLOAD_MAX + 1, -EBADMSG},
		{"sz 0xffff", 4, 0xffff, -EBADMSG},
		{"vmpck 0", 5, 0, 0},
		{"vmpck 3", 5, 3, 0},
		{"vmpck 4", 5, 4, -EBADMSG},
		{"vmpck 255", 5, 255, -EBADMSG},
		{"seqno 0", 6, 0, -EBADMSG},
		{"seqno 1", 6, 1, 0},
		{"msg_version 0 is payload business", 7, 0, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct msg_hdr h = good_hdr(MSG_REPORT_REQ, 1, 5);

		h.sz = MSG_REPORT_REQ_SIZE;
		switch (cases[i].field) {
		case 0:
			h.algo = (uint8_t)cases[i].value;
			break;
		case 1:
			h.hdr_version = (uint8_t)cases[i].value;
			break;
		case 2:
			h.hdr_sz = (uint16_t)cases[i].value;
			break;
		case 3:
			h.type = (uint8_t)cases[i].value;
			break;
		case 4:
			h.sz = (uint16_t)cases[i].value;
			break;
		case 5:
			h.vmpck = (uint8_t)cases[i].value;
			break;
		case 6:
			h.seqno = cases[i].value;
			break;
		case 7:
			h.version = (uint8_t)cases[i].value;
			break;
		default:
			break;
		}
		ck_assert_msg(msg_hdr_check(&h) == cases[i].ret, "%s", cases[i].what);
	}
}
END_TEST

START_TEST(test_hdr_check_response)
{
	static const struct {
		uint8_t req_type, rsp_type, req_ver, rsp_ver;
		uint64_t req_seq, rsp_seq;
		int ret;
	} cases[] = {
		{MSG_REPORT_REQ, MSG_REPORT_RSP, 1, 1, 1, 2, 0},
		{MSG_KEY_REQ, MSG_KEY_RSP, 2, 2, 9, 10, 0},
		{MSG_TSC_INFO_REQ, MSG_TSC_INFO_RSP, 1, 1, 0xfffffffdull, 0xfffffffeull, 0},
		{MSG_REPORT_REQ, MSG_KEY_RSP, 1, 1, 1, 2, -EBADMSG},	/* wrong type */
		{MSG_REPORT_REQ, MSG_REPORT_REQ, 1, 1, 1, 2, -EBADMSG}, /* echo */
		{MSG_REPORT_RSP, 7, 1, 1, 1, 2, -EBADMSG}, /* "request" is a response */
		{MSG_REPORT_REQ, MSG_REPORT_RSP, 1, 1, 1, 1, -EBADMSG},		 /* same seqno */
		{MSG_REPORT_REQ, MSG_REPORT_RSP, 1, 1, 1, 3, -EBADMSG},		 /* skipped seqno */
		{MSG_REPORT_REQ, MSG_REPORT_RSP, 1, 1, 2, 1, -EBADMSG},		 /* backwards */
		{MSG_REPORT_REQ, MSG_REPORT_RSP, 1, 1, UINT64_MAX, 0, -EBADMSG}, /* wraps */
		{MSG_KEY_REQ, MSG_KEY_RSP, 1, 2, 1, 2, -EBADMSG}, /* version changed */
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct msg_hdr req =
			good_hdr(cases[i].req_type, cases[i].req_ver, cases[i].req_seq);
		struct msg_hdr rsp =
			good_hdr(cases[i].rsp_type, cases[i].rsp_ver, cases[i].rsp_seq);
		ck_assert_msg(msg_hdr_check_response(&req, &rsp) == cases[i].ret, "case %zu", i);
	}
}
END_TEST

START_TEST(test_seqno_helpers)
{
	static const struct {
		uint32_t counter;
		uint64_t req, rsp, next;
		bool exhausted;
	} cases[] = {
		{0, 1, 2, 2, false},
		{2, 3, 4, 4, false},
		{100, 101, 102, 102, false},
		{UINT32_MAX - 2, UINT32_MAX - 1, UINT32_MAX, UINT32_MAX, false},
		{UINT32_MAX - 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1, (uint64_t)UINT32_MAX + 1,
		 true},
		{UINT32_MAX, (uint64_t)UINT32_MAX + 1, (uint64_t)UINT32_MAX + 2,
		 (uint64_t)UINT32_MAX + 2, true},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint64_t req = msg_seqno_request(cases[i].counter);
		ck_assert_uint_eq(req, cases[i].req);
		ck_assert_uint_eq(msg_seqno_response(req), cases[i].rsp);
		ck_assert_uint_eq(msg_seqno_next_counter(cases[i].counter), cases[i].next);
		ck_assert_msg(msg_seqno_exhausted(cases[i].counter) == cases[i].exhausted, "%zu",
			      i);
	}
}
END_TEST

/* Known answer computed independently with Python's `cryptography` AESGCM (not OpenSSL's EVP
 * front end): key 00..1f, seqno 7, REPORT_REQ v1, vmpck 2, payload = report_data 0x40..0x7f,
 * vmpl 1, zero reserved; IV = 07 00 00 00 00 00 00 00 00 00 00 00, AAD = header 0x30..0x5f. */
static const char kat_ct_hex[] =
	"ae9a8da9c12c9d21933a8140804940f51264c2dd01ac8e2e0149d7b785ac727807a5e43c45dad05841e45a5862"
	"00a42333ef3a51cee76e9daba3d7f6d07d63daf3b6320598603694b21bc9595731d603ea411bb8c494c7cfbd2d"
	"c13ae1777e24";
static const char kat_tag_hex[] = "59d6194c68486d28368335362d3ca324";

static void kat_plaintext(uint8_t pt[MSG_REPORT_REQ_SIZE])
{
	struct msg_report_req r = {.vmpl = 1};

	for (size_t i = 0; i < 64; i++)
		r.report_data[i] = (uint8_t)(0x40 + i);
	msg_report_req_build(&r, pt);
}

START_TEST(test_seal_known_answer)
{
	uint8_t pt[MSG_REPORT_REQ_SIZE], page[MSG_PAGE_SIZE], ct[MSG_REPORT_REQ_SIZE], tag[16];
	uint8_t out[MSG_PAYLOAD_MAX];
	struct msg_hdr h = good_hdr(MSG_REPORT_REQ, 1, 7), oh;
	size_t olen = 0;

	kat_plaintext(pt);
	ck_assert_int_eq(hex_decode(kat_ct_hex, strlen(kat_ct_hex), ct, sizeof(ct)), 0);
	ck_assert_int_eq(hex_decode(kat_tag_hex, strlen(kat_tag_hex), tag, sizeof(tag)), 0);

	ck_assert_int_eq(msg_seal(test_key, &h, pt, sizeof(pt), page, sizeof(page)), 0);
	ck_assert_mem_eq(page + MSG_HDR_SIZE, ct, sizeof(ct));
	ck_assert_mem_eq(page, tag, 16);
	ck_assert(mem_is_zero(page + 16, 16)); /* authtag[16..31] unused */
	ck_assert_uint_eq(get_le16(page + MSG_OFF_SZ), MSG_REPORT_REQ_SIZE);

	/* And the reverse: a page assembled by hand from the vector opens. */
	memset(page, 0, sizeof(page));
	h.sz = MSG_REPORT_REQ_SIZE;
	memcpy(h.authtag, tag, 16);
	msg_hdr_build(&h, page);
	memcpy(page + MSG_HDR_SIZE, ct, sizeof(ct));
	ck_assert_int_eq(msg_open(test_key, page, sizeof(page), &oh, out, sizeof(out), &olen), 0);
	ck_assert_uint_eq(olen, sizeof(pt));
	ck_assert_mem_eq(out, pt, sizeof(pt));
	ck_assert_uint_eq(oh.seqno, 7);
	ck_assert_uint_eq(oh.vmpck, 2);
}
END_TEST

/* Decrypts a sealed page with raw EVP calls, building IV and AAD from the documented rule
 * rather than through msg.c. Returns true if the tag verifies. */
static bool raw_evp_open(const uint8_t *page, uint8_t *out)
{
	uint8_t iv[12] = {0}, scratch[16];
	uint16_t sz = get_le16(page + 0x36);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0;
	bool ok;

	memcpy(iv, page + 0x20, 8); /* seqno is stored little-endian already */
	ck_assert(ctx);
	ok = EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), test_key, iv, NULL) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &outl, page + 0x30, 48) == 1 &&
	     (sz == 0 || EVP_DecryptUpdate(ctx, out, &outl, page + 0x60, sz) == 1) &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)page) == 1 &&
	     EVP_DecryptFinal_ex(ctx, scratch, &outl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* One payload per message type the project handles, each from its builder. */
struct payload_case {
	uint8_t type, version;
	uint8_t buf[MSG_PAYLOAD_MAX];
	size_t len;
};

static size_t make_payloads(struct payload_case *c)
{
	size_t n = 0;
	struct msg_report_req rr = {.vmpl = 3, .key_sel = 2};
	struct msg_key_req kr = {.root_key_select = 1,
				 .guest_field_select = 0x3f,
				 .vmpl = 1,
				 .guest_svn = 5,
				 .tcb_version = 0xdb18000000000004ull};
	struct msg_key_rsp ks = {.status = 0};
	struct msg_tsc_info_rsp ts = {.tsc_scale = 1ull << 32, .tsc_offset = 77, .tsc_factor = 9};
	uint8_t report[0x4a0];
	int r;

	memset(rr.report_data, 0x5a, sizeof(rr.report_data));
	memset(ks.key, 0xc3, sizeof(ks.key));
	for (size_t i = 0; i < sizeof(report); i++)
		report[i] = (uint8_t)(i * 7);

	c[n] = (struct payload_case){MSG_REPORT_REQ, 1, {0}, MSG_REPORT_REQ_SIZE};
	msg_report_req_build(&rr, c[n++].buf);
	c[n] = (struct payload_case){MSG_KEY_REQ, 1, {0}, 0};
	r = msg_key_req_build(&kr, 1, c[n].buf, sizeof(c[n].buf));
	ck_assert_int_eq(r, MSG_KEY_REQ_SIZE_V1);
	c[n++].len = (size_t)r;
	kr.guest_field_select = 0x7f;
	kr.launch_mit_vector = 0x3f;
	c[n] = (struct payload_case){MSG_KEY_REQ, 2, {0}, 0};
	r = msg_key_req_build(&kr, 2, c[n].buf, sizeof(c[n].buf));
	ck_assert_int_eq(r, MSG_KEY_REQ_SIZE_V2);
	c[n++].len = (size_t)r;
	c[n] = (struct payload_case){MSG_KEY_RSP, 1, {0}, MSG_KEY_RSP_SIZE};
	msg_key_rsp_build(&ks, c[n++].buf);
	c[n] = (struct payload_case){MSG_TSC_INFO_REQ, 1, {0}, MSG_TSC_INFO_REQ_SIZE};
	msg_tsc_info_req_build(c[n++].buf);
	c[n] = (struct payload_case){MSG_TSC_INFO_RSP, 1, {0}, MSG_TSC_INFO_RSP_SIZE};
	msg_tsc_info_rsp_build(&ts, c[n++].buf);
	c[n] = (struct payload_case){MSG_REPORT_RSP, 1, {0}, 0};
	r = msg_report_rsp_build(0, report, sizeof(report), c[n].buf, sizeof(c[n].buf));
	ck_assert_int_eq(r, MSG_REPORT_RSP_HDR_SIZE + 0x4a0);
	c[n++].len = (size_t)r;
	c[n] = (struct payload_case){MSG_REPORT_RSP, 1, {0}, 0};
	r = msg_report_rsp_build(0x16 /* INVALID_PARAM */, NULL, 0, c[n].buf, sizeof(c[n].buf));
	ck_assert_int_eq(r, MSG_REPORT_RSP_HDR_SIZE);
	c[n++].len = (size_t)r;
	return n;
}

#define MAX_PAYLOAD_CASES 8

/* Seal then open every payload type; the plaintext is then parsed with its own parser. */
START_TEST(test_seal_open_roundtrip)
{
	static struct payload_case cases[MAX_PAYLOAD_CASES];
	size_t n = make_payloads(cases);

	for (size_t i = 0; i < n; i++) {
		uint8_t page[MSG_PAGE_SIZE], out[MSG_PAYLOAD_MAX], raw[MSG_PAYLOAD_MAX];
		struct msg_hdr h = good_hdr(cases[i].type, cases[i].version, 2 * i + 1), oh;
		size_t olen = 0;
		int r = -1;

		h.sz = 0xffff; /* seal must overwrite it with the real length */
		ck_assert_int_eq(
			msg_seal(test_key, &h, cases[i].buf, cases[i].len, page, sizeof(page)), 0);
		ck_assert_msg(memcmp(page + MSG_HDR_SIZE, cases[i].buf, cases[i].len) != 0,
			      "case %zu: payload left in clear", i);
		ck_assert_int_eq(msg_open(test_key, page, MSG_HDR_SIZE + cases[i].len, &oh, out,
					  sizeof(out), &olen),
				 0);
		ck_assert_uint_eq(olen, cases[i].len);
		ck_assert_mem_eq(out, cases[i].buf, olen);
		ck_assert_uint_eq(oh.type, cases[i].type);
		ck_assert_uint_eq(oh.version, cases[i].version);
		ck_assert_uint_eq(oh.seqno, 2 * i + 1);
		ck_assert_uint_eq(oh.sz, cases[i].len);
		ck_assert(raw_evp_open(page, raw));
		ck_assert_mem_eq(raw, cases[i].buf, cases[i].len);

		switch (cases[i].type) {
		case MSG_REPORT_REQ: {
			struct msg_report_req p;
			r = msg_report_req_parse(out, olen, &p);
			ck_assert_uint_eq(p.vmpl, 3);
			ck_assert_uint_eq(p.key_sel, 2);
			break;
		}
		case MSG_REPORT_RSP: {
			struct msg_report_rsp p;
			r = msg_report_rsp_parse(out, olen, &p);
			ck_assert(p.status == 0 ? p.report == out + 0x20 : p.report == NULL);
			break;
		}
		case MSG_KEY_REQ: {
			struct msg_key_req p;
			r = msg_key_req_parse(out, olen, oh.version, &p);
			ck_assert_uint_eq(p.tcb_version, 0xdb18000000000004ull);
			ck_assert_uint_eq(p.launch_mit_vector, oh.version == 2 ? 0x3f : 0);
			break;
		}
		case MSG_KEY_RSP: {
			struct msg_key_rsp p;
			r = msg_key_rsp_parse(out, olen, &p);
			ck_assert_uint_eq(p.key[31], 0xc3);
			break;
		}
		case MSG_TSC_INFO_REQ:
			r = msg_tsc_info_req_parse(out, olen);
			break;
		case MSG_TSC_INFO_RSP: {
			struct msg_tsc_info_rsp p;
			r = msg_tsc_info_rsp_parse(out, olen, &p);
			ck_assert_uint_eq(p.tsc_offset, 77);
			break;
		}
		default:
			ck_abort_msg("unexpected type %u", cases[i].type);
		}
		ck_assert_msg(r == 0, "case %zu (%s): parse %d", i, msg_type_name(cases[i].type),
			      r);
	}
}
END_TEST

START_TEST(test_seal_in_place_and_empty)
{
	uint8_t page[MSG_PAGE_SIZE], pt[MSG_REPORT_REQ_SIZE], out[8];
	struct msg_hdr h = good_hdr(MSG_REPORT_REQ, 1, 7), oh;
	size_t olen = 99;

	kat_plaintext(pt);
	memcpy(page + MSG_HDR_SIZE, pt, sizeof(pt));
	ck_assert_int_eq(
		msg_seal(test_key, &h, page + MSG_HDR_SIZE, sizeof(pt), page, sizeof(page)), 0);
	ck_assert_int_eq(msg_open(test_key, page, sizeof(page), &oh, page + MSG_HDR_SIZE,
				  MSG_PAYLOAD_MAX, &olen),
			 0);
	ck_assert_mem_eq(page + MSG_HDR_SIZE, pt, sizeof(pt));

	/* An empty payload still carries an authenticated header. */
	ck_assert_int_eq(msg_seal(test_key, &h, NULL, 0, page, MSG_HDR_SIZE), 0);
	ck_assert_int_eq(msg_open(test_key, page, MSG_HDR_SIZE, &oh, NULL, 0, &olen), 0);
	ck_assert_uint_eq(olen, 0);
	page[MSG_OFF_VMPCK] ^= 1;
	ck_assert_int_eq(msg_open(test_key, page, MSG_HDR_SIZE, &oh, out, sizeof(out), &olen),
			 -EBADMSG);
}
END_TEST

/* Every authenticated byte matters: tag, AAD (0x30..0x5f), seqno (IV), ciphertext, key. */
START_TEST(test_open_tamper)
{
	uint8_t page[MSG_PAGE_SIZE], pt[MSG_REPORT_REQ_SIZE], out[MSG_PAYLOAD_MAX];
	struct msg_hdr h = good_hdr(MSG_REPORT_REQ, 1, 7);
	struct {
		const char *what;
		size_t from, to; /* byte range to flip, one at a time */
	} ranges[] = {
		{"authtag", 0x00, 0x10},
		{"seqno", 0x20, 0x28},
		{"aad", 0x30, 0x60},
		{"ciphertext", 0x60, 0x60 + MSG_REPORT_REQ_SIZE},
	};
	static const uint8_t flips[] = {0x01, 0x80, 0xff};

	kat_plaintext(pt);
	ck_assert_int_eq(msg_seal(test_key, &h, pt, sizeof(pt), page, sizeof(page)), 0);
	for (size_t r = 0; r < ELEMENTSOF(ranges); r++) {
		for (size_t off = ranges[r].from; off < ranges[r].to; off++) {
			for (size_t f = 0; f < ELEMENTSOF(flips); f++) {
				struct msg_hdr oh = {.seqno = 4242};
				size_t olen = 4242;
				int ret;

				memset(out, 0x77, sizeof(out));
				page[off] ^= flips[f];
				ret = msg_open(test_key, page, sizeof(page), &oh, out, sizeof(out),
					       &olen);
				page[off] ^= flips[f];
				ck_assert_msg(ret == -EBADMSG, "%s byte 0x%zx ^ 0x%02x: %d",
					      ranges[r].what, off, flips[f], ret);
				ck_assert_uint_eq(oh.seqno, 4242);
				ck_assert_uint_eq(olen, 4242);
				/* no unauthenticated plaintext escapes */
				ck_assert_msg(memcmp(out, pt, 16) != 0, "%s 0x%zx", ranges[r].what,
					      off);
			}
		}
	}
	/* Wrong key, one bit at a time in a few positions. */
	for (size_t i = 0; i < MSG_KEY_LEN; i += 7) {
		uint8_t key[MSG_KEY_LEN];
		struct msg_hdr oh;
		size_t olen;

		memcpy(key, test_key, sizeof(key));
		key[i] ^= 0x01;
		ck_assert_int_eq(msg_open(key, page, sizeof(page), &oh, out, sizeof(out), &olen),
				 -EBADMSG);
	}
	/* Untouched page still opens (the loop restored every byte). */
	{
		struct msg_hdr oh;
		size_t olen;
		ck_assert_int_eq(
			msg_open(test_key, page, sizeof(page), &oh, out, sizeof(out), &olen), 0);
	}
}
END_TEST

START_TEST(test_seal_open_errors)
{
	uint8_t page[MSG_PAGE_SIZE + 16], pt[MSG_PAYLOAD_MAX + 1] = {0}, out[MSG_PAYLOAD_MAX];
	struct msg_hdr h = good_hdr(MSG_REPORT_REQ, 1, 3), bad, oh = {.seqno = 1234};
	size_t olen = 1234;

	/* seal */
	ck_assert_int_eq(msg_seal(test_key, &h, pt, MSG_PAYLOAD_MAX + 1, page, sizeof(page)),
			 -EMSGSIZE);
	ck_assert_int_eq(msg_seal(test_key, &h, pt, 96, page, MSG_HDR_SIZE + 95), -ENOSPC);
	ck_assert_int_eq(msg_seal(test_key, &h, NULL, 96, page, sizeof(page)), -EINVAL);
	bad = h;
	bad.seqno = 0;
	ck_assert_int_eq(msg_seal(test_key, &bad, pt, 96, page, sizeof(page)), -EBADMSG);
	bad = h;
	bad.vmpck = 4;
	ck_assert_int_eq(msg_seal(test_key, &bad, pt, 96, page, sizeof(page)), -EBADMSG);
	ck_assert_int_eq(msg_seal(test_key, &h, pt, MSG_PAYLOAD_MAX, page, MSG_PAGE_SIZE), 0);

	/* open: full-size payload works, then size errors */
	ck_assert_int_eq(msg_open(test_key, page, MSG_PAGE_SIZE, &oh, out, sizeof(out), &olen), 0);
	ck_assert_uint_eq(olen, MSG_PAYLOAD_MAX);
	oh.seqno = 1234;
	olen = 1234;
	ck_assert_int_eq(msg_open(test_key, page, MSG_PAGE_SIZE - 1, &oh, out, sizeof(out), &olen),
			 -EMSGSIZE);
	ck_assert_int_eq(msg_open(test_key, page, MSG_HDR_SIZE - 1, &oh, out, sizeof(out), &olen),
			 -EMSGSIZE);
	ck_assert_int_eq(
		msg_open(test_key, page, MSG_PAGE_SIZE, &oh, out, MSG_PAYLOAD_MAX - 1, &olen),
		-ENOSPC);
	ck_assert_int_eq(msg_open(test_key, NULL, MSG_PAGE_SIZE, &oh, out, sizeof(out), &olen),
			 -EMSGSIZE);
	/* a header that claims more than a page is refused before any decryption */
	put_le16(page + MSG_OFF_SZ, MSG_PAYLOAD_MAX + 1);
	ck_assert_int_eq(msg_open(test_key, page, sizeof(page), &oh, out, sizeof(out), &olen),
			 -EBADMSG);
	ck_assert_uint_eq(oh.seqno, 1234);
	ck_assert_uint_eq(olen, 1234);
}
END_TEST

START_TEST(test_report_req_codec)
{
	static const struct {
		const char *what;
		size_t len;
		uint32_t vmpl, word44;
		size_t dirty; /* non-zero byte at this reserved offset (0 = none) */
		int ret;
	} cases[] = {
		{"vmpl 0 default key", 96, 0, 0, 0, 0},
		{"vmpl 3 vlek", 96, 3, 2, 0, 0},
		{"vcek", 96, 1, 1, 0, 0},
		{"short", 95, 0, 0, 0, -EMSGSIZE},
		{"long", 97, 0, 0, 0, -EMSGSIZE},
		{"empty", 0, 0, 0, 0, -EMSGSIZE},
		{"vmpl 4", 96, 4, 0, 0, -EBADMSG},
		{"vmpl huge", 96, 0xffffffff, 0, 0, -EBADMSG},
		{"key_sel 3", 96, 0, 3, 0, -EBADMSG},
		{"word 0x44 bit 2", 96, 0, 4, 0, -EBADMSG},
		{"reserved 0x48", 96, 0, 0, 0x48, -EBADMSG},
		{"reserved 0x5f", 96, 0, 0, 0x5f, -EBADMSG},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[128] = {0};
		struct msg_report_req p = {.vmpl = 99};

		memset(buf, 0xab, 64);
		put_le32(buf + 0x40, cases[i].vmpl);
		put_le32(buf + 0x44, cases[i].word44);
		if (cases[i].dirty)
			buf[cases[i].dirty] = 1;
		ck_assert_msg(msg_report_req_parse(buf, cases[i].len, &p) == cases[i].ret, "%s",
			      cases[i].what);
		if (cases[i].ret == 0) {
			uint8_t back[MSG_REPORT_REQ_SIZE];
			ck_assert_uint_eq(p.vmpl, cases[i].vmpl);
			ck_assert_uint_eq(p.key_sel, cases[i].word44);
			msg_report_req_build(&p, back);
			ck_assert_mem_eq(back, buf, sizeof(back));
		} else {
			ck_assert_uint_eq(p.vmpl, 99);
		}
	}
}
END_TEST

START_TEST(test_report_rsp_codec)
{
	uint8_t report[0x4a0], buf[MSG_PAYLOAD_MAX];
	struct msg_report_rsp p;

	for (size_t i = 0; i < sizeof(report); i++)
		report[i] = (uint8_t)i;
	ck_assert_int_eq(msg_report_rsp_build(0, report, sizeof(report), buf, sizeof(buf)),
			 0x20 + 0x4a0);
	ck_assert_uint_eq(get_le32(buf + 4), 0x4a0);
	ck_assert(mem_is_zero(buf + 8, 24));
	ck_assert_int_eq(msg_report_rsp_parse(buf, 0x20 + 0x4a0, &p), 0);
	ck_assert_uint_eq(p.status, 0);
	ck_assert_uint_eq(p.report_size, 0x4a0);
	ck_assert_ptr_eq(p.report, buf + 0x20);
	ck_assert_mem_eq(p.report, report, sizeof(report));

	/* size errors */
	p.status = 77;
	ck_assert_int_eq(msg_report_rsp_parse(buf, 0x20 + 0x4a0 - 1, &p), -EMSGSIZE);
	ck_assert_int_eq(msg_report_rsp_parse(buf, 0x1f, &p), -EMSGSIZE);
	put_le32(buf + 4, 0xffffffff);
	ck_assert_int_eq(msg_report_rsp_parse(buf, sizeof(buf), &p), -EMSGSIZE);
	put_le32(buf + 4, 0);
	ck_assert_int_eq(msg_report_rsp_parse(buf, sizeof(buf), &p), -EBADMSG);
	ck_assert_uint_eq(p.status, 77);
	ck_assert_int_eq(msg_report_rsp_build(0, report, sizeof(report), buf, 0x20 + 0x49f),
			 -ENOSPC);
	ck_assert_int_eq(msg_report_rsp_build(0, report, MSG_PAYLOAD_MAX, buf, sizeof(buf)),
			 -EMSGSIZE);

	/* an error status carries no report, whatever the size field says */
	ck_assert_int_eq(msg_report_rsp_build(0x27, NULL, 0, buf, 0x20), 0x20);
	put_le32(buf + 4, 0x4a0);
	ck_assert_int_eq(msg_report_rsp_parse(buf, 0x20, &p), 0);
	ck_assert_uint_eq(p.status, 0x27);
	ck_assert_ptr_null(p.report);
}
END_TEST

START_TEST(test_key_req_codec)
{
	static const struct {
		const char *what;
		uint8_t version;
		size_t len;
		uint32_t root, rsvd, vmpl;
		uint64_t fields;
		int ret;
	} cases[] = {
		{"v1", 1, 32, 0, 0, 0, 0x3f, 0},
		{"v1 vmrk", 1, 32, 1, 0, 3, 0x01, 0},
		{"v2 with mit vector", 2, 40, 0, 0, 0, 0x7f, 0},
		{"v1 asks for mit vector", 1, 32, 0, 0, 0, 0x40, -EBADMSG},
		{"v2 unknown field bit", 2, 40, 0, 0, 0, 0x80, -EBADMSG},
		{"root bit 1", 1, 32, 2, 0, 0, 0, -EBADMSG},
		{"reserved word", 1, 32, 0, 1, 0, 0, -EBADMSG},
		{"vmpl 4", 2, 40, 0, 0, 4, 0, -EBADMSG},
		{"v1 with 40 bytes", 1, 40, 0, 0, 0, 0, -EMSGSIZE},
		{"v2 with 32 bytes", 2, 32, 0, 0, 0, 0, -EMSGSIZE},
		{"v1 short", 1, 31, 0, 0, 0, 0, -EMSGSIZE},
		{"version 0", 0, 32, 0, 0, 0, 0, -EPROTONOSUPPORT},
		{"version 3", 3, 40, 0, 0, 0, 0, -EPROTONOSUPPORT},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[48] = {0};
		struct msg_key_req p = {.guest_svn = 99};

		put_le32(buf, cases[i].root);
		put_le32(buf + 4, cases[i].rsvd);
		put_le64(buf + 8, cases[i].fields);
		put_le32(buf + 0x10, cases[i].vmpl);
		put_le32(buf + 0x14, 0x11);
		put_le64(buf + 0x18, 0x7308000000000003ull);
		if (cases[i].len == 40)
			put_le64(buf + 0x20, 0x3f);
		ck_assert_msg(msg_key_req_parse(buf, cases[i].len, cases[i].version, &p) ==
				      cases[i].ret,
			      "%s", cases[i].what);
		if (cases[i].ret == 0) {
			uint8_t back[48];
			ck_assert_uint_eq(p.guest_svn, 0x11);
			ck_assert_uint_eq(p.tcb_version, 0x7308000000000003ull);
			ck_assert_uint_eq(p.launch_mit_vector, cases[i].version == 2 ? 0x3f : 0);
			ck_assert_int_eq(
				msg_key_req_build(&p, cases[i].version, back, sizeof(back)),
				(int)cases[i].len);
			ck_assert_mem_eq(back, buf, cases[i].len);
		} else {
			ck_assert_uint_eq(p.guest_svn, 99);
		}
	}
	{
		struct msg_key_req k = {.launch_mit_vector = 1};
		uint8_t out[40];
		ck_assert_int_eq(msg_key_req_build(&k, 1, out, sizeof(out)), -EINVAL);
		ck_assert_int_eq(msg_key_req_build(&k, 2, out, 39), -ENOSPC);
		ck_assert_int_eq(msg_key_req_build(&k, 4, out, sizeof(out)), -EPROTONOSUPPORT);
	}
}
END_TEST

START_TEST(test_key_and_tsc_rsp_codec)
{
	struct msg_key_rsp k = {.status = 0x16}, kp;
	struct msg_tsc_info_rsp t = {.status = 0,
				     .tsc_scale = 0x0102030405060708ull,
				     .tsc_offset = 0xfffffffffffffff0ull,
				     .tsc_factor = 0x55},
				tp;
	uint8_t kb[MSG_KEY_RSP_SIZE], tb[MSG_TSC_INFO_RSP_SIZE], req[MSG_TSC_INFO_REQ_SIZE + 1];

	for (size_t i = 0; i < 32; i++)
		k.key[i] = (uint8_t)(0xf0 ^ i);
	msg_key_rsp_build(&k, kb);
	ck_assert_uint_eq(kb[0], 0x16);
	ck_assert(mem_is_zero(kb + 4, 0x1c));
	ck_assert_uint_eq(kb[0x20], 0xf0);
	ck_assert_int_eq(msg_key_rsp_parse(kb, sizeof(kb), &kp), 0);
	ck_assert_uint_eq(kp.status, 0x16);
	ck_assert_mem_eq(kp.key, k.key, 32);
	ck_assert_int_eq(msg_key_rsp_parse(kb, sizeof(kb) - 1, &kp), -EMSGSIZE);

	msg_tsc_info_rsp_build(&t, tb);
	ck_assert_uint_eq(tb[0x08], 0x08);
	ck_assert_uint_eq(tb[0x18], 0x55);
	ck_assert(mem_is_zero(tb + 0x1c, 100));
	ck_assert_int_eq(msg_tsc_info_rsp_parse(tb, sizeof(tb), &tp), 0);
	ck_assert_uint_eq(tp.tsc_scale, t.tsc_scale);
	ck_assert_uint_eq(tp.tsc_offset, t.tsc_offset);
	ck_assert_uint_eq(tp.tsc_factor, t.tsc_factor);
	ck_assert_int_eq(msg_tsc_info_rsp_parse(tb, 127, &tp), -EMSGSIZE);

	memset(req, 0xff, sizeof(req));
	msg_tsc_info_req_build(req);
	ck_assert_uint_eq(req[MSG_TSC_INFO_REQ_SIZE], 0xff);
	ck_assert_int_eq(msg_tsc_info_req_parse(req, MSG_TSC_INFO_REQ_SIZE), 0);
	ck_assert_int_eq(msg_tsc_info_req_parse(req, MSG_TSC_INFO_REQ_SIZE + 1), -EMSGSIZE);
	ck_assert_int_eq(msg_tsc_info_req_parse(req, MSG_TSC_INFO_REQ_SIZE - 1), -EMSGSIZE);
	req[127] = 1;
	ck_assert_int_eq(msg_tsc_info_req_parse(req, MSG_TSC_INFO_REQ_SIZE), -EBADMSG);
}
END_TEST

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_type_names);
	tcase_add_test(tc, test_hdr_layout);
	tcase_add_test(tc, test_hdr_check);
	tcase_add_test(tc, test_hdr_check_response);
	tcase_add_test(tc, test_seqno_helpers);
	tcase_add_test(tc, test_seal_known_answer);
	tcase_add_test(tc, test_seal_open_roundtrip);
	tcase_add_test(tc, test_seal_in_place_and_empty);
	tcase_add_test(tc, test_open_tamper);
	tcase_add_test(tc, test_seal_open_errors);
	tcase_add_test(tc, test_report_req_codec);
	tcase_add_test(tc, test_report_rsp_codec);
	tcase_add_test(tc, test_key_req_codec);
	tcase_add_test(tc, test_key_and_tsc_rsp_codec);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(msg_suite());
}
