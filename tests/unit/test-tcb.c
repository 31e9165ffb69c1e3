/* SPDX-License-Identifier: Apache-2.0 */
/* test-tcb: product identification and both TCB_VERSION layouts (facts §4, §4.1). */
#include "tcb.h"
#include "testutil.h"
#include "util.h"

#define MILAN SNP_PRODUCT_MILAN
#define GENOA SNP_PRODUCT_GENOA
#define TURIN SNP_PRODUCT_TURIN
#define UNKNOWN SNP_PRODUCT_UNKNOWN

START_TEST(test_product_names)
{
	static const struct {
		enum snp_product p;
		const char *name;
		size_t hwid_len;
		bool fmc;
	} cases[] = {
		{MILAN, "Milan", 64, false},
		{GENOA, "Genoa", 64, false},
		{TURIN, "Turin", 8, true},
		{UNKNOWN, "unknown", 0, false},
		{_SNP_PRODUCT_MAX, "unknown", 0, false},
		{(enum snp_product)77, "unknown", 0, false},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ck_assert_str_eq(snp_product_name(cases[i].p), cases[i].name);
		ck_assert_uint_eq(snp_product_hwid_len(cases[i].p), cases[i].hwid_len);
		ck_assert_int_eq(snp_product_has_fmc(cases[i].p), cases[i].fmc);
	}
}
END_TEST

START_TEST(test_product_from_string)
{
	static const struct {
		const char *s;
		int ret;
		enum snp_product p;
	} cases[] = {
		{"Milan", 0, MILAN},	 {"milan", 0, MILAN},	  {"GENOA", 0, GENOA},
		{"Turin", 0, TURIN},	 {"tUrIn", 0, TURIN},	  {"", -EINVAL, 0},
		{"unknown", -EINVAL, 0}, {"Milan ", -EINVAL, 0},  {"Mila", -EINVAL, 0},
		{"Venice", -EINVAL, 0},	 {"Turin\n", -EINVAL, 0}, {NULL, -EINVAL, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		enum snp_product p = (enum snp_product)99;
		int r = snp_product_from_string(cases[i].s, &p);

		ck_assert_msg(r == cases[i].ret, "case %zu: %d", i, r);
		if (r == 0)
			ck_assert_int_eq(p, cases[i].p);
		else
			ck_assert_int_eq(p, 99); /* untouched on failure */
	}
	/* name -> string -> product is the identity for every known product */
	for (int p = MILAN; p < _SNP_PRODUCT_MAX; p++) {
		enum snp_product back;
		ck_assert_int_eq(snp_product_from_string(snp_product_name(p), &back), 0);
		ck_assert_int_eq(back, p);
	}
}
END_TEST

START_TEST(test_product_from_cpuid)
{
	static const struct {
		uint8_t family, model;
		int ret;
		enum snp_product p;
	} cases[] = {
		{0x19, 0x00, 0, MILAN},	  {0x19, 0x01, 0, MILAN}, /* observed 19/01/01 */
		{0x19, 0x0f, 0, MILAN},	  {0x19, 0x10, 0, GENOA},
		{0x19, 0x11, 0, GENOA},	  /* observed */ {0x19, 0x1f, 0, GENOA},
		{0x19, 0xa0, 0, GENOA},	  /* Bergamo/Siena */ {0x19, 0xaf, 0, GENOA},
		{0x19, 0x20, -ENOENT, 0}, {0x19, 0x9f, -ENOENT, 0},
		{0x19, 0xb0, -ENOENT, 0}, {0x19, 0xff, -ENOENT, 0},
		{0x1a, 0x00, 0, TURIN},	  {0x1a, 0x02, 0, TURIN}, /* observed 1A/02/01 */
		{0x1a, 0x11, 0, TURIN},	  {0x1a, 0x12, -ENOENT, 0},
		{0x1a, 0x50, -ENOENT, 0}, /* Venice */ {0x1a, 0xc0, -ENOENT, 0},
		{0x17, 0x31, -ENOENT, 0}, /* Rome: no SNP */ {0x00, 0x00, -ENOENT, 0},
		{0xff, 0xff, -ENOENT, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		enum snp_product p = (enum snp_product)99;
		int r = snp_product_from_cpuid(cases[i].family, cases[i].model, &p);

		ck_assert_msg(r == cases[i].ret, "case %zu: %d", i, r);
		ck_assert_int_eq(p, r == 0 ? cases[i].p : 99);
	}
}
END_TEST

START_TEST(test_tcb_decode_known)
{
	static const struct {
		uint64_t raw;
		enum snp_product p;
		struct tcb_version t;
	} cases[] = {
		/* Milan report-v2 REPORTED_TCB, matching its VCEK (facts §4.1) */
		{0x7308000000000003ull, MILAN, {.bootloader = 3, .snp = 8, .microcode = 0x73}},
		/* Milan report-v3 REPORTED_TCB */
		{0xdb18000000000004ull, MILAN, {.bootloader = 4, .snp = 0x18, .microcode = 0xdb}},
		/* Genoa uses the same layout */
		{0xdb18000000000004ull, GENOA, {.bootloader = 4, .snp = 0x18, .microcode = 0xdb}},
		/* Turin bytes 01 01 01 04 00 00 00 51 */
		{0x5100000004010101ull,
		 TURIN,
		 {.fmc = 1, .bootloader = 1, .tee = 1, .snp = 4, .microcode = 0x51}},
		/* the same bytes read with the legacy layout land in different fields */
		{0x5100000004010101ull,
		 MILAN,
		 {.bootloader = 1, .tee = 1, .reserved = {1, 4, 0, 0}, .microcode = 0x51}},
		/* reserved bytes are kept, byte order checked */
		{0x0807060504030201ull,
		 MILAN,
		 {.bootloader = 1, .tee = 2, .reserved = {3, 4, 5, 6}, .snp = 7, .microcode = 8}},
		{0x0807060504030201ull,
		 TURIN,
		 {.fmc = 1,
		  .bootloader = 2,
		  .tee = 3,
		  .snp = 4,
		  .reserved = {5, 6, 7, 0},
		  .microcode = 8}},
		/* unknown product: legacy layout */
		{0x7308000000000003ull, UNKNOWN, {.bootloader = 3, .snp = 8, .microcode = 0x73}},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct tcb_version t;

		memset(&t, 0xaa, sizeof(t));
		tcb_decode(cases[i].raw, cases[i].p, &t);
		ck_assert_msg(memcmp(&t, &cases[i].t, sizeof(t)) == 0, "case %zu", i);
		ck_assert_uint_eq(tcb_encode(&t, cases[i].p), cases[i].raw);
	}
}
END_TEST

START_TEST(test_tcb_roundtrip_lossless)
{
	static const enum snp_product products[] = {UNKNOWN, MILAN, GENOA, TURIN};
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t pi = 0; pi < ELEMENTSOF(products); pi++)
		for (int i = 0; i < 4096; i++) {
			struct tcb_version t;

			/* xorshift64: a reproducible spread over all bit patterns */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			tcb_decode(x, products[pi], &t);
			ck_assert_uint_eq(tcb_encode(&t, products[pi]), x);
			tcb_decode(~x, products[pi], &t);
			ck_assert_uint_eq(tcb_encode(&t, products[pi]), ~x);
		}
}
END_TEST

START_TEST(test_tcb_encode_ignores_foreign_fields)
{
	struct tcb_version t = {.fmc = 9, .bootloader = 3, .snp = 8, .microcode = 0x73};
	struct tcb_version u = {.fmc = 1,
				.bootloader = 1,
				.tee = 1,
				.snp = 4,
				.reserved = {0, 0, 0, 0xee},
				.microcode = 0x51};

	ck_assert_uint_eq(tcb_encode(&t, MILAN), 0x7308000000000003ull); /* no fmc in legacy */
	ck_assert_uint_eq(tcb_encode(&u, TURIN), 0x5100000004010101ull); /* reserved[3] unused */
}
END_TEST

START_TEST(test_tcb_le)
{
	static const struct {
		uint64_t a, b;
		enum snp_product p;
		bool le;
	} cases[] = {
		{0x7308000000000003ull, 0x7308000000000003ull, MILAN, true},
		{0x7308000000000003ull, 0xdb18000000000004ull, MILAN, true},
		{0xdb18000000000004ull, 0x7308000000000003ull, MILAN, false},
		/* one component newer, another older: not <= either way */
		{0x7308000000000004ull, 0xdb08000000000003ull, MILAN, false},
		{0xdb08000000000003ull, 0x7308000000000004ull, MILAN, false},
		/* reserved bytes are not compared */
		{0x73080000ff000003ull, 0x7308000000000003ull, MILAN, true},
		/* Turin: fmc counts */
		{0x5100000004010102ull, 0x5100000004010101ull, TURIN, false},
		{0x5100000004010101ull, 0x5100000004010102ull, TURIN, true},
		{0x5100000005010101ull, 0x5100000004010101ull, TURIN, false},
		{0x5100000004010101ull, 0x5200000004010101ull, TURIN, true},
		{0, 0, TURIN, true},
		/* byte 3 is snp on Turin but reserved on Milan */
		{0x0000000005000000ull, 0, MILAN, true},
		{0x0000000005000000ull, 0, TURIN, false},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_msg(tcb_le(cases[i].a, cases[i].b, cases[i].p) == cases[i].le, "case %zu",
			      i);
}
END_TEST

START_TEST(test_tcb_format)
{
	static const struct {
		uint64_t raw;
		enum snp_product p;
		const char *s;
	} cases[] = {
		{0x7308000000000003ull, MILAN, "bl=3 tee=0 snp=8 ucode=115"},
		{0xdb18000000000004ull, GENOA, "bl=4 tee=0 snp=24 ucode=219"},
		{0x5100000004010101ull, TURIN, "fmc=1 bl=1 tee=1 snp=4 ucode=81"},
		{UINT64_MAX, TURIN, "fmc=255 bl=255 tee=255 snp=255 ucode=255"},
		{0, UNKNOWN, "bl=0 tee=0 snp=0 ucode=0"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[TCB_FORMAT_MAX];

		ck_assert_ptr_eq(tcb_format(cases[i].raw, cases[i].p, buf, sizeof(buf)), buf);
		ck_assert_str_eq(buf, cases[i].s);
		ck_assert_uint_lt(strlen(buf), TCB_FORMAT_MAX);
	}
}
END_TEST

START_TEST(test_tcb_format_truncates)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	tcb_format(0x7308000000000003ull, MILAN, buf, sizeof(buf));
	ck_assert_str_eq(buf, "bl=3 te");
	ck_assert_ptr_null(tcb_format(0, MILAN, NULL, 0));
}
END_TEST

START_TEST(test_tcb_parse)
{
	static const struct {
		const char *s;
		enum snp_product p;
		int ret;
		uint64_t raw;
	} cases[] = {
		{"7308000000000003", MILAN, 0, 0x7308000000000003ull},
		{"0x7308000000000003", MILAN, 0, 0x7308000000000003ull},
		{"0X73080000000000AB", MILAN, 0, 0x73080000000000abull},
		{"0x3", MILAN, 0, 3},
		{"bl=3,tee=0,snp=8,ucode=115", MILAN, 0, 0x7308000000000003ull},
		{"ucode=0x73, snp=8, tee=0, bl=3", GENOA, 0, 0x7308000000000003ull},
		{"bl=3 tee=0 snp=8 ucode=115", MILAN, 0, 0x7308000000000003ull},
		{"bl=1,tee=1,snp=4,ucode=81,fmc=1", TURIN, 0, 0x5100000004010101ull},
		{"fmc=1 bl=1 tee=1 snp=4 ucode=0x51", TURIN, 0, 0x5100000004010101ull},
		{"BL=255,TEE=255,SNP=255,UCODE=255", MILAN, 0, 0xffff00000000ffffull},
		{"bl=3,tee=0,snp=8,ucode=115", UNKNOWN, 0, 0x7308000000000003ull},
		/* hostile or malformed */
		{"", MILAN, -EINVAL, 0},
		{"0x", MILAN, -EINVAL, 0},
		{"730800000000003", MILAN, -EINVAL, 0},	    /* 15 digits, no prefix */
		{"73080000000000030", MILAN, -EINVAL, 0},   /* 17 digits */
		{"0x73080000000000030", MILAN, -EINVAL, 0}, /* 17 digits */
		{"730800000000000g", MILAN, -EINVAL, 0},
		{" 7308000000000003", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8", MILAN, -EINVAL, 0},		/* missing ucode */
		{"bl=3,tee=0,snp=8,ucode=115,bl=3", MILAN, -EINVAL, 0}, /* duplicate */
		{"bl=3,tee=0,snp=8,ucode=256", MILAN, -EINVAL, 0},	/* out of range */
		{"bl=3,tee=0,snp=8,ucode=-1", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode=", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode=0x", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode=1a", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode=00115", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode=115,fmc=1", MILAN, -EINVAL, 0}, /* no fmc on Milan */
		{"bl=1,tee=1,snp=4,ucode=81", TURIN, -EINVAL, 0},	 /* fmc required */
		{"bl=3,tee=0,snp=8,ucode=115,spl4=1", MILAN, -EINVAL, 0},
		{"bl=3,tee=0,snp=8,ucode", MILAN, -EINVAL, 0},
		{"bl==3,tee=0,snp=8,ucode=1", MILAN, -EINVAL, 0},
		{"=3", MILAN, -EINVAL, 0},
		{"bl=3;tee=0;snp=8;ucode=1", MILAN, -EINVAL, 0},
		{NULL, MILAN, -EINVAL, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint64_t v = 0x5a5a5a5a5a5a5a5aull;
		int r = tcb_parse(cases[i].s, cases[i].p, &v);

		ck_assert_msg(r == cases[i].ret, "case %zu (%s): %d", i,
			      cases[i].s ? cases[i].s : "NULL", r);
		ck_assert_uint_eq(v, r == 0 ? cases[i].raw : 0x5a5a5a5a5a5a5a5aull);
	}
}
END_TEST

START_TEST(test_tcb_format_parse_roundtrip)
{
	static const enum snp_product products[] = {MILAN, GENOA, TURIN};
	static const uint64_t values[] = {0x7308000000000003ull, 0xdb18000000000004ull,
					  0x5100000004010101ull, 0xff000000ffffffffull, 0};

	for (size_t pi = 0; pi < ELEMENTSOF(products); pi++)
		for (size_t i = 0; i < ELEMENTSOF(values); i++) {
			struct tcb_version t;
			char buf[TCB_FORMAT_MAX];
			uint64_t back;

			/* only the named components survive text form: clear the reserved bytes */
			tcb_decode(values[i], products[pi], &t);
			memset(t.reserved, 0, sizeof(t.reserved));
			uint64_t v = tcb_encode(&t, products[pi]);
			tcb_format(v, products[pi], buf, sizeof(buf));
			ck_assert_int_eq(tcb_parse(buf, products[pi], &back), 0);
			ck_assert_uint_eq(back, v);
		}
}
END_TEST

static Suite *tcb_suite(void)
{
	Suite *s = suite_create("tcb");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_product_names);
	tcase_add_test(tc, test_product_from_string);
	tcase_add_test(tc, test_product_from_cpuid);
	tcase_add_test(tc, test_tcb_decode_known);
	tcase_add_test(tc, test_tcb_roundtrip_lossless);
	tcase_add_test(tc, test_tcb_encode_ignores_foreign_fields);
	tcase_add_test(tc, test_tcb_le);
	tcase_add_test(tc, test_tcb_format);
	tcase_add_test(tc, test_tcb_format_truncates);
	tcase_add_test(tc, test_tcb_parse);
	tcase_add_test(tc, test_tcb_format_parse_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(tcb_suite());
}
