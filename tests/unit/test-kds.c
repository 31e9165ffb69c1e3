/* SPDX-License-Identifier: Apache-2.0 */
#include "kds.h"
#include "testutil.h"
#include "util.h"

/* Real chip ids: the Milan v2 VCEK's hwID and the Turin VCEK's 8-byte hwID (testdata). */
static const char milan_hwid_hex[] =
	"c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f"
	"8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e";
static const char turin_hwid_hex[] = "1e550a8ee5cf9f4d";

static struct kds_request vcek_req(enum snp_product p, const char *hex, uint64_t tcb)
{
	struct kds_request q = {.kind = KDS_VCEK, .product = p, .tcb = tcb};

	ck_assert_int_eq(hex_decode_any(hex, q.hwid, sizeof(q.hwid), &q.hwid_len), 0);
	return q;
}

static const struct {
	enum kds_kind kind;
	enum snp_product product;
	const char *hwid; /* KDS_VCEK only */
	uint64_t tcb;
	const char *base; /* NULL: default */
	const char *url;
} url_cases[] = {
	{KDS_VCEK, SNP_PRODUCT_MILAN, milan_hwid_hex, 0x7308000000000003ull, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Milan/c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d"
	 "18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e"
	 "?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"},
	{KDS_VCEK, SNP_PRODUCT_MILAN, milan_hwid_hex, 0xdb18000000000004ull,
	 "http://127.0.0.1:8080",
	 "http://127.0.0.1:8080/vcek/v1/Milan/c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d"
	 "18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e"
	 "?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219"},
	{KDS_VCEK, SNP_PRODUCT_GENOA, milan_hwid_hex, 0x541700000000000aull, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Genoa/c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d"
	 "18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e"
	 "?blSPL=10&teeSPL=00&snpSPL=23&ucodeSPL=84"},
	/* Turin: TCB bytes 01 01 01 04 00 00 00 51 (facts §4.1); fmcSPL first, 16 hex hwid. */
	{KDS_VCEK, SNP_PRODUCT_TURIN, turin_hwid_hex, 0x5100000004010101ull, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d"
	 "?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81"},
	{KDS_VCEK, SNP_PRODUCT_TURIN, turin_hwid_hex, 0x0900000000000000ull, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d"
	 "?fmcSPL=00&blSPL=00&teeSPL=00&snpSPL=00&ucodeSPL=09"},
	{KDS_VCEK_CHAIN, SNP_PRODUCT_MILAN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Milan/cert_chain"},
	{KDS_VCEK_CHAIN, SNP_PRODUCT_GENOA, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain"},
	{KDS_VCEK_CHAIN, SNP_PRODUCT_TURIN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Turin/cert_chain"},
	{KDS_VCEK_CRL, SNP_PRODUCT_MILAN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Milan/crl"},
	{KDS_VCEK_CRL, SNP_PRODUCT_GENOA, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Genoa/crl"},
	{KDS_VCEK_CRL, SNP_PRODUCT_TURIN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vcek/v1/Turin/crl"},
	{KDS_VLEK_CHAIN, SNP_PRODUCT_MILAN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vlek/v1/Milan/cert_chain"},
	{KDS_VLEK_CHAIN, SNP_PRODUCT_GENOA, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain"},
	{KDS_VLEK_CHAIN, SNP_PRODUCT_TURIN, NULL, 0, "http://mirror.example",
	 "http://mirror.example/vlek/v1/Turin/cert_chain"},
	{KDS_VLEK_CRL, SNP_PRODUCT_MILAN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vlek/v1/Milan/crl"},
	{KDS_VLEK_CRL, SNP_PRODUCT_GENOA, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vlek/v1/Genoa/crl"},
	{KDS_VLEK_CRL, SNP_PRODUCT_TURIN, NULL, 0, NULL,
	 "https://kdsintf.amd.com/vlek/v1/Turin/crl"},
};

static struct kds_request url_case_req(size_t i)
{
	struct kds_request q = {.kind = url_cases[i].kind, .product = url_cases[i].product};

	if (url_cases[i].hwid)
		q = vcek_req(url_cases[i].product, url_cases[i].hwid, url_cases[i].tcb);
	return q;
}

START_TEST(test_url_table)
{
	for (size_t i = 0; i < ELEMENTSOF(url_cases); i++) {
		struct kds_request q = url_case_req(i);
		char buf[512];

		ck_assert_msg(kds_url(&q, url_cases[i].base, buf, sizeof(buf)) == 0, "case %zu", i);
		ck_assert_msg(strcmp(buf, url_cases[i].url) == 0, "case %zu: %s", i, buf);
	}
}
END_TEST

/* What a server sees (the path after the base) parses back into the same request. */
START_TEST(test_parse_roundtrip)
{
	for (size_t i = 0; i < ELEMENTSOF(url_cases); i++) {
		struct kds_request q = url_case_req(i), back;
		const char *base = url_cases[i].base ? url_cases[i].base : KDS_DEFAULT_BASE;
		char buf[512];

		ck_assert_int_eq(kds_url(&q, base, buf, sizeof(buf)), 0);
		memset(&back, 0x5a, sizeof(back));
		ck_assert_msg(kds_parse_path(buf + strlen(base), &back) == 0, "case %zu", i);
		ck_assert_int_eq(back.kind, q.kind);
		ck_assert_int_eq(back.product, q.product);
		if (q.kind == KDS_VCEK) {
			ck_assert_uint_eq(back.hwid_len, q.hwid_len);
			ck_assert_mem_eq(back.hwid, q.hwid, q.hwid_len);
			ck_assert_msg(back.tcb == q.tcb, "case %zu: tcb %llx", i,
				      (unsigned long long)back.tcb);
		}
	}
}
END_TEST

START_TEST(test_parse_lenient_forms)
{
	/* Upper-case hwid (SNPHOST style), parameters in another order, SPLs without padding. */
	static const char *const paths[] = {
		"/vcek/v1/Turin/"
		"1E550A8EE5CF9F4D?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81",
		"/vcek/v1/Turin/1e550a8ee5cf9f4d?ucodeSPL=81&snpSPL=4&teeSPL=1&blSPL=1&fmcSPL=1",
	};
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		struct kds_request q;
		ck_assert_int_eq(kds_parse_path(paths[i], &q), 0);
		ck_assert_int_eq(q.kind, KDS_VCEK);
		ck_assert_int_eq(q.product, SNP_PRODUCT_TURIN);
		ck_assert_uint_eq(q.hwid_len, 8);
		ck_assert_uint_eq(q.hwid[0], 0x1e);
		ck_assert_uint_eq(q.hwid[7], 0x4d);
		ck_assert_msg(q.tcb == 0x5100000004010101ull, "%zu: %llx", i,
			      (unsigned long long)q.tcb);
	}
}
END_TEST

#define H64                                                                                        \
	"c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f"                         \
	"8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e"
#define MQ "?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
#define TQ "?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81"

START_TEST(test_parse_hostile)
{
	static const char *const paths[] = {
		"",
		"/",
		"vcek/v1/Milan/cert_chain",
		"/vcek/v1/",
		"/vcek/v1/Milan",
		"/vcek/v1/Milan/",
		"//vcek/v1/Milan/cert_chain",
		"/vcek/v1/milan/cert_chain", /* KDS spelling only */
		"/vcek/v1/MILAN/crl",
		"/vcek/v1/Venice/cert_chain",
		"/vcek/v1/unknown/cert_chain",
		"/vcek/v2/Milan/cert_chain",
		"/vcxk/v1/Milan/cert_chain",
		"/vcek/v1/Milan/cert_chain/",
		"/vcek/v1/Milan/cert_chain?x=1",
		"/vcek/v1/Milan/crl#frag",
		"/vcek/v1/Milan/../Genoa/cert_chain",
		"/vcek/v1/Milan/cert%5Fchain",
		"/vcek/v1/Milan/cert chain",
		"/vlek/v1/Milan/" H64 MQ, /* VLEK certs are not served on this path */
		"/vlek/v1/Milan/cert",
		"/vcek/v1/Milan/" H64, /* no query */
		"/vcek/v1/Milan/" H64 "?",
		"/vcek/v1/Milan/" H64 "0" MQ, /* 129 hex digits */
		"/vcek/v1/Milan/"
		"c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f"
		"8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524" MQ, /* 127 */
		"/vcek/v1/Milan/"
		"g38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f"
		"8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e" MQ,
		"/vcek/v1/Milan/1e550a8ee5cf9f4d" MQ, /* Turin-length hwid for Milan */
		"/vcek/v1/Turin/" H64 TQ,	      /* Milan-length hwid for Turin */
		"/vcek/v1/Milan/" H64 "?blSPL=03&teeSPL=00&snpSPL=08", /* no ucodeSPL */
		"/vcek/v1/Milan/" H64 MQ "&blSPL=03",		       /* duplicate */
		"/vcek/v1/Milan/" H64 MQ "&",			       /* trailing & */
		"/vcek/v1/Milan/" H64 "?blSPL=03&&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 MQ "&fmcSPL=01", /* fmc on Milan */
		"/vcek/v1/Milan/" H64 MQ "&foo=1",
		"/vcek/v1/Milan/" H64 "?blSPL=256&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=-1&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=+3&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=0003&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=0x3&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blspl=03&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Milan/" H64 "?blSPL=03=4&teeSPL=00&snpSPL=08&ucodeSPL=115",
		"/vcek/v1/Turin/1e550a8ee5cf9f4d?blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81",
		"/vcek/v1/Turin/1e550a8ee5cf9f4d" TQ "#x",
		"/vcek/v1/Turin/1e550a8ee5cf9f4d" TQ "\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		struct kds_request q;

		memset(&q, 0x5a, sizeof(q));
		ck_assert_msg(kds_parse_path(paths[i], &q) == -EINVAL, "case %zu: %s", i, paths[i]);
		ck_assert_msg(q.kind == (enum kds_kind)0x5a5a5a5a, "case %zu: ret written", i);
	}
	ck_assert_int_eq(kds_parse_path(NULL, &(struct kds_request){0}), -EINVAL);
}
END_TEST

START_TEST(test_parse_overlong)
{
	size_t n = 4096;
	char *p = malloc(n + 1);
	struct kds_request q;

	ck_assert(p);
	strcpy(p, "/vcek/v1/Milan/" H64 MQ);
	for (size_t i = strlen(p); i < n; i++)
		p[i] = i % 2 ? '0' : '&';
	p[n] = '\0';
	ck_assert_int_eq(kds_parse_path(p, &q), -EINVAL);
	free(p);
}
END_TEST

START_TEST(test_url_errors)
{
	struct kds_request milan =
		vcek_req(SNP_PRODUCT_MILAN, milan_hwid_hex, 0x7308000000000003ull);
	struct kds_request turin =
		vcek_req(SNP_PRODUCT_TURIN, turin_hwid_hex, 0x5100000004010101ull);
	struct kds_request q;
	char buf[512], small[40];

	/* Product/kind out of range. */
	q = milan, q.product = SNP_PRODUCT_UNKNOWN;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	q = milan, q.product = _SNP_PRODUCT_MAX;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	q = milan, q.kind = (enum kds_kind)42;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	/* hwid length must be the product's. */
	q = milan, q.hwid_len = 8;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	q = turin, q.hwid_len = 64;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	/* Reserved TCB bytes cannot be expressed in the query. */
	q = milan, q.tcb |= 0x0000000100000000ull;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	q = turin, q.tcb |= 0x0000010000000000ull;
	ck_assert_int_eq(kds_url(&q, NULL, buf, sizeof(buf)), -EINVAL);
	/* Base must not end in '/' nor be empty. */
	ck_assert_int_eq(kds_url(&milan, "https://x/", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(kds_url(&milan, "", buf, sizeof(buf)), -EINVAL);
	/* Too small a buffer: -ENOSPC and no truncated URL left behind. */
	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(kds_url(&milan, NULL, small, sizeof(small)), -ENOSPC);
	ck_assert_str_eq(small, "");
	q = (struct kds_request){.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_GENOA};
	ck_assert_int_eq(kds_url(&q, NULL, small, 30), -ENOSPC);
	ck_assert_int_eq(kds_url(&q, NULL, small, sizeof(small)), -ENOSPC);
	/* Exactly large enough ("https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain" + NUL). */
	ck_assert_int_eq(kds_url(&q, NULL, buf, strlen(KDS_DEFAULT_BASE) + 26), 0);
	ck_assert_int_eq(kds_url(&q, NULL, buf, strlen(KDS_DEFAULT_BASE) + 25), -ENOSPC);
}
END_TEST

START_TEST(test_cache_key)
{
	static const struct {
		enum kds_kind kind;
		enum snp_product product;
		const char *key;
	} cases[] = {
		{KDS_VCEK_CHAIN, SNP_PRODUCT_MILAN, "Milan-cert_chain"},
		{KDS_VCEK_CRL, SNP_PRODUCT_GENOA, "Genoa-crl"},
		{KDS_VLEK_CHAIN, SNP_PRODUCT_TURIN, "Turin-vlek_cert_chain"},
		{KDS_VLEK_CRL, SNP_PRODUCT_MILAN, "Milan-vlek_crl"},
	};
	struct kds_request turin =
		vcek_req(SNP_PRODUCT_TURIN, turin_hwid_hex, 0x5100000004010101ull);
	struct kds_request milan =
		vcek_req(SNP_PRODUCT_MILAN, milan_hwid_hex, 0x7308000000000003ull);
	char buf[256], small[20];

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct kds_request q = {.kind = cases[i].kind, .product = cases[i].product};
		ck_assert_int_eq(kds_cache_key(&q, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, cases[i].key);
	}
	ck_assert_int_eq(kds_cache_key(&turin, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Turin-1e550a8ee5cf9f4d-5100000004010101");
	ck_assert_int_eq(kds_cache_key(&milan, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Milan-" H64 "-7308000000000003");
	/* A different TCB or chip is a different key. */
	milan.tcb = 0xdb18000000000004ull;
	ck_assert_int_eq(kds_cache_key(&milan, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Milan-" H64 "-db18000000000004");
	ck_assert_int_eq(kds_cache_key(&milan, small, sizeof(small)), -ENOSPC);
	ck_assert_str_eq(small, "");
	milan.hwid_len = 8;
	ck_assert_int_eq(kds_cache_key(&milan, buf, sizeof(buf)), -EINVAL);
	milan.product = SNP_PRODUCT_UNKNOWN;
	ck_assert_int_eq(kds_cache_key(&milan, buf, sizeof(buf)), -EINVAL);
}
END_TEST

static Suite *kds_suite(void)
{
	Suite *s = suite_create("kds");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_url_table);
	tcase_add_test(tc, test_parse_roundtrip);
	tcase_add_test(tc, test_parse_lenient_forms);
	tcase_add_test(tc, test_parse_hostile);
	tcase_add_test(tc, test_parse_overlong);
	tcase_add_test(tc, test_url_errors);
	tcase_add_test(tc, test_cache_key);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(kds_suite());
}
