/* SPDX-License-Identifier: Apache-2.0 */
/* test-ca: the simulated AMD CA issues chains that proto's certificate code accepts only with
 * the sim ARK, with AMD's exact extension encodings, names and order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "certs.h"
#include "testutil.h"
#include "util.h"

/* One state directory in the build tree, kept between runs: the RSA-4096 keys are generated
 * on the first run only. */
static const char *state_dir(char *buf, size_t size)
{
	const char *root = getenv("SNP_BUILD_ROOT");

	ck_assert_msg(root, "SNP_BUILD_ROOT not set");
	snprintf(buf, size, "%s/tests/kdssim/ca-state", root);
	return buf;
}

static struct sim_ca *open_ca(enum snp_product p)
{
	char dir[4096];
	struct sim_ca *ca = NULL;
	int r = sim_ca_open(state_dir(dir, sizeof(dir)), p, &ca);

	ck_assert_msg(r == 0, "sim_ca_open(%s): %s", snp_product_name(p), snp_strerror(r));
	ck_assert_ptr_nonnull(ca);
	return ca;
}

static EVP_PKEY *p384(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-384");

	ck_assert_ptr_nonnull(k);
	return k;
}

static void fill_hwid(uint8_t *hwid, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		hwid[i] = (uint8_t)(seed + i * 7);
}

/* Raw OCTET STRING contents of an extension, or NULL. */
static const ASN1_OCTET_STRING *ext_data(X509 *x, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i;

	ck_assert_ptr_nonnull(obj);
	i = X509_get_ext_by_OBJ(x, obj, -1);
	ASN1_OBJECT_free(obj);
	return i < 0 ? NULL : X509_EXTENSION_get_data(X509_get_ext(x, i));
}

static void ext_oids(X509 *x, char *out, size_t size)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < X509_get_ext_count(x); i++) {
		char oid[80];
		OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(X509_get_ext(x, i)), 1);
		off += (size_t)snprintf(out + off, size - off, "%s ", oid);
		ck_assert(off < size);
	}
}

static X509 *read_real(const char *rel)
{
	size_t len;
	uint8_t *buf = test_read_data(rel, &len);
	X509 *x = NULL;

	ck_assert_int_eq(certs_parse(buf, len, &x), 0);
	free(buf);
	return x;
}

static const struct {
	enum snp_product product;
	uint64_t tcb;
	uint8_t bl, tee, snp, ucode, fmc;
	const char *name;
	long struct_version;
	const char *real_vcek; /* a real VCEK of the product, for layout comparison */
} vcek_cases[] = {
	/* Milan: bytes bl, tee, spl4..7, snp, ucode (facts §4.1); the real report-v2 TCB. */
	{SNP_PRODUCT_MILAN, 0x7308000000000003ull, 3, 0, 8, 0x73, 0, "Milan-B0", 0,
	 "amd/milan/report-v2.vcek.der"},
	/* ucode >= 0x80 needs a leading zero in the INTEGER (the real report-v3 TCB). */
	{SNP_PRODUCT_MILAN, 0xdb18000000000004ull, 4, 0, 0x18, 0xdb, 0, "Milan-B0", 0,
	 "amd/milan/report-v3.vcek.der"},
	{SNP_PRODUCT_GENOA, 0x5417000000000109ull, 9, 1, 0x17, 0x54, 0, "Genoa", 0,
	 "amd/genoa/vcek.pem"},
	/* Turin: fmc, bl, tee, snp, reserved x3, ucode; the real Turin sample TCB. */
	{SNP_PRODUCT_TURIN, 0x5100000004010101ull, 1, 1, 4, 0x51, 1, "Turin", 1,
	 "amd/turin/vcek.der"},
	{SNP_PRODUCT_TURIN, 0xff000000ff80fe7full, 0xfe, 0x80, 0xff, 0xff, 0x7f, "Turin", 1,
	 "amd/turin/vcek.der"},
};

START_TEST(test_vcek_chain_verifies_only_with_sim_ark)
{
	struct sim_ca *ca = open_ca(vcek_cases[_i].product);
	EVP_PKEY *key = p384();
	uint8_t hwid[64];
	size_t hlen = snp_product_hwid_len(vcek_cases[_i].product);
	X509 *vcek = NULL;
	enum snp_product got = SNP_PRODUCT_UNKNOWN;
	struct certs_verify_opts with = {.extra_ark = sim_ca_ark(ca), .now = time(NULL)};
	struct certs_verify_opts without = {.now = time(NULL)};

	fill_hwid(hwid, hlen, (uint8_t)_i);
	ck_assert_int_eq(
		sim_ca_issue_vcek(ca, key, hwid, hlen, vcek_cases[_i].tcb, time(NULL), &vcek), 0);
	ck_assert_int_eq(certs_verify_chain(vcek, sim_ca_signer(ca, SIM_CA_VCEK), sim_ca_ark(ca),
					    &with, &got),
			 0);
	ck_assert_int_eq(got, vcek_cases[_i].product);
	ck_assert_int_eq(certs_verify_chain(vcek, sim_ca_signer(ca, SIM_CA_VCEK), sim_ca_ark(ca),
					    &without, &got),
			 -EPERM);
	/* The VCEK certifies exactly the key it was asked for. */
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(vcek), key), 1);
	ck_assert_int_eq(
		certs_check_platform(vcek, vcek_cases[_i].product, vcek_cases[_i].tcb, hwid, hlen),
		0);
	ck_assert_int_eq(certs_check_platform(vcek, vcek_cases[_i].product,
					      vcek_cases[_i].tcb ^ 0x0100000000000000ull, hwid,
					      hlen),
			 -ENOKEY);
	X509_free(vcek);
	EVP_PKEY_free(key);
	sim_ca_free(ca);
}
END_TEST

START_TEST(test_vcek_extensions_match_request)
{
	struct sim_ca *ca = open_ca(vcek_cases[_i].product);
	EVP_PKEY *key = p384();
	enum snp_product p = vcek_cases[_i].product;
	uint8_t hwid[64];
	size_t hlen = snp_product_hwid_len(p);
	struct certs_amd_ext e;
	X509 *vcek = NULL;
	uint64_t tcb = 0;

	fill_hwid(hwid, hlen, 0x80);
	ck_assert_int_eq(
		sim_ca_issue_vcek(ca, key, hwid, hlen, vcek_cases[_i].tcb, time(NULL), &vcek), 0);
	ck_assert_int_eq(certs_amd_ext_parse(vcek, &e), 0);
	ck_assert(e.has_struct_version);
	ck_assert_int_eq(e.struct_version, vcek_cases[_i].struct_version);
	ck_assert_str_eq(e.product_name, vcek_cases[_i].name);
	ck_assert_int_eq(e.bl, vcek_cases[_i].bl);
	ck_assert_int_eq(e.tee, vcek_cases[_i].tee);
	ck_assert_int_eq(e.snp, vcek_cases[_i].snp);
	ck_assert_int_eq(e.ucode, vcek_cases[_i].ucode);
	ck_assert_int_eq(e.has_fmc, snp_product_has_fmc(p));
	if (snp_product_has_fmc(p)) {
		ck_assert_int_eq(e.fmc, vcek_cases[_i].fmc);
		ck_assert_int_eq(e.spl_present, 0x0e); /* spl_5..7, no spl_4: like real Turin */
		ck_assert_uint_eq(e.hwid_len, 8);
	} else {
		ck_assert_int_eq(e.spl_present, 0x0f);
		ck_assert_uint_eq(e.hwid_len, 64);
	}
	ck_assert_mem_eq(e.hwid, hwid, hlen);
	ck_assert_str_eq(e.csp_id, "");
	ck_assert_int_eq(certs_amd_ext_tcb(&e, p, &tcb), 0);
	ck_assert_uint_eq(tcb, vcek_cases[_i].tcb);
	X509_free(vcek);
	EVP_PKEY_free(key);
	sim_ca_free(ca);
}
END_TEST

/* Same extension OIDs in the same order, same names and the same raw encodings as the real
 * AMD certificate of the product. */
START_TEST(test_vcek_layout_equals_real)
{
	struct sim_ca *ca = open_ca(vcek_cases[_i].product);
	EVP_PKEY *key = p384();
	enum snp_product p = vcek_cases[_i].product;
	X509 *real = read_real(vcek_cases[_i].real_vcek);
	struct certs_amd_ext re;
	uint8_t hwid[64];
	char ours[1024], theirs[1024];
	X509 *vcek = NULL;
	const ASN1_OCTET_STRING *os;
	uint64_t real_tcb;

	/* Issue for the real certificate's own hwid and TCB: the extensions must then be
	 * byte-identical. */
	ck_assert_int_eq(certs_amd_ext_parse(real, &re), 0);
	ck_assert_int_eq(certs_amd_ext_tcb(&re, p, &real_tcb), 0);
	memcpy(hwid, re.hwid, re.hwid_len);
	ck_assert_int_eq(sim_ca_issue_vcek(ca, key, hwid, re.hwid_len, real_tcb, time(NULL), &vcek),
			 0);
	ext_oids(vcek, ours, sizeof(ours));
	ext_oids(real, theirs, sizeof(theirs));
	ck_assert_str_eq(ours, theirs);
	for (int i = 0; i < X509_get_ext_count(real); i++) {
		X509_EXTENSION *rx = X509_get_ext(real, i), *ox = X509_get_ext(vcek, i);
		ck_assert_int_eq(
			ASN1_STRING_cmp(X509_EXTENSION_get_data(rx), X509_EXTENSION_get_data(ox)),
			0);
		ck_assert_int_eq(X509_EXTENSION_get_critical(rx), X509_EXTENSION_get_critical(ox));
	}
	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(vcek), X509_get_subject_name(real)),
			 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(vcek), X509_get_issuer_name(real)), 0);
	ck_assert_int_eq(ASN1_INTEGER_get(X509_get0_serialNumber(vcek)), 0);
	ck_assert_int_eq(X509_get_signature_nid(vcek), NID_rsassaPss);
	/* ucode INTEGER: leading zero exactly when >= 0x80. */
	os = ext_data(vcek, "1.3.6.1.4.1.3704.1.3.8");
	ck_assert_ptr_nonnull(os);
	ck_assert_int_eq(ASN1_STRING_length(os), re.ucode >= 0x80 ? 4 : 3);
	X509_free(vcek);
	X509_free(real);
	EVP_PKEY_free(key);
	sim_ca_free(ca);
}
END_TEST

static const struct {
	enum snp_product product;
	const char *chain;
	const char *vlek_chain;
} chain_cases[] = {
	{SNP_PRODUCT_MILAN, "amd/milan/cert_chain.pem", "amd/milan/vlek_cert_chain.pem"},
	{SNP_PRODUCT_GENOA, "amd/genoa/cert_chain.pem", "amd/genoa/vlek_cert_chain.pem"},
	{SNP_PRODUCT_TURIN, "amd/turin/cert_chain.pem", "amd/turin/vlek_cert_chain.pem"},
};

static STACK_OF(X509) * chain_of(const char *pem, size_t len)
{
	STACK_OF(X509) *s = NULL;

	ck_assert_int_eq(certs_parse_pem_chain((const uint8_t *)pem, len, &s), 0);
	ck_assert_int_eq(sk_X509_num(s), 2);
	return s;
}

static STACK_OF(X509) * real_chain(const char *rel)
{
	size_t len;
	uint8_t *buf = test_read_data(rel, &len);
	STACK_OF(X509) *s = NULL;

	ck_assert_int_eq(certs_parse_pem_chain(buf, len, &s), 0);
	free(buf);
	return s;
}

/* Helper: same subject DER, same extension OIDs in order, same critical flags and validity
 * length in years as the real certificate. */
static void assert_like(X509 *ours, X509 *real)
{
	char a[1024], b[1024];
	int days = 0, secs = 0, rdays = 0, rsecs = 0;

	ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(ours), X509_get_subject_name(real)),
			 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(ours), X509_get_issuer_name(real)), 0);
	ext_oids(ours, a, sizeof(a));
	ext_oids(real, b, sizeof(b));
	ck_assert_str_eq(a, b);
	for (int i = 0; i < X509_get_ext_count(real); i++)
		ck_assert_int_eq(X509_EXTENSION_get_critical(X509_get_ext(ours, i)),
				 X509_EXTENSION_get_critical(X509_get_ext(real, i)));
	ck_assert(
		ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ours), X509_get0_notAfter(ours)));
	ck_assert(ASN1_TIME_diff(&rdays, &rsecs, X509_get0_notBefore(real),
				 X509_get0_notAfter(real)));
	ck_assert_int_eq((days + 1) / 365, (rdays + 1) / 365);
	ck_assert_int_eq(X509_get_signature_nid(ours), NID_rsassaPss);
	ck_assert_int_eq(EVP_PKEY_get_bits(X509_get0_pubkey(ours)), 4096);
}

START_TEST(test_chain_pem_like_kds)
{
	struct sim_ca *ca = open_ca(chain_cases[_i].product);
	static const enum sim_ca_line lines[] = {SIM_CA_VCEK, SIM_CA_VLEK};

	for (size_t l = 0; l < ELEMENTSOF(lines); l++) {
		char *pem = NULL;
		size_t len = 0;
		STACK_OF(X509) * ours, *real;
		X509 *crl_ext_cert;
		const ASN1_OCTET_STRING *dp;

		ck_assert_int_eq(sim_ca_chain_pem(ca, lines[l], &pem, &len), 0);
		ck_assert_uint_eq(strlen(pem), len);
		ours = chain_of(pem, len);
		real = real_chain(l == 0 ? chain_cases[_i].chain : chain_cases[_i].vlek_chain);
		/* signer first, then ARK, as KDS serves it */
		ck_assert_int_eq(X509_cmp(sk_X509_value(ours, 0), sim_ca_signer(ca, lines[l])), 0);
		ck_assert_int_eq(X509_cmp(sk_X509_value(ours, 1), sim_ca_ark(ca)), 0);
		assert_like(sk_X509_value(ours, 0), sk_X509_value(real, 0));
		assert_like(sk_X509_value(ours, 1), sk_X509_value(real, 1));
		/* The intermediate's CRL distribution point is the real KDS URL of its line. */
		crl_ext_cert = sk_X509_value(ours, 0);
		dp = ext_data(crl_ext_cert, "2.5.29.31");
		ck_assert_ptr_nonnull(dp);
		ck_assert_int_eq(ASN1_STRING_cmp(dp, ext_data(sk_X509_value(real, 0), "2.5.29.31")),
				 0);
		/* Our ARK is not AMD's. */
		ck_assert_int_eq(certs_ark_pinned(sim_ca_ark(ca), &(enum snp_product){0}), -ENOENT);
		sk_X509_pop_free(ours, X509_free);
		sk_X509_pop_free(real, X509_free);
		free(pem);
	}
	sim_ca_free(ca);
}
END_TEST

START_TEST(test_vlek_issued_and_verifies)
{
	struct sim_ca *ca = open_ca(chain_cases[_i].product);
	EVP_PKEY *key = p384();
	X509 *vlek = NULL;
	struct certs_amd_ext e;
	struct certs_verify_opts opts = {.extra_ark = sim_ca_ark(ca)};
	enum snp_product got;
	uint64_t tcb = snp_product_has_fmc(chain_cases[_i].product) ? 0x5100000004010101ull
								    : 0xdb18000000000004ull;

	ck_assert_int_eq(sim_ca_issue_vlek(ca, key, "CN=sim.example", tcb, time(NULL), &vlek), 0);
	ck_assert_int_eq(certs_verify_chain(vlek, sim_ca_signer(ca, SIM_CA_VLEK), sim_ca_ark(ca),
					    &opts, &got),
			 0);
	ck_assert_int_eq(got, chain_cases[_i].product);
	/* A VLEK does not chain to the ASK. */
	ck_assert_int_lt(certs_verify_chain(vlek, sim_ca_signer(ca, SIM_CA_VCEK), sim_ca_ark(ca),
					    &opts, &got),
			 0);
	ck_assert_int_eq(certs_amd_ext_parse(vlek, &e), 0);
	ck_assert_str_eq(e.csp_id, "CN=sim.example");
	ck_assert_uint_eq(e.hwid_len, 0);
	ck_assert_str_eq(e.product_name, snp_product_name(chain_cases[_i].product));
	ck_assert_int_eq(certs_check_platform(vlek, chain_cases[_i].product, tcb, NULL, 0), 0);
	X509_free(vlek);
	EVP_PKEY_free(key);
	sim_ca_free(ca);
}
END_TEST

START_TEST(test_crl_signed_by_ark)
{
	struct sim_ca *ca = open_ca(SNP_PRODUCT_MILAN);
	X509_CRL *crl = NULL;
	time_t now = 1700000000;

	ck_assert_int_eq(sim_ca_issue_crl(ca, SIM_CA_VCEK, now, &crl), 0);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(sim_ca_ark(ca))), 1);
	ck_assert_int_eq(
		X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(sim_ca_ark(ca))), 0);
	ck_assert_int_eq(X509_CRL_get_signature_nid(crl), NID_rsassaPss);
	ck_assert_int_eq(X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &(time_t){now + 1}), -1);
	ck_assert_int_le(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 0); /* none (NULL: -1) */
	/* An ASK key did not sign it. */
	ck_assert_int_ne(X509_CRL_verify(crl, X509_get0_pubkey(sim_ca_signer(ca, SIM_CA_VCEK))), 1);
	X509_CRL_free(crl);
	sim_ca_free(ca);
}
END_TEST

START_TEST(test_reopen_keeps_keys)
{
	struct sim_ca *a = open_ca(SNP_PRODUCT_GENOA), *b = open_ca(SNP_PRODUCT_GENOA);
	char dir[4096], path[4200];
	struct stat st;

	ck_assert_int_eq(X509_cmp(sim_ca_ark(a), sim_ca_ark(b)), 0);
	ck_assert_int_eq(X509_cmp(sim_ca_signer(a, SIM_CA_VLEK), sim_ca_signer(b, SIM_CA_VLEK)), 0);
	snprintf(path, sizeof(path), "%s/ark-genoa.key", state_dir(dir, sizeof(dir)));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/asvk-genoa.pem", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	sim_ca_free(a);
	sim_ca_free(b);
}
END_TEST

/* Hostile or wrong input: every case gives an error and no certificate. */
START_TEST(test_issue_refuses_bad_input)
{
	struct sim_ca *milan = open_ca(SNP_PRODUCT_MILAN), *turin = open_ca(SNP_PRODUCT_TURIN);
	EVP_PKEY *good = p384(), *p256 = EVP_EC_gen("P-256"), *rsa = EVP_RSA_gen(1024);
	uint8_t hwid[64] = {1};
	X509 *x = NULL;

	ck_assert_ptr_nonnull(p256);
	ck_assert_ptr_nonnull(rsa);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, good, hwid, 8, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(turin, good, hwid, 64, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, good, hwid, 0, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, p256, hwid, 64, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, rsa, hwid, 64, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, NULL, hwid, 64, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vcek(milan, good, NULL, 64, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vlek(milan, good, "", 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vlek(milan, good, NULL, 0, time(NULL), &x), -EINVAL);
	ck_assert_int_eq(sim_ca_issue_vlek(milan, p256, "CN=x", 0, time(NULL), &x), -EINVAL);
	ck_assert_ptr_null(x);
	EVP_PKEY_free(good);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(rsa);
	sim_ca_free(milan);
	sim_ca_free(turin);
}
END_TEST

/* A corrupt or foreign key file is an error, never silently replaced. */
START_TEST(test_open_refuses_corrupt_state)
{
	char tmpl[] = "/tmp/kdssim-ca-XXXXXX", path[256], src[4200], dir[4096];
	struct sim_ca *ca = NULL;
	size_t len;
	uint8_t *buf;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	ck_assert_int_eq(sim_ca_open(tmpl, SNP_PRODUCT_UNKNOWN, &ca), -EINVAL);
	ck_assert_int_eq(sim_ca_open(tmpl, (enum snp_product)99, &ca), -EINVAL);

	snprintf(path, sizeof(path), "%s/ark-milan.key", tmpl);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	ck_assert_int_eq(sim_ca_open(tmpl, SNP_PRODUCT_MILAN, &ca), -EBADMSG);
	ck_assert_ptr_null(ca);

	/* A valid key with the certificate of another ARK: not a chain. */
	snprintf(src, sizeof(src), "%s/ark-milan.key", state_dir(dir, sizeof(dir)));
	buf = test_read_file(src, &len);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	snprintf(src, sizeof(src), "%s/ark-genoa.pem", dir);
	buf = test_read_file(src, &len);
	snprintf(path, sizeof(path), "%s/ark-milan.pem", tmpl);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	ck_assert_int_eq(sim_ca_open(tmpl, SNP_PRODUCT_MILAN, &ca), -EXDEV);
	ck_assert_ptr_null(ca);

	snprintf(path, sizeof(path), "rm -rf '%s'", tmpl);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

START_TEST(test_product_names)
{
	ck_assert_str_eq(sim_ca_product_name(SNP_PRODUCT_MILAN, SIM_CA_VCEK), "Milan-B0");
	ck_assert_str_eq(sim_ca_product_name(SNP_PRODUCT_MILAN, SIM_CA_VLEK), "Milan");
	ck_assert_str_eq(sim_ca_product_name(SNP_PRODUCT_GENOA, SIM_CA_VCEK), "Genoa");
	ck_assert_str_eq(sim_ca_product_name(SNP_PRODUCT_TURIN, SIM_CA_VCEK), "Turin");
}
END_TEST

/* Generate the keys of every product once, before the forked tests run in parallel. */
static void warm_state(void)
{
	for (enum snp_product p = SNP_PRODUCT_MILAN; p < _SNP_PRODUCT_MAX; p++)
		sim_ca_free(open_ca(p));
}

int main(void)
{
	Suite *s = suite_create("kdssim-ca");
	TCase *tc = tcase_create("ca");

	tcase_add_unchecked_fixture(tc, warm_state, NULL);
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_vcek_chain_verifies_only_with_sim_ark, 0,
			    ELEMENTSOF(vcek_cases));
	tcase_add_loop_test(tc, test_vcek_extensions_match_request, 0, ELEMENTSOF(vcek_cases));
	tcase_add_loop_test(tc, test_vcek_layout_equals_real, 0, ELEMENTSOF(vcek_cases));
	tcase_add_loop_test(tc, test_chain_pem_like_kds, 0, ELEMENTSOF(chain_cases));
	tcase_add_loop_test(tc, test_vlek_issued_and_verifies, 0, ELEMENTSOF(chain_cases));
	tcase_add_test(tc, test_crl_signed_by_ark);
	tcase_add_test(tc, test_reopen_keeps_keys);
	tcase_add_test(tc, test_issue_refuses_bad_input);
	tcase_add_test(tc, test_open_refuses_corrupt_state);
	tcase_add_test(tc, test_product_names);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
