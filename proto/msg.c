/* SPDX-License-Identifier: Apache-2.0 */
/* msg: guest message header codec, AES-256-GCM seal/open and payload codecs. Pure: no I/O,
 * no logging; the VMPCK comes from the caller and is never kept. */
#include "msg.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util.h"

static const char *const msg_type_names[_MSG_TYPE_MAX] = {
	[MSG_TYPE_INVALID] = "INVALID",
	[MSG_CPUID_REQ] = "CPUID_REQ",
	[MSG_CPUID_RSP] = "CPUID_RSP",
	[MSG_KEY_REQ] = "KEY_REQ",
	[MSG_KEY_RSP] = "KEY_RSP",
	[MSG_REPORT_REQ] = "REPORT_REQ",
	[MSG_REPORT_RSP] = "REPORT_RSP",
	[MSG_EXPORT_REQ] = "EXPORT_REQ",
	[MSG_EXPORT_RSP] = "EXPORT_RSP",
	[MSG_IMPORT_REQ] = "IMPORT_REQ",
	[MSG_IMPORT_RSP] = "IMPORT_RSP",
	[MSG_ABSORB_REQ] = "ABSORB_REQ",
	[MSG_ABSORB_RSP] = "ABSORB_RSP",
	[MSG_VMRK_REQ] = "VMRK_REQ",
	[MSG_VMRK_RSP] = "VMRK_RSP",
	[MSG_ABSORB_NOMA_REQ] = "ABSORB_NOMA_REQ",
	[MSG_ABSORB_NOMA_RSP] = "ABSORB_NOMA_RSP",
	[MSG_TSC_INFO_REQ] = "TSC_INFO_REQ",
	[MSG_TSC_INFO_RSP] = "TSC_INFO_RSP",
};

const char *msg_type_name(uint8_t type)
{
	if (type >= _MSG_TYPE_MAX)
		return "UNKNOWN";
	return msg_type_names[type];
}

bool msg_type_is_request(uint8_t type)
{
	return type > MSG_TYPE_INVALID && type < _MSG_TYPE_MAX && (type & 1);
}

bool msg_type_is_response(uint8_t type)
{
	return type > MSG_TYPE_INVALID && type < _MSG_TYPE_MAX && !(type & 1);
}

uint8_t msg_type_response(uint8_t req_type)
{
	return msg_type_is_request(req_type) ? (uint8_t)(req_type + 1) : MSG_TYPE_INVALID;
}

int msg_hdr_parse(const uint8_t *buf, size_t len, struct msg_hdr *ret)
{
	struct msg_hdr h;

	if (!buf || len < MSG_HDR_SIZE)
		return -EMSGSIZE;
	memcpy(h.authtag, buf + MSG_OFF_AUTHTAG, sizeof(h.authtag));
	h.seqno = get_le64(buf + MSG_OFF_SEQNO);
	h.algo = buf[MSG_OFF_ALGO];
	h.hdr_version = buf[MSG_OFF_HDR_VERSION];
	h.hdr_sz = get_le16(buf + MSG_OFF_HDR_SZ);
	h.type = buf[MSG_OFF_TYPE];
	h.version = buf[MSG_OFF_VERSION];
	h.sz = get_le16(buf + MSG_OFF_SZ);
	h.vmpck = buf[MSG_OFF_VMPCK];
	*ret = h;
	return 0;
}

void msg_hdr_build(const struct msg_hdr *h, uint8_t out[MSG_HDR_SIZE])
{
	memset(out, 0, MSG_HDR_SIZE);
	memcpy(out + MSG_OFF_AUTHTAG, h->authtag, sizeof(h->authtag));
	put_le64(out + MSG_OFF_SEQNO, h->seqno);
	out[MSG_OFF_ALGO] = h->algo;
	out[MSG_OFF_HDR_VERSION] = h->hdr_version;
	put_le16(out + MSG_OFF_HDR_SZ, h->hdr_sz);
	out[MSG_OFF_TYPE] = h->type;
	out[MSG_OFF_VERSION] = h->version;
	put_le16(out + MSG_OFF_SZ, h->sz);
	out[MSG_OFF_VMPCK] = h->vmpck;
}

int msg_hdr_check(const struct msg_hdr *h)
{
	if (h->algo != MSG_ALGO_AES_256_GCM || h->hdr_version != MSG_HDR_VERSION ||
	    h->hdr_sz != MSG_HDR_SIZE)
		return -EBADMSG;
	if (h->type == MSG_TYPE_INVALID || h->type >= _MSG_TYPE_MAX)
		return -EBADMSG;
	if (h->sz > MSG_PAYLOAD_MAX || h->vmpck > MSG_VMPCK_MAX || h->seqno == 0)
		return -EBADMSG;
	return 0;
}

int msg_hdr_check_response(const struct msg_hdr *req, const struct msg_hdr *rsp)
{
	if (!msg_type_is_request(req->type) || rsp->type != msg_type_response(req->type))
		return -EBADMSG;
	if (req->seqno == UINT64_MAX || rsp->seqno != msg_seqno_response(req->seqno))
		return -EBADMSG;
	if (rsp->version != req->version)
		return -EBADMSG;
	return 0;
}

/* IV (facts §2.2): the 64-bit sequence number little-endian, then four zero bytes. */
static void msg_make_iv(uint64_t seqno, uint8_t iv[MSG_IV_LEN])
{
	memset(iv, 0, MSG_IV_LEN);
	put_le64(iv, seqno);
}

static void cipher_ctx_freep(EVP_CIPHER_CTX **p)
{
	EVP_CIPHER_CTX_free(*p);
}

int msg_seal(const uint8_t key[MSG_KEY_LEN], const struct msg_hdr *h, const uint8_t *pt, size_t len,
	     uint8_t *page, size_t page_size)
{
	_cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
	uint8_t iv[MSG_IV_LEN], hdr[MSG_HDR_SIZE], tag[MSG_AUTHTAG_LEN], scratch[16];
	struct msg_hdr hh;
	int outl = 0, r;

	if (!key || !h || !page || (len && !pt))
		return -EINVAL;
	if (len > MSG_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (page_size < MSG_HDR_SIZE + len)
		return -ENOSPC;
	hh = *h;
	hh.sz = (uint16_t)len;
	memset(hh.authtag, 0, sizeof(hh.authtag));
	r = msg_hdr_check(&hh);
	if (r < 0)
		return r;
	msg_hdr_build(&hh, hdr);
	msg_make_iv(hh.seqno, iv);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, hdr + MSG_AAD_OFFSET, MSG_AAD_LEN) != 1)
		return -EIO;
	if (len > 0 && (EVP_EncryptUpdate(ctx, page + MSG_HDR_SIZE, &outl, pt, (int)len) != 1 ||
			(size_t)outl != len))
		goto fail;
	/* GCM emits nothing in Final; the scratch buffer only satisfies the API. */
	if (EVP_EncryptFinal_ex(ctx, scratch, &outl) != 1 || outl != 0)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, MSG_AUTHTAG_LEN, tag) != 1)
		goto fail;
	memcpy(hdr + MSG_OFF_AUTHTAG, tag, MSG_AUTHTAG_LEN);
	memcpy(page, hdr, MSG_HDR_SIZE);
	return 0;
fail:
	/* Never leave a half-written page that could be mistaken for a message. */
	OPENSSL_cleanse(page, MSG_HDR_SIZE + len);
	return -EIO;
}

int msg_open(const uint8_t key[MSG_KEY_LEN], const uint8_t *page, size_t len,
	     struct msg_hdr *ret_hdr, uint8_t *pt, size_t pt_size, size_t *ret_len)
{
	_cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
	uint8_t iv[MSG_IV_LEN], tag[MSG_AUTHTAG_LEN], scratch[16];
	struct msg_hdr h;
	int outl = 0, r;

	if (!key)
		return -EINVAL;
	r = msg_hdr_parse(page, len, &h);
	if (r < 0)
		return r;
	r = msg_hdr_check(&h);
	if (r < 0)
		return r;
	if (len - MSG_HDR_SIZE < h.sz)
		return -EMSGSIZE;
	if (h.sz > 0 && (!pt || pt_size < h.sz))
		return -ENOSPC;
	msg_make_iv(h.seqno, iv);
	memcpy(tag, h.authtag, MSG_AUTHTAG_LEN);

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, page + MSG_AAD_OFFSET, MSG_AAD_LEN) != 1)
		return -EIO;
	if (h.sz > 0 &&
	    (EVP_DecryptUpdate(ctx, pt, &outl, page + MSG_HDR_SIZE, h.sz) != 1 || outl != h.sz))
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, MSG_AUTHTAG_LEN, tag) != 1)
		goto fail;
	/* Final checks the tag; GCM emits no bytes here. */
	if (EVP_DecryptFinal_ex(ctx, scratch, &outl) != 1 || outl != 0)
		goto fail;
	*ret_hdr = h;
	*ret_len = h.sz;
	return 0;
fail:
	/* Unauthenticated plaintext must not reach the caller. */
	if (pt && h.sz > 0)
		OPENSSL_cleanse(pt, h.sz);
	return -EBADMSG;
}

/* --- payloads --- */

/* Every response payload starts with the firmware status as a 32-bit little-endian word.
 * Reads it if the payload holds at least min bytes; false (nothing read) if it does not. */
static bool rsp_status_parse(const uint8_t *buf, size_t len, size_t min, uint32_t *ret_status)
{
	if (!buf || len < min)
		return false;
	*ret_status = get_le32(buf);
	return true;
}

/* Zeroes the first size bytes of a response payload and writes its status word. */
static void rsp_status_build(uint32_t status, uint8_t *out, size_t size)
{
	memset(out, 0, size);
	put_le32(out, status);
}

int msg_report_req_parse(const uint8_t *buf, size_t len, struct msg_report_req *ret)
{
	struct msg_report_req r;
	uint32_t w;

	if (!buf || len != MSG_REPORT_REQ_SIZE)
		return -EMSGSIZE;
	memcpy(r.report_data, buf, sizeof(r.report_data));
	r.vmpl = get_le32(buf + 0x40);
	w = get_le32(buf + 0x44);
	r.key_sel = w & 0x3;
	if (r.vmpl > 3 || r.key_sel == 3 || (w & ~0x3u) || !mem_is_zero(buf + 0x48, 0x60 - 0x48))
		return -EBADMSG;
	*ret = r;
	return 0;
}

void msg_report_req_build(const struct msg_report_req *r, uint8_t out[MSG_REPORT_REQ_SIZE])
{
	memset(out, 0, MSG_REPORT_REQ_SIZE);
	memcpy(out, r->report_data, sizeof(r->report_data));
	put_le32(out + 0x40, r->vmpl);
	put_le32(out + 0x44, r->key_sel & 0x3);
}

int msg_report_rsp_parse(const uint8_t *buf, size_t len, struct msg_report_rsp *ret)
{
	struct msg_report_rsp r;

	if (!rsp_status_parse(buf, len, MSG_REPORT_RSP_HDR_SIZE, &r.status))
		return -EMSGSIZE;
	r.report_size = get_le32(buf + 4);
	r.report = NULL;
	if (r.status == 0) {
		if (r.report_size == 0)
			return -EBADMSG;
		if (r.report_size > len - MSG_REPORT_RSP_HDR_SIZE)
			return -EMSGSIZE;
		r.report = buf + MSG_REPORT_RSP_HDR_SIZE;
	}
	*ret = r;
	return 0;
}

int msg_report_rsp_build(uint32_t status, const uint8_t *report, size_t report_len, uint8_t *out,
			 size_t size)
{
	size_t need;

	if (!report)
		report_len = 0;
	if (report_len > MSG_PAYLOAD_MAX - MSG_REPORT_RSP_HDR_SIZE)
		return -EMSGSIZE;
	need = MSG_REPORT_RSP_HDR_SIZE + report_len;
	if (!out || size < need)
		return -ENOSPC;
	rsp_status_build(status, out, MSG_REPORT_RSP_HDR_SIZE);
	put_le32(out + 4, (uint32_t)report_len);
	if (report_len)
		memcpy(out + MSG_REPORT_RSP_HDR_SIZE, report, report_len);
	return (int)need;
}

static int msg_key_req_size(uint8_t version, size_t *ret)
{
	switch (version) {
	case 1:
		*ret = MSG_KEY_REQ_SIZE_V1;
		return 0;
	case 2:
		*ret = MSG_KEY_REQ_SIZE_V2;
		return 0;
	default:
		return -EPROTONOSUPPORT;
	}
}

int msg_key_req_parse(const uint8_t *buf, size_t len, uint8_t version, struct msg_key_req *ret)
{
	struct msg_key_req k = {0};
	size_t want;
	int r;

	r = msg_key_req_size(version, &want);
	if (r < 0)
		return r;
	if (!buf || len != want)
		return -EMSGSIZE;
	k.root_key_select = get_le32(buf);
	k.guest_field_select = get_le64(buf + 0x08);
	k.vmpl = get_le32(buf + 0x10);
	k.guest_svn = get_le32(buf + 0x14);
	k.tcb_version = get_le64(buf + 0x18);
	if (version >= 2)
		k.launch_mit_vector = get_le64(buf + 0x20);
	if ((k.root_key_select & ~MSG_KEY_ROOT_VMRK) || get_le32(buf + 0x04) != 0)
		return -EBADMSG;
	if (k.guest_field_select &
	    ~(uint64_t)(version >= 2 ? MSG_KEY_FIELDS_V2 : MSG_KEY_FIELDS_V1))
		return -EBADMSG;
	if (k.vmpl > 3)
		return -EBADMSG;
	*ret = k;
	return 0;
}

int msg_key_req_build(const struct msg_key_req *r, uint8_t version, uint8_t *out, size_t size)
{
	size_t want;
	int ret;

	ret = msg_key_req_size(version, &want);
	if (ret < 0)
		return ret;
	if (version == 1 && r->launch_mit_vector != 0)
		return -EINVAL;
	if (!out || size < want)
		return -ENOSPC;
	memset(out, 0, want);
	put_le32(out, r->root_key_select);
	put_le64(out + 0x08, r->guest_field_select);
	put_le32(out + 0x10, r->vmpl);
	put_le32(out + 0x14, r->guest_svn);
	put_le64(out + 0x18, r->tcb_version);
	if (version >= 2)
		put_le64(out + 0x20, r->launch_mit_vector);
	return (int)want;
}

int msg_key_rsp_parse(const uint8_t *buf, size_t len, struct msg_key_rsp *ret)
{
	struct msg_key_rsp k;

	if (!rsp_status_parse(buf, len, MSG_KEY_RSP_SIZE, &k.status))
		return -EMSGSIZE;
	memcpy(k.key, buf + 0x20, sizeof(k.key));
	*ret = k;
	return 0;
}

void msg_key_rsp_build(const struct msg_key_rsp *r, uint8_t out[MSG_KEY_RSP_SIZE])
{
	rsp_status_build(r->status, out, MSG_KEY_RSP_SIZE);
	memcpy(out + 0x20, r->key, sizeof(r->key));
}

int msg_tsc_info_req_parse(const uint8_t *buf, size_t len)
{
	if (!buf || len != MSG_TSC_INFO_REQ_SIZE)
		return -EMSGSIZE;
	return mem_is_zero(buf, len) ? 0 : -EBADMSG;
}

void msg_tsc_info_req_build(uint8_t out[MSG_TSC_INFO_REQ_SIZE])
{
	memset(out, 0, MSG_TSC_INFO_REQ_SIZE);
}

int msg_tsc_info_rsp_parse(const uint8_t *buf, size_t len, struct msg_tsc_info_rsp *ret)
{
	struct msg_tsc_info_rsp t;

	if (!rsp_status_parse(buf, len, MSG_TSC_INFO_RSP_SIZE, &t.status))
		return -EMSGSIZE;
	t.tsc_scale = get_le64(buf + 0x08);
	t.tsc_offset = get_le64(buf + 0x10);
	t.tsc_factor = get_le32(buf + 0x18);
	*ret = t;
	return 0;
}

void msg_tsc_info_rsp_build(const struct msg_tsc_info_rsp *r, uint8_t out[MSG_TSC_INFO_RSP_SIZE])
{
	rsp_status_build(r->status, out, MSG_TSC_INFO_RSP_SIZE);
	put_le64(out + 0x08, r->tsc_scale);
	put_le64(out + 0x10, r->tsc_offset);
	put_le32(out + 0x18, r->tsc_factor);
}
