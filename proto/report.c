/* SPDX-License-Identifier: Apache-2.0 */
/* report: ATTESTATION_REPORT codec and its ECDSA P-384 signature (facts §4). Pure: no I/O,
 * no logging; every byte of a report is treated as hostile. */
#include "report.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "util.h"

/* Offsets from facts §4. */
#define OFF_VERSION 0x000
#define OFF_GUEST_SVN 0x004
#define OFF_POLICY 0x008
#define OFF_FAMILY_ID 0x010
#define OFF_IMAGE_ID 0x020
#define OFF_VMPL 0x030
#define OFF_SIG_ALGO 0x034
#define OFF_CURRENT_TCB 0x038
#define OFF_PLATFORM_INFO 0x040
#define OFF_SIGNER_INFO 0x048
#define OFF_RSVD1 0x04C
#define OFF_REPORT_DATA 0x050
#define OFF_MEASUREMENT 0x090
#define OFF_HOST_DATA 0x0C0
#define OFF_ID_KEY_DIGEST 0x0E0
#define OFF_AUTHOR_KEY_DIGEST 0x110
#define OFF_REPORT_ID 0x140
#define OFF_REPORT_ID_MA 0x160
#define OFF_REPORTED_TCB 0x180
#define OFF_CPUID_FAM 0x188
#define OFF_CPUID_MOD 0x189
#define OFF_CPUID_STEP 0x18A
#define OFF_RSVD_CPUID 0x18B /* to 0x19F */
#define OFF_CHIP_ID 0x1A0
#define OFF_COMMITTED_TCB 0x1E0
#define OFF_CURRENT_BUILD 0x1E8
#define OFF_CURRENT_MINOR 0x1E9
#define OFF_CURRENT_MAJOR 0x1EA
#define OFF_RSVD2 0x1EB
#define OFF_COMMITTED_BUILD 0x1EC
#define OFF_COMMITTED_MINOR 0x1ED
#define OFF_COMMITTED_MAJOR 0x1EE
#define OFF_RSVD3 0x1EF
#define OFF_LAUNCH_TCB 0x1F0
#define OFF_LAUNCH_MIT 0x1F8  /* v5+ */
#define OFF_CURRENT_MIT 0x200 /* v5+ */
#define OFF_RSVD_TAIL_V5 0x208
#define OFF_SIG_R 0x2A0
#define OFF_SIG_S 0x2E8
#define OFF_SIG_PAD 0x330

/* P-384 scalars are 48 bytes; the report stores each in a 72-byte little-endian field. */
#define P384_SCALAR_LEN 48

#define SIGNER_AUTHOR_KEY_EN 0x1u
#define SIGNER_MASK_CHIP_KEY 0x2u
#define SIGNER_KEY_SHIFT 2
#define SIGNER_KEY_MASK 0x7u
#define SIGNER_VALID_MASK 0x1fu

static bool signing_key_valid(unsigned k)
{
	return k == REPORT_SIGNING_KEY_VCEK || k == REPORT_SIGNING_KEY_VLEK ||
	       k == REPORT_SIGNING_KEY_NONE;
}

static bool version_supported(uint32_t v)
{
	return v >= REPORT_VERSION_MIN && v <= REPORT_VERSION_MAX;
}

static bool has_cpuid(uint32_t v)
{
	return v >= 3;
}

static bool has_mit_vectors(uint32_t v)
{
	return v >= 5;
}

static bool policy_valid(uint64_t policy)
{
	return !(policy & ~REPORT_POLICY_VALID_MASK) && (policy & REPORT_POLICY_RESERVED_ONE);
}

static bool sig_component_padding_zero(const uint8_t *c)
{
	return mem_is_zero(c + P384_SCALAR_LEN, REPORT_SIG_COMPONENT_LEN - P384_SCALAR_LEN);
}

int report_parse(const uint8_t *buf, size_t len, struct report *ret)
{
	struct report r = {0};
	uint32_t signer;

	if (!buf || len != REPORT_SIZE)
		return -EMSGSIZE;

	r.version = get_le32(buf + OFF_VERSION);
	if (!version_supported(r.version))
		return -EPROTONOSUPPORT;

	r.guest_svn = get_le32(buf + OFF_GUEST_SVN);
	r.policy = get_le64(buf + OFF_POLICY);
	if (!policy_valid(r.policy))
		return -EBADMSG;
	memcpy(r.family_id, buf + OFF_FAMILY_ID, sizeof(r.family_id));
	memcpy(r.image_id, buf + OFF_IMAGE_ID, sizeof(r.image_id));
	r.vmpl = get_le32(buf + OFF_VMPL);
	if (r.vmpl > 3)
		return -EBADMSG;
	r.signature_algo = get_le32(buf + OFF_SIG_ALGO);
	if (r.signature_algo != REPORT_SIG_ALGO_ECDSA_P384_SHA384)
		return -EBADMSG;
	r.current_tcb = get_le64(buf + OFF_CURRENT_TCB);
	r.platform_info = get_le64(buf + OFF_PLATFORM_INFO);
	if (r.platform_info & ~REPORT_PLATFORM_INFO_VALID_MASK)
		return -EBADMSG;

	signer = get_le32(buf + OFF_SIGNER_INFO);
	if (signer & ~SIGNER_VALID_MASK)
		return -EBADMSG;
	r.signer_info = signer;
	r.author_key_en = signer & SIGNER_AUTHOR_KEY_EN;
	r.mask_chip_key = signer & SIGNER_MASK_CHIP_KEY;
	r.signing_key = (uint8_t)((signer >> SIGNER_KEY_SHIFT) & SIGNER_KEY_MASK);
	if (!signing_key_valid(r.signing_key))
		return -EBADMSG;
	if (!mem_is_zero(buf + OFF_RSVD1, 4))
		return -EBADMSG;

	memcpy(r.report_data, buf + OFF_REPORT_DATA, sizeof(r.report_data));
	memcpy(r.measurement, buf + OFF_MEASUREMENT, sizeof(r.measurement));
	memcpy(r.host_data, buf + OFF_HOST_DATA, sizeof(r.host_data));
	memcpy(r.id_key_digest, buf + OFF_ID_KEY_DIGEST, sizeof(r.id_key_digest));
	memcpy(r.author_key_digest, buf + OFF_AUTHOR_KEY_DIGEST, sizeof(r.author_key_digest));
	memcpy(r.report_id, buf + OFF_REPORT_ID, sizeof(r.report_id));
	memcpy(r.report_id_ma, buf + OFF_REPORT_ID_MA, sizeof(r.report_id_ma));
	r.reported_tcb = get_le64(buf + OFF_REPORTED_TCB);

	if (has_cpuid(r.version)) {
		r.cpuid_fam_id = buf[OFF_CPUID_FAM];
		r.cpuid_mod_id = buf[OFF_CPUID_MOD];
		r.cpuid_step = buf[OFF_CPUID_STEP];
		if (!mem_is_zero(buf + OFF_RSVD_CPUID, OFF_CHIP_ID - OFF_RSVD_CPUID))
			return -EBADMSG;
	} else if (!mem_is_zero(buf + OFF_CPUID_FAM, OFF_CHIP_ID - OFF_CPUID_FAM)) {
		return -EBADMSG;
	}

	memcpy(r.chip_id, buf + OFF_CHIP_ID, sizeof(r.chip_id));
	r.committed_tcb = get_le64(buf + OFF_COMMITTED_TCB);
	r.current_build = buf[OFF_CURRENT_BUILD];
	r.current_minor = buf[OFF_CURRENT_MINOR];
	r.current_major = buf[OFF_CURRENT_MAJOR];
	r.committed_build = buf[OFF_COMMITTED_BUILD];
	r.committed_minor = buf[OFF_COMMITTED_MINOR];
	r.committed_major = buf[OFF_COMMITTED_MAJOR];
	if (buf[OFF_RSVD2] || buf[OFF_RSVD3])
		return -EBADMSG;
	r.launch_tcb = get_le64(buf + OFF_LAUNCH_TCB);

	if (has_mit_vectors(r.version)) {
		r.launch_mit_vector = get_le64(buf + OFF_LAUNCH_MIT);
		r.current_mit_vector = get_le64(buf + OFF_CURRENT_MIT);
		if (!mem_is_zero(buf + OFF_RSVD_TAIL_V5, OFF_SIG_R - OFF_RSVD_TAIL_V5))
			return -EBADMSG;
	} else if (!mem_is_zero(buf + OFF_LAUNCH_MIT, OFF_SIG_R - OFF_LAUNCH_MIT)) {
		return -EBADMSG;
	}

	memcpy(r.sig_r, buf + OFF_SIG_R, REPORT_SIG_COMPONENT_LEN);
	memcpy(r.sig_s, buf + OFF_SIG_S, REPORT_SIG_COMPONENT_LEN);
	if (!sig_component_padding_zero(r.sig_r) || !sig_component_padding_zero(r.sig_s) ||
	    !mem_is_zero(buf + OFF_SIG_PAD, REPORT_SIZE - OFF_SIG_PAD))
		return -EBADMSG;

	*ret = r;
	return 0;
}

int report_serialise(const struct report *r, uint8_t out[REPORT_SIZE])
{
	uint8_t b[REPORT_SIZE] = {0};
	uint32_t signer;

	if (!r || !out)
		return -EINVAL;
	if (!version_supported(r->version))
		return -EPROTONOSUPPORT;
	if (!policy_valid(r->policy) || r->vmpl > 3 ||
	    r->signature_algo != REPORT_SIG_ALGO_ECDSA_P384_SHA384 ||
	    (r->platform_info & ~REPORT_PLATFORM_INFO_VALID_MASK) ||
	    !signing_key_valid(r->signing_key) || !sig_component_padding_zero(r->sig_r) ||
	    !sig_component_padding_zero(r->sig_s))
		return -EINVAL;
	signer = (r->author_key_en ? SIGNER_AUTHOR_KEY_EN : 0) |
		 (r->mask_chip_key ? SIGNER_MASK_CHIP_KEY : 0) |
		 ((uint32_t)r->signing_key << SIGNER_KEY_SHIFT);
	if (r->signer_info != 0 && r->signer_info != signer)
		return -EINVAL;

	put_le32(b + OFF_VERSION, r->version);
	put_le32(b + OFF_GUEST_SVN, r->guest_svn);
	put_le64(b + OFF_POLICY, r->policy);
	memcpy(b + OFF_FAMILY_ID, r->family_id, sizeof(r->family_id));
	memcpy(b + OFF_IMAGE_ID, r->image_id, sizeof(r->image_id));
	put_le32(b + OFF_VMPL, r->vmpl);
	put_le32(b + OFF_SIG_ALGO, r->signature_algo);
	put_le64(b + OFF_CURRENT_TCB, r->current_tcb);
	put_le64(b + OFF_PLATFORM_INFO, r->platform_info);
	put_le32(b + OFF_SIGNER_INFO, signer);
	memcpy(b + OFF_REPORT_DATA, r->report_data, sizeof(r->report_data));
	memcpy(b + OFF_MEASUREMENT, r->measurement, sizeof(r->measurement));
	memcpy(b + OFF_HOST_DATA, r->host_data, sizeof(r->host_data));
	memcpy(b + OFF_ID_KEY_DIGEST, r->id_key_digest, sizeof(r->id_key_digest));
	memcpy(b + OFF_AUTHOR_KEY_DIGEST, r->author_key_digest, sizeof(r->author_key_digest));
	memcpy(b + OFF_REPORT_ID, r->report_id, sizeof(r->report_id));
	memcpy(b + OFF_REPORT_ID_MA, r->report_id_ma, sizeof(r->report_id_ma));
	put_le64(b + OFF_REPORTED_TCB, r->reported_tcb);
	if (has_cpuid(r->version)) {
		b[OFF_CPUID_FAM] = r->cpuid_fam_id;
		b[OFF_CPUID_MOD] = r->cpuid_mod_id;
		b[OFF_CPUID_STEP] = r->cpuid_step;
	}
	memcpy(b + OFF_CHIP_ID, r->chip_id, sizeof(r->chip_id));
	put_le64(b + OFF_COMMITTED_TCB, r->committed_tcb);
	b[OFF_CURRENT_BUILD] = r->current_build;
	b[OFF_CURRENT_MINOR] = r->current_minor;
	b[OFF_CURRENT_MAJOR] = r->current_major;
	b[OFF_COMMITTED_BUILD] = r->committed_build;
	b[OFF_COMMITTED_MINOR] = r->committed_minor;
	b[OFF_COMMITTED_MAJOR] = r->committed_major;
	put_le64(b + OFF_LAUNCH_TCB, r->launch_tcb);
	if (has_mit_vectors(r->version)) {
		put_le64(b + OFF_LAUNCH_MIT, r->launch_mit_vector);
		put_le64(b + OFF_CURRENT_MIT, r->current_mit_vector);
	}
	memcpy(b + OFF_SIG_R, r->sig_r, REPORT_SIG_COMPONENT_LEN);
	memcpy(b + OFF_SIG_S, r->sig_s, REPORT_SIG_COMPONENT_LEN);

	memcpy(out, b, REPORT_SIZE);
	return 0;
}

int report_product(const struct report *r, enum snp_product *ret)
{
	if (!r)
		return -EINVAL;
	if (has_cpuid(r->version))
		return snp_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id, ret);

	/* v2: a Turin chip id fills only bytes 0..7; Milan and Genoa use all 64 and cannot be
	 * told apart, and a masked (all-zero) chip id says nothing. */
	if (mem_is_zero(r->chip_id + 8, sizeof(r->chip_id) - 8) && !mem_is_zero(r->chip_id, 8)) {
		*ret = SNP_PRODUCT_TURIN;
		return 0;
	}
	return -ENOENT;
}

static void ecdsa_sig_freep(ECDSA_SIG **p)
{
	ECDSA_SIG_free(*p);
}

static void bn_freep(BIGNUM **p)
{
	BN_free(*p);
}

static void md_ctx_freep(EVP_MD_CTX **p)
{
	EVP_MD_CTX_free(*p);
}

static void openssl_freep(unsigned char **p)
{
	OPENSSL_free(*p);
}

/* Failures must not leave entries in the caller's OpenSSL error queue. */
static int openssl_fail(int r)
{
	ERR_clear_error();
	return r;
}

static bool key_is_p384(EVP_PKEY *k)
{
	char group[64];
	size_t glen = 0;

	if (!k || !EVP_PKEY_is_a(k, "EC"))
		return false;
	if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   &glen) != 1)
		return false;
	return strcmp(group, SN_secp384r1) == 0;
}

/* Little-endian 72-byte field to a BIGNUM. */
static BIGNUM *le_component_to_bn(const uint8_t *c)
{
	return BN_lebin2bn(c, REPORT_SIG_COMPONENT_LEN, NULL);
}

int report_verify_signature(const uint8_t *buf, size_t len, EVP_PKEY *pub)
{
	_cleanup_(ecdsa_sig_freep) ECDSA_SIG *sig = NULL;
	_cleanup_(bn_freep) BIGNUM *r = NULL, *s = NULL;
	_cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = NULL;
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	int der_len, v;

	if (!buf || len != REPORT_SIZE)
		return -EMSGSIZE;
	if (!key_is_p384(pub))
		return openssl_fail(-EINVAL);
	if (get_le32(buf + OFF_SIG_ALGO) != REPORT_SIG_ALGO_ECDSA_P384_SHA384)
		return -EBADMSG;
	/* A value wider than the curve order can never be a valid signature component. */
	if (!sig_component_padding_zero(buf + OFF_SIG_R) ||
	    !sig_component_padding_zero(buf + OFF_SIG_S))
		return -EKEYREJECTED;

	r = le_component_to_bn(buf + OFF_SIG_R);
	s = le_component_to_bn(buf + OFF_SIG_S);
	sig = ECDSA_SIG_new();
	if (!r || !s || !sig)
		return openssl_fail(-ENOMEM);
	if (BN_is_zero(r) || BN_is_zero(s))
		return -EKEYREJECTED;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		return openssl_fail(-ENOMEM);
	r = s = NULL; /* now owned by sig */

	der_len = i2d_ECDSA_SIG(sig, &der);
	if (der_len <= 0)
		return openssl_fail(-ENOMEM);

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return openssl_fail(-ENOMEM);
	if (EVP_DigestVerifyInit_ex(ctx, NULL, "SHA384", NULL, NULL, pub, NULL) != 1)
		return openssl_fail(-EINVAL);
	v = EVP_DigestVerify(ctx, der, (size_t)der_len, buf, REPORT_SIGNED_LEN);
	/* 0 is a wrong signature; < 0 means OpenSSL refused the input, equally not valid. */
	return v == 1 ? 0 : openssl_fail(-EKEYREJECTED);
}

int report_sign(uint8_t buf[REPORT_SIZE], EVP_PKEY *priv)
{
	_cleanup_(ecdsa_sig_freep) ECDSA_SIG *sig = NULL;
	_cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = NULL;
	unsigned char der[160]; /* a P-384 DER ECDSA-Sig is at most 104 bytes */
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	uint8_t sigarea[REPORT_SIZE - OFF_SIG_R] = {0};
	size_t der_len = sizeof(der);

	if (!buf)
		return openssl_fail(-EINVAL);
	if (!key_is_p384(priv))
		return openssl_fail(-EINVAL);
	if (get_le32(buf + OFF_SIG_ALGO) != REPORT_SIG_ALGO_ECDSA_P384_SHA384)
		return -EBADMSG;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return openssl_fail(-ENOMEM);
	if (EVP_DigestSignInit_ex(ctx, NULL, "SHA384", NULL, NULL, priv, NULL) != 1)
		return openssl_fail(-EINVAL);
	if (EVP_DigestSign(ctx, der, &der_len, buf, REPORT_SIGNED_LEN) != 1)
		return openssl_fail(-EIO);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (!sig)
		return openssl_fail(-EIO);
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_num_bytes(r) > P384_SCALAR_LEN || BN_num_bytes(s) > P384_SCALAR_LEN)
		return openssl_fail(-EIO);
	if (BN_bn2lebinpad(r, sigarea, REPORT_SIG_COMPONENT_LEN) < 0 ||
	    BN_bn2lebinpad(s, sigarea + (OFF_SIG_S - OFF_SIG_R), REPORT_SIG_COMPONENT_LEN) < 0)
		return openssl_fail(-EIO);
	memcpy(buf + OFF_SIG_R, sigarea, sizeof(sigarea));
	return 0;
}
