/* SPDX-License-Identifier: Apache-2.0 */
/* report: ATTESTATION_REPORT v2/v3/v5 parse, serialise, sign and verify (facts §4). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tcb.h"

#define REPORT_SIZE 0x4A0
#define REPORT_SIGNED_LEN 0x2A0
#define REPORT_SIG_COMPONENT_LEN 72

#define REPORT_SIG_ALGO_ECDSA_P384_SHA384 1

enum report_signing_key {
	REPORT_SIGNING_KEY_VCEK = 0,
	REPORT_SIGNING_KEY_VLEK = 1,
	REPORT_SIGNING_KEY_NONE = 7,
};

struct report {
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t signature_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t signer_info; /* raw word @0x48; decoded below */
	bool author_key_en;
	bool mask_chip_key;
	uint8_t signing_key; /* enum report_signing_key */
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	uint8_t cpuid_fam_id; /* v3+ */
	uint8_t cpuid_mod_id; /* v3+ */
	uint8_t cpuid_step;   /* v3+ */
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_tcb;
	uint64_t launch_mit_vector;  /* v5+ */
	uint64_t current_mit_vector; /* v5+ */
	uint8_t sig_r[REPORT_SIG_COMPONENT_LEN]; /* little-endian, as stored */
	uint8_t sig_s[REPORT_SIG_COMPONENT_LEN];
};

/* Strict parse of exactly REPORT_SIZE bytes (-EMSGSIZE otherwise). Versions 2, 3, 4 (read
 * like 3) and 5 are accepted (-EPROTONOSUPPORT otherwise); MBZ fields that are non-zero,
 * an unknown signature algorithm or reserved signing-key values give -EBADMSG. */
int report_parse(const uint8_t *buf, size_t len, struct report *ret);
/* Inverse of report_parse: fields not defined for r->version are written as zero. */
int report_serialise(const struct report *r, uint8_t out[REPORT_SIZE]);

/* Product from CPUID (v3+); for v2, Turin if chip id bytes 8..63 are zero and not all zero,
 * else -ENOENT (caller must say). */
int report_product(const struct report *r, enum snp_product *ret);

/* ECDSA P-384/SHA-384 over bytes 0..0x29F of buf with the public key; 0 if valid,
 * -EKEYREJECTED if not, -EMSGSIZE if len != REPORT_SIZE, -EINVAL for a non-P-384 key. */
int report_verify_signature(const uint8_t *buf, size_t len, EVP_PKEY *pub);
/* Signs bytes 0..0x29F of buf in place with a P-384 private key (writes R, S, zero pad). */
int report_sign(uint8_t buf[REPORT_SIZE], EVP_PKEY *priv);
