/* SPDX-License-Identifier: Apache-2.0 */
/* store: choosing the chain for the platform's reported TCB and key from a certificate
 * directory, with real AMD certificates, and hostile directories and CRLs. */
#include "testutil.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certs.h"
#include "certtable.h"
#include "chain.h"
#include "util.h"

static char dir[256];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-store-XXXXXX");
	ck_assert(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void put(const char *name, const uint8_t *data, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	ck_assert(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static void put_data(const char *name, const char *rel)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	size_t len;

	buf = test_read_data(rel, &len);
	put(name, buf, len);
}

/* The platform a real leaf belongs to: its product, hwID and TCB. */
static void platform_of(const char *rel, bool vlek, struct platform_facts *pf)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	struct certs_amd_ext ext;
	size_t len;
	X509 *x = NULL;

	buf = test_read_data(rel, &len);
	ck_assert_int_eq(certs_parse(buf, len, &x), 0);
	ck_assert_int_eq(certs_amd_ext_parse(x, &ext), 0);
	memset(pf, 0, sizeof(*pf));
	pf->product = SNP_PRODUCT_MILAN;
	ck_assert_int_eq(certs_amd_ext_tcb(&ext, pf->product, &pf->reported_tcb), 0);
	pf->current_tcb = pf->reported_tcb;
	memcpy(pf->chip_id, ext.hwid, ext.hwid_len);
	pf->chip_id_len = vlek ? 64 : ext.hwid_len;
	if (vlek)
		memset(pf->chip_id, 0x11, 64);
	pf->vlek_loaded = vlek;
	X509_free(x);
}

#define V3 "amd/milan/report-v3.vcek.der"
#define V2 "amd/milan/report-v2.vcek.der"
#define VL "amd/milan/report-vlek.vlek.der"

enum tweak {
	TW_NONE,
	TW_OTHER_CHIP,	/* the platform's chip id differs */
	TW_OTHER_TCB,	/* the platform reports another TCB */
	TW_VLEK_LOADED, /* the platform signs with a VLEK */
	TW_GENOA,	/* the platform is a Genoa */
};

static const struct {
	const char *what;
	const char *files[4][2]; /* name in dir, test data (NULL: garbage bytes) */
	const char *platform_leaf;
	bool vlek;
	enum tweak tweak;
	int ret;
	const char *needle; /* in the error */
	bool want_vlek;
} cases[] = {
	{"per-TCB name",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek-db18000000000004.der", V3}},
	 V3,
	 false,
	 TW_NONE,
	 0,
	 NULL,
	 false},
	{"generic name",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_NONE,
	 0,
	 NULL,
	 false},
	{"per-TCB first, generic for another TCB ignored",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"},
	  {"vcek.der", V2},
	  {"vcek-db18000000000004.der", V3}},
	 V3,
	 false,
	 TW_NONE,
	 0,
	 NULL,
	 false},
	{"no leaf",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}},
	 V3,
	 false,
	 TW_NONE,
	 -ENOENT,
	 "vcek-db18000000000004.der",
	 false},
	{"no intermediates", {{"vcek.der", V3}}, V3, false, TW_NONE, -ENOENT, "ark.pem", false},
	{"garbage leaf",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", NULL}},
	 V3,
	 false,
	 TW_NONE,
	 -EBADMSG,
	 "vcek.der",
	 false},
	{"garbage chain",
	 {{"cert_chain.pem", NULL}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_NONE,
	 -EBADMSG,
	 "cert_chain.pem",
	 false},
	{"other chip",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_OTHER_CHIP,
	 -ENOKEY,
	 "does not match the platform",
	 false},
	{"other TCB",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_OTHER_TCB,
	 -ENOKEY,
	 "does not match the platform",
	 false},
	{"VLEK platform, only a VCEK",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_VLEK_LOADED,
	 -ENOENT,
	 "vlek",
	 false},
	{"VLEK chain",
	 {{"cert_chain_vlek.pem", "amd/milan/vlek_cert_chain.pem"}, {"vlek.der", VL}},
	 VL,
	 true,
	 TW_NONE,
	 0,
	 NULL,
	 true},
	{"VLEK under a VCEK name",
	 {{"cert_chain.pem", "amd/milan/vlek_cert_chain.pem"}, {"vcek.der", VL}},
	 VL,
	 false,
	 TW_NONE,
	 -ENOKEY,
	 "is a VLEK",
	 false},
	{"VCEK chain for a Genoa",
	 {{"cert_chain.pem", "amd/milan/cert_chain.pem"}, {"vcek.der", V3}},
	 V3,
	 false,
	 TW_GENOA,
	 -EXDEV,
	 "Genoa",
	 false},
};

START_TEST(test_chain_from_dir)
{
	struct platform_facts pf;
	struct chain *c = NULL;
	char err[1024] = "";
	int r;

	for (size_t i = 0; i < 4 && cases[_i].files[i][0]; i++) {
		if (cases[_i].files[i][1])
			put_data(cases[_i].files[i][0], cases[_i].files[i][1]);
		else
			put(cases[_i].files[i][0], (const uint8_t *)"\x30\x82\xff\xffgarbage", 12);
	}
	platform_of(cases[_i].platform_leaf, cases[_i].vlek, &pf);
	switch (cases[_i].tweak) {
	case TW_OTHER_CHIP:
		pf.chip_id[5] ^= 0x40;
		break;
	case TW_OTHER_TCB:
		pf.reported_tcb ^= 1;
		break;
	case TW_VLEK_LOADED:
		pf.vlek_loaded = true;
		break;
	case TW_GENOA:
		pf.product = SNP_PRODUCT_GENOA;
		break;
	default:
		break;
	}
	r = chain_from_dir(dir, NULL, &pf, 0, &c, err, sizeof(err));
	ck_assert_msg(r == cases[_i].ret, "%s: %d (%s)", cases[_i].what, r, err);
	if (r < 0) {
		ck_assert_ptr_null(c);
		ck_assert_msg(strstr(err, cases[_i].needle), "%s: '%s'", cases[_i].what, err);
		return;
	}
	ck_assert(c->vlek == cases[_i].want_vlek);
	ck_assert(!c->sim_root); /* real AMD root, pinned */
	ck_assert_uint_eq(c->tcb, pf.reported_tcb);
	ck_assert(chain_matches(c, &pf));
	pf.reported_tcb ^= 1;
	ck_assert(!chain_matches(c, &pf));
	pf.reported_tcb ^= 1;
	pf.vlek_loaded = !pf.vlek_loaded;
	ck_assert(!chain_matches(c, &pf));
	{
		struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
		size_t n;
		ck_assert_int_eq(certtable_parse(c->table, c->table_len, e, ELEMENTSOF(e), &n), 0);
		ck_assert_uint_eq(n, 3);
		ck_assert(certtable_find(e, n, c->vlek ? CERTTABLE_VLEK : CERTTABLE_VCEK));
		ck_assert_ptr_null(certtable_find(e, n, c->vlek ? CERTTABLE_VCEK : CERTTABLE_VLEK));
		ck_assert_uint_eq(c->table_pages, certtable_npages(c->table_len));
	}
	chain_free(c);
}
END_TEST

/* Issue 13 point 6, daemon side: an expired leaf is named with its notAfter. */
START_TEST(test_expired_leaf_named)
{
	struct platform_facts pf;
	struct chain *c = NULL;
	char err[1024] = "";

	put_data("cert_chain_vlek.pem", "amd/milan/vlek_cert_chain.pem");
	put_data("vlek.der", VL);
	platform_of(VL, true, &pf);
	ck_assert_int_eq(
		chain_from_dir(dir, NULL, &pf, 1893456000 /* 2030-01-01 */, &c, err, sizeof(err)),
		-EKEYEXPIRED);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "certificate is not valid at this time (leaf expired: notAfter "
				  "2025-12-10 22:14:21 UTC)"),
		      "'%s'", err);
}
END_TEST

START_TEST(test_oversized_leaf_refused)
{
	struct platform_facts pf;
	struct chain *c = NULL;
	char err[1024] = "";
	uint8_t *big = calloc(1, 70000);

	ck_assert(big);
	put_data("cert_chain.pem", "amd/milan/cert_chain.pem");
	put("vcek.der", big, 70000);
	free(big);
	platform_of(V3, false, &pf);
	ck_assert_int_eq(chain_from_dir(dir, NULL, &pf, 0, &c, err, sizeof(err)), -EMSGSIZE);
	ck_assert_ptr_null(c);
}
END_TEST

/* A CRL that is not the ARK's, or not a CRL, is refused and the table is left as it was. */
START_TEST(test_crl_refused)
{
	struct platform_facts pf;
	struct chain *c = NULL;
	char err[1024] = "";
	_cleanup_(freep) uint8_t *before = NULL, *der = NULL;
	size_t before_len;
	EVP_PKEY *k;
	X509_CRL *crl;
	int der_len;

	put_data("cert_chain.pem", "amd/milan/cert_chain.pem");
	put_data("vcek.der", V3);
	platform_of(V3, false, &pf);
	ck_assert_int_eq(chain_from_dir(dir, NULL, &pf, 0, &c, err, sizeof(err)), 0);
	before_len = c->table_len;
	before = malloc(before_len);
	ck_assert(before);
	memcpy(before, c->table, before_len);

	ck_assert_int_eq(chain_add_crl(c, (const uint8_t *)"not a crl", 9, 0, err, sizeof(err)),
			 -EBADMSG);
	ck_assert_int_eq(chain_add_crl(c, NULL, 0, 0, err, sizeof(err)), -EBADMSG);

	k = EVP_RSA_gen(2048);
	ck_assert(k);
	crl = X509_CRL_new();
	ck_assert(crl);
	ck_assert_int_eq(X509_CRL_set_version(crl, 1), 1);
	ck_assert_int_eq(X509_CRL_set_issuer_name(crl, X509_get_subject_name(c->ark)), 1);
	{
		ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
		ASN1_TIME *n = ASN1_TIME_set(NULL, time(NULL) + 86400);
		X509_CRL_set1_lastUpdate(crl, t);
		X509_CRL_set1_nextUpdate(crl, n);
		ASN1_TIME_free(t);
		ASN1_TIME_free(n);
	}
	ck_assert_int_gt(X509_CRL_sign(crl, k, EVP_sha384()), 0);
	der_len = i2d_X509_CRL(crl, &der);
	ck_assert_int_gt(der_len, 0);
	ck_assert_int_eq(chain_add_crl(c, der, (size_t)der_len, time(NULL), err, sizeof(err)),
			 -EKEYREJECTED);
	ck_assert(strstr(err, "ARK"));
	ck_assert(!c->has_crl);
	ck_assert_uint_eq(c->table_len, before_len);
	ck_assert_int_eq(memcmp(c->table, before, before_len), 0);
	X509_CRL_free(crl);
	EVP_PKEY_free(k);
	chain_free(c);
}
END_TEST

static Suite *chain_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_chain_from_dir, 0, (int)ELEMENTSOF(cases));
	tcase_add_test(tc, test_oversized_leaf_refused);
	tcase_add_test(tc, test_expired_leaf_named);
	tcase_add_test(tc, test_crl_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(chain_suite());
}
