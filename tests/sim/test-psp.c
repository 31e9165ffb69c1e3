/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of sim/psp against hand-built guest messages: reports that parse and verify, the
 * firmware status and sequence rule for bad requests, KEY/TSC_INFO, platform commands and a
 * TCB change made by another process. */
#include <pthread.h>
#include <sys/wait.h>

#include "exitinfo.h"
#include "msg.h"
#include "psp.h"
#include "report.h"
#include "simtest.h"
#include "util.h"

static char *tmp, *dir;
static struct sim_state *state;
static struct sim_psp *psp;
static struct sim_psp_vm *vm;

static const struct sim_vm_config vm_cfg = {
	.vm_id = 0x1234,
	.policy = 0x30000,
	.guest_svn = 2,
	.measurement = {0xAA, 0xBB},
	.host_data = {0x11, 0x22},
	.family_id = {1},
	.image_id = {2},
};

static void open_platform(enum snp_product p)
{
	ck_assert_int_eq(sim_state_open(dir, p, &state), 0);
	ck_assert_int_eq(sim_psp_new(state, &psp), 0);
	for (int op = 0; op < _SIM_PSP_OP_MAX; op++)
		ck_assert_int_eq(sim_psp_set_delay(psp, op, 0), 0);
	ck_assert_int_eq(sim_psp_vm_new(psp, &vm_cfg, &vm), 0);
}

static void setup(void)
{
	tmp = simtest_mkdtemp();
	dir = simtest_path(tmp, "st");
	state = NULL, psp = NULL, vm = NULL;
}

static void teardown(void)
{
	sim_psp_vm_free(vm);
	sim_psp_free(psp);
	sim_state_free(state);
	simtest_rmtree(dir);
	simtest_rmtree(tmp);
	free(dir);
	free(tmp);
}

/* A request page as the guest driver builds it. */
static void build_req(unsigned vmpck_idx, unsigned key_idx, uint64_t seqno, uint8_t type,
		      uint8_t version, const uint8_t *pt, size_t len, uint8_t page[MSG_PAGE_SIZE])
{
	uint8_t key[32];
	struct msg_hdr h = {
		.seqno = seqno,
		.algo = MSG_ALGO_AES_256_GCM,
		.hdr_version = MSG_HDR_VERSION,
		.hdr_sz = MSG_HDR_SIZE,
		.type = type,
		.version = version,
		.vmpck = (uint8_t)vmpck_idx,
	};

	memset(page, 0, MSG_PAGE_SIZE);
	ck_assert_int_eq(sim_psp_vm_vmpck(vm, key_idx, key), 0);
	ck_assert_int_eq(msg_seal(key, &h, pt, len, page, MSG_PAGE_SIZE), 0);
}

static void report_req_payload(uint32_t vmpl, uint32_t key_sel, uint8_t out[MSG_REPORT_REQ_SIZE])
{
	struct msg_report_req r = {.vmpl = vmpl, .key_sel = key_sel};

	memset(r.report_data, 0x42, sizeof(r.report_data));
	msg_report_req_build(&r, out);
}

/* Sends a request, expects SUCCESS and opens the response (checking its header against the
 * request); returns the payload length. */
static size_t roundtrip(unsigned idx, uint64_t seqno, uint8_t type, uint8_t version,
			const uint8_t *pt, size_t len, uint8_t *out)
{
	uint8_t req[MSG_PAGE_SIZE], resp[MSG_PAGE_SIZE], key[32];
	struct msg_hdr rh;
	size_t n = 0;
	uint32_t fw = 0xdead;

	build_req(idx, idx, seqno, type, version, pt, len, req);
	ck_assert_int_eq(sim_psp_guest_request(psp, vm, req, sizeof(req), resp, sizeof(resp), &fw),
			 0);
	ck_assert_msg(fw == SEV_RET_SUCCESS, "fw status 0x%x", fw);
	ck_assert_int_eq(sim_psp_vm_vmpck(vm, idx, key), 0);
	ck_assert_int_eq(msg_open(key, resp, sizeof(resp), &rh, out, MSG_PAYLOAD_MAX, &n), 0);
	ck_assert_uint_eq(rh.seqno, seqno + 1);
	ck_assert_uint_eq(rh.type, type + 1);
	ck_assert_uint_eq(rh.version, version);
	ck_assert_uint_eq(rh.vmpck, idx);
	return n;
}

/* Gets a report over VMPCK0 and returns the raw report and its parse. */
static void get_report(uint64_t seqno, uint32_t key_sel, uint8_t raw[REPORT_SIZE],
		       struct report *rep)
{
	uint8_t pt[MSG_REPORT_REQ_SIZE], out[MSG_PAYLOAD_MAX];
	struct msg_report_rsp rsp;
	size_t n;

	report_req_payload(0, key_sel, pt);
	n = roundtrip(0, seqno, MSG_REPORT_REQ, 1, pt, sizeof(pt), out);
	ck_assert_int_eq(msg_report_rsp_parse(out, n, &rsp), 0);
	ck_assert_uint_eq(rsp.status, 0);
	ck_assert_uint_eq(rsp.report_size, REPORT_SIZE);
	memcpy(raw, rsp.report, REPORT_SIZE);
	ck_assert_int_eq(report_parse(raw, REPORT_SIZE, rep), 0);
}

static void assert_signed_by_vcek(const uint8_t raw[REPORT_SIZE], uint64_t tcb)
{
	struct sim_state_data d;
	EVP_PKEY *k = NULL;

	ck_assert_int_eq(sim_state_read(state, &d), 0);
	ck_assert_int_eq(sim_keys_vcek(d.secret, d.product, tcb, &k), 0);
	ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, k), 0);
	EVP_PKEY_free(k);
}

START_TEST(test_report_per_product)
{
	static const struct {
		enum snp_product p;
		uint32_t version;
		uint8_t family;
	} cases[] = {
		{SNP_PRODUCT_MILAN, 3, 0x19},
		{SNP_PRODUCT_GENOA, 3, 0x19},
		{SNP_PRODUCT_TURIN, 5, 0x1A},
	};
	uint8_t raw[REPORT_SIZE], rid[32];
	struct sim_state_data d;
	struct report rep;
	enum snp_product got;
	EVP_PKEY *pub = NULL;

	open_platform(cases[_i].p);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	get_report(1, 0, raw, &rep);
	ck_assert_uint_eq(rep.version, cases[_i].version);
	ck_assert_uint_eq(rep.cpuid_fam_id, cases[_i].family);
	ck_assert_int_eq(report_product(&rep, &got), 0);
	ck_assert_int_eq(got, cases[_i].p);
	ck_assert_uint_eq(rep.policy, vm_cfg.policy);
	ck_assert_uint_eq(rep.guest_svn, vm_cfg.guest_svn);
	ck_assert_uint_eq(rep.vmpl, 0);
	ck_assert_uint_eq(rep.signing_key, REPORT_SIGNING_KEY_VCEK);
	ck_assert_mem_eq(rep.measurement, vm_cfg.measurement, 48);
	ck_assert_mem_eq(rep.host_data, vm_cfg.host_data, 32);
	ck_assert_mem_eq(rep.family_id, vm_cfg.family_id, 16);
	sim_psp_vm_report_id(vm, rid);
	ck_assert_mem_eq(rep.report_id, rid, 32);
	ck_assert_uint_eq(rep.report_data[0], 0x42);
	ck_assert_uint_eq(rep.reported_tcb, d.reported_tcb);
	ck_assert_uint_eq(rep.current_tcb, d.current_tcb);
	ck_assert_uint_eq(rep.committed_tcb, d.committed_tcb);
	ck_assert_uint_eq(rep.launch_tcb, d.current_tcb);
	ck_assert_mem_eq(rep.chip_id, d.chip_id, 64);
	assert_signed_by_vcek(raw, d.reported_tcb);
	/* the PSP's own view of its signing key agrees */
	ck_assert_int_eq(sim_psp_signing_key(psp, false, &pub), 0);
	ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, pub), 0);
	EVP_PKEY_free(pub);
	/* and a key for another TCB does not verify it */
	{
		EVP_PKEY *k = NULL;
		ck_assert_int_eq(sim_keys_vcek(d.secret, d.product, d.reported_tcb ^ 1, &k), 0);
		ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, k), -EKEYREJECTED);
		EVP_PKEY_free(k);
	}
	/* the next one uses seqno 3 */
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 0), 3);
	get_report(3, 1, raw, &rep);
	assert_signed_by_vcek(raw, d.reported_tcb);
}
END_TEST

enum mutation {
	M_NONE,
	M_TAG,	   /* flip a tag byte */
	M_PAYLOAD, /* flip a ciphertext byte */
	M_HDR,	   /* flip an AAD byte (reserved) */
	M_ALGO,
	M_HDR_VERSION,
	M_SZ_BIG,    /* msg_sz beyond the page */
	M_VMPCK_BIG, /* msg_vmpck = 4 */
	M_SEQ0,	     /* seqno field zeroed after sealing */
};

/* Each bad request: the firmware status, a zeroed response, no sequence advance; the next
 * correct request with the expected seqno still works. */
START_TEST(test_bad_requests)
{
	static const struct {
		const char *name;
		unsigned vmpck, key;
		uint64_t seqno;
		uint8_t type, version;
		size_t len;
		enum mutation m;
		size_t req_len;
		uint32_t fw;
	} cases[] = {
		{"seqno 0", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_SEQ0, 4096, SEV_RET_INVALID_PARAM},
		{"gap", 0, 0, 5, MSG_REPORT_REQ, 1, 96, M_NONE, 4096, SEV_RET_INVALID_PARAM},
		{"even seqno", 0, 0, 2, MSG_REPORT_REQ, 1, 96, M_NONE, 4096, SEV_RET_INVALID_PARAM},
		{"wrong key", 0, 1, 1, MSG_REPORT_REQ, 1, 96, M_NONE, 4096, SEV_RET_BAD_SIGNATURE},
		{"tampered tag", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_TAG, 4096,
		 SEV_RET_BAD_SIGNATURE},
		{"tampered payload", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_PAYLOAD, 4096,
		 SEV_RET_BAD_SIGNATURE},
		{"tampered header", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_HDR, 4096,
		 SEV_RET_BAD_SIGNATURE},
		{"unknown type CPUID", 0, 0, 1, MSG_CPUID_REQ, 1, 96, M_NONE, 4096,
		 SEV_RET_INVALID_PARAM},
		{"response type as request", 0, 0, 1, MSG_REPORT_RSP, 1, 96, M_NONE, 4096,
		 SEV_RET_INVALID_PARAM},
		{"bad algo", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_ALGO, 4096, SEV_RET_INVALID_PARAM},
		{"bad hdr version", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_HDR_VERSION, 4096,
		 SEV_RET_INVALID_PARAM},
		{"msg_sz past page", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_SZ_BIG, 4096,
		 SEV_RET_INVALID_LEN},
		{"vmpck 4", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_VMPCK_BIG, 4096,
		 SEV_RET_INVALID_PARAM},
		{"truncated page", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_NONE, 0x60 + 50,
		 SEV_RET_INVALID_LEN},
		{"header only", 0, 0, 1, MSG_REPORT_REQ, 1, 96, M_NONE, 40, SEV_RET_INVALID_LEN},
		{"short REPORT_REQ", 0, 0, 1, MSG_REPORT_REQ, 1, 95, M_NONE, 4096,
		 SEV_RET_INVALID_LEN},
		{"REPORT_REQ version 2", 0, 0, 1, MSG_REPORT_REQ, 2, 96, M_NONE, 4096,
		 SEV_RET_BAD_VERSION},
		{"KEY_REQ version 3", 0, 0, 1, MSG_KEY_REQ, 3, 32, M_NONE, 4096,
		 SEV_RET_BAD_VERSION},
		{"TSC_INFO short", 0, 0, 1, MSG_TSC_INFO_REQ, 1, 64, M_NONE, 4096,
		 SEV_RET_INVALID_LEN},
		{"seqno on another VMPCK", 1, 1, 3, MSG_REPORT_REQ, 1, 96, M_NONE, 4096,
		 SEV_RET_INVALID_PARAM},
	};
	uint8_t pt[MSG_PAYLOAD_MAX] = {0}, req[MSG_PAGE_SIZE], resp[MSG_PAGE_SIZE];
	uint8_t raw[REPORT_SIZE];
	struct report rep;
	uint32_t fw;

	open_platform(SNP_PRODUCT_MILAN);
	report_req_payload(1, 0, pt);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		build_req(cases[i].vmpck, cases[i].key, cases[i].seqno, cases[i].type,
			  cases[i].version, pt, cases[i].len, req);
		switch (cases[i].m) {
		case M_TAG:
			req[3] ^= 1;
			break;
		case M_PAYLOAD:
			req[0x60 + 10] ^= 1;
			break;
		case M_HDR:
			req[0x50] ^= 1;
			break;
		case M_ALGO:
			req[0x30] = 2;
			break;
		case M_HDR_VERSION:
			req[0x31] = 2;
			break;
		case M_SZ_BIG:
			put_le16(req + 0x36, 4001);
			break;
		case M_VMPCK_BIG:
			req[0x3C] = 4;
			break;
		case M_SEQ0:
			put_le64(req + 0x20, 0);
			break;
		case M_NONE:
			break;
		}
		memset(resp, 0xEE, sizeof(resp));
		fw = 0xdead;
		ck_assert_int_eq(sim_psp_guest_request(psp, vm, req, cases[i].req_len, resp,
						       sizeof(resp), &fw),
				 0);
		ck_assert_msg(fw == cases[i].fw, "%s: got 0x%x want 0x%x", cases[i].name, fw,
			      cases[i].fw);
		ck_assert_msg(mem_is_zero(resp, sizeof(resp)), "%s: response not cleared",
			      cases[i].name);
		for (unsigned k = 0; k < 4; k++)
			ck_assert_msg(sim_psp_vm_expected_seqno(vm, k) == 1,
				      "%s: advanced vmpck %u", cases[i].name, k);
	}
	/* Nothing was consumed: seqno 1 still works on VMPCK0 and VMPCK1. */
	get_report(1, 0, raw, &rep);
	assert_signed_by_vcek(raw, rep.reported_tcb);
	{
		uint8_t out[MSG_PAYLOAD_MAX];
		report_req_payload(1, 0, pt);
		roundtrip(1, 1, MSG_REPORT_REQ, 1, pt, 96, out);
	}
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 0), 3);
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 1), 3);
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 2), 1);

	/* A replay of the request that just succeeded is refused and consumes nothing. */
	{
		uint8_t first[MSG_PAGE_SIZE];
		report_req_payload(0, 0, pt);
		build_req(0, 0, 3, MSG_REPORT_REQ, 1, pt, 96, first);
		ck_assert_int_eq(sim_psp_guest_request(psp, vm, first, sizeof(first), resp,
						       sizeof(resp), &fw),
				 0);
		ck_assert_uint_eq(fw, 0);
		ck_assert_int_eq(sim_psp_guest_request(psp, vm, first, sizeof(first), resp,
						       sizeof(resp), &fw),
				 0);
		ck_assert_uint_eq(fw, SEV_RET_INVALID_PARAM);
		ck_assert(mem_is_zero(resp, sizeof(resp)));
		ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 0), 5);
	}

	/* Response buffer too small: INVALID_LEN, not consumed. */
	report_req_payload(0, 0, pt);
	build_req(0, 0, 5, MSG_REPORT_REQ, 1, pt, 96, req);
	ck_assert_int_eq(sim_psp_guest_request(psp, vm, req, sizeof(req), resp, 200, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 0), 5);
	/* API misuse is an errno, not a firmware status */
	ck_assert_int_eq(
		sim_psp_guest_request(psp, NULL, req, sizeof(req), resp, sizeof(resp), &fw),
		-EINVAL);
}
END_TEST

/* Content errors are answered inside a successful message: the seqno is consumed. */
START_TEST(test_report_content_errors)
{
	static const struct {
		unsigned vmpck;
		uint32_t vmpl, key_sel;
		uint32_t status;
	} cases[] = {
		{0, 4, 0, SEV_RET_INVALID_PARAM}, /* VMPL > 3 */
		{2, 1, 0, SEV_RET_INVALID_PARAM}, /* VMPL below the caller's */
		{0, 0, 3, SEV_RET_INVALID_PARAM}, /* reserved KEY_SEL */
		{0, 0, 2, SEV_RET_INVALID_KEY},	  /* VLEK asked, none loaded */
		{3, 3, 1, SEV_RET_SUCCESS},	  /* VMPL3 on VMPCK3 is fine */
	};
	uint8_t pt[MSG_REPORT_REQ_SIZE], out[MSG_PAYLOAD_MAX];
	struct msg_report_rsp rsp;
	size_t n;

	open_platform(SNP_PRODUCT_GENOA);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint64_t seq = sim_psp_vm_expected_seqno(vm, cases[i].vmpck);
		memset(pt, 0, sizeof(pt));
		put_le32(pt + 0x40, cases[i].vmpl);
		put_le32(pt + 0x44, cases[i].key_sel);
		n = roundtrip(cases[i].vmpck, seq, MSG_REPORT_REQ, 1, pt, sizeof(pt), out);
		ck_assert_int_eq(msg_report_rsp_parse(out, n, &rsp), 0);
		ck_assert_msg(rsp.status == cases[i].status, "case %zu: 0x%x", i, rsp.status);
		ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, cases[i].vmpck), seq + 2);
	}
}
END_TEST

static void get_key(uint64_t seqno, const struct msg_key_req *kr, uint8_t version,
		    struct msg_key_rsp *rsp)
{
	uint8_t pt[64], out[MSG_PAYLOAD_MAX];
	size_t n;
	int len = msg_key_req_build(kr, version, pt, sizeof(pt));

	ck_assert_int_gt(len, 0);
	n = roundtrip(0, seqno, MSG_KEY_REQ, version, pt, (size_t)len, out);
	ck_assert_int_eq(msg_key_rsp_parse(out, n, rsp), 0);
}

START_TEST(test_key_req)
{
	struct sim_state_data d;
	struct msg_key_rsp a, b, c, e;
	struct msg_key_req kr = {.guest_field_select = 0x9 /* policy + measurement */};

	open_platform(SNP_PRODUCT_MILAN);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	get_key(1, &kr, 1, &a);
	ck_assert_uint_eq(a.status, 0);
	ck_assert(!mem_is_zero(a.key, 32));
	get_key(3, &kr, 1, &b); /* same request later: same key */
	ck_assert_uint_eq(b.status, 0);
	ck_assert_mem_eq(a.key, b.key, 32);
	kr.guest_field_select = 0x1; /* fewer fields: another key */
	get_key(5, &kr, 1, &c);
	ck_assert_uint_eq(c.status, 0);
	ck_assert(memcmp(a.key, c.key, 32) != 0);
	kr.root_key_select = 1; /* VMRK root: another key */
	get_key(7, &kr, 2, &e);
	ck_assert_uint_eq(e.status, 0);
	ck_assert(memcmp(c.key, e.key, 32) != 0);

	/* refused contents: status inside, no key */
	static const struct msg_key_req bad[] = {
		{.guest_svn = 3},			/* above the VM's SVN 2 */
		{.tcb_version = 0xFF00000000000000ull}, /* above committed */
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		get_key(9 + 2 * i, &bad[i], 1, &e);
		ck_assert_msg(e.status == SEV_RET_INVALID_PARAM, "bad %zu: 0x%x", i, e.status);
		ck_assert(mem_is_zero(e.key, 32));
	}
	/* and a TCB equal to committed is allowed */
	kr = (struct msg_key_req){.guest_field_select = 1u << 5, .tcb_version = d.committed_tcb};
	get_key(13, &kr, 1, &e);
	ck_assert_uint_eq(e.status, 0);
}
END_TEST

START_TEST(test_tsc_info)
{
	uint8_t pt[MSG_TSC_INFO_REQ_SIZE] = {0}, out[MSG_PAYLOAD_MAX];
	struct msg_tsc_info_rsp rsp;
	size_t n;

	open_platform(SNP_PRODUCT_TURIN);
	n = roundtrip(0, 1, MSG_TSC_INFO_REQ, 1, pt, sizeof(pt), out);
	ck_assert_uint_eq(n, MSG_TSC_INFO_RSP_SIZE);
	ck_assert_int_eq(msg_tsc_info_rsp_parse(out, n, &rsp), 0);
	ck_assert_uint_eq(rsp.status, 0);
	ck_assert_uint_eq(rsp.tsc_scale, 1ull << 32);
	ck_assert_uint_eq(sim_psp_vm_expected_seqno(vm, 0), 3);
}
END_TEST

START_TEST(test_platform_status_and_id)
{
	struct sev_user_data_snp_status st;
	struct sim_state_data d;
	uint8_t id[64];
	uint32_t len = 0, fw = 0xdead;

	open_platform(SNP_PRODUCT_TURIN);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	ck_assert_int_eq(sim_psp_platform_status(psp, &st, &fw), 0);
	ck_assert_uint_eq(fw, 0);
	ck_assert_uint_eq(st.current_tcb_version, d.current_tcb);
	ck_assert_uint_eq(st.reported_tcb_version, d.reported_tcb);
	ck_assert_uint_eq(st.guest_count, 1);
	ck_assert_uint_eq(st.api_major, d.fw_major);
	ck_assert_uint_eq(st.flags & SNP_STATUS_F_VLEK_EN, 0);

	/* length query, too small, then right */
	ck_assert_int_eq(sim_psp_get_id2(psp, NULL, &len, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(len, 64);
	len = 8;
	ck_assert_int_eq(sim_psp_get_id2(psp, id, &len, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(len, 64);
	ck_assert_int_eq(sim_psp_get_id2(psp, id, &len, &fw), 0);
	ck_assert_uint_eq(fw, 0);
	ck_assert_mem_eq(id, d.chip_id, 64);
	ck_assert(mem_is_zero(id + 8, 56)); /* Turin: 8-byte id */

	/* the same through the ioctl emulation */
	struct sev_user_data_get_id2 g = {.address = (uintptr_t)id, .length = 64};
	struct sev_issue_cmd cmd = {.cmd = SEV_CMD_GET_ID2, .data = (uintptr_t)&g};
	memset(id, 0, sizeof(id));
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), 0);
	ck_assert_uint_eq(cmd.error, 0);
	ck_assert_mem_eq(id, d.chip_id, 64);
	/* the length query: address 0 (or length 0) */
	g = (struct sev_user_data_get_id2){.address = 0, .length = 0};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EIO);
	ck_assert_uint_eq(cmd.error, SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(g.length, 64);
	g = (struct sev_user_data_get_id2){.address = (uintptr_t)id, .length = 0};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EIO);
	ck_assert_uint_eq(g.length, 64);
	/* a buffer shorter than the id: Linux 6.12 would write 64 bytes into it; the sim
	 * refuses with -EFAULT and writes nothing past it */
	memset(id, 0xA5, sizeof(id));
	g = (struct sev_user_data_get_id2){.address = (uintptr_t)id, .length = 1};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EFAULT);
	ck_assert_uint_eq(cmd.error, SEV_RET_INVALID_LEN);
	ck_assert_uint_eq(g.length, 64);
	for (size_t i = 1; i < sizeof(id); i++)
		ck_assert_uint_eq(id[i], 0xA5);

	/* a 2-socket host: 128 bytes, socket 0 first; the second id is stable */
	struct sim_platform pf;
	uint8_t two[128], again[128];
	sim_platform_defaults(&pf);
	pf.sockets = 2;
	ck_assert_int_eq(sim_state_platform_write(state, &pf), 0);
	g = (struct sev_user_data_get_id2){.address = 0, .length = 0};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EIO);
	ck_assert_uint_eq(g.length, 128);
	g = (struct sev_user_data_get_id2){.address = (uintptr_t)id, .length = 64};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EFAULT);
	ck_assert_uint_eq(g.length, 128);
	g = (struct sev_user_data_get_id2){.address = (uintptr_t)two, .length = 128};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), 0);
	ck_assert_uint_eq(g.length, 128);
	ck_assert_mem_eq(two, d.chip_id, 64);
	ck_assert(!mem_is_zero(two + 64, 8));
	ck_assert(mem_is_zero(two + 64 + 8, 56)); /* Turin: 8 significant bytes per socket */
	g = (struct sev_user_data_get_id2){.address = (uintptr_t)again, .length = 128};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), 0);
	ck_assert_mem_eq(two, again, 128);

	/* SNP not initialised: the SNP commands fail in the kernel, GET_ID2 still works */
	struct sev_issue_cmd sc = {.cmd = SNP_CMD_PLATFORM_STATUS, .data = (uintptr_t)&st};
	pf.snp_initialised = false;
	ck_assert_int_eq(sim_state_platform_write(state, &pf), 0);
	sc.error = 77;
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &sc, true), -EINVAL);
	ck_assert_uint_eq(sc.error, 0);
	sc = (struct sev_issue_cmd){.cmd = SNP_CMD_COMMIT};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &sc, true), -EINVAL);
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), 0);
	pf.uninit_errno = ENODEV;
	ck_assert_int_eq(sim_state_platform_write(state, &pf), 0);
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &sc, true), -ENODEV);
	pf.snp_initialised = true;
	ck_assert_int_eq(sim_state_platform_write(state, &pf), 0);
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &sc, true), 0);
	cmd.cmd = 99;
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, true), -EINVAL);
}
END_TEST

START_TEST(test_set_config_and_commit)
{
	struct sim_state_data d;
	struct sev_user_data_snp_config cfg = {0};
	struct sev_user_data_snp_status st;
	struct sev_issue_cmd cmd = {.cmd = SNP_CMD_SET_CONFIG, .data = (uintptr_t)&cfg};
	uint8_t raw[REPORT_SIZE];
	struct report rep;
	uint64_t cur, lower;
	uint32_t fw;

	open_platform(SNP_PRODUCT_MILAN);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	cur = d.current_tcb;
	lower = cur - 1; /* bootloader SVN one lower (byte 0 of the legacy layout) */

	static const struct {
		uint64_t tcb;
		uint32_t flags;
		uint8_t rsvd0;
		uint32_t fw;
	} cases[] = {
		{0x7308000000000004ull, 0, 0, SEV_RET_INVALID_PARAM}, /* bl above current */
		{0x7408000000000003ull, 0, 0, SEV_RET_INVALID_PARAM}, /* ucode above */
		{0x7308000000000002ull, 4, 0, SEV_RET_INVALID_PARAM}, /* unknown flag */
		{0x7308000000000002ull, 0, 1, SEV_RET_INVALID_PARAM}, /* reserved byte */
		{0x7308000000000002ull, 0, 0, SEV_RET_SUCCESS},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		cfg = (struct sev_user_data_snp_config){.reported_tcb = cases[i].tcb,
							.flags = cases[i].flags};
		cfg.rsvd1[0] = cases[i].rsvd0;
		ck_assert_int_eq(sim_psp_set_config(psp, &cfg, &fw), 0);
		ck_assert_msg(fw == cases[i].fw, "case %zu: 0x%x", i, fw);
		ck_assert_int_eq(sim_state_read(state, &d), 0);
		ck_assert_uint_eq(d.reported_tcb, fw == 0 ? cases[i].tcb : cur);
	}
	ck_assert_uint_eq(d.reported_tcb, lower);
	ck_assert_int_eq(sim_psp_platform_status(psp, &st, &fw), 0);
	ck_assert_uint_eq(st.reported_tcb_version, lower);

	/* reports are now signed with the VCEK of the lowered TCB */
	get_report(1, 0, raw, &rep);
	ck_assert_uint_eq(rep.reported_tcb, lower);
	ck_assert_uint_eq(rep.current_tcb, cur);
	assert_signed_by_vcek(raw, lower);

	/* /dev/sev rules: SET_CONFIG needs a writable fd */
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EPERM);

	/* COMMIT: committed := current, reported := current */
	cmd = (struct sev_issue_cmd){.cmd = SNP_CMD_COMMIT};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), 0);
	ck_assert_uint_eq(cmd.error, 0);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	ck_assert_uint_eq(d.reported_tcb, cur);
	ck_assert_uint_eq(d.committed_tcb, cur);
	get_report(3, 0, raw, &rep);
	ck_assert_uint_eq(rep.reported_tcb, cur);
	assert_signed_by_vcek(raw, cur);

	/* MASK_CHIP_ID zeroes the chip id in reports and GET_ID2 */
	cfg = (struct sev_user_data_snp_config){.reported_tcb = cur,
						.flags = SNP_CONFIG_F_MASK_CHIP_ID};
	ck_assert_int_eq(sim_psp_set_config(psp, &cfg, &fw), 0);
	ck_assert_uint_eq(fw, 0);
	get_report(5, 0, raw, &rep);
	ck_assert(mem_is_zero(rep.chip_id, 64));
	assert_signed_by_vcek(raw, cur);
}
END_TEST

/* A firmware update (current TCB raised) then COMMIT: committed follows current. */
static int raise_current(struct sim_state_data *d, void *userdata)
{
	(void)userdata;
	d->current_tcb += 0x0001000000000000ull; /* SNP SVN + 1 (byte 6) */
	return 0;
}

START_TEST(test_commit_after_update)
{
	struct sim_state_data before, after;
	uint32_t fw;

	open_platform(SNP_PRODUCT_GENOA);
	ck_assert_int_eq(sim_state_read(state, &before), 0);
	ck_assert_int_eq(sim_state_update(state, raise_current, NULL), 0);
	ck_assert_int_eq(sim_psp_commit(psp, &fw), 0);
	ck_assert_uint_eq(fw, 0);
	ck_assert_int_eq(sim_state_read(state, &after), 0);
	ck_assert_uint_eq(after.current_tcb, before.current_tcb + 0x0001000000000000ull);
	ck_assert_uint_eq(after.committed_tcb, after.current_tcb);
	ck_assert_uint_eq(after.reported_tcb, after.current_tcb);
}
END_TEST

START_TEST(test_vlek_load)
{
	struct sim_state_data d;
	uint8_t seed[SIM_VLEK_SEED_LEN], hs[SIM_HASHSTICK_SIZE], raw[REPORT_SIZE];
	struct sev_user_data_snp_vlek_load hdr = {.len = 16};
	struct sev_user_data_snp_status st;
	struct report rep;
	EVP_PKEY *vlek = NULL;
	uint32_t fw;

	open_platform(SNP_PRODUCT_MILAN);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	memset(seed, 0x33, sizeof(seed));

	/* refused: bad header, foreign chip, wrong TCB, bad MAC */
	ck_assert_int_eq(
		sim_keys_hashstick_wrap(d.secret, d.product, d.chip_id, d.reported_tcb, seed, hs),
		0);
	hdr.len = 12;
	ck_assert_int_eq(sim_psp_vlek_load(psp, &hdr, hs, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_PARAM);
	hdr.len = 16;
	hdr.vlek_wrapped_version = 1;
	ck_assert_int_eq(sim_psp_vlek_load(psp, &hdr, hs, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_PARAM);
	hdr.vlek_wrapped_version = 0;
	hs[0x70] ^= 1;
	ck_assert_int_eq(sim_psp_vlek_load(psp, &hdr, hs, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_BAD_SIGNATURE);
	ck_assert_int_eq(sim_keys_hashstick_wrap(d.secret, d.product, d.chip_id, d.reported_tcb - 1,
						 seed, hs),
			 0);
	ck_assert_int_eq(sim_psp_vlek_load(psp, &hdr, hs, &fw), 0);
	ck_assert_uint_eq(fw, SEV_RET_INVALID_PARAM);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	ck_assert(!d.vlek_loaded);

	/* accepted through the ioctl path */
	ck_assert_int_eq(
		sim_keys_hashstick_wrap(d.secret, d.product, d.chip_id, d.reported_tcb, seed, hs),
		0);
	hdr.vlek_wrapped_address = (uintptr_t)hs;
	struct sev_issue_cmd cmd = {.cmd = SNP_CMD_VLEK_LOAD, .data = (uintptr_t)&hdr};
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, false), -EPERM);
	ck_assert_int_eq(sim_psp_issue_cmd(psp, &cmd, true), 0);
	ck_assert_uint_eq(cmd.error, 0);
	ck_assert_int_eq(sim_psp_platform_status(psp, &st, &fw), 0);
	ck_assert(st.flags & SNP_STATUS_F_VLEK_EN);

	/* default key selection now signs with the VLEK; KEY_SEL=VCEK still gets the VCEK */
	get_report(1, 0, raw, &rep);
	ck_assert_uint_eq(rep.signing_key, REPORT_SIGNING_KEY_VLEK);
	ck_assert_int_eq(sim_keys_vlek(seed, d.product, d.reported_tcb, &vlek), 0);
	ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, vlek), 0);
	get_report(3, 1, raw, &rep);
	ck_assert_uint_eq(rep.signing_key, REPORT_SIGNING_KEY_VCEK);
	assert_signed_by_vcek(raw, d.reported_tcb);
	ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, vlek), -EKEYREJECTED);
	EVP_PKEY_free(vlek);

	/* a reported-TCB change drops the VLEK */
	struct sev_user_data_snp_config cfg = {.reported_tcb = d.reported_tcb - 1};
	ck_assert_int_eq(sim_psp_set_config(psp, &cfg, &fw), 0);
	ck_assert_uint_eq(fw, 0);
	get_report(5, 0, raw, &rep);
	ck_assert_uint_eq(rep.signing_key, REPORT_SIGNING_KEY_VCEK);
	assert_signed_by_vcek(raw, d.reported_tcb - 1);
}
END_TEST

/* Another process (the daemon's sim backend) lowers the reported TCB; this PSP's very next
 * report carries the new REPORTED_TCB and is signed with that TCB's VCEK. */
START_TEST(test_tcb_change_from_other_process)
{
	struct sim_state_data d;
	uint8_t raw[REPORT_SIZE];
	struct report rep;
	uint64_t lower;
	int status = 0;
	pid_t pid;

	open_platform(SNP_PRODUCT_GENOA);
	ck_assert_int_eq(sim_state_read(state, &d), 0);
	lower = d.reported_tcb - 1;
	get_report(1, 0, raw, &rep);
	ck_assert_uint_eq(rep.reported_tcb, d.reported_tcb);

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sim_state *cs = NULL;
		struct sim_psp *cp = NULL;
		struct sev_user_data_snp_config cfg = {.reported_tcb = lower};
		uint32_t fw = 1;
		int ok = sim_state_open(dir, SNP_PRODUCT_UNKNOWN, &cs) == 0 &&
			 sim_psp_new(cs, &cp) == 0 &&
			 sim_psp_set_delay(cp, SIM_PSP_OP_SET_CONFIG, 0) == 0 &&
			 sim_psp_set_config(cp, &cfg, &fw) == 0 && fw == 0;
		sim_psp_free(cp);
		sim_state_free(cs);
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	get_report(3, 0, raw, &rep);
	ck_assert_uint_eq(rep.reported_tcb, lower);
	assert_signed_by_vcek(raw, lower);
	{
		EVP_PKEY *old = NULL;
		ck_assert_int_eq(sim_keys_vcek(d.secret, d.product, d.reported_tcb, &old), 0);
		ck_assert_int_eq(report_verify_signature(raw, REPORT_SIZE, old), -EKEYREJECTED);
		EVP_PKEY_free(old);
	}
}
END_TEST

struct thread_arg {
	struct sim_psp_vm *vm;
	int ok;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	uint8_t pt[MSG_REPORT_REQ_SIZE], req[MSG_PAGE_SIZE], resp[MSG_PAGE_SIZE], key[32];
	struct msg_hdr h = {
		.algo = 1, .hdr_version = 1, .hdr_sz = 0x60, .type = MSG_REPORT_REQ, .version = 1};

	a->ok = sim_psp_vm_vmpck(a->vm, 0, key) == 0;
	report_req_payload(0, 0, pt);
	for (int i = 0; i < 10 && a->ok; i++) {
		uint32_t fw = 1;
		h.seqno = 1 + 2 * (uint64_t)i;
		a->ok = msg_seal(key, &h, pt, sizeof(pt), req, sizeof(req)) == 0 &&
			sim_psp_guest_request(psp, a->vm, req, sizeof(req), resp, sizeof(resp),
					      &fw) == 0 &&
			fw == 0 && get_le64(resp + 0x20) == h.seqno + 1;
	}
	return NULL;
}

/* Concurrent callers on separate VMs: every request succeeds, sequences stay exact. */
START_TEST(test_threads)
{
	enum { N = 4 };
	pthread_t th[N];
	struct thread_arg args[N];
	struct sim_psp_vm *vms[N];
	struct sim_vm_config c = vm_cfg;

	open_platform(SNP_PRODUCT_MILAN);
	for (int i = 0; i < N; i++) {
		c.vm_id = 100 + (uint64_t)i;
		ck_assert_int_eq(sim_psp_vm_new(psp, &c, &vms[i]), 0);
		args[i].vm = vms[i];
		ck_assert_int_eq(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_msg(args[i].ok, "thread %d", i);
		ck_assert_uint_eq(sim_psp_vm_expected_seqno(vms[i], 0), 21);
		sim_psp_vm_free(vms[i]);
	}
	/* a duplicate VM id is refused; VMPCKs differ per VM */
	struct sim_psp_vm *dup = NULL;
	ck_assert_int_eq(sim_psp_vm_new(psp, &vm_cfg, &dup), -EEXIST);
	ck_assert_ptr_null(dup);
}
END_TEST

START_TEST(test_delays)
{
	open_platform(SNP_PRODUCT_MILAN);
	ck_assert_int_eq(sim_psp_set_delay(psp, SIM_PSP_OP_REPORT, 1234), 0);
	ck_assert_uint_eq(sim_psp_get_delay(psp, SIM_PSP_OP_REPORT), 1234);
	ck_assert_int_eq(sim_psp_set_delay(psp, _SIM_PSP_OP_MAX, 1), -EINVAL);
	{
		struct sim_psp *fresh = NULL;
		ck_assert_int_eq(sim_psp_new(state, &fresh), 0);
		ck_assert_uint_eq(sim_psp_get_delay(fresh, SIM_PSP_OP_REPORT),
				  SIM_PSP_REPORT_DELAY_USEC);
		sim_psp_free(fresh);
	}
}
END_TEST

static Suite *psp_suite(void)
{
	Suite *s = suite_create("sim-psp");
	TCase *tc = tcase_create("psp");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_report_per_product, 0, 3);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_report_content_errors);
	tcase_add_test(tc, test_key_req);
	tcase_add_test(tc, test_tsc_info);
	tcase_add_test(tc, test_platform_status_and_id);
	tcase_add_test(tc, test_set_config_and_commit);
	tcase_add_test(tc, test_commit_after_update);
	tcase_add_test(tc, test_vlek_load);
	tcase_add_test(tc, test_tcb_change_from_other_process);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_delays);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(psp_suite());
}
