/* SPDX-License-Identifier: Apache-2.0 */
/* test-certtable: GUIDs, build/parse round trips with real AMD certificates, hostile tables. */
#include "certtable.h"
#include "testutil.h"
#include "util.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

START_TEST(test_guids)
{
	/* The RFC 4122 strings of facts §6; the bytes must be the string's hex digits in order. */
	static const struct {
		enum certtable_kind kind;
		const char *uuid, *name;
	} cases[] = {
		{CERTTABLE_ARK, "c0b406a4-a803-4952-9743-3fb6014cd0ae", "ARK"},
		{CERTTABLE_ASK, "4ab7b379-bbac-4fe4-a02f-05aef327c782", "ASK"},
		{CERTTABLE_VCEK, "63da758d-e664-4564-adc5-f4b93be8accd", "VCEK"},
		{CERTTABLE_VLEK, "a8074bc2-a25a-483e-aae6-39c045a0b8a1", "VLEK"},
		{CERTTABLE_CRL, "92f81bc3-5811-4d3d-97ff-d19f88dc67ea", "CRL"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char hex[33];
		uint8_t want[16];
		size_t k = 0;
		const uint8_t *g;

		for (const char *p = cases[i].uuid; *p; p++)
			if (*p != '-')
				hex[k++] = *p;
		hex[k] = '\0';
		ck_assert_int_eq(hex_decode(hex, k, want, sizeof(want)), 0);
		g = certtable_guid(cases[i].kind);
		ck_assert_ptr_nonnull(g);
		ck_assert_mem_eq(g, want, 16);
		ck_assert_int_eq(certtable_kind_from_guid(want), cases[i].kind);
		ck_assert_str_eq(certtable_kind_name(cases[i].kind), cases[i].name);
	}
	{
		/* GSG's private "extra platform info" GUID and a byte-swapped ARK are unknown. */
		static const uint8_t gsg[16] = {0xec, 0xae, 0x0c, 0x0f, 0x95, 0x02, 0x43, 0xb1,
						0xaf, 0xa2, 0x0a, 0xe2, 0xe0, 0xd5, 0x65, 0xb6};
		static const uint8_t ark_le[16] = {0xa4, 0x06, 0xb4, 0xc0, 0x03, 0xa8, 0x52, 0x49,
						   0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};
		static const uint8_t zero[16] = {0};
		ck_assert_int_eq(certtable_kind_from_guid(gsg), CERTTABLE_UNKNOWN);
		ck_assert_int_eq(certtable_kind_from_guid(ark_le), CERTTABLE_UNKNOWN);
		ck_assert_int_eq(certtable_kind_from_guid(zero), CERTTABLE_UNKNOWN);
		ck_assert_ptr_null(certtable_guid(CERTTABLE_UNKNOWN));
		ck_assert_ptr_null(certtable_guid((enum certtable_kind)99));
		ck_assert_str_eq(certtable_kind_name(CERTTABLE_UNKNOWN), "UNKNOWN");
		ck_assert_str_eq(certtable_kind_name((enum certtable_kind)99), "UNKNOWN");
	}
}
END_TEST

START_TEST(test_npages)
{
	static const struct {
		size_t len, pages;
	} cases[] = {
		{0, 0},	    {1, 1},	{24, 1},    {4095, 1},
		{4096, 1},  {4097, 2},	{8192, 2},  {8193, 3},
		{16383, 4}, {16384, 4}, {16385, 5}, {SIZE_MAX, SIZE_MAX / 4096 + 1},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_msg(certtable_npages(cases[i].len) == cases[i].pages, "len %zu",
			      cases[i].len);
}
END_TEST

/* --- real certificates --- */

struct der {
	uint8_t *data;
	size_t len;
};

static void der_done(struct der *d)
{
	OPENSSL_free(d->data);
	d->data = NULL;
}

/* The n-th (0-based) certificate of a PEM file, re-encoded as DER. */
static struct der pem_nth_der(const char *rel, int nth)
{
	char path[4096];
	struct der d = {0};
	BIO *bio = BIO_new_file(test_data_path(rel, path, sizeof(path)), "r");
	X509 *x = NULL;
	int len;

	ck_assert_msg(bio, "cannot open %s", path);
	for (int i = 0; i <= nth; i++) {
		X509_free(x);
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		ck_assert_msg(x, "%s: no certificate #%d", rel, i);
	}
	len = i2d_X509(x, &d.data);
	ck_assert_int_gt(len, 0);
	d.len = (size_t)len;
	X509_free(x);
	BIO_free(bio);
	return d;
}

static struct der file_der(const char *rel)
{
	struct der d;
	uint8_t *raw = test_read_data(rel, &d.len);

	/* Copy into OpenSSL memory so every struct der is freed the same way. */
	d.data = OPENSSL_memdup(raw, d.len);
	ck_assert_ptr_nonnull(d.data);
	free(raw);
	return d;
}

static struct der leaf_der(const char *rel)
{
	size_t n = strlen(rel);

	if (n > 4 && strcmp(rel + n - 4, ".pem") == 0)
		return pem_nth_der(rel, 0);
	return file_der(rel);
}

/* Parses DER back into an X509 to prove the bytes survived intact. */
static void assert_is_cert(const uint8_t *p, size_t len, const struct der *want)
{
	const uint8_t *q = p;
	X509 *x = d2i_X509(NULL, &q, (long)len);

	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq((size_t)(q - p), len);
	X509_free(x);
	ck_assert_uint_eq(len, want->len);
	ck_assert_mem_eq(p, want->data, len);
}

START_TEST(test_roundtrip_real_chain)
{
	static const struct {
		const char *chain, *leaf;
		enum certtable_kind leaf_kind;
		size_t pages;
	} cases[] = {
		{"amd/milan/cert_chain.pem", "amd/milan/report-v3.vcek.der", CERTTABLE_VCEK, 2},
		{"amd/milan/cert_chain.pem", "amd/milan/report-v2.vcek.der", CERTTABLE_VCEK, 2},
		{"amd/milan/vlek_cert_chain.pem", "amd/milan/report-vlek.vlek.der", CERTTABLE_VLEK,
		 2},
		{"amd/genoa/cert_chain.pem", "amd/genoa/vcek.pem", CERTTABLE_VCEK, 2},
		{"amd/turin/cert_chain.pem", "amd/turin/vcek.der", CERTTABLE_VCEK, 2},
	};
	for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
		/* KDS cert_chain is ASK (or ASVK) first, then ARK (facts §7). */
		struct der ask = pem_nth_der(cases[c].chain, 0);
		struct der ark = pem_nth_der(cases[c].chain, 1);
		struct der leaf = leaf_der(cases[c].leaf);
		const struct der *ders[] = {&ark, &ask, &leaf};
		struct certtable_entry in[3] =
			{
				{.data = ark.data, .length = (uint32_t)ark.len},
				{.data = ask.data, .length = (uint32_t)ask.len},
				{.data = leaf.data, .length = (uint32_t)leaf.len},
			},
				       out[CERTTABLE_MAX_ENTRIES];
		_cleanup_(freep) uint8_t *buf = NULL;
		size_t len = 0, n = 0, expect_off = 4 * CERTTABLE_ENTRY_SIZE;

		memcpy(in[0].guid, certtable_guid(CERTTABLE_ARK), 16);
		memcpy(in[1].guid, certtable_guid(CERTTABLE_ASK), 16);
		memcpy(in[2].guid, certtable_guid(cases[c].leaf_kind), 16);
		ck_assert_int_eq(certtable_build(in, 3, &buf, &len), 0);
		ck_assert_uint_eq(len, 4 * 24 + ark.len + ask.len + leaf.len);
		ck_assert_msg(certtable_npages(len) == cases[c].pages, "%s: %zu bytes",
			      cases[c].leaf, len);
		ck_assert(mem_is_zero(buf + 3 * 24, 24)); /* terminator */

		ck_assert_int_eq(certtable_parse(buf, len, out, ELEMENTSOF(out), &n), 0);
		ck_assert_uint_eq(n, 3);
		for (size_t i = 0; i < 3; i++) {
			ck_assert_mem_eq(out[i].guid, in[i].guid, 16);
			ck_assert_uint_eq(out[i].offset, expect_off); /* packed back to back */
			ck_assert_uint_eq(get_le32(buf + 24 * i + 16), expect_off);
			ck_assert_uint_eq(get_le32(buf + 24 * i + 20), ders[i]->len);
			ck_assert_ptr_eq(out[i].data, buf + expect_off);
			assert_is_cert(out[i].data, out[i].length, ders[i]);
			expect_off += ders[i]->len;
		}
		ck_assert_ptr_eq(certtable_find(out, n, cases[c].leaf_kind), &out[2]);
		ck_assert_ptr_eq(certtable_find(out, n, CERTTABLE_ARK), &out[0]);
		ck_assert_ptr_null(certtable_find(out, n, CERTTABLE_CRL));

		/* The guest hands us whole pages: zero padding after the data is fine. */
		{
			size_t padded = certtable_npages(len) * CERTTABLE_PAGE_SIZE;
			_cleanup_(freep) uint8_t *page = calloc(1, padded);
			ck_assert_ptr_nonnull(page);
			memcpy(page, buf, len);
			ck_assert_int_eq(certtable_parse(page, padded, out, ELEMENTSOF(out), &n),
					 0);
			ck_assert_uint_eq(n, 3);
		}
		der_done(&ask);
		der_done(&ark);
		der_done(&leaf);
	}
}
END_TEST

START_TEST(test_empty_table)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	struct certtable_entry out[1];
	size_t len = 0, n = 99;

	ck_assert_int_eq(certtable_build(NULL, 0, &buf, &len), 0);
	ck_assert_uint_eq(len, 24);
	ck_assert(mem_is_zero(buf, 24));
	ck_assert_int_eq(certtable_parse(buf, len, out, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(certtable_npages(len), 1);
}
END_TEST

START_TEST(test_build_errors)
{
	static uint8_t blob[CERTTABLE_MAX_SIZE];
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES + 1];
	_cleanup_(freep) uint8_t *buf = NULL;
	size_t len = 4242;

	memset(e, 0, sizeof(e));
	for (size_t i = 0; i < ELEMENTSOF(e); i++) {
		memset(e[i].guid, 0x10 + (int)i, 16);
		e[i].data = blob;
		e[i].length = 100;
	}
	/* 16 entries of 100 bytes: fine. */
	ck_assert_int_eq(certtable_build(e, CERTTABLE_MAX_ENTRIES, &buf, &len), 0);
	ck_assert_uint_eq(len, 17 * 24 + 1600);
	free(buf);
	buf = NULL;
	len = 4242;

	ck_assert_int_eq(certtable_build(e, CERTTABLE_MAX_ENTRIES + 1, &buf, &len), -EINVAL);
	{
		struct certtable_entry bad[2];
		memcpy(bad, e, sizeof(bad));
		memset(bad[1].guid, 0, 16);
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -EINVAL); /* null GUID */
		memcpy(bad, e, sizeof(bad));
		memcpy(bad[1].guid, bad[0].guid, 16);
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -EINVAL); /* duplicate */
		memcpy(bad, e, sizeof(bad));
		bad[1].length = 0;
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -EINVAL); /* empty cert */
		memcpy(bad, e, sizeof(bad));
		bad[0].data = NULL;
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -EINVAL);
		/* exactly 16 KiB is allowed, one byte more is not */
		memcpy(bad, e, sizeof(bad));
		bad[0].length = CERTTABLE_MAX_SIZE - 3 * 24 - 100;
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), 0);
		ck_assert_uint_eq(len, CERTTABLE_MAX_SIZE);
		free(buf);
		buf = NULL;
		len = 4242;
		bad[0].length++;
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -E2BIG);
		bad[0].length = UINT32_MAX;
		ck_assert_int_eq(certtable_build(bad, 2, &buf, &len), -E2BIG);
	}
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 4242);
}
END_TEST

/* --- hostile tables --- */

enum { T_ARK, T_ASK, T_VCEK, T_NULL, T_ZERO_ENTRY };

struct raw_entry {
	int guid; /* T_* (T_ZERO_ENTRY writes the all-zero terminator) */
	uint32_t offset, length;
};

static void put_entry(uint8_t *p, const struct raw_entry *e)
{
	memset(p, 0, 24);
	if (e->guid == T_ZERO_ENTRY)
		return;
	if (e->guid != T_NULL)
		memcpy(p,
		       certtable_guid(e->guid == T_ARK	 ? CERTTABLE_ARK
				      : e->guid == T_ASK ? CERTTABLE_ASK
							 : CERTTABLE_VCEK),
		       16);
	put_le32(p + 16, e->offset);
	put_le32(p + 20, e->length);
}

START_TEST(test_hostile_tables)
{
#define E(g, o, l)                                                                                 \
	{                                                                                          \
		g, o, l                                                                            \
	}
#define TERM                                                                                       \
	{                                                                                          \
		T_ZERO_ENTRY, 0, 0                                                                 \
	}
	static const struct {
		const char *what;
		size_t len;
		struct raw_entry e[5];
		size_t ne;
		int ret;
		size_t n; /* entries on success */
	} cases[] = {
		{"valid, one cert", 200, {E(T_ARK, 48, 100), TERM}, 2, 0, 1},
		{"valid, cert ends at len", 148, {E(T_ARK, 48, 100), TERM}, 2, 0, 1},
		{"valid, adjacent certs",
		 300,
		 {E(T_ARK, 72, 100), E(T_ASK, 172, 100), TERM},
		 3,
		 0,
		 2},
		{"valid, reversed order with gap",
		 300,
		 {E(T_ARK, 200, 50), E(T_ASK, 72, 10), TERM},
		 3,
		 0,
		 2},
		{"empty buffer", 0, {TERM}, 0, -EMSGSIZE, 0},
		{"23 bytes", 23, {TERM}, 0, -EMSGSIZE, 0},
		{"over 16 KiB", CERTTABLE_MAX_SIZE + 1, {TERM}, 1, -EFBIG, 0},
		{"missing terminator, exact fit", 24, {E(T_ARK, 24, 0)}, 1, -EBADMSG, 0},
		{"missing terminator, tail too short", 47, {E(T_ARK, 24, 1)}, 1, -EBADMSG, 0},
		{"null GUID with offset", 200, {E(T_NULL, 48, 10), TERM}, 2, -EBADMSG, 0},
		{"null GUID with length only", 200, {E(T_NULL, 0, 10), TERM}, 2, -EBADMSG, 0},
		{"zero length", 200, {E(T_ARK, 48, 0), TERM}, 2, -ENODATA, 0},
		{"offset+length wraps u32",
		 200,
		 {E(T_ARK, 0xfffffff0u, 0x20), TERM},
		 2,
		 -EOVERFLOW,
		 0},
		{"max offset and length",
		 200,
		 {E(T_ARK, 0xffffffffu, 0xffffffffu), TERM},
		 2,
		 -EOVERFLOW,
		 0},
		{"offset 0 (the table itself)", 200, {E(T_ARK, 0, 24), TERM}, 2, -EFAULT, 0},
		{"offset on the terminator", 200, {E(T_ARK, 24, 24), TERM}, 2, -EFAULT, 0},
		{"offset one byte short of data", 200, {E(T_ARK, 47, 10), TERM}, 2, -EFAULT, 0},
		{"second entry points into header",
		 300,
		 {E(T_ARK, 72, 10), E(T_ASK, 60, 5), TERM},
		 3,
		 -EFAULT,
		 0},
		{"length one past end", 148, {E(T_ARK, 48, 101), TERM}, 2, -ERANGE, 0},
		{"offset at end", 148, {E(T_ARK, 148, 1), TERM}, 2, -ERANGE, 0},
		{"offset far away", 200, {E(T_ARK, 0x7fff0000u, 1), TERM}, 2, -ERANGE, 0},
		{"huge length", 200, {E(T_ARK, 48, 0x7fffffffu), TERM}, 2, -ERANGE, 0},
		{"duplicate GUIDs",
		 300,
		 {E(T_ASK, 72, 10), E(T_ASK, 100, 10), TERM},
		 3,
		 -ENOTUNIQ,
		 0},
		{"overlap by one byte",
		 300,
		 {E(T_ARK, 72, 10), E(T_ASK, 81, 10), TERM},
		 3,
		 -EADDRINUSE,
		 0},
		{"same range twice",
		 300,
		 {E(T_ARK, 72, 10), E(T_ASK, 72, 10), TERM},
		 3,
		 -EADDRINUSE,
		 0},
		{"one inside another",
		 300,
		 {E(T_ARK, 96, 100), E(T_ASK, 120, 4), E(T_VCEK, 250, 4), TERM},
		 4,
		 -EADDRINUSE,
		 0},
		{"later entry overlaps earlier",
		 300,
		 {E(T_ARK, 150, 50), E(T_ASK, 100, 51), TERM},
		 3,
		 -EADDRINUSE,
		 0},
	};
#undef E
#undef TERM
	static uint8_t buf[CERTTABLE_MAX_SIZE + 1];

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct certtable_entry out[CERTTABLE_MAX_ENTRIES];
		size_t n = 4242;
		int r;

		memset(buf, 0xa5, sizeof(buf)); /* certificate bytes: non-zero filler */
		for (size_t j = 0; j < cases[i].ne; j++)
			if (24 * (j + 1) <= cases[i].len)
				put_entry(buf + 24 * j, &cases[i].e[j]);
		if (cases[i].ret == -EFBIG)
			memset(buf, 0, 24); /* would be a valid empty table if not for the size */
		memset(out, 0x5c, sizeof(out));
		r = certtable_parse(buf, cases[i].len, out, ELEMENTSOF(out), &n);
		ck_assert_msg(r == cases[i].ret, "%s: got %d (%s), want %d", cases[i].what, r,
			      snp_strerror(r), cases[i].ret);
		if (r == 0) {
			ck_assert_uint_eq(n, cases[i].n);
			for (size_t j = 0; j < n; j++) {
				ck_assert_uint_eq(out[j].offset, cases[i].e[j].offset);
				ck_assert_uint_eq(out[j].length, cases[i].e[j].length);
				ck_assert_ptr_eq(out[j].data, buf + cases[i].e[j].offset);
			}
		} else {
			ck_assert_uint_eq(n, 4242);
			ck_assert_uint_eq(out[0].guid[0], 0x5c); /* outputs untouched on failure */
		}
	}
}
END_TEST

START_TEST(test_hostile_counts)
{
	static uint8_t buf[CERTTABLE_MAX_SIZE];
	struct certtable_entry out[CERTTABLE_MAX_ENTRIES];
	size_t n = 4242, hdr = 24 * (CERTTABLE_MAX_ENTRIES + 1);

	/* 16 KiB of 0xff: 682 "entries", no terminator; the walk stops at the cap. */
	memset(buf, 0xff, sizeof(buf));
	ck_assert_int_eq(certtable_parse(buf, sizeof(buf), out, ELEMENTSOF(out), &n), -E2BIG);

	/* Exactly 16 valid entries parse; 17 are too many even if each is well formed. */
	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < CERTTABLE_MAX_ENTRIES; i++) {
		memset(buf + 24 * i, (int)(0x20 + i), 16);
		put_le32(buf + 24 * i + 16, (uint32_t)(hdr + 10 * i));
		put_le32(buf + 24 * i + 20, 10);
	}
	ck_assert_int_eq(certtable_parse(buf, hdr + 160, out, ELEMENTSOF(out), &n), 0);
	ck_assert_uint_eq(n, CERTTABLE_MAX_ENTRIES);
	ck_assert_uint_eq(out[15].offset, hdr + 150);

	/* A smaller caller array is a distinct error. */
	n = 4242;
	ck_assert_int_eq(certtable_parse(buf, hdr + 160, out, 15, &n), -ENOSPC);
	ck_assert_uint_eq(n, 4242);

	memmove(buf + 24, buf, 24 * CERTTABLE_MAX_ENTRIES);
	memset(buf, 0x7e, 16);
	put_le32(buf + 16, (uint32_t)(hdr + 24 + 160));
	put_le32(buf + 20, 10);
	ck_assert_int_eq(certtable_parse(buf, sizeof(buf), out, ELEMENTSOF(out), &n), -E2BIG);
	ck_assert_uint_eq(n, 4242);
}
END_TEST

static Suite *certtable_suite(void)
{
	Suite *s = suite_create("certtable");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_guids);
	tcase_add_test(tc, test_npages);
	tcase_add_test(tc, test_roundtrip_real_chain);
	tcase_add_test(tc, test_empty_table);
	tcase_add_test(tc, test_build_errors);
	tcase_add_test(tc, test_hostile_tables);
	tcase_add_test(tc, test_hostile_counts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(certtable_suite());
}
