/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "report.h"
#include "testutil.h"
#include "util.h"

/* 2026-01-01T00:00:00Z: inside the validity of every real ASK/ARK in testdata. */
#define NOW_2026 ((time_t)1767225600)
/* 2026-06-01 and 2025-06-01: the real leaves' validity periods do not all overlap (the VLEK is
 * valid for one year, Dec 2024 to Dec 2025; the v3 VCEK from Feb 2026). */
#define NOW_2026_06 ((time_t)1780272000)
#define NOW_2025_06 ((time_t)1748736000)
/* 2019-01-01: before any AMD root existed. 2060-01-01: after all expired. */
#define NOW_2019 ((time_t)1546300800)
#define NOW_2060 ((time_t)2840140800)

static X509 *load_cert(const char *rel)
{
	size_t len;
	uint8_t *buf = test_read_data(rel, &len);
	X509 *x = NULL;

	ck_assert_msg(certs_parse(buf, len, &x) == 0, "parse %s", rel);
	free(buf);
	return x;
}

/* KDS cert_chain: ASK (or ASVK) then ARK. */
static void load_chain(const char *rel, X509 **ask, X509 **ark)
{
	size_t len;
	uint8_t *buf = test_read_data(rel, &len);
	STACK_OF(X509) *sk = NULL;

	ck_assert_msg(certs_parse_pem_chain(buf, len, &sk) == 0, "chain %s", rel);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	*ask = sk_X509_shift(sk);
	*ark = sk_X509_shift(sk);
	sk_X509_free(sk);
	free(buf);
}

static X509 *der_roundtrip_modified(X509 *x, long off_from_end, long off_from_start)
{
	uint8_t *der = NULL;
	size_t len;
	X509 *y = NULL;

	ck_assert_int_eq(certs_to_der(x, &der, &len), 0);
	if (off_from_end >= 0)
		der[len - 1 - (size_t)off_from_end] ^= 0x01;
	if (off_from_start >= 0)
		der[off_from_start] ^= 0x01;
	ck_assert_int_eq(certs_parse(der, len, &y), 0);
	free(der);
	return y;
}

static const struct {
	const char *chain;
	enum snp_product product;
} real_chains[] = {
	{"amd/milan/cert_chain.pem", SNP_PRODUCT_MILAN},
	{"amd/milan/vlek_cert_chain.pem", SNP_PRODUCT_MILAN},
	{"amd/genoa/cert_chain.pem", SNP_PRODUCT_GENOA},
	{"amd/genoa/vlek_cert_chain.pem", SNP_PRODUCT_GENOA},
	{"amd/turin/cert_chain.pem", SNP_PRODUCT_TURIN},
	{"amd/turin/vlek_cert_chain.pem", SNP_PRODUCT_TURIN},
};

START_TEST(test_real_chains)
{
	for (size_t i = 0; i < ELEMENTSOF(real_chains); i++) {
		struct certs_verify_opts opts = {.now = NOW_2026};
		enum snp_product p = SNP_PRODUCT_UNKNOWN, pinned;
		X509 *ask, *ark;

		load_chain(real_chains[i].chain, &ask, &ark);
		ck_assert_msg(certs_verify_chain(NULL, ask, ark, NULL, &p) == 0, "%zu", i);
		ck_assert_int_eq(p, real_chains[i].product);
		p = SNP_PRODUCT_UNKNOWN;
		ck_assert_int_eq(certs_verify_chain(NULL, ask, ark, &opts, &p), 0);
		ck_assert_int_eq(p, real_chains[i].product);
		ck_assert_int_eq(certs_ark_pinned(ark, &pinned), 0);
		ck_assert_int_eq(pinned, real_chains[i].product);
		ck_assert_int_eq(certs_ark_pinned(ask, &pinned), -ENOENT);
		/* Outside the validity period (only checked when a time is given). */
		opts.now = NOW_2019;
		ck_assert_int_eq(certs_verify_chain(NULL, ask, ark, &opts, NULL), -EKEYEXPIRED);
		opts.now = NOW_2060;
		ck_assert_int_eq(certs_verify_chain(NULL, ask, ark, &opts, NULL), -EKEYEXPIRED);
		/* Swapped roles: the ASK is no pinned root. */
		ck_assert_int_eq(certs_verify_chain(NULL, ark, ask, NULL, NULL), -EPERM);
		X509_free(ask);
		X509_free(ark);
	}
}
END_TEST

START_TEST(test_ark_fingerprints)
{
	static const struct {
		const char *chain;
		const char *sha256;
	} cases[] = {
		{"amd/milan/cert_chain.pem",
		 "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"},
		{"amd/genoa/cert_chain.pem",
		 "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"},
		{"amd/turin/cert_chain.pem",
		 "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		X509 *ask, *ark;
		uint8_t fp[32];
		char hex[65];

		load_chain(cases[i].chain, &ask, &ark);
		ck_assert_int_eq(certs_fingerprint_sha256(ark, fp), 0);
		hex_encode(fp, sizeof(fp), hex);
		ck_assert_str_eq(hex, cases[i].sha256);
		X509_free(ask);
		X509_free(ark);
	}
}
END_TEST

static const struct {
	const char *leaf;
	const char *chain;
	enum snp_product product;
	time_t valid_at, expired_at; /* 0: none in range of the test */
} real_leaves[] = {
	{"amd/milan/report-v3.vcek.der", "amd/milan/cert_chain.pem", SNP_PRODUCT_MILAN, NOW_2026_06,
	 NOW_2025_06},
	{"amd/milan/report-v2.vcek.der", "amd/milan/cert_chain.pem", SNP_PRODUCT_MILAN, NOW_2026_06,
	 NOW_2060},
	{"amd/milan/report-vlek.vlek.der", "amd/milan/vlek_cert_chain.pem", SNP_PRODUCT_MILAN,
	 NOW_2025_06, NOW_2026_06},
	{"amd/genoa/vcek.pem", "amd/genoa/cert_chain.pem", SNP_PRODUCT_GENOA, NOW_2026_06,
	 NOW_2019},
	{"amd/turin/vcek.der", "amd/turin/cert_chain.pem", SNP_PRODUCT_TURIN, NOW_2026_06,
	 NOW_2060},
};

START_TEST(test_real_leaves)
{
	for (size_t i = 0; i < ELEMENTSOF(real_leaves); i++) {
		struct certs_verify_opts opts = {.now = real_leaves[i].valid_at};
		enum snp_product p = SNP_PRODUCT_UNKNOWN;
		X509 *leaf = load_cert(real_leaves[i].leaf), *ask, *ark;

		load_chain(real_leaves[i].chain, &ask, &ark);
		ck_assert_msg(certs_verify_chain(leaf, ask, ark, &opts, &p) == 0, "%zu", i);
		ck_assert_int_eq(p, real_leaves[i].product);
		p = SNP_PRODUCT_UNKNOWN;
		ck_assert_int_eq(certs_verify_chain(leaf, ask, ark, NULL, &p), 0);
		ck_assert_int_eq(p, real_leaves[i].product);
		/* The leaf's own validity period counts too. */
		opts.now = real_leaves[i].expired_at;
		ck_assert_msg(certs_verify_chain(leaf, ask, ark, &opts, NULL) == -EKEYEXPIRED,
			      "%zu", i);
		X509_free(leaf);
		X509_free(ask);
		X509_free(ark);
	}
}
END_TEST

/* Every leaf against every other product's chain (and VCEK vs VLEK chain): -EXDEV. */
START_TEST(test_cross_product)
{
	for (size_t i = 0; i < ELEMENTSOF(real_leaves); i++)
		for (size_t j = 0; j < ELEMENTSOF(real_chains); j++) {
			X509 *leaf, *ask, *ark;
			int r;

			if (strcmp(real_leaves[i].chain, real_chains[j].chain) == 0)
				continue;
			leaf = load_cert(real_leaves[i].leaf);
			load_chain(real_chains[j].chain, &ask, &ark);
			r = certs_verify_chain(leaf, ask, ark, NULL, NULL);
			ck_assert_msg(r == -EXDEV, "leaf %zu chain %zu: %d", i, j, r);
			X509_free(leaf);
			X509_free(ask);
			X509_free(ark);
		}

	/* An ASK under another product's ARK. */
	X509 *mask, *mark, *gask, *gark;
	load_chain("amd/milan/cert_chain.pem", &mask, &mark);
	load_chain("amd/genoa/cert_chain.pem", &gask, &gark);
	ck_assert_int_eq(certs_verify_chain(NULL, mask, gark, NULL, NULL), -EXDEV);
	ck_assert_int_eq(certs_verify_chain(NULL, gask, mark, NULL, NULL), -EXDEV);
	X509_free(mask);
	X509_free(mark);
	X509_free(gask);
	X509_free(gark);
}
END_TEST

START_TEST(test_corrupted_signatures)
{
	X509 *leaf = load_cert("amd/milan/report-v3.vcek.der"), *ask, *ark, *bad;

	load_chain("amd/milan/cert_chain.pem", &ask, &ark);
	/* Last byte of the leaf's signature. */
	bad = der_roundtrip_modified(leaf, 0, -1);
	ck_assert_int_eq(certs_verify_chain(bad, ask, ark, NULL, NULL), -EKEYREJECTED);
	X509_free(bad);
	/* A byte of the signed part (inside the hwID extension, offset 710). */
	bad = der_roundtrip_modified(leaf, -1, 710);
	ck_assert_int_eq(certs_verify_chain(bad, ask, ark, NULL, NULL), -EKEYREJECTED);
	X509_free(bad);
	/* The ASK's signature. */
	bad = der_roundtrip_modified(ask, 5, -1);
	ck_assert_int_eq(certs_verify_chain(leaf, bad, ark, NULL, NULL), -EKEYREJECTED);
	X509_free(bad);
	/* A modified ARK is no longer the pinned one. */
	bad = der_roundtrip_modified(ark, 5, -1);
	ck_assert_int_eq(certs_verify_chain(leaf, ask, bad, NULL, NULL), -EPERM);
	X509_free(bad);
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
}
END_TEST

/* ---- self-made certificates ---- */

static EVP_PKEY *rsa_a, *rsa_b, *ec_leaf; /* made once in main(), inherited by forked tests */

enum sig_mode {
	SIG_PSS48,
	SIG_PSS32,
	SIG_PKCS1,
	SIG_PSS_SHA256,	    /* PSS with SHA-256 digest and MGF1, salt 48 */
	SIG_PSS_MGF_SHA256, /* SHA-384 digest, MGF1 with SHA-256, salt 48 */
};

struct ext_spec {
	const char *oid;
	const uint8_t *val;
	size_t len;
};

#define EXT(o, ...)                                                                                \
	{                                                                                          \
		"1.3.6.1.4.1.3704.1." o, (const uint8_t[]){__VA_ARGS__},                           \
			sizeof((const uint8_t[]){__VA_ARGS__})                                     \
	}

static const uint8_t hwid64[64] = {0xab, 0xcd, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, [63] = 0x42};

/* Milan VCEK-like extensions: bl 3, tee 0, snp 8, ucode 0x73 -> TCB 0x7308000000000003. */
static const struct ext_spec milan_exts[] = {
	EXT("1", 0x02, 0x01, 0x00),
	EXT("2", 0x16, 0x08, 'M', 'i', 'l', 'a', 'n', '-', 'B', '0'),
	EXT("3.1", 0x02, 0x01, 0x03),
	EXT("3.2", 0x02, 0x01, 0x00),
	EXT("3.4", 0x02, 0x01, 0x00),
	EXT("3.5", 0x02, 0x01, 0x00),
	EXT("3.6", 0x02, 0x01, 0x00),
	EXT("3.7", 0x02, 0x01, 0x00),
	EXT("3.3", 0x02, 0x01, 0x08),
	EXT("3.8", 0x02, 0x01, 0x73),
	{"1.3.6.1.4.1.3704.1.4", hwid64, sizeof(hwid64)},
	{NULL, NULL, 0},
};

static void add_ext(X509 *x, const struct ext_spec *e)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(e->oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	ck_assert(obj && os);
	ck_assert(ASN1_OCTET_STRING_set(os, e->val, (int)e->len));
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	ck_assert(ext);
	ck_assert(X509_add_ext(x, ext, -1));
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
}

static void set_name(X509_NAME *n, const char *cn)
{
	ck_assert(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Test",
					     -1, -1, 0));
	ck_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					     -1, 0));
}

static void sign_cert(X509 *x, EVP_PKEY *key, enum sig_mode mode)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = mode == SIG_PSS_SHA256 ? EVP_sha256() : EVP_sha384();

	ck_assert(mctx);
	ck_assert(EVP_DigestSignInit(mctx, &pctx, md, NULL, key) == 1);
	if (mode != SIG_PKCS1) {
		ck_assert(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
		ck_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, mode == SIG_PSS32 ? 32 : 48) > 0);
		ck_assert(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mode == SIG_PSS_MGF_SHA256 ||
									     mode == SIG_PSS_SHA256
								     ? EVP_sha256()
								     : EVP_sha384()) > 0);
	}
	ck_assert(X509_sign_ctx(x, mctx) > 0);
	EVP_MD_CTX_free(mctx);
}

static X509 *make_cert(const char *cn, const char *issuer_cn, EVP_PKEY *pub, EVP_PKEY *signer,
		       bool ca, enum sig_mode mode, const struct ext_spec *exts)
{
	X509 *x = X509_new();

	ck_assert(x);
	ck_assert(X509_set_version(x, 2));
	ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), 0)); /* like AMD's VCEKs */
	ck_assert(ASN1_TIME_set_string(X509_getm_notBefore(x), "20200101000000Z"));
	ck_assert(ASN1_TIME_set_string(X509_getm_notAfter(x), "20450101000000Z"));
	set_name(X509_get_subject_name(x), cn);
	set_name(X509_get_issuer_name(x), issuer_cn);
	ck_assert(X509_set_pubkey(x, pub));
	if (ca) {
		X509V3_CTX ctx;
		X509_EXTENSION *e;

		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		ck_assert(e);
		ck_assert(X509_add_ext(x, e, -1));
		X509_EXTENSION_free(e);
	}
	for (; exts && exts->oid; exts++)
		add_ext(x, exts);
	sign_cert(x, signer, mode);
	return x;
}

START_TEST(test_self_made_ark)
{
	X509 *ark = make_cert("ARK-Milan", "ARK-Milan", rsa_a, rsa_a, true, SIG_PSS48, NULL);
	X509 *ask = make_cert("SEV-Milan", "ARK-Milan", rsa_b, rsa_a, true, SIG_PSS48, NULL);
	X509 *leaf =
		make_cert("SEV-VCEK", "SEV-Milan", ec_leaf, rsa_b, false, SIG_PSS48, milan_exts);
	X509 *other = make_cert("ARK-Milan", "ARK-Milan", rsa_b, rsa_b, true, SIG_PSS48, NULL);
	struct certs_verify_opts opts = {.now = NOW_2026};
	enum snp_product p = SNP_PRODUCT_UNKNOWN;

	/* Never trusted implicitly. */
	ck_assert_int_eq(certs_verify_chain(leaf, ask, ark, NULL, &p), -EPERM);
	ck_assert_int_eq(certs_verify_chain(leaf, ask, ark, &opts, &p), -EPERM);
	ck_assert_int_eq(p, SNP_PRODUCT_UNKNOWN);
	/* Another self-made root as extra_ark does not help. */
	opts.extra_ark = other;
	ck_assert_int_eq(certs_verify_chain(leaf, ask, ark, &opts, &p), -EPERM);
	/* Trusted when passed explicitly; the product comes from the ARK's CN. */
	opts.extra_ark = ark;
	ck_assert_int_eq(certs_verify_chain(leaf, ask, ark, &opts, &p), 0);
	ck_assert_int_eq(p, SNP_PRODUCT_MILAN);
	ck_assert_int_eq(certs_verify_chain(NULL, ask, ark, &opts, &p), 0);
	/* ...and still checked: an ASK signed by the other key is rejected. */
	X509 *ask2 = make_cert("SEV-Milan", "ARK-Milan", rsa_b, rsa_b, true, SIG_PSS48, NULL);
	ck_assert_int_eq(certs_verify_chain(NULL, ask2, ark, &opts, &p), -EKEYREJECTED);
	/* A leaf with a Genoa productName under a Milan root. */
	const struct ext_spec genoa_exts[] = {
		EXT("2", 0x16, 0x05, 'G', 'e', 'n', 'o', 'a'),
		EXT("3.1", 0x02, 0x01, 0x03),
		EXT("3.2", 0x02, 0x01, 0x00),
		EXT("3.3", 0x02, 0x01, 0x08),
		EXT("3.8", 0x02, 0x01, 0x73),
		{"1.3.6.1.4.1.3704.1.4", hwid64, sizeof(hwid64)},
		{NULL, NULL, 0},
	};
	X509 *gleaf =
		make_cert("SEV-VCEK", "SEV-Milan", ec_leaf, rsa_b, false, SIG_PSS48, genoa_exts);
	ck_assert_int_eq(certs_verify_chain(gleaf, ask, ark, &opts, &p), -EXDEV);
	/* A real AMD chain stays valid with an extra ARK given. */
	X509 *rask, *rark;
	load_chain("amd/turin/cert_chain.pem", &rask, &rark);
	ck_assert_int_eq(certs_verify_chain(NULL, rask, rark, &opts, &p), 0);
	ck_assert_int_eq(p, SNP_PRODUCT_TURIN);

	X509_free(rask);
	X509_free(rark);
	X509_free(gleaf);
	X509_free(ask2);
	X509_free(other);
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
}
END_TEST

/* Only RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 is accepted, at every level. */
START_TEST(test_signature_scheme)
{
	static const enum sig_mode bad[] = {SIG_PSS32, SIG_PKCS1, SIG_PSS_SHA256,
					    SIG_PSS_MGF_SHA256};
	X509 *ark = make_cert("ARK-Genoa", "ARK-Genoa", rsa_a, rsa_a, true, SIG_PSS48, NULL);
	X509 *ask = make_cert("SEV-Genoa", "ARK-Genoa", rsa_b, rsa_a, true, SIG_PSS48, NULL);
	struct certs_verify_opts opts = {.extra_ark = ark};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		X509 *leaf = make_cert("SEV-VCEK", "SEV-Genoa", ec_leaf, rsa_b, false, bad[i],
				       milan_exts);
		X509 *bask = make_cert("SEV-Genoa", "ARK-Genoa", rsa_b, rsa_a, true, bad[i], NULL);
		X509 *bark = make_cert("ARK-Genoa", "ARK-Genoa", rsa_a, rsa_a, true, bad[i], NULL);
		struct certs_verify_opts bopts = {.extra_ark = bark};

		ck_assert_msg(certs_verify_chain(NULL, bask, ark, &opts, NULL) == -EKEYREJECTED,
			      "ask mode %zu", i);
		ck_assert_msg(certs_verify_chain(NULL, ask, bark, &bopts, NULL) == -EKEYREJECTED,
			      "ark mode %zu", i);
		/* The leaf's productName (Milan) is checked first: use a Milan root instead. */
		X509 *mark =
			make_cert("ARK-Milan", "ARK-Milan", rsa_a, rsa_a, true, SIG_PSS48, NULL);
		X509 *mask =
			make_cert("SEV-Genoa", "ARK-Milan", rsa_b, rsa_a, true, SIG_PSS48, NULL);
		struct certs_verify_opts mopts = {.extra_ark = mark};
		ck_assert_msg(certs_verify_chain(leaf, mask, mark, &mopts, NULL) == -EKEYREJECTED,
			      "leaf mode %zu", i);
		X509_free(mark);
		X509_free(mask);
		X509_free(leaf);
		X509_free(bask);
		X509_free(bark);
	}
	ck_assert_int_eq(certs_verify_chain(NULL, ask, ark, &opts, NULL), 0);
	X509_free(ask);
	X509_free(ark);
}
END_TEST

/* ---- extensions ---- */

START_TEST(test_real_extensions)
{
	static const struct {
		const char *file;
		enum snp_product product;
		long struct_version;
		const char *name;
		bool has_fmc;
		uint8_t fmc, bl, tee, snp, ucode;
		size_t hwid_len;
		uint8_t hwid0, hwid_last;
		const char *csp_id;
		uint64_t tcb;
	} cases[] = {
		{"amd/milan/report-v3.vcek.der", SNP_PRODUCT_MILAN, 0, "Milan-B0", false, 0, 4, 0,
		 0x18, 0xdb, 64, 0x4f, 0xa5, "", 0xdb18000000000004ull},
		{"amd/milan/report-v2.vcek.der", SNP_PRODUCT_MILAN, 0, "Milan-B0", false, 0, 3, 0,
		 8, 0x73, 64, 0xc3, 0x4e, "", 0x7308000000000003ull},
		{"amd/milan/report-vlek.vlek.der", SNP_PRODUCT_MILAN, 0, "Milan", false, 0, 4, 0,
		 0x18, 0xd9, 0, 0, 0, "CN=cc-us-east-2.amazonaws.com", 0xd918000000000004ull},
		{"amd/genoa/vcek.pem", SNP_PRODUCT_GENOA, 0, "Genoa", false, 0, 10, 0, 0x17, 0x54,
		 64, 0x05, 0xd1, "", 0x541700000000000aull},
		{"amd/turin/vcek.der", SNP_PRODUCT_TURIN, 1, "Turin", true, 0, 0, 0, 0, 9, 8, 0x1e,
		 0x4d, "", 0x0900000000000000ull},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		X509 *x = load_cert(cases[i].file);
		struct certs_amd_ext e;
		enum snp_product p;
		uint64_t tcb = 0;

		ck_assert_msg(certs_amd_ext_parse(x, &e) == 0, "%zu", i);
		ck_assert(e.has_struct_version);
		ck_assert_int_eq(e.struct_version, cases[i].struct_version);
		ck_assert_str_eq(e.product_name, cases[i].name);
		ck_assert_int_eq(certs_product_from_name(e.product_name, &p), 0);
		ck_assert_int_eq(p, cases[i].product);
		ck_assert(e.has_bl && e.has_tee && e.has_snp && e.has_ucode);
		ck_assert_int_eq(e.has_fmc, cases[i].has_fmc);
		ck_assert_uint_eq(e.fmc, cases[i].fmc);
		ck_assert_uint_eq(e.bl, cases[i].bl);
		ck_assert_uint_eq(e.tee, cases[i].tee);
		ck_assert_uint_eq(e.snp, cases[i].snp);
		ck_assert_uint_eq(e.ucode, cases[i].ucode);
		ck_assert_uint_eq(e.hwid_len, cases[i].hwid_len);
		if (e.hwid_len) {
			ck_assert_uint_eq(e.hwid[0], cases[i].hwid0);
			ck_assert_uint_eq(e.hwid[e.hwid_len - 1], cases[i].hwid_last);
		}
		ck_assert_str_eq(e.csp_id, cases[i].csp_id);
		ck_assert_int_eq(certs_amd_ext_tcb(&e, cases[i].product, &tcb), 0);
		ck_assert_msg(tcb == cases[i].tcb, "%zu: %llx", i, (unsigned long long)tcb);
		X509_free(x);
	}

	/* The Turin hwID in full (8 bytes, facts §7.2). */
	static const uint8_t turin_hwid[8] = {0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d};
	X509 *t = load_cert("amd/turin/vcek.der");
	struct certs_amd_ext e;
	ck_assert_int_eq(certs_amd_ext_parse(t, &e), 0);
	ck_assert_mem_eq(e.hwid, turin_hwid, 8);
	X509_free(t);
}
END_TEST

START_TEST(test_product_names)
{
	static const struct {
		const char *name;
		int ret;
		enum snp_product p;
	} cases[] = {
		{"Milan-B0", 0, SNP_PRODUCT_MILAN},
		{"Milan", 0, SNP_PRODUCT_MILAN},
		{"Genoa", 0, SNP_PRODUCT_GENOA},
		{"Turin", 0, SNP_PRODUCT_TURIN},
		{"Venice", -ENOENT, 0},
		{"", -ENOENT, 0},
		{"-B0", -ENOENT, 0},
		{"MilanMilanMilanMilan", -ENOENT, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		enum snp_product p = SNP_PRODUCT_UNKNOWN;
		ck_assert_msg(certs_product_from_name(cases[i].name, &p) == cases[i].ret, "%zu", i);
		if (cases[i].ret == 0)
			ck_assert_int_eq(p, cases[i].p);
	}
}
END_TEST

/* Hostile extension values: each replaces or adds one extension of a valid Milan leaf. */
START_TEST(test_hostile_extensions)
{
	static const uint8_t hwid10[10] = {1};
	const struct {
		struct ext_spec ext;
		bool add; /* add beside the original instead of replacing it */
	} cases[] = {
		{EXT("3.1", 0x02, 0x02, 0x01, 0x00), false},		/* 256 */
		{EXT("3.1", 0x02, 0x01, 0xff), false},			/* -1 */
		{EXT("3.1", 0x04, 0x01, 0x03), false},			/* OCTET STRING */
		{EXT("3.1", 0x02, 0x01), false},			/* truncated */
		{EXT("3.1", 0x02, 0x01, 0x03, 0x00), false},		/* trailing byte */
		{EXT("3.1", 0x02, 0x01, 0x03), true},			/* duplicate */
		{EXT("3.8", 0x02, 0x01, 0x03, 0x00), false},		/* trailing byte */
		{EXT("2", 0x0c, 0x05, 'M', 'i', 'l', 'a', 'n'), false}, /* UTF8String */
		{EXT("2", 0x16, 0x03, 'M', 0x00, 'n'), false},		/* NUL inside */
		{EXT("2", 0x16, 0x00), false},				/* empty */
		{EXT("5", 0x16, 0x04, 'C', 'N', '=', 'x'), true},	/* hwID and csp_id */
		{{"1.3.6.1.4.1.3704.1.4", hwid10, sizeof(hwid10)}, false},
		{{"1.3.6.1.4.1.3704.1.4", hwid10, 0}, false},
		{EXT("1", 0x02, 0x01, 0x80), false}, /* negative version */
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct ext_spec exts[ELEMENTSOF(milan_exts) + 1];
		size_t n = 0;
		struct certs_amd_ext e, untouched;
		X509 *x;

		/* Replace the extension with the same OID, except in the duplicate case. */
		for (size_t j = 0; milan_exts[j].oid; j++)
			if (cases[i].add || strcmp(milan_exts[j].oid, cases[i].ext.oid) != 0)
				exts[n++] = milan_exts[j];
		exts[n++] = cases[i].ext;
		exts[n] = (struct ext_spec){NULL, NULL, 0};
		x = make_cert("SEV-VCEK", "SEV-Milan", ec_leaf, rsa_b, false, SIG_PSS48, exts);
		memset(&e, 0x5a, sizeof(e));
		memset(&untouched, 0x5a, sizeof(untouched));
		ck_assert_msg(certs_amd_ext_parse(x, &e) == -EBADMSG, "case %zu", i);
		ck_assert_msg(memcmp(&e, &untouched, sizeof(e)) == 0, "case %zu: ret written", i);
		X509_free(x);
	}
}
END_TEST

START_TEST(test_ext_tcb_layouts)
{
	struct certs_amd_ext e = {.has_bl = true,
				  .has_tee = true,
				  .has_snp = true,
				  .has_ucode = true,
				  .bl = 3,
				  .tee = 0,
				  .snp = 8,
				  .ucode = 0x73};
	uint64_t tcb = 0;

	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_MILAN, &tcb), 0);
	ck_assert(tcb == 0x7308000000000003ull);
	/* spl_4..spl_7 land in bytes 2..5 of the legacy layout. */
	e.spl[1] = 0x11, e.spl_present = 0x0f;
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_GENOA, &tcb), 0);
	ck_assert(tcb == 0x7308000011000003ull);
	/* Turin needs fmcSPL. */
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_TURIN, &tcb), -EBADMSG);
	e = (struct certs_amd_ext){.has_bl = true,
				   .has_tee = true,
				   .has_snp = true,
				   .has_ucode = true,
				   .has_fmc = true,
				   .fmc = 1,
				   .bl = 1,
				   .tee = 1,
				   .snp = 4,
				   .ucode = 0x51};
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_TURIN, &tcb), 0);
	ck_assert(tcb == 0x5100000004010101ull);
	/* ...and the legacy layouts refuse it. */
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_MILAN, &tcb), -EBADMSG);
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_UNKNOWN, &tcb), -EINVAL);
	/* A missing component. */
	e.has_ucode = false;
	tcb = 42;
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_TURIN, &tcb), -EBADMSG);
	ck_assert(tcb == 42);
}
END_TEST

/* ---- parsing ---- */

START_TEST(test_parse_forms)
{
	size_t len, plen;
	uint8_t *der = test_read_data("amd/milan/report-v3.vcek.der", &len);
	uint8_t *pem = test_read_data("amd/genoa/cert_chain.pem", &plen);
	uint8_t *out = NULL, *buf;
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	size_t olen;

	/* DER round trip is byte-exact. */
	ck_assert_int_eq(certs_parse(der, len, &x), 0);
	ck_assert_int_eq(certs_to_der(x, &out, &olen), 0);
	ck_assert_uint_eq(olen, len);
	ck_assert_mem_eq(out, der, len);
	free(out);
	X509_free(x);
	x = NULL;

	/* One certificate, but the buffer holds two PEM blocks. */
	ck_assert_int_eq(certs_parse(pem, plen, &x), -EBADMSG);
	ck_assert_ptr_null(x);
	ck_assert_int_eq(certs_parse_pem_chain(pem, plen, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	sk = NULL;

	/* DER with a trailing byte, truncated DER, empty input. */
	buf = malloc(len + 1);
	memcpy(buf, der, len);
	buf[len] = 0;
	ck_assert_int_eq(certs_parse(buf, len + 1, &x), -EBADMSG);
	ck_assert_int_eq(certs_parse(buf, len - 1, &x), -EBADMSG);
	ck_assert_int_eq(certs_parse(buf, 10, &x), -EBADMSG);
	ck_assert_int_eq(certs_parse(buf, 0, &x), -EBADMSG);
	ck_assert_ptr_null(x);
	free(buf);

	/* A DER certificate is not a PEM chain. */
	ck_assert_int_eq(certs_parse_pem_chain(der, len, &sk), -EBADMSG);
	ck_assert_ptr_null(sk);
	free(der);
	free(pem);
}
END_TEST

START_TEST(test_pem_hostile)
{
	size_t plen;
	uint8_t *pem = test_read_data("amd/milan/cert_chain.pem", &plen);
	char *s = malloc(plen * 10 + 64), *p;
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	static const char *const bad[] = {
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n",
		"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----",
		"-----",
		"   \n\t  ",
		"hello",
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		ck_assert_msg(certs_parse_pem_chain((const uint8_t *)bad[i], strlen(bad[i]), &sk) ==
				      -EBADMSG,
			      "chain %zu", i);
		ck_assert_msg(certs_parse((const uint8_t *)bad[i], strlen(bad[i]), &x) == -EBADMSG,
			      "one %zu", i);
	}
	ck_assert_ptr_null(sk);
	ck_assert_ptr_null(x);

	/* Garbage between two valid blocks. */
	p = memmem(pem, plen, "-----END CERTIFICATE-----", 25);
	ck_assert_ptr_nonnull(p);
	size_t cut = (size_t)(p - (char *)pem) + 25;
	memcpy(s, pem, cut);
	memcpy(s + cut, "\ngarbage\n", 9);
	memcpy(s + cut + 9, pem + cut, plen - cut);
	ck_assert_int_eq(certs_parse_pem_chain((uint8_t *)s, plen + 9, &sk), -EBADMSG);

	/* Ten certificates: over the bound of 8. */
	for (int i = 0; i < 5; i++)
		memcpy(s + (size_t)i * plen, pem, plen);
	ck_assert_int_eq(certs_parse_pem_chain((uint8_t *)s, plen * 5, &sk), -EMSGSIZE);
	/* Eight is fine. */
	ck_assert_int_eq(certs_parse_pem_chain((uint8_t *)s, plen * 4, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 8);
	sk_X509_pop_free(sk, X509_free);
	free(s);
	free(pem);
}
END_TEST

/* ---- leaf vs. report / platform ---- */

static const struct {
	const char *report;
	const char *leaf;
	const char *chain;
	time_t valid_at;
} real_reports[] = {
	{"amd/milan/report-v3.bin", "amd/milan/report-v3.vcek.der", "amd/milan/cert_chain.pem",
	 NOW_2026_06},
	{"amd/milan/report-v2.bin", "amd/milan/report-v2.vcek.der", "amd/milan/cert_chain.pem",
	 NOW_2026_06},
	{"amd/milan/report-vlek.bin", "amd/milan/report-vlek.vlek.der",
	 "amd/milan/vlek_cert_chain.pem", NOW_2025_06},
};

START_TEST(test_check_report)
{
	for (size_t i = 0; i < ELEMENTSOF(real_reports); i++) {
		size_t len;
		uint8_t *buf = test_read_data(real_reports[i].report, &len);
		X509 *leaf = load_cert(real_reports[i].leaf);
		struct report r, m;

		ck_assert_int_eq(report_parse(buf, len, &r), 0);
		ck_assert_msg(certs_check_report(leaf, &r, SNP_PRODUCT_MILAN) == 0, "%zu", i);
		/* The same leaf for another product's layout. */
		ck_assert_int_eq(certs_check_report(leaf, &r, SNP_PRODUCT_GENOA), -ENOKEY);
		/* Any change of the reported TCB. */
		for (int bit = 0; bit < 64; bit += 7) {
			m = r;
			m.reported_tcb ^= 1ull << bit;
			ck_assert_msg(certs_check_report(leaf, &m, SNP_PRODUCT_MILAN) == -ENOKEY,
				      "%zu bit %d", i, bit);
		}
		/* Chip id: checked for a VCEK, not for a VLEK. */
		m = r;
		m.chip_id[63] ^= 0x80;
		ck_assert_int_eq(certs_check_report(leaf, &m, SNP_PRODUCT_MILAN),
				 r.signing_key == REPORT_SIGNING_KEY_VCEK ? -ENOKEY : 0);
		/* The wrong kind of key for the report. */
		m = r;
		m.signing_key = r.signing_key == REPORT_SIGNING_KEY_VCEK ? REPORT_SIGNING_KEY_VLEK
									 : REPORT_SIGNING_KEY_VCEK;
		ck_assert_int_eq(certs_check_report(leaf, &m, SNP_PRODUCT_MILAN), -ENOKEY);
		m.signing_key = REPORT_SIGNING_KEY_NONE;
		ck_assert_int_eq(certs_check_report(leaf, &m, SNP_PRODUCT_MILAN), -ENOKEY);
		X509_free(leaf);
		free(buf);
	}

	/* The v3 report's VCEK does not match the v2 report (other TCB, other chip). */
	size_t len;
	uint8_t *buf = test_read_data("amd/milan/report-v2.bin", &len);
	X509 *leaf = load_cert("amd/milan/report-v3.vcek.der");
	struct report r;
	ck_assert_int_eq(report_parse(buf, len, &r), 0);
	ck_assert_int_eq(certs_check_report(leaf, &r, SNP_PRODUCT_MILAN), -ENOKEY);
	X509_free(leaf);
	free(buf);
}
END_TEST

START_TEST(test_check_platform)
{
	static const uint8_t turin_hwid[8] = {0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d};
	X509 *turin = load_cert("amd/turin/vcek.der");
	X509 *vlek = load_cert("amd/milan/report-vlek.vlek.der");
	uint8_t chip[64] = {0};

	memcpy(chip, turin_hwid, 8);
	ck_assert_int_eq(certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, chip,
					      sizeof(chip)),
			 0);
	/* Only the first 8 bytes of the chip id count for Turin. */
	chip[20] = 0xff;
	ck_assert_int_eq(certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, chip,
					      sizeof(chip)),
			 0);
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, chip, 8), 0);
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, chip, 7),
		-ENOKEY);
	chip[7] ^= 1;
	ck_assert_int_eq(certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, chip,
					      sizeof(chip)),
			 -ENOKEY);
	/* No chip id given: TCB only. */
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000000ull, NULL, 0), 0);
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0a00000000000000ull, NULL, 0),
		-ENOKEY);
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_TURIN, 0x0900000000000001ull, NULL, 0),
		-ENOKEY);
	/* A Turin VCEK on a Milan platform. */
	ck_assert_int_eq(
		certs_check_platform(turin, SNP_PRODUCT_MILAN, 0x0900000000000000ull, NULL, 0),
		-ENOKEY);
	/* VLEK: TCB only, the chip id is not in the certificate. */
	ck_assert_int_eq(certs_check_platform(vlek, SNP_PRODUCT_MILAN, 0xd918000000000004ull, chip,
					      sizeof(chip)),
			 0);
	ck_assert_int_eq(
		certs_check_platform(vlek, SNP_PRODUCT_MILAN, 0xd918000000000003ull, NULL, 0),
		-ENOKEY);
	X509_free(turin);
	X509_free(vlek);
}
END_TEST

START_TEST(test_verify_report)
{
	for (size_t i = 0; i < ELEMENTSOF(real_reports); i++) {
		struct certs_verify_opts opts = {.now = real_reports[i].valid_at};
		size_t len;
		uint8_t *buf = test_read_data(real_reports[i].report, &len);
		X509 *leaf = load_cert(real_reports[i].leaf), *ask, *ark;

		load_chain(real_reports[i].chain, &ask, &ark);
		ck_assert_msg(certs_verify_report(buf, len, leaf, ask, ark, &opts) == 0, "%zu", i);
		ck_assert_int_eq(certs_verify_report(buf, len, leaf, NULL, NULL, NULL), 0);
		ck_assert_int_eq(certs_verify_report(buf, len, leaf, ask, NULL, NULL), -EINVAL);
		/* Expired chain at a late date. */
		opts.now = NOW_2060;
		ck_assert_int_eq(certs_verify_report(buf, len, leaf, ask, ark, &opts),
				 -EKEYEXPIRED);
		/* A changed byte of REPORT_DATA breaks the signature. */
		buf[0x50] ^= 1;
		ck_assert_int_eq(certs_verify_report(buf, len, leaf, ask, ark, NULL),
				 -EKEYREJECTED);
		buf[0x50] ^= 1;
		ck_assert_int_eq(certs_verify_report(buf, len - 1, leaf, ask, ark, NULL),
				 -EMSGSIZE);
		X509_free(leaf);
		X509_free(ask);
		X509_free(ark);
		free(buf);
	}

	/* Report signed by another key than the leaf's. */
	size_t len;
	uint8_t *buf = test_read_data("amd/milan/report-v3.bin", &len);
	X509 *leaf = load_cert("amd/milan/report-v2.vcek.der");
	ck_assert_int_eq(certs_verify_report(buf, len, leaf, NULL, NULL, NULL), -EKEYREJECTED);
	X509_free(leaf);
	free(buf);
}
END_TEST

static Suite *certs_suite(void)
{
	Suite *s = suite_create("certs");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_real_chains);
	tcase_add_test(tc, test_ark_fingerprints);
	tcase_add_test(tc, test_real_leaves);
	tcase_add_test(tc, test_cross_product);
	tcase_add_test(tc, test_corrupted_signatures);
	tcase_add_test(tc, test_self_made_ark);
	tcase_add_test(tc, test_signature_scheme);
	tcase_add_test(tc, test_real_extensions);
	tcase_add_test(tc, test_product_names);
	tcase_add_test(tc, test_hostile_extensions);
	tcase_add_test(tc, test_ext_tcb_layouts);
	tcase_add_test(tc, test_parse_forms);
	tcase_add_test(tc, test_pem_hostile);
	tcase_add_test(tc, test_check_report);
	tcase_add_test(tc, test_check_platform);
	tcase_add_test(tc, test_verify_report);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	/* Small RSA keys keep the test fast; the real AMD chains cover RSA-4096. */
	rsa_a = EVP_RSA_gen(2048);
	rsa_b = EVP_RSA_gen(2048);
	ec_leaf = EVP_EC_gen("P-384");
	if (!rsa_a || !rsa_b || !ec_leaf)
		return EXIT_FAILURE;
	r = test_run_suite(certs_suite());
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	EVP_PKEY_free(ec_leaf);
	return r;
}
