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
	uint64_t launch_mit_vector;		 /* v5+ */
	uint64_t current_mit_vector;		 /* v5+ */
	uint8_t sig_r[REPORT_SIG_COMPONENT_LEN]; /* little-endian, as stored */
	uint8_t sig_s[REPORT_SIG_COMPONENT_LEN];
};

#define REPORT_VERSION_MIN 2
#define REPORT_VERSION_MAX 5

/* Bits of POLICY and PLATFORM_INFO a report may carry (facts §4). POLICY bit 17 must be 1.
 * PLATFORM_INFO bit 6 is "reserved" in the libraries but set by real Turin firmware, so all
 * of bits 7:0 are accepted; bits 63:8 must be zero. */
#define REPORT_POLICY_VALID_MASK 0x0000000003ffffffull
#define REPORT_POLICY_RESERVED_ONE (1ull << 17)
#define REPORT_PLATFORM_INFO_VALID_MASK 0x00000000000000ffull

/* Strict parse of exactly REPORT_SIZE bytes (-EMSGSIZE otherwise). Versions 2, 3, 4 (read
 * like 3) and 5 are accepted (-EPROTONOSUPPORT otherwise). -EBADMSG for: a non-zero MBZ or
 * reserved field of that version (incl. the signature pad 0x330..0x49F and bytes 48..71 of
 * R and S), POLICY bits outside REPORT_POLICY_VALID_MASK or bit 17 clear, PLATFORM_INFO bits
 * 63:8, signer-info bits 31:5 or SIGNING_KEY 2..6, VMPL > 3, SIGNATURE_ALGO != 1.
 * Fields not defined for the version (CPUID on v2, mit vectors before v5) are zero in *ret. */
int report_parse(const uint8_t *buf, size_t len, struct report *ret);
/* Inverse of report_parse: parse(serialise(r)) == r and serialise(parse(b)) == b byte for
 * byte. Fields not defined for r->version are written as zero. SIGNER_INFO is built from
 * author_key_en, mask_chip_key and signing_key; r->signer_info may be 0 or must equal it.
 * -EPROTONOSUPPORT for a version parse refuses, -EINVAL for a struct parse would refuse. */
int report_serialise(const struct report *r, uint8_t out[REPORT_SIZE]);

/* Product from CPUID (v3+; -ENOENT for a family/model that is not Milan, Genoa or Turin).
 * v2 carries no CPUID: the only clue is the chip id, since Turin uses 8 bytes of it. So v2
 * gives Turin if chip id bytes 8..63 are zero and bytes 0..7 are not, else -ENOENT: a v2
 * report cannot tell Milan from Genoa, nor anything when the chip id is masked. Callers must
 * then get the product elsewhere (platform CPUID, configuration, the certificate). */
int report_product(const struct report *r, enum snp_product *ret);

/* ECDSA P-384/SHA-384 over bytes 0..0x29F of buf with the public key; 0 if valid,
 * -EKEYREJECTED if not (also R/S out of range or with non-zero padding), -EMSGSIZE if
 * len != REPORT_SIZE, -EBADMSG if SIGNATURE_ALGO != 1, -EINVAL for a non-P-384 key,
 * -ENOMEM. */
int report_verify_signature(const uint8_t *buf, size_t len, EVP_PKEY *pub);
/* Signs bytes 0..0x29F of buf in place with a P-384 private key: R and S little-endian, zero
 * padded to 72 bytes, and 0x330..0x49F zeroed. -EBADMSG if SIGNATURE_ALGO in buf is not 1,
 * -EINVAL for a non-P-384 key, -ENOMEM/-EIO if OpenSSL fails. */
int report_sign(uint8_t buf[REPORT_SIZE], EVP_PKEY *priv);
