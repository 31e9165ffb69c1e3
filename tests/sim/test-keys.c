/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of sim/keys: determinism, separation per input, valid P-384 keys, hashsticks. */
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "keys.h"
#include "testutil.h"
#include "util.h"

static const uint8_t secret_a[SIM_SECRET_LEN] = {1, 2, 3, 4};
static const uint8_t secret_b[SIM_SECRET_LEN] = {1, 2, 3, 5};

static size_t pub_of(EVP_PKEY *k, uint8_t out[97])
{
	size_t len = 0;

	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, out, 97, &len),
			 1);
	ck_assert_uint_eq(len, 97);
	return len;
}

START_TEST(test_vcek_deterministic_and_separated)
{
	static const struct {
		const uint8_t *secret;
		enum snp_product p;
		uint64_t tcb;
	} in[] = {
		{secret_a, SNP_PRODUCT_MILAN, 0x7308000000000003ull},
		{secret_a, SNP_PRODUCT_MILAN, 0x7308000000000002ull}, /* other TCB */
		{secret_a, SNP_PRODUCT_GENOA, 0x7308000000000003ull}, /* other product */
		{secret_b, SNP_PRODUCT_MILAN, 0x7308000000000003ull}, /* other chip */
		{secret_a, SNP_PRODUCT_TURIN, 0x5100000004010101ull},
	};
	uint8_t pubs[ELEMENTSOF(in)][97];

	for (size_t i = 0; i < ELEMENTSOF(in); i++) {
		EVP_PKEY *k1 = NULL, *k2 = NULL;
		uint8_t again[97];

		ck_assert_int_eq(sim_keys_vcek(in[i].secret, in[i].p, in[i].tcb, &k1), 0);
		ck_assert_int_eq(sim_keys_vcek(in[i].secret, in[i].p, in[i].tcb, &k2), 0);
		ck_assert_int_eq(EVP_PKEY_get_bits(k1), 384);
		pub_of(k1, pubs[i]);
		pub_of(k2, again);
		ck_assert_mem_eq(pubs[i], again, 97);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(memcmp(pubs[i], pubs[j], 97) != 0, "%zu == %zu", i, j);
		EVP_PKEY_free(k1);
		EVP_PKEY_free(k2);
	}
}
END_TEST

/* The derived private key signs and its public half (sim_keys_public) verifies. */
START_TEST(test_vcek_signs)
{
	static const uint8_t msg[] = "attestation";
	EVP_PKEY *priv = NULL, *pub = NULL, *other = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[256];
	size_t siglen = sizeof(sig);

	ck_assert_int_eq(sim_keys_vcek(secret_a, SNP_PRODUCT_GENOA, 42, &priv), 0);
	ck_assert_int_eq(sim_keys_public(priv, &pub), 0);
	ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, priv), 1);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)), 1);
	EVP_MD_CTX_reset(ctx);
	ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, pub), 1);
	ck_assert_int_eq(EVP_DigestVerify(ctx, sig, siglen, msg, sizeof(msg)), 1);
	/* the key for another TCB does not verify it */
	ck_assert_int_eq(sim_keys_vcek(secret_a, SNP_PRODUCT_GENOA, 43, &other), 0);
	EVP_MD_CTX_reset(ctx);
	ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, other), 1);
	ck_assert_int_ne(EVP_DigestVerify(ctx, sig, siglen, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(other);
}
END_TEST

START_TEST(test_bad_product)
{
	EVP_PKEY *k = NULL;
	uint8_t seed[SIM_VLEK_SEED_LEN] = {0};

	ck_assert_int_eq(sim_keys_vcek(secret_a, SNP_PRODUCT_UNKNOWN, 0, &k), -EINVAL);
	ck_assert_int_eq(sim_keys_vcek(secret_a, _SNP_PRODUCT_MAX, 0, &k), -EINVAL);
	ck_assert_int_eq(sim_keys_vlek(seed, SNP_PRODUCT_UNKNOWN, 0, &k), -EINVAL);
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(test_vmpck)
{
	static const struct {
		const uint8_t *secret;
		uint64_t vm;
		unsigned idx;
	} in[] = {
		{secret_a, 1, 0}, {secret_a, 1, 1}, {secret_a, 1, 3},
		{secret_a, 2, 0}, {secret_b, 1, 0}, {secret_a, UINT64_MAX, 0},
	};
	uint8_t keys[ELEMENTSOF(in)][SIM_VMPCK_LEN], again[SIM_VMPCK_LEN];

	for (size_t i = 0; i < ELEMENTSOF(in); i++) {
		ck_assert_int_eq(sim_keys_vmpck(in[i].secret, in[i].vm, in[i].idx, keys[i]), 0);
		ck_assert_int_eq(sim_keys_vmpck(in[i].secret, in[i].vm, in[i].idx, again), 0);
		ck_assert_mem_eq(keys[i], again, SIM_VMPCK_LEN);
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(memcmp(keys[i], keys[j], SIM_VMPCK_LEN) != 0, "%zu == %zu", i,
				      j);
	}
	ck_assert_int_eq(sim_keys_vmpck(secret_a, 1, 4, again), -EINVAL);
}
END_TEST

START_TEST(test_derived)
{
	static const uint8_t c1[] = {1}, c2[] = {2}, c12[] = {1, 2};
	uint8_t k1[32], k2[32], k3[32], k1b[32], k1o[32];

	ck_assert_int_eq(sim_keys_derived(secret_a, c1, sizeof(c1), k1), 0);
	ck_assert_int_eq(sim_keys_derived(secret_a, c1, sizeof(c1), k1b), 0);
	ck_assert_int_eq(sim_keys_derived(secret_a, c2, sizeof(c2), k2), 0);
	ck_assert_int_eq(sim_keys_derived(secret_a, c12, sizeof(c12), k3), 0);
	ck_assert_int_eq(sim_keys_derived(secret_b, c1, sizeof(c1), k1o), 0);
	ck_assert_mem_eq(k1, k1b, 32);
	ck_assert(memcmp(k1, k2, 32) != 0);
	ck_assert(memcmp(k1, k3, 32) != 0);
	ck_assert(memcmp(k1, k1o, 32) != 0);
	ck_assert_int_eq(sim_keys_derived(secret_a, NULL, 1, k1), -EINVAL);
}
END_TEST

START_TEST(test_hashstick)
{
	static const uint8_t chip[SIM_CHIP_ID_LEN] = {9, 9, 9}, other_chip[SIM_CHIP_ID_LEN] = {8};
	uint8_t seed[SIM_VLEK_SEED_LEN], out_seed[SIM_VLEK_SEED_LEN], hs[SIM_HASHSTICK_SIZE];
	uint64_t tcb = 0;

	memset(seed, 0x5a, sizeof(seed));
	ck_assert_int_eq(sim_keys_hashstick_wrap(secret_a, SNP_PRODUCT_MILAN, chip, 77, seed, hs),
			 0);
	ck_assert_int_eq(
		sim_keys_hashstick_unwrap(secret_a, SNP_PRODUCT_MILAN, chip, hs, &tcb, out_seed),
		0);
	ck_assert_uint_eq(tcb, 77);
	ck_assert_mem_eq(seed, out_seed, sizeof(seed));

	static const struct {
		const uint8_t *secret;
		enum snp_product p;
		const uint8_t *chip;
		size_t flip; /* byte to flip, or SIZE_MAX */
		int ret;
	} cases[] = {
		{secret_b, SNP_PRODUCT_MILAN, chip, SIZE_MAX, -EKEYREJECTED}, /* other chip's key */
		{secret_a, SNP_PRODUCT_GENOA, chip, SIZE_MAX, -EBADMSG},      /* other product */
		{secret_a, SNP_PRODUCT_MILAN, other_chip, SIZE_MAX, -EBADMSG},
		{secret_a, SNP_PRODUCT_MILAN, chip, 0, -EBADMSG},	  /* magic */
		{secret_a, SNP_PRODUCT_MILAN, chip, 0x10, -EKEYREJECTED}, /* TCB */
		{secret_a, SNP_PRODUCT_MILAN, chip, 0x60, -EKEYREJECTED}, /* seed */
		{secret_a, SNP_PRODUCT_MILAN, chip, 0x100, -EBADMSG},	  /* reserved */
		{secret_a, SNP_PRODUCT_MILAN, chip, 431, -EKEYREJECTED},  /* MAC */
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t h2[SIM_HASHSTICK_SIZE];
		uint64_t t = 1234;

		memcpy(h2, hs, sizeof(h2));
		if (cases[i].flip != SIZE_MAX)
			h2[cases[i].flip] ^= 0x80;
		ck_assert_msg(sim_keys_hashstick_unwrap(cases[i].secret, cases[i].p, cases[i].chip,
							h2, &t, out_seed) == cases[i].ret,
			      "case %zu", i);
		ck_assert_uint_eq(t, 1234); /* untouched on failure */
	}
}
END_TEST

START_TEST(test_vlek_differs_from_vcek)
{
	uint8_t seed[SIM_VLEK_SEED_LEN] = {7}, p1[97], p2[97], p3[97];
	EVP_PKEY *vlek = NULL, *vlek2 = NULL, *vcek = NULL;

	ck_assert_int_eq(sim_keys_vlek(seed, SNP_PRODUCT_MILAN, 5, &vlek), 0);
	ck_assert_int_eq(sim_keys_vlek(seed, SNP_PRODUCT_MILAN, 6, &vlek2), 0);
	ck_assert_int_eq(sim_keys_vcek(seed, SNP_PRODUCT_MILAN, 5, &vcek), 0);
	pub_of(vlek, p1);
	pub_of(vlek2, p2);
	pub_of(vcek, p3);
	ck_assert(memcmp(p1, p2, 97) != 0);
	ck_assert(memcmp(p1, p3, 97) != 0);
	EVP_PKEY_free(vlek);
	EVP_PKEY_free(vlek2);
	EVP_PKEY_free(vcek);
}
END_TEST

static Suite *keys_suite(void)
{
	Suite *s = suite_create("sim-keys");
	TCase *tc = tcase_create("keys");

	tcase_add_test(tc, test_vcek_deterministic_and_separated);
	tcase_add_test(tc, test_vcek_signs);
	tcase_add_test(tc, test_bad_product);
	tcase_add_test(tc, test_vmpck);
	tcase_add_test(tc, test_derived);
	tcase_add_test(tc, test_hashstick);
	tcase_add_test(tc, test_vlek_differs_from_vcek);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(keys_suite());
}
