/* SPDX-License-Identifier: Apache-2.0 */
/* keys: the simulated chip's key hierarchy, derived from its secret with HKDF/HMAC. Pure: no
 * I/O, no randomness (the same secret always gives the same keys). */
#include "keys.h"

#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "util.h"

/* Domain-separation labels: each derived key has its own salt, so no two uses collide. */
#define LABEL_VCEK "snp-sim/vcek/v1"
#define LABEL_VLEK "snp-sim/vlek/v1"
#define LABEL_VMPCK "snp-sim/vmpck/v1"
#define LABEL_DERIVED "snp-sim/derived-root/v1"
#define LABEL_WRAP "snp-sim/vlek-wrap/v1"

#define HS_MAGIC "SNPSIMVK"
#define HS_OFF_VERSION 0x008
#define HS_OFF_PRODUCT 0x00C
#define HS_OFF_TCB 0x010
#define HS_OFF_CHIP_ID 0x018
#define HS_OFF_SEED 0x058
#define HS_OFF_MAC 0x190
#define HS_VERSION 1

static int hkdf(const char *digest, const uint8_t *key, size_t key_len, const char *salt,
		const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5], *p = params;
	int r = -EIO;

	if (!kdf)
		return -EIO;
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		goto out;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, strlen(salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
		r = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return r;
}

/* Turns 64 bytes of key material into a P-384 private key with its public point. The
 * material is reduced mod (n-1) and 1 is added, so the scalar is in [1, n-1]; with 512 bits
 * of input for a 384-bit order the bias is negligible. */
static int p384_from_material(const uint8_t material[64], EVP_PKEY **ret)
{
	EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_secp384r1);
	BN_CTX *bnctx = BN_CTX_new();
	BIGNUM *d = NULL, *nm1 = NULL;
	EC_POINT *pub = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t pubbuf[97];
	int r = -ENOMEM;

	if (!group || !bnctx)
		goto out;
	d = BN_bin2bn(material, 64, NULL);
	nm1 = BN_dup(EC_GROUP_get0_order(group));
	if (!d || !nm1)
		goto out;
	r = -EIO;
	if (!BN_sub_word(nm1, 1) || !BN_mod(d, d, nm1, bnctx) || !BN_add_word(d, 1))
		goto out;
	pub = EC_POINT_new(group);
	if (!pub || !EC_POINT_mul(group, pub, d, NULL, NULL, bnctx))
		goto out;
	if (EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, pubbuf, sizeof(pubbuf),
			       bnctx) != sizeof(pubbuf))
		goto out;
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pubbuf, sizeof(pubbuf)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !pctx || EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1)
		goto out;
	*ret = TAKE_PTR(pkey);
	r = 0;
out:
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EC_POINT_free(pub);
	BN_clear_free(d);
	BN_free(nm1);
	BN_CTX_free(bnctx);
	EC_GROUP_free(group);
	return r;
}

static int p384_derive(const uint8_t *key, size_t key_len, const char *label,
		       enum snp_product product, uint64_t tcb, EVP_PKEY **ret)
{
	uint8_t info[12], material[64];
	int r;

	if (product <= SNP_PRODUCT_UNKNOWN || product >= _SNP_PRODUCT_MAX)
		return -EINVAL;
	put_le32(info, (uint32_t)product);
	put_le64(info + 4, tcb);
	r = hkdf("SHA384", key, key_len, label, info, sizeof(info), material, sizeof(material));
	if (r >= 0)
		r = p384_from_material(material, ret);
	OPENSSL_cleanse(material, sizeof(material));
	return r;
}

int sim_keys_vcek(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
		  uint64_t reported_tcb, EVP_PKEY **ret)
{
	return p384_derive(secret, SIM_SECRET_LEN, LABEL_VCEK, product, reported_tcb, ret);
}

int sim_keys_vlek(const uint8_t seed[SIM_VLEK_SEED_LEN], enum snp_product product,
		  uint64_t reported_tcb, EVP_PKEY **ret)
{
	return p384_derive(seed, SIM_VLEK_SEED_LEN, LABEL_VLEK, product, reported_tcb, ret);
}

int sim_keys_vmpck(const uint8_t secret[SIM_SECRET_LEN], uint64_t vm_id, unsigned index,
		   uint8_t out[SIM_VMPCK_LEN])
{
	uint8_t info[9];

	if (index > 3)
		return -EINVAL;
	put_le64(info, vm_id);
	info[8] = (uint8_t)index;
	return hkdf("SHA256", secret, SIM_SECRET_LEN, LABEL_VMPCK, info, sizeof(info), out,
		    SIM_VMPCK_LEN);
}

static int hmac256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
		   uint8_t out[32])
{
	unsigned int out_len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) || out_len != 32)
		return -EIO;
	return 0;
}

int sim_keys_derived(const uint8_t secret[SIM_SECRET_LEN], const uint8_t *context, size_t len,
		     uint8_t out[SIM_DERIVED_KEY_LEN])
{
	uint8_t root[32];
	int r;

	if (!context && len)
		return -EINVAL;
	r = hkdf("SHA256", secret, SIM_SECRET_LEN, LABEL_DERIVED, NULL, 0, root, sizeof(root));
	if (r >= 0)
		r = hmac256(root, sizeof(root), context, len, out);
	OPENSSL_cleanse(root, sizeof(root));
	return r;
}

static int wrap_key(const uint8_t secret[SIM_SECRET_LEN], uint8_t out[32])
{
	return hkdf("SHA256", secret, SIM_SECRET_LEN, LABEL_WRAP, NULL, 0, out, 32);
}

static int hashstick_mac(const uint8_t secret[SIM_SECRET_LEN], const uint8_t *hs, uint8_t mac[32])
{
	uint8_t key[32];
	int r = wrap_key(secret, key);

	if (r >= 0)
		r = hmac256(key, sizeof(key), hs, HS_OFF_MAC, mac);
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

int sim_keys_hashstick_wrap(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
			    const uint8_t chip_id[SIM_CHIP_ID_LEN], uint64_t reported_tcb,
			    const uint8_t seed[SIM_VLEK_SEED_LEN], uint8_t out[SIM_HASHSTICK_SIZE])
{
	uint8_t hs[SIM_HASHSTICK_SIZE] = {0};
	int r;

	if (product <= SNP_PRODUCT_UNKNOWN || product >= _SNP_PRODUCT_MAX)
		return -EINVAL;
	memcpy(hs, HS_MAGIC, 8);
	put_le32(hs + HS_OFF_VERSION, HS_VERSION);
	put_le32(hs + HS_OFF_PRODUCT, (uint32_t)product);
	put_le64(hs + HS_OFF_TCB, reported_tcb);
	memcpy(hs + HS_OFF_CHIP_ID, chip_id, SIM_CHIP_ID_LEN);
	memcpy(hs + HS_OFF_SEED, seed, SIM_VLEK_SEED_LEN);
	r = hashstick_mac(secret, hs, hs + HS_OFF_MAC);
	if (r < 0)
		return r;
	memcpy(out, hs, sizeof(hs));
	OPENSSL_cleanse(hs, sizeof(hs));
	return 0;
}

int sim_keys_hashstick_unwrap(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
			      const uint8_t chip_id[SIM_CHIP_ID_LEN],
			      const uint8_t hashstick[SIM_HASHSTICK_SIZE], uint64_t *ret_tcb,
			      uint8_t seed[SIM_VLEK_SEED_LEN])
{
	uint8_t mac[32];
	int r;

	if (memcmp(hashstick, HS_MAGIC, 8) != 0 ||
	    get_le32(hashstick + HS_OFF_VERSION) != HS_VERSION ||
	    !mem_is_zero(hashstick + HS_OFF_SEED + SIM_VLEK_SEED_LEN,
			 HS_OFF_MAC - HS_OFF_SEED - SIM_VLEK_SEED_LEN))
		return -EBADMSG;
	r = hashstick_mac(secret, hashstick, mac);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(mac, hashstick + HS_OFF_MAC, sizeof(mac)) != 0)
		return -EKEYREJECTED;
	/* Authentic but issued for another chip or product: not ours to load. */
	if (get_le32(hashstick + HS_OFF_PRODUCT) != (uint32_t)product ||
	    memcmp(hashstick + HS_OFF_CHIP_ID, chip_id, SIM_CHIP_ID_LEN) != 0)
		return -EBADMSG;
	*ret_tcb = get_le64(hashstick + HS_OFF_TCB);
	memcpy(seed, hashstick + HS_OFF_SEED, SIM_VLEK_SEED_LEN);
	return 0;
}

int sim_keys_public(EVP_PKEY *priv, EVP_PKEY **ret)
{
	uint8_t pub[97];
	size_t len = 0;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	int r = -EINVAL;

	if (!priv || EVP_PKEY_get_octet_string_param(priv, OSSL_PKEY_PARAM_PUB_KEY, pub,
						     sizeof(pub), &len) != 1)
		return -EINVAL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, len);
	params[2] = OSSL_PARAM_construct_end();
	pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (pctx && EVP_PKEY_fromdata_init(pctx) == 1 &&
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1) {
		*ret = TAKE_PTR(pkey);
		r = 0;
	}
	EVP_PKEY_CTX_free(pctx);
	return r;
}
