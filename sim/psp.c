/* SPDX-License-Identifier: Apache-2.0 */
/* psp: the software PSP — guest messages under per-VM VMPCKs with the firmware's sequence
 * rule, real signed reports, and the /dev/sev platform commands over the shared state. */
#include "psp.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "exitinfo.h"
#include "msg.h"
#include "report.h"
#include "util.h"

/* Report version by product (facts §10: Milan 1.55.x and Genoa give v3, Turin v5). */
#define PLATFORM_INFO_SMT_EN (1u << 0)
#define PLATFORM_INFO_ECC_EN (1u << 2)
#define PLATFORM_INFO_ALIAS_CHECK_COMPLETE (1u << 5)
#define TURIN_MIT_VECTOR 0x3full /* as on the real Turin sample (facts §10) */
#define KEY_SEL_DEFAULT 0
#define KEY_SEL_VCEK 1
#define KEY_SEL_VLEK 2
#define GFS_LAUNCH_MIT_VECTOR (1ull << 6)

struct sim_psp {
	struct sim_state *state; /* borrowed */
	pthread_mutex_t lock;	 /* the PSP runs one command at a time */
	uint32_t delay_usec[_SIM_PSP_OP_MAX];
	struct sim_state_data st; /* snapshot taken at the start of each command */
	EVP_PKEY *vcek;		  /* owned; for (st.product, vcek_tcb) */
	uint64_t vcek_tcb;
	EVP_PKEY *vlek; /* owned; derived from vlek_hs, valid for vlek_tcb */
	uint64_t vlek_tcb;
	uint8_t vlek_hs[SIM_HASHSTICK_SIZE];
	struct sim_psp_vm *vms; /* borrowed list of live VMs (owned by the callers) */
	uint32_t vm_count;
};

struct sim_psp_vm {
	struct sim_psp *psp; /* borrowed */
	struct sim_psp_vm *prev, *next;
	struct sim_vm_config cfg;
	uint8_t vmpck[4][SIM_VMPCK_LEN];
	uint64_t counter[4]; /* the firmware's counters: next request must be counter + 1 */
	uint8_t report_id[32];
	uint64_t launch_tcb;
};

static const uint32_t default_delay_usec[_SIM_PSP_OP_MAX] = {
	[SIM_PSP_OP_REPORT] = SIM_PSP_REPORT_DELAY_USEC,
	/* The rest are estimates: no signature, so well below a report. */
	[SIM_PSP_OP_KEY] = 1000,
	[SIM_PSP_OP_TSC_INFO] = 500,
	[SIM_PSP_OP_BAD_REQUEST] = 200,
	[SIM_PSP_OP_PLATFORM_STATUS] = 500,
	[SIM_PSP_OP_GET_ID2] = 500,
	[SIM_PSP_OP_SET_CONFIG] = 1000,
	[SIM_PSP_OP_COMMIT] = 2000,
	[SIM_PSP_OP_VLEK_LOAD] = 2000,
};

static void psp_sleep(uint32_t usec)
{
	struct timespec ts = {.tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000};

	while (usec && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Takes the PSP and a fresh view of the state (another process may have changed the TCB). */
static int psp_enter(struct sim_psp *psp)
{
	int r;

	pthread_mutex_lock(&psp->lock);
	r = sim_state_read(psp->state, &psp->st);
	if (r < 0)
		pthread_mutex_unlock(&psp->lock);
	return r;
}

static void psp_leave(struct sim_psp *psp, enum sim_psp_op op)
{
	psp_sleep(psp->delay_usec[op]);
	pthread_mutex_unlock(&psp->lock);
}

int sim_psp_new(struct sim_state *state, struct sim_psp **ret)
{
	struct sim_psp *psp;
	int r;

	if (!state)
		return -EINVAL;
	psp = calloc(1, sizeof(*psp));
	if (!psp)
		return -ENOMEM;
	psp->state = state;
	pthread_mutex_init(&psp->lock, NULL);
	memcpy(psp->delay_usec, default_delay_usec, sizeof(psp->delay_usec));
	r = sim_state_read(state, &psp->st);
	if (r < 0) {
		sim_psp_free(psp);
		return r;
	}
	*ret = psp;
	return 0;
}

struct sim_psp *sim_psp_free(struct sim_psp *psp)
{
	if (!psp)
		return NULL;
	/* VMs still alive lose their back pointer; freeing them later is then harmless. */
	for (struct sim_psp_vm *vm = psp->vms; vm; vm = vm->next)
		vm->psp = NULL;
	EVP_PKEY_free(psp->vcek);
	EVP_PKEY_free(psp->vlek);
	pthread_mutex_destroy(&psp->lock);
	OPENSSL_cleanse(&psp->st, sizeof(psp->st));
	free(psp);
	return NULL;
}

int sim_psp_set_delay(struct sim_psp *psp, enum sim_psp_op op, uint32_t usec)
{
	if ((unsigned)op >= _SIM_PSP_OP_MAX || usec > 10000000)
		return -EINVAL;
	pthread_mutex_lock(&psp->lock);
	psp->delay_usec[op] = usec;
	pthread_mutex_unlock(&psp->lock);
	return 0;
}

uint32_t sim_psp_get_delay(struct sim_psp *psp, enum sim_psp_op op)
{
	uint32_t v;

	if ((unsigned)op >= _SIM_PSP_OP_MAX)
		return 0;
	pthread_mutex_lock(&psp->lock);
	v = psp->delay_usec[op];
	pthread_mutex_unlock(&psp->lock);
	return v;
}

/* --- VMs --- */

int sim_psp_vm_new(struct sim_psp *psp, const struct sim_vm_config *cfg, struct sim_psp_vm **ret)
{
	struct sim_psp_vm *vm;
	int r;

	if (!psp || !cfg)
		return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	if (RAND_bytes(vm->report_id, sizeof(vm->report_id)) != 1) {
		free(vm);
		return -EIO;
	}
	r = psp_enter(psp);
	if (r < 0) {
		free(vm);
		return r;
	}
	for (struct sim_psp_vm *v = psp->vms; v; v = v->next)
		if (v->cfg.vm_id == cfg->vm_id) {
			r = -EEXIST;
			goto out;
		}
	for (unsigned i = 0; i < 4 && r >= 0; i++)
		r = sim_keys_vmpck(psp->st.secret, cfg->vm_id, i, vm->vmpck[i]);
	if (r < 0)
		goto out;
	vm->launch_tcb = psp->st.current_tcb;
	vm->psp = psp;
	vm->next = psp->vms;
	if (psp->vms)
		psp->vms->prev = vm;
	psp->vms = vm;
	psp->vm_count++;
	*ret = vm;
out:
	pthread_mutex_unlock(&psp->lock);
	if (r < 0) {
		OPENSSL_cleanse(vm, sizeof(*vm));
		free(vm);
	}
	return r;
}

struct sim_psp_vm *sim_psp_vm_free(struct sim_psp_vm *vm)
{
	struct sim_psp *psp;

	if (!vm)
		return NULL;
	psp = vm->psp;
	if (psp) {
		pthread_mutex_lock(&psp->lock);
		if (vm->prev)
			vm->prev->next = vm->next;
		else
			psp->vms = vm->next;
		if (vm->next)
			vm->next->prev = vm->prev;
		psp->vm_count--;
		pthread_mutex_unlock(&psp->lock);
	}
	OPENSSL_cleanse(vm, sizeof(*vm));
	free(vm);
	return NULL;
}

int sim_psp_vm_vmpck(const struct sim_psp_vm *vm, unsigned index, uint8_t out[SIM_VMPCK_LEN])
{
	if (index > MSG_VMPCK_MAX)
		return -EINVAL;
	memcpy(out, vm->vmpck[index], SIM_VMPCK_LEN);
	return 0;
}

uint64_t sim_psp_vm_expected_seqno(struct sim_psp_vm *vm, unsigned index)
{
	uint64_t v;

	if (index > MSG_VMPCK_MAX || !vm->psp)
		return 0;
	pthread_mutex_lock(&vm->psp->lock);
	v = vm->counter[index] + 1;
	pthread_mutex_unlock(&vm->psp->lock);
	return v;
}

void sim_psp_vm_report_id(const struct sim_psp_vm *vm, uint8_t out[32])
{
	memcpy(out, vm->report_id, 32);
}

/* --- signing keys (caller holds the PSP) --- */

static int psp_vcek(struct sim_psp *psp, EVP_PKEY **ret)
{
	if (!psp->vcek || psp->vcek_tcb != psp->st.reported_tcb) {
		EVP_PKEY *k = NULL;
		int r = sim_keys_vcek(psp->st.secret, psp->st.product, psp->st.reported_tcb, &k);
		if (r < 0)
			return r;
		EVP_PKEY_free(psp->vcek);
		psp->vcek = k;
		psp->vcek_tcb = psp->st.reported_tcb;
	}
	*ret = psp->vcek;
	return 0;
}

/* The loaded VLEK, if there is one for the current reported TCB; NULL otherwise. */
static int psp_vlek(struct sim_psp *psp, EVP_PKEY **ret)
{
	uint8_t seed[SIM_VLEK_SEED_LEN];
	uint64_t tcb;
	EVP_PKEY *k = NULL;
	int r;

	if (!psp->st.vlek_loaded) {
		*ret = NULL;
		return 0;
	}
	if (psp->vlek && memcmp(psp->vlek_hs, psp->st.vlek_hashstick, SIM_HASHSTICK_SIZE) == 0) {
		*ret = psp->vlek_tcb == psp->st.reported_tcb ? psp->vlek : NULL;
		return 0;
	}
	r = sim_keys_hashstick_unwrap(psp->st.secret, psp->st.product, psp->st.chip_id,
				      psp->st.vlek_hashstick, &tcb, seed);
	if (r >= 0)
		r = sim_keys_vlek(seed, psp->st.product, tcb, &k);
	OPENSSL_cleanse(seed, sizeof(seed));
	if (r < 0) {
		*ret = NULL; /* a state holding a bad hashstick behaves as "no VLEK" */
		return 0;
	}
	EVP_PKEY_free(psp->vlek);
	psp->vlek = k;
	psp->vlek_tcb = tcb;
	memcpy(psp->vlek_hs, psp->st.vlek_hashstick, SIM_HASHSTICK_SIZE);
	*ret = tcb == psp->st.reported_tcb ? k : NULL;
	return 0;
}

int sim_psp_signing_key(struct sim_psp *psp, bool vlek, EVP_PKEY **ret_pub)
{
	EVP_PKEY *k = NULL;
	int r = psp_enter(psp);

	if (r < 0)
		return r;
	r = vlek ? psp_vlek(psp, &k) : psp_vcek(psp, &k);
	if (r >= 0 && !k)
		r = -ENOKEY;
	if (r >= 0)
		r = sim_keys_public(k, ret_pub);
	pthread_mutex_unlock(&psp->lock);
	return r;
}

/* --- guest requests --- */

static void product_cpuid(enum snp_product p, struct report *rep)
{
	/* Family/model/stepping seen on real parts (facts §10). */
	switch (p) {
	case SNP_PRODUCT_MILAN:
		rep->cpuid_fam_id = 0x19, rep->cpuid_mod_id = 0x01, rep->cpuid_step = 0x01;
		break;
	case SNP_PRODUCT_GENOA:
		rep->cpuid_fam_id = 0x19, rep->cpuid_mod_id = 0x11, rep->cpuid_step = 0x01;
		break;
	default:
		rep->cpuid_fam_id = 0x1A, rep->cpuid_mod_id = 0x02, rep->cpuid_step = 0x01;
		break;
	}
}

/* Builds REPORT_RSP into out; returns its length, or a negative errno for our own failures.
 * *status gets the payload STATUS. */
static int do_report(struct sim_psp *psp, struct sim_psp_vm *vm, const struct msg_hdr *h,
		     const uint8_t *pt, size_t len, uint8_t *out, size_t size, uint32_t *fw)
{
	struct msg_report_req req;
	struct report rep = {0};
	uint8_t buf[REPORT_SIZE];
	EVP_PKEY *key = NULL;
	uint8_t signing_key;
	bool masked_key = psp->st.config_flags & SNP_CONFIG_F_MASK_CHIP_KEY;
	int r;

	if (h->version != 1) {
		*fw = SEV_RET_BAD_VERSION;
		return 0;
	}
	if (len != MSG_REPORT_REQ_SIZE) {
		*fw = SEV_RET_INVALID_LEN;
		return 0;
	}
	*fw = SEV_RET_SUCCESS;
	/* Content checks (VMPL range, KEY_SEL, reserved bytes): answered inside the
	 * (successful) message. */
	if (msg_report_req_parse(pt, len, &req) < 0 || req.vmpl < h->vmpck ||
	    req.key_sel > KEY_SEL_VLEK)
		return msg_report_rsp_build(SEV_RET_INVALID_PARAM, NULL, 0, out, size);
	if (!masked_key) {
		r = psp_vlek(psp, &key);
		if (r < 0)
			return r;
		if (req.key_sel == KEY_SEL_VLEK && !key)
			return msg_report_rsp_build(SEV_RET_INVALID_KEY, NULL, 0, out, size);
		if (req.key_sel == KEY_SEL_VCEK || !key) {
			r = psp_vcek(psp, &key);
			if (r < 0)
				return r;
			signing_key = REPORT_SIGNING_KEY_VCEK;
		} else {
			signing_key = REPORT_SIGNING_KEY_VLEK;
		}
	} else {
		signing_key = REPORT_SIGNING_KEY_NONE;
	}

	rep.version = psp->st.product == SNP_PRODUCT_TURIN ? 5 : 3;
	rep.guest_svn = vm->cfg.guest_svn;
	rep.policy = vm->cfg.policy;
	memcpy(rep.family_id, vm->cfg.family_id, sizeof(rep.family_id));
	memcpy(rep.image_id, vm->cfg.image_id, sizeof(rep.image_id));
	rep.vmpl = req.vmpl;
	rep.signature_algo = REPORT_SIG_ALGO_ECDSA_P384_SHA384;
	rep.current_tcb = psp->st.current_tcb;
	rep.platform_info =
		PLATFORM_INFO_SMT_EN | PLATFORM_INFO_ECC_EN | PLATFORM_INFO_ALIAS_CHECK_COMPLETE;
	rep.mask_chip_key = masked_key;
	rep.signing_key = signing_key;
	rep.signer_info = (rep.mask_chip_key ? 1u << 1 : 0) | ((uint32_t)signing_key << 2);
	memcpy(rep.report_data, req.report_data, sizeof(rep.report_data));
	memcpy(rep.measurement, vm->cfg.measurement, sizeof(rep.measurement));
	memcpy(rep.host_data, vm->cfg.host_data, sizeof(rep.host_data));
	memcpy(rep.id_key_digest, vm->cfg.id_key_digest, sizeof(rep.id_key_digest));
	memcpy(rep.author_key_digest, vm->cfg.author_key_digest, sizeof(rep.author_key_digest));
	memcpy(rep.report_id, vm->report_id, sizeof(rep.report_id));
	memset(rep.report_id_ma, 0xff, sizeof(rep.report_id_ma)); /* no migration agent */
	rep.reported_tcb = psp->st.reported_tcb;
	product_cpuid(psp->st.product, &rep);
	if (!(psp->st.config_flags & SNP_CONFIG_F_MASK_CHIP_ID))
		memcpy(rep.chip_id, psp->st.chip_id, sizeof(rep.chip_id));
	rep.committed_tcb = psp->st.committed_tcb;
	rep.current_build = psp->st.fw_build;
	rep.current_minor = psp->st.fw_minor;
	rep.current_major = psp->st.fw_major;
	rep.committed_build = psp->st.committed_build;
	rep.committed_minor = psp->st.committed_minor;
	rep.committed_major = psp->st.committed_major;
	rep.launch_tcb = vm->launch_tcb;
	if (rep.version >= 5)
		rep.launch_mit_vector = rep.current_mit_vector = TURIN_MIT_VECTOR;

	r = report_serialise(&rep, buf);
	if (r < 0)
		return r;
	if (key) {
		r = report_sign(buf, key);
		if (r < 0)
			return r;
	}
	return msg_report_rsp_build(SEV_RET_SUCCESS, buf, sizeof(buf), out, size);
}

static int do_key(struct sim_psp *psp, struct sim_psp_vm *vm, const struct msg_hdr *h,
		  const uint8_t *pt, size_t len, uint8_t *out, size_t size, uint32_t *fw)
{
	struct msg_key_req req;
	struct msg_key_rsp rsp = {0};
	uint8_t ctx[128];
	size_t n = 0;
	uint64_t allowed_fields;
	int r;

	if (size < MSG_KEY_RSP_SIZE)
		return -ENOSPC;
	if (h->version != 1 && h->version != 2) {
		*fw = SEV_RET_BAD_VERSION;
		return 0;
	}
	r = msg_key_req_parse(pt, len, h->version, &req);
	if (r == -EMSGSIZE) {
		*fw = SEV_RET_INVALID_LEN;
		return 0;
	}
	*fw = SEV_RET_SUCCESS;
	allowed_fields = h->version >= 2 ? 0x7f : 0x3f;
	if (r < 0 || req.root_key_select > 1 || (req.guest_field_select & ~allowed_fields) ||
	    req.vmpl < h->vmpck || req.vmpl > MSG_VMPCK_MAX || req.guest_svn > vm->cfg.guest_svn ||
	    !tcb_le(req.tcb_version, psp->st.committed_tcb, psp->st.product)) {
		rsp.status = SEV_RET_INVALID_PARAM;
		msg_key_rsp_build(&rsp, out);
		return MSG_KEY_RSP_SIZE;
	}

	/* The key mixes the root (chip, or this VM for VMRK) with every field the guest
	 * selected, so changing any selected field changes the key. */
	ctx[n++] = (uint8_t)req.root_key_select;
	put_le64(ctx + n, req.root_key_select ? vm->cfg.vm_id : 0), n += 8;
	put_le32(ctx + n, req.vmpl), n += 4;
	put_le64(ctx + n, req.guest_field_select), n += 8;
	if (req.guest_field_select & (1u << 0))
		put_le64(ctx + n, vm->cfg.policy), n += 8;
	if (req.guest_field_select & (1u << 1))
		memcpy(ctx + n, vm->cfg.image_id, 16), n += 16;
	if (req.guest_field_select & (1u << 2))
		memcpy(ctx + n, vm->cfg.family_id, 16), n += 16;
	if (req.guest_field_select & (1u << 3))
		memcpy(ctx + n, vm->cfg.measurement, 48), n += 48;
	if (req.guest_field_select & (1u << 4))
		put_le32(ctx + n, req.guest_svn), n += 4;
	if (req.guest_field_select & (1u << 5))
		put_le64(ctx + n, req.tcb_version), n += 8;
	if (req.guest_field_select & GFS_LAUNCH_MIT_VECTOR)
		put_le64(ctx + n, req.launch_mit_vector), n += 8;
	r = sim_keys_derived(psp->st.secret, ctx, n, rsp.key);
	if (r < 0)
		return r;
	msg_key_rsp_build(&rsp, out);
	OPENSSL_cleanse(&rsp, sizeof(rsp));
	return MSG_KEY_RSP_SIZE;
}

static int do_tsc_info(const struct msg_hdr *h, size_t len, uint8_t *out, size_t size, uint32_t *fw)
{
	/* A guest without Secure TSC scaling runs at the host rate: scale 1.0 in 32.32. */
	struct msg_tsc_info_rsp rsp = {.tsc_scale = 1ull << 32};

	if (size < MSG_TSC_INFO_RSP_SIZE)
		return -ENOSPC;
	if (h->version != 1) {
		*fw = SEV_RET_BAD_VERSION;
		return 0;
	}
	if (len != MSG_TSC_INFO_REQ_SIZE) {
		*fw = SEV_RET_INVALID_LEN;
		return 0;
	}
	*fw = SEV_RET_SUCCESS;
	msg_tsc_info_rsp_build(&rsp, out);
	return MSG_TSC_INFO_RSP_SIZE;
}

/* Executes one message; caller holds the PSP. Returns < 0 only for our own failures. */
static int guest_request(struct sim_psp *psp, struct sim_psp_vm *vm, const uint8_t *req,
			 size_t req_len, uint8_t *resp, size_t resp_size, uint32_t *fw,
			 enum sim_psp_op *op)
{
	uint8_t pt[MSG_PAYLOAD_MAX], out[MSG_PAYLOAD_MAX];
	struct msg_hdr h, rh;
	size_t len;
	int r, n;

	*op = SIM_PSP_OP_BAD_REQUEST;
	if (!req || req_len < MSG_HDR_SIZE || msg_hdr_parse(req, req_len, &h) < 0) {
		*fw = SEV_RET_INVALID_LEN;
		return 0;
	}
	if (h.algo != MSG_ALGO_AES_256_GCM || h.hdr_version != MSG_HDR_VERSION ||
	    h.hdr_sz != MSG_HDR_SIZE || h.vmpck > MSG_VMPCK_MAX) {
		*fw = SEV_RET_INVALID_PARAM;
		return 0;
	}
	if (h.sz > MSG_PAYLOAD_MAX || MSG_HDR_SIZE + (size_t)h.sz > req_len) {
		*fw = SEV_RET_INVALID_LEN;
		return 0;
	}
	/* The firmware accepts only its exact next sequence number (facts §2.3). */
	if (h.seqno != vm->counter[h.vmpck] + 1) {
		*fw = SEV_RET_INVALID_PARAM;
		return 0;
	}
	if (h.type != MSG_REPORT_REQ && h.type != MSG_KEY_REQ && h.type != MSG_TSC_INFO_REQ) {
		*fw = SEV_RET_INVALID_PARAM;
		return 0;
	}
	if (h.seqno + 1 > UINT32_MAX) {
		*fw = SEV_RET_AEAD_OFLOW;
		return 0;
	}
	r = msg_open(vm->vmpck[h.vmpck], req, MSG_HDR_SIZE + (size_t)h.sz, &h, pt, sizeof(pt),
		     &len);
	if (r < 0) {
		*fw = SEV_RET_BAD_SIGNATURE;
		return 0;
	}

	switch (h.type) {
	case MSG_REPORT_REQ:
		*op = SIM_PSP_OP_REPORT;
		n = do_report(psp, vm, &h, pt, len, out, sizeof(out), fw);
		break;
	case MSG_KEY_REQ:
		*op = SIM_PSP_OP_KEY;
		n = do_key(psp, vm, &h, pt, len, out, sizeof(out), fw);
		break;
	case MSG_TSC_INFO_REQ:
		*op = SIM_PSP_OP_TSC_INFO;
		n = do_tsc_info(&h, len, out, sizeof(out), fw);
		break;
	default: /* filtered above */
		*fw = SEV_RET_INVALID_PARAM;
		n = 0;
		break;
	}
	OPENSSL_cleanse(pt, sizeof(pt));
	if (n < 0 || *fw != SEV_RET_SUCCESS) {
		if (*fw != SEV_RET_SUCCESS)
			*op = SIM_PSP_OP_BAD_REQUEST;
		OPENSSL_cleanse(out, sizeof(out));
		return n < 0 ? n : 0;
	}
	if (resp_size < MSG_HDR_SIZE + (size_t)n) {
		*fw = SEV_RET_INVALID_LEN;
		*op = SIM_PSP_OP_BAD_REQUEST;
		OPENSSL_cleanse(out, sizeof(out));
		return 0;
	}

	rh = (struct msg_hdr){
		.seqno = h.seqno + 1,
		.algo = MSG_ALGO_AES_256_GCM,
		.hdr_version = MSG_HDR_VERSION,
		.hdr_sz = MSG_HDR_SIZE,
		.type = (uint8_t)(h.type + 1),
		.version = h.version,
		.vmpck = h.vmpck,
	};
	r = msg_seal(vm->vmpck[h.vmpck], &rh, out, (size_t)n, resp, resp_size);
	OPENSSL_cleanse(out, sizeof(out));
	if (r < 0)
		return r;
	vm->counter[h.vmpck] += 2; /* advances only on success */
	return 0;
}

int sim_psp_guest_request(struct sim_psp *psp, struct sim_psp_vm *vm, const uint8_t *req,
			  size_t req_len, uint8_t *resp, size_t resp_size, uint32_t *ret_fw_status)
{
	enum sim_psp_op op = SIM_PSP_OP_BAD_REQUEST;
	uint32_t fw = SEV_RET_SUCCESS;
	int r;

	if (!psp || !vm || vm->psp != psp || !resp || !ret_fw_status)
		return -EINVAL;
	r = psp_enter(psp);
	if (r < 0)
		return r;
	r = guest_request(psp, vm, req, req_len, resp, resp_size, &fw, &op);
	if (r < 0 || fw != SEV_RET_SUCCESS)
		memset(resp, 0, resp_size);
	psp_leave(psp, op);
	if (r < 0)
		return r;
	*ret_fw_status = fw;
	return 0;
}

/* --- platform commands --- */

int sim_psp_platform_status(struct sim_psp *psp, struct sev_user_data_snp_status *ret,
			    uint32_t *ret_fw_status)
{
	struct sev_user_data_snp_status s = {0};
	EVP_PKEY *vlek = NULL;
	int r = psp_enter(psp);

	if (r < 0)
		return r;
	s.api_major = psp->st.fw_major;
	s.api_minor = psp->st.fw_minor;
	s.state = 1; /* initialised */
	s.is_rmp_initialized = 1;
	s.build_id = psp->st.fw_build;
	if (psp->st.config_flags & SNP_CONFIG_F_MASK_CHIP_ID)
		s.flags |= SNP_STATUS_F_MASK_CHIP_ID;
	if (psp->st.config_flags & SNP_CONFIG_F_MASK_CHIP_KEY)
		s.flags |= SNP_STATUS_F_MASK_CHIP_KEY;
	r = psp_vlek(psp, &vlek);
	if (r >= 0 && vlek)
		s.flags |= SNP_STATUS_F_VLEK_EN;
	s.guest_count = psp->vm_count;
	s.current_tcb_version = psp->st.current_tcb;
	s.reported_tcb_version = psp->st.reported_tcb;
	psp_leave(psp, SIM_PSP_OP_PLATFORM_STATUS);
	if (r < 0)
		return r;
	*ret = s;
	*ret_fw_status = SEV_RET_SUCCESS;
	return 0;
}

/* The id of socket `index` (0: the chip id the reports carry). Other sockets get an id
 * derived from the chip secret, so it is stable for the simulated host. */
static int socket_id(const struct sim_state_data *d, unsigned index, uint8_t out[SIM_CHIP_ID_LEN])
{
	static const char label[] = "snp-sim socket chip id";
	uint8_t in[sizeof(label) + 1 + SIM_SECRET_LEN];
	unsigned int n = 0;
	size_t idlen = snp_product_hwid_len(d->product);
	int ok;

	if (d->config_flags & SNP_CONFIG_F_MASK_CHIP_ID) {
		memset(out, 0, SIM_CHIP_ID_LEN);
		return 0;
	}
	if (index == 0) {
		memcpy(out, d->chip_id, SIM_CHIP_ID_LEN);
		return 0;
	}
	memcpy(in, label, sizeof(label));
	in[sizeof(label)] = (uint8_t)index;
	memcpy(in + sizeof(label) + 1, d->secret, SIM_SECRET_LEN);
	ok = EVP_Digest(in, sizeof(in), out, &n, EVP_sha512(), NULL);
	OPENSSL_cleanse(in, sizeof(in));
	if (ok != 1 || n != SIM_CHIP_ID_LEN)
		return -EIO;
	if (idlen < SIM_CHIP_ID_LEN)
		memset(out + idlen, 0, SIM_CHIP_ID_LEN - idlen); /* Turin: 8 significant bytes */
	return 0;
}

int sim_psp_get_id2(struct sim_psp *psp, uint8_t *id, uint32_t *len_inout, uint32_t *ret_fw_status)
{
	struct sim_platform pf;
	uint32_t need;
	int r;

	if (!len_inout || !ret_fw_status)
		return -EINVAL;
	r = psp_enter(psp);
	if (r < 0)
		return r;
	r = sim_state_platform(psp->state, &pf);
	if (r < 0) {
		pthread_mutex_unlock(&psp->lock);
		return r;
	}
	/* 64 bytes per socket; Turin ids are zero padded (the real Turin length is
	 * unconfirmed, facts §8). */
	need = SIM_CHIP_ID_LEN * pf.sockets;
	if (!id || *len_inout < need) {
		*ret_fw_status = SEV_RET_INVALID_LEN;
	} else {
		for (unsigned i = 0; i < pf.sockets && r >= 0; i++)
			r = socket_id(&psp->st, i, id + (size_t)i * SIM_CHIP_ID_LEN);
		*ret_fw_status = SEV_RET_SUCCESS;
	}
	*len_inout = need;
	psp_leave(psp, SIM_PSP_OP_GET_ID2);
	return r;
}

struct config_args {
	const struct sev_user_data_snp_config *cfg;
	uint32_t fw;
};

static int config_update(struct sim_state_data *d, void *userdata)
{
	struct config_args *a = userdata;

	if ((a->cfg->flags & ~(SNP_CONFIG_F_MASK_CHIP_ID | SNP_CONFIG_F_MASK_CHIP_KEY)) ||
	    !mem_is_zero(a->cfg->rsvd1, sizeof(a->cfg->rsvd1)) ||
	    !tcb_le(a->cfg->reported_tcb, d->current_tcb, d->product)) {
		a->fw = SEV_RET_INVALID_PARAM;
		return 1;
	}
	if (d->reported_tcb != a->cfg->reported_tcb)
		d->vlek_loaded = false;
	d->reported_tcb = a->cfg->reported_tcb;
	d->config_flags = a->cfg->flags;
	a->fw = SEV_RET_SUCCESS;
	return 0;
}

int sim_psp_set_config(struct sim_psp *psp, const struct sev_user_data_snp_config *cfg,
		       uint32_t *ret_fw_status)
{
	struct config_args a = {.cfg = cfg};
	int r;

	if (!cfg || !ret_fw_status)
		return -EINVAL;
	r = psp_enter(psp);
	if (r < 0)
		return r;
	r = sim_state_update(psp->state, config_update, &a);
	psp_leave(psp, SIM_PSP_OP_SET_CONFIG);
	if (r < 0)
		return r;
	*ret_fw_status = a.fw;
	return 0;
}

static int commit_update(struct sim_state_data *d, void *userdata)
{
	if (d->reported_tcb != d->current_tcb)
		d->vlek_loaded = false;
	d->committed_tcb = d->current_tcb;
	d->reported_tcb = d->current_tcb;
	d->committed_major = d->fw_major;
	d->committed_minor = d->fw_minor;
	d->committed_build = d->fw_build;
	return 0;
}

int sim_psp_commit(struct sim_psp *psp, uint32_t *ret_fw_status)
{
	int r;

	if (!ret_fw_status)
		return -EINVAL;
	r = psp_enter(psp);
	if (r < 0)
		return r;
	r = sim_state_update(psp->state, commit_update, NULL);
	psp_leave(psp, SIM_PSP_OP_COMMIT);
	if (r < 0)
		return r;
	*ret_fw_status = SEV_RET_SUCCESS;
	return 0;
}

struct vlek_args {
	const uint8_t *hashstick;
	uint32_t fw;
};

static int vlek_update(struct sim_state_data *d, void *userdata)
{
	struct vlek_args *a = userdata;
	uint8_t seed[SIM_VLEK_SEED_LEN];
	uint64_t tcb;
	int r;

	r = sim_keys_hashstick_unwrap(d->secret, d->product, d->chip_id, a->hashstick, &tcb, seed);
	OPENSSL_cleanse(seed, sizeof(seed));
	if (r == -EKEYREJECTED) {
		a->fw = SEV_RET_BAD_SIGNATURE;
		return 1;
	}
	if (r == -EBADMSG || (r >= 0 && tcb != d->reported_tcb)) {
		a->fw = SEV_RET_INVALID_PARAM;
		return 1;
	}
	if (r < 0)
		return r;
	memcpy(d->vlek_hashstick, a->hashstick, SIM_HASHSTICK_SIZE);
	d->vlek_loaded = true;
	a->fw = SEV_RET_SUCCESS;
	return 0;
}

int sim_psp_vlek_load(struct sim_psp *psp, const struct sev_user_data_snp_vlek_load *hdr,
		      const uint8_t hashstick[SIM_HASHSTICK_SIZE], uint32_t *ret_fw_status)
{
	struct vlek_args a = {.hashstick = hashstick};
	int r;

	if (!hdr || !ret_fw_status)
		return -EINVAL;
	r = psp_enter(psp);
	if (r < 0)
		return r;
	if (hdr->len != sizeof(*hdr) || hdr->vlek_wrapped_version != 0 || !hashstick)
		a.fw = SEV_RET_INVALID_PARAM;
	else
		r = sim_state_update(psp->state, vlek_update, &a);
	psp_leave(psp, SIM_PSP_OP_VLEK_LOAD);
	if (r < 0)
		return r;
	*ret_fw_status = a.fw;
	return 0;
}

int sim_psp_issue_cmd(struct sim_psp *psp, struct sev_issue_cmd *cmd, bool writable)
{
	void *data;
	uint32_t fw = SEV_RET_SUCCESS;
	int r;

	if (!psp || !cmd)
		return -EINVAL;
	data = (void *)(uintptr_t)cmd->data;
	/* The SNP commands need SNP initialised (facts §9.4): before that the kernel refuses
	 * them without calling the firmware. GET_ID2 is a legacy command and always works. */
	if (cmd->cmd == SNP_CMD_PLATFORM_STATUS || cmd->cmd == SNP_CMD_COMMIT ||
	    cmd->cmd == SNP_CMD_SET_CONFIG || cmd->cmd == SNP_CMD_VLEK_LOAD) {
		struct sim_platform pf;
		r = sim_state_platform(psp->state, &pf);
		if (r < 0)
			return r;
		if (!pf.snp_initialised) {
			cmd->error = 0;
			return -pf.uninit_errno;
		}
	}
	switch (cmd->cmd) {
	case SNP_CMD_PLATFORM_STATUS:
		if (!data)
			return -EINVAL;
		r = sim_psp_platform_status(psp, data, &fw);
		break;
	case SEV_CMD_GET_ID2: {
		struct sev_user_data_get_id2 *g = data;
		uint32_t length;
		if (!g)
			return -EINVAL;
		/* As sev_ioctl_do_get_id2: address 0 or length 0 is the length query. */
		uint8_t *addr = g->length ? (uint8_t *)(uintptr_t)g->address : NULL;
		uint32_t given;
		length = addr ? g->length : 0; /* packed struct: no pointer to the member */
		given = length;
		r = sim_psp_get_id2(psp, addr, &length, &fw);
		if (r < 0)
			break;
		g->length = length;
		if (addr && fw != SEV_RET_SUCCESS && length > given) {
			/* Linux 6.12 copies the length the firmware asked for into the caller's
			 * smaller buffer. We do not write past it: the caller gets -EFAULT, so
			 * code that relies on that answer fails here instead of on a real host. */
			cmd->error = fw;
			return -EFAULT;
		}
		break;
	}
	case SNP_CMD_COMMIT:
		r = sim_psp_commit(psp, &fw);
		break;
	case SNP_CMD_SET_CONFIG:
		if (!writable)
			return -EPERM;
		if (!data)
			return -EINVAL;
		r = sim_psp_set_config(psp, data, &fw);
		break;
	case SNP_CMD_VLEK_LOAD: {
		struct sev_user_data_snp_vlek_load *v = data;
		if (!writable)
			return -EPERM;
		if (!v)
			return -EINVAL;
		r = sim_psp_vlek_load(psp, v, (const uint8_t *)(uintptr_t)v->vlek_wrapped_address,
				      &fw);
		break;
	}
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;
	cmd->error = fw;
	return fw == SEV_RET_SUCCESS ? 0 : -EIO;
}
