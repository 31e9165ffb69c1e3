/* SPDX-License-Identifier: Apache-2.0 */
/* msg: the SNP guest message (facts §2) and the REPORT/KEY/TSC_INFO payloads (§3). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_HDR_SIZE 0x60
#define MSG_PAGE_SIZE 4096
#define MSG_PAYLOAD_MAX (MSG_PAGE_SIZE - MSG_HDR_SIZE) /* 4000 */
#define MSG_AUTHTAG_LEN 16
#define MSG_AUTHTAG_MAX 32 /* the header reserves 32 bytes; GCM uses the first 16 */
#define MSG_AAD_OFFSET 0x30
#define MSG_AAD_LEN 48
#define MSG_IV_LEN 12
#define MSG_KEY_LEN 32
#define MSG_ALGO_AES_256_GCM 1
#define MSG_HDR_VERSION 1
#define MSG_VMPCK_MAX 3

/* Byte offsets of the header fields (facts §2.1). */
#define MSG_OFF_AUTHTAG 0x00
#define MSG_OFF_SEQNO 0x20
#define MSG_OFF_ALGO 0x30
#define MSG_OFF_HDR_VERSION 0x31
#define MSG_OFF_HDR_SZ 0x32
#define MSG_OFF_TYPE 0x34
#define MSG_OFF_VERSION 0x35
#define MSG_OFF_SZ 0x36
#define MSG_OFF_VMPCK 0x3C

enum msg_type {
	MSG_TYPE_INVALID = 0,
	MSG_CPUID_REQ = 1,
	MSG_CPUID_RSP = 2,
	MSG_KEY_REQ = 3,
	MSG_KEY_RSP = 4,
	MSG_REPORT_REQ = 5,
	MSG_REPORT_RSP = 6,
	MSG_EXPORT_REQ = 7,
	MSG_EXPORT_RSP = 8,
	MSG_IMPORT_REQ = 9,
	MSG_IMPORT_RSP = 10,
	MSG_ABSORB_REQ = 11,
	MSG_ABSORB_RSP = 12,
	MSG_VMRK_REQ = 13,
	MSG_VMRK_RSP = 14,
	MSG_ABSORB_NOMA_REQ = 15,
	MSG_ABSORB_NOMA_RSP = 16,
	MSG_TSC_INFO_REQ = 17,
	MSG_TSC_INFO_RSP = 18,
	_MSG_TYPE_MAX,
};

/* "REPORT_REQ" etc.; "UNKNOWN" for values outside the table. */
const char *msg_type_name(uint8_t type);
/* Odd values 1..17 are requests; a request's response type is type + 1. */
bool msg_type_is_request(uint8_t type);
/* Even values 2..18. */
bool msg_type_is_response(uint8_t type);
/* The response type for a request type; MSG_TYPE_INVALID if type is not a request. */
uint8_t msg_type_response(uint8_t req_type);

struct msg_hdr {
	uint8_t authtag[32];
	uint64_t seqno;
	uint8_t algo;
	uint8_t hdr_version;
	uint16_t hdr_sz;
	uint8_t type;
	uint8_t version;
	uint16_t sz;
	uint8_t vmpck;
};

/* Reads the 96-byte plaintext header; only checks len >= MSG_HDR_SIZE (-EMSGSIZE). Reserved
 * bytes are not returned (those at 0x38.. are covered by the AAD anyway).
 * Field validity is a separate question: see msg_hdr_check. */
int msg_hdr_parse(const uint8_t *buf, size_t len, struct msg_hdr *ret);
/* Writes the header (reserved bytes zero) into out[0..0x5F]. */
void msg_hdr_build(const struct msg_hdr *h, uint8_t out[MSG_HDR_SIZE]);
/* 0 if algo, hdr_version, hdr_sz, type (1..18), sz (<= MSG_PAYLOAD_MAX) and vmpck (<= 3) are
 * valid and seqno is non-zero; otherwise -EBADMSG. */
int msg_hdr_check(const struct msg_hdr *h);
/* 0 if rsp answers req as the Linux guest demands (facts §2.3): seqno = req seqno + 1,
 * type = req type + 1 and the same message version; otherwise -EBADMSG. */
int msg_hdr_check_response(const struct msg_hdr *req, const struct msg_hdr *rsp);

/* Seal: builds the header from h (authtag ignored; h->sz set to len), encrypts len bytes of
 * plaintext with AES-256-GCM (IV = seqno LE || 0000, AAD = header 0x30..0x5F) and writes
 * header + ciphertext into page (page_size >= MSG_HDR_SIZE + len, else -ENOSPC).
 * -EMSGSIZE if len > MSG_PAYLOAD_MAX, -EBADMSG if the header would not pass msg_hdr_check,
 * -EIO if the cipher fails. pt may be page + MSG_HDR_SIZE (in place). */
int msg_seal(const uint8_t key[MSG_KEY_LEN], const struct msg_hdr *h, const uint8_t *pt, size_t len,
	     uint8_t *page, size_t page_size);
/* Open: parses and checks the header (-EMSGSIZE if len cannot hold header + sz, -EBADMSG if
 * a field is invalid), decrypts sz bytes into pt (pt_size >= sz, else -ENOSPC) and verifies
 * the tag (-EBADMSG on any mismatch; pt is wiped then). Writes *ret_hdr and *ret_len only on
 * success. */
int msg_open(const uint8_t key[MSG_KEY_LEN], const uint8_t *page, size_t len,
	     struct msg_hdr *ret_hdr, uint8_t *pt, size_t pt_size, size_t *ret_len);

/* Sequence numbers (§2.3): the guest keeps a 32-bit counter per VMPCK; request = counter+1,
 * response = counter+2, next counter = counter+2. */
static inline uint64_t msg_seqno_request(uint32_t counter)
{
	return (uint64_t)counter + 1;
}
static inline uint64_t msg_seqno_response(uint64_t req_seqno)
{
	return req_seqno + 1;
}
/* The guest's counter after one request/response exchange (it adds 2 even on failure). */
static inline uint64_t msg_seqno_next_counter(uint32_t counter)
{
	return (uint64_t)counter + 2;
}
/* The guest refuses to send when counter + 1 would reach UINT32_MAX. */
static inline bool msg_seqno_exhausted(uint32_t counter)
{
	return (uint64_t)counter + 1 >= UINT32_MAX;
}

/* --- payloads (§3) ---
 * Request parsers demand the exact size (-EMSGSIZE) and zero reserved bits (-EBADMSG; the
 * firmware answers such requests with INVALID_PARAM). Response parsers demand at least the
 * documented size and ignore reserved bytes. */
#define MSG_REPORT_REQ_SIZE 96
#define MSG_REPORT_RSP_HDR_SIZE 0x20
#define MSG_KEY_REQ_SIZE_V1 32
#define MSG_KEY_REQ_SIZE_V2 40
#define MSG_KEY_RSP_SIZE 64
#define MSG_TSC_INFO_REQ_SIZE 128
#define MSG_TSC_INFO_RSP_SIZE 128

struct msg_report_req {
	uint8_t report_data[64];
	uint32_t vmpl;
	uint32_t key_sel; /* bits 1:0 of the word at 0x44 (UNCONFIRMED field, facts §3.1) */
};
/* -EMSGSIZE unless len == 96; -EBADMSG if vmpl > 3, key_sel == 3 or reserved bits are set. */
int msg_report_req_parse(const uint8_t *buf, size_t len, struct msg_report_req *ret);
void msg_report_req_build(const struct msg_report_req *r, uint8_t out[MSG_REPORT_REQ_SIZE]);

struct msg_report_rsp {
	uint32_t status;
	uint32_t report_size;
	const uint8_t *report; /* borrowed: points into the parsed buffer */
};
/* Checks report_size fits in len (-EMSGSIZE); on status != 0 report is NULL. A successful
 * response with report_size 0 is -EBADMSG. */
int msg_report_rsp_parse(const uint8_t *buf, size_t len, struct msg_report_rsp *ret);
/* Writes status, size, and (if report) the report; returns bytes written or -ENOSPC. */
int msg_report_rsp_build(uint32_t status, const uint8_t *report, size_t report_len, uint8_t *out,
			 size_t size);

#define MSG_KEY_ROOT_VMRK 0x1u
#define MSG_KEY_FIELDS_V1 0x3Fu /* policy .. tcb_version */
#define MSG_KEY_FIELDS_V2 0x7Fu /* + launch_mit_vector */

struct msg_key_req {
	uint32_t root_key_select;
	uint64_t guest_field_select;
	uint32_t vmpl;
	uint32_t guest_svn;
	uint64_t tcb_version;
	uint64_t launch_mit_vector; /* message version 2 only */
};
/* version 1: 32 bytes, version 2: 40 bytes; -EPROTONOSUPPORT for other versions, -EMSGSIZE
 * for another length, -EBADMSG for reserved bits (root_key_select above bit 0, field select
 * bits unknown to the version, the reserved word) or vmpl > 3. */
int msg_key_req_parse(const uint8_t *buf, size_t len, uint8_t version, struct msg_key_req *ret);
/* Returns bytes written (32/40), -EPROTONOSUPPORT, -ENOSPC, or -EINVAL if version 1 is asked
 * to carry a launch_mit_vector. */
int msg_key_req_build(const struct msg_key_req *r, uint8_t version, uint8_t *out, size_t size);

struct msg_key_rsp {
	uint32_t status;
	uint8_t key[32];
};
int msg_key_rsp_parse(const uint8_t *buf, size_t len, struct msg_key_rsp *ret);
void msg_key_rsp_build(const struct msg_key_rsp *r, uint8_t out[MSG_KEY_RSP_SIZE]);

/* TSC_INFO_REQ is 128 reserved bytes: -EMSGSIZE unless len == 128, -EBADMSG if non-zero. */
int msg_tsc_info_req_parse(const uint8_t *buf, size_t len);
void msg_tsc_info_req_build(uint8_t out[MSG_TSC_INFO_REQ_SIZE]);

struct msg_tsc_info_rsp {
	uint32_t status;
	uint64_t tsc_scale;
	uint64_t tsc_offset;
	uint32_t tsc_factor;
};
int msg_tsc_info_rsp_parse(const uint8_t *buf, size_t len, struct msg_tsc_info_rsp *ret);
void msg_tsc_info_rsp_build(const struct msg_tsc_info_rsp *r, uint8_t out[MSG_TSC_INFO_RSP_SIZE]);
