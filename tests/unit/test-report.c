/* SPDX-License-Identifier: Apache-2.0 */
/* test-report: ATTESTATION_REPORT codec and signatures on real AMD reports and synthetic ones. */
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "report.h"
#include "testutil.h"
#include "util.h"

struct sample {
	const char *report;
	const char *cert;
	uint32_t version;
	uint8_t signing_key;
	uint64_t reported_tcb;
	int product_ret; /* report_product() */
	enum snp_product product;
};

static const struct sample samples[] = {
	{"amd/milan/report-v2.bin", "amd/milan/report-v2.vcek.der", 2, REPORT_SIGNING_KEY_VCEK,
	 0x7308000000000003ull, -ENOENT, 0}, /* v2: Milan/Genoa indistinguishable */
	{"amd/milan/report-v3.bin", "amd/milan/report-v3.vcek.der", 3, REPORT_SIGNING_KEY_VCEK,
	 0xdb18000000000004ull, 0, SNP_PRODUCT_MILAN},
	{"amd/milan/report-vlek.bin", "amd/milan/report-vlek.vlek.der", 3, REPORT_SIGNING_KEY_VLEK,
	 0xd918000000000004ull, 0, SNP_PRODUCT_MILAN},
};

static uint8_t *load_report(const struct sample *s)
{
	size_t len;
	uint8_t *buf = test_read_data(s->report, &len);

	ck_assert_uint_eq(len, REPORT_SIZE);
	return buf;
}

/* The public key of a DER certificate from the test data (caller frees). */
static EVP_PKEY *load_cert_key(const char *rel)
{
	size_t len;
	uint8_t *der = test_read_data(rel, &len);
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	EVP_PKEY *k;

	ck_assert_msg(x, "cannot parse %s", rel);
	k = X509_get_pubkey(x);
	ck_assert(k);
	X509_free(x);
	free(der);
	return k;
}

static EVP_PKEY *gen_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	ck_assert(k);
	return k;
}

/* Every field, one by one (memcmp of structs would compare padding). */
static void assert_report_eq(const struct report *a, const struct report *b)
{
#define EQ(f) ck_assert_msg(a->f == b->f, "field " #f)
#define MEQ(f) ck_assert_msg(memcmp(a->f, b->f, sizeof(a->f)) == 0, "field " #f)
	EQ(version);
	EQ(guest_svn);
	EQ(policy);
	MEQ(family_id);
	MEQ(image_id);
	EQ(vmpl);
	EQ(signature_algo);
	EQ(current_tcb);
	EQ(platform_info);
	EQ(signer_info);
	EQ(author_key_en);
	EQ(mask_chip_key);
	EQ(signing_key);
	MEQ(report_data);
	MEQ(measurement);
	MEQ(host_data);
	MEQ(id_key_digest);
	MEQ(author_key_digest);
	MEQ(report_id);
	MEQ(report_id_ma);
	EQ(reported_tcb);
	EQ(cpuid_fam_id);
	EQ(cpuid_mod_id);
	EQ(cpuid_step);
	MEQ(chip_id);
	EQ(committed_tcb);
	EQ(current_build);
	EQ(current_minor);
	EQ(current_major);
	EQ(committed_build);
	EQ(committed_minor);
	EQ(committed_major);
	EQ(launch_tcb);
	EQ(launch_mit_vector);
	EQ(current_mit_vector);
	MEQ(sig_r);
	MEQ(sig_s);
#undef EQ
#undef MEQ
}

START_TEST(test_real_parse_roundtrip_verify)
{
	const struct sample *s = &samples[_i];
	uint8_t *buf = load_report(s);
	EVP_PKEY *key = load_cert_key(s->cert);
	uint8_t out[REPORT_SIZE];
	struct report r, r2;
	enum snp_product p = (enum snp_product)99;

	ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), 0);
	ck_assert_uint_eq(r.version, s->version);
	ck_assert_uint_eq(r.signing_key, s->signing_key);
	ck_assert_uint_eq(r.reported_tcb, s->reported_tcb);
	ck_assert_uint_eq(r.signature_algo, REPORT_SIG_ALGO_ECDSA_P384_SHA384);
	ck_assert_uint_eq(r.signer_info, (uint32_t)s->signing_key << 2);
	ck_assert_uint_eq(r.launch_mit_vector, 0);
	if (s->version >= 3) {
		ck_assert_uint_eq(r.cpuid_fam_id, 0x19);
		ck_assert_uint_eq(r.cpuid_mod_id, 0x01);
		ck_assert_uint_eq(r.cpuid_step, 0x01);
	}
	ck_assert_int_eq(report_product(&r, &p), s->product_ret);
	ck_assert_int_eq(p, s->product_ret == 0 ? s->product : 99);

	ck_assert_int_eq(report_serialise(&r, out), 0);
	ck_assert_msg(memcmp(out, buf, REPORT_SIZE) == 0, "%s: round trip differs", s->report);
	ck_assert_int_eq(report_parse(out, REPORT_SIZE, &r2), 0);
	assert_report_eq(&r, &r2);

	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), 0);
	EVP_PKEY_free(key);
	free(buf);
}
END_TEST

START_TEST(test_real_field_values)
{
	/* spot checks against hexdumps of the samples (facts §4 offsets) */
	uint8_t *v2 = load_report(&samples[0]), *vl = load_report(&samples[2]);
	struct report a, b;

	ck_assert_int_eq(report_parse(v2, REPORT_SIZE, &a), 0);
	ck_assert_uint_eq(a.guest_svn, 4);
	ck_assert_uint_eq(a.policy, 0x3001full);
	ck_assert_uint_eq(a.current_tcb, 0xce08000000000003ull);
	ck_assert_uint_eq(a.platform_info, 1);
	ck_assert_uint_eq(a.family_id[0], 1);
	ck_assert_uint_eq(a.image_id[0], 2);
	ck_assert_uint_eq(a.report_data[0], 0xec);
	ck_assert_uint_eq(a.measurement[0], 0xa1);
	ck_assert_uint_eq(a.id_key_digest[0], 0x03);
	ck_assert_uint_eq(a.report_id[0], 0x38);
	ck_assert_uint_eq(a.report_id_ma[31], 0xff);
	ck_assert_uint_eq(a.chip_id[0], 0xc3);
	ck_assert_uint_eq(a.chip_id[63], 0x4e);
	ck_assert_uint_eq(a.current_build, 4);
	ck_assert_uint_eq(a.current_minor, 0x34);
	ck_assert_uint_eq(a.current_major, 1);
	ck_assert_uint_eq(a.committed_minor, 0x34);
	ck_assert_uint_eq(a.launch_tcb, 0x7308000000000003ull);
	ck_assert_uint_eq(a.cpuid_fam_id, 0); /* v2 has none */

	ck_assert_int_eq(report_parse(vl, REPORT_SIZE, &b), 0);
	ck_assert_uint_eq(b.vmpl, 1);
	ck_assert_uint_eq(b.platform_info, 0x27);
	ck_assert(!b.author_key_en);
	ck_assert(!b.mask_chip_key);
	ck_assert(mem_is_zero(b.chip_id, sizeof(b.chip_id)));
	ck_assert_uint_eq(b.committed_tcb, 0xdb18000000000004ull);
	free(v2);
	free(vl);
}
END_TEST

START_TEST(test_wrong_key_rejected)
{
	/* every sample against every other sample's certificate key */
	for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
		uint8_t *buf = load_report(&samples[i]);

		for (size_t j = 0; j < ELEMENTSOF(samples); j++) {
			EVP_PKEY *key = load_cert_key(samples[j].cert);
			int r = report_verify_signature(buf, REPORT_SIZE, key);

			ck_assert_msg(r == (i == j ? 0 : -EKEYREJECTED), "report %zu key %zu: %d",
				      i, j, r);
			ck_assert_uint_eq(ERR_peek_error(), 0); /* no stale OpenSSL errors left */
			EVP_PKEY_free(key);
		}
		free(buf);
	}
}
END_TEST

/* What the parser must say when byte off of a real report of this version is XORed with
 * 0xff, from the facts §4 table (independent of the parser's code). */
static int expected_parse_xff(size_t off, uint32_t version)
{
	static const struct {
		size_t from, to; /* inclusive */
		int ret;
	} ranges[] = {
		{0x000, 0x003, -EPROTONOSUPPORT}, /* VERSION */
		{0x004, 0x009, 0},		  /* GUEST_SVN, POLICY abi minor/major */
		{0x00a, 0x00a, -EBADMSG},	  /* POLICY bit 17 cleared */
		{0x00b, 0x00f, -EBADMSG},	  /* POLICY bits 26+ */
		{0x010, 0x02f, 0},		  /* FAMILY_ID, IMAGE_ID */
		{0x030, 0x033, -EBADMSG},	  /* VMPL > 3 */
		{0x034, 0x037, -EBADMSG},	  /* SIGNATURE_ALGO */
		{0x038, 0x040, 0},		  /* CURRENT_TCB, PLATFORM_INFO 7:0 */
		{0x041, 0x047, -EBADMSG},	  /* PLATFORM_INFO 63:8 */
		{0x048, 0x04f, -EBADMSG},	  /* signer info 31:5, reserved */
		{0x050, 0x187, 0},		  /* data, digests, ids, REPORTED_TCB */
		{0x188, 0x18a, 1},		  /* CPUID: only v3+ (1 = version rule) */
		{0x18b, 0x19f, -EBADMSG},	  /* reserved */
		{0x1a0, 0x1ea, 0},		  /* CHIP_ID, COMMITTED_TCB, CURRENT_* */
		{0x1eb, 0x1eb, -EBADMSG},
		{0x1ec, 0x1ee, 0},
		{0x1ef, 0x1ef, -EBADMSG},
		{0x1f0, 0x1f7, 0},	  /* LAUNCH_TCB */
		{0x1f8, 0x207, 5},	  /* mit vectors: only v5+ */
		{0x208, 0x29f, -EBADMSG}, /* reserved */
	};
	for (size_t i = 0; i < ELEMENTSOF(ranges); i++)
		if (off >= ranges[i].from && off <= ranges[i].to) {
			if (ranges[i].ret == 1)
				return version >= 3 ? 0 : -EBADMSG;
			if (ranges[i].ret == 5)
				return version >= 5 ? 0 : -EBADMSG;
			return ranges[i].ret;
		}
	ck_abort_msg("offset %zu not covered", off);
	return 0;
}

START_TEST(test_every_signed_byte_corruption)
{
	const struct sample *s = &samples[_i];
	uint8_t *orig = load_report(s);
	EVP_PKEY *key = load_cert_key(s->cert);
	static const uint8_t masks[] = {0xff, 0x01, 0x80};

	for (size_t m = 0; m < ELEMENTSOF(masks); m++)
		for (size_t off = 0; off < REPORT_SIGNED_LEN; off++) {
			uint8_t buf[REPORT_SIZE];
			struct report r;
			int pr, vr;

			memcpy(buf, orig, REPORT_SIZE);
			buf[off] ^= masks[m];
			pr = report_parse(buf, REPORT_SIZE, &r);
			vr = report_verify_signature(buf, REPORT_SIZE, key);

			if (masks[m] == 0xff)
				ck_assert_msg(pr == expected_parse_xff(off, s->version),
					      "%s off 0x%zx: parse %d", s->report, off, pr);
			else
				ck_assert_msg(pr == 0 || pr == -EBADMSG || pr == -EPROTONOSUPPORT,
					      "%s off 0x%zx mask 0x%x: parse %d", s->report, off,
					      masks[m], pr);
			/* The signature catches every change; a bad SIGNATURE_ALGO is refused
			 * before any crypto. */
			if (off >= 0x34 && off < 0x38)
				ck_assert_msg(vr == -EBADMSG, "off 0x%zx: verify %d", off, vr);
			else
				ck_assert_msg(vr == -EKEYREJECTED,
					      "%s off 0x%zx mask 0x%x: verify %d", s->report, off,
					      masks[m], vr);
		}
	EVP_PKEY_free(key);
	free(orig);
}
END_TEST

START_TEST(test_signature_area_corruption)
{
	uint8_t *orig = load_report(&samples[1]);
	EVP_PKEY *key = load_cert_key(samples[1].cert);

	for (size_t off = REPORT_SIGNED_LEN; off < REPORT_SIZE; off++) {
		uint8_t buf[REPORT_SIZE];
		struct report r;
		size_t in_comp = (off - 0x2a0) % 72;
		bool in_rs = off < 0x330, in_scalar = in_rs && in_comp < 48;
		int pr, vr;

		memcpy(buf, orig, REPORT_SIZE);
		buf[off] ^= 0x5a;
		pr = report_parse(buf, REPORT_SIZE, &r);
		vr = report_verify_signature(buf, REPORT_SIZE, key);
		/* R/S scalars: a valid layout, but a wrong signature; their padding and the tail
		 * must be zero (the tail is not signed, so only the parser can catch it). */
		ck_assert_msg(pr == (in_scalar ? 0 : -EBADMSG), "off 0x%zx: parse %d", off, pr);
		ck_assert_msg(vr == (in_rs ? -EKEYREJECTED : 0), "off 0x%zx: verify %d", off, vr);
	}
	EVP_PKEY_free(key);
	free(orig);
}
END_TEST

START_TEST(test_hostile_signature_values)
{
	uint8_t *orig = load_report(&samples[0]);
	EVP_PKEY *key = load_cert_key(samples[0].cert);
	static const struct {
		uint8_t r_fill, s_fill;
	} cases[] = {{0, 0}, {0, 1}, {1, 0}, {0xff, 0xff}, {0xff, 1}};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[REPORT_SIZE];

		memcpy(buf, orig, REPORT_SIZE);
		/* the 48 scalar bytes only: zero, tiny, or above the group order */
		memset(buf + 0x2a0, cases[i].r_fill, 48);
		memset(buf + 0x2a0 + 48, 0, 24);
		memset(buf + 0x2e8, cases[i].s_fill, 48);
		memset(buf + 0x2e8 + 48, 0, 24);
		ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), -EKEYREJECTED);
		ck_assert_uint_eq(ERR_peek_error(), 0); /* no stale OpenSSL errors left */
	}
	EVP_PKEY_free(key);
	free(orig);
}
END_TEST

START_TEST(test_sizes)
{
	static const size_t lens[] = {0, 1, 0x2a0, REPORT_SIZE - 1, REPORT_SIZE + 1, 4096};
	uint8_t *orig = load_report(&samples[1]);
	EVP_PKEY *key = load_cert_key(samples[1].cert);
	uint8_t *big = calloc(1, 4096);
	struct report r;

	ck_assert(big);
	memcpy(big, orig, REPORT_SIZE);
	r.version = 0xabcd;
	for (size_t i = 0; i < ELEMENTSOF(lens); i++) {
		ck_assert_int_eq(report_parse(big, lens[i], &r), -EMSGSIZE);
		ck_assert_uint_eq(r.version, 0xabcd); /* untouched */
		ck_assert_int_eq(report_verify_signature(big, lens[i], key), -EMSGSIZE);
	}
	ck_assert_int_eq(report_parse(NULL, REPORT_SIZE, &r), -EMSGSIZE);
	ck_assert_int_eq(report_verify_signature(NULL, REPORT_SIZE, key), -EMSGSIZE);
	ck_assert_int_eq(report_parse(big, REPORT_SIZE, &r), 0);
	EVP_PKEY_free(key);
	free(big);
	free(orig);
}
END_TEST

START_TEST(test_versions)
{
	static const struct {
		uint32_t version;
		int ret;
	} cases[] = {{0, -EPROTONOSUPPORT},
		     {1, -EPROTONOSUPPORT},
		     {2, 0},
		     {3, 0},
		     {4, 0},
		     {5, 0},
		     {6, -EPROTONOSUPPORT},
		     {0x100, -EPROTONOSUPPORT},
		     {UINT32_MAX, -EPROTONOSUPPORT}};
	uint8_t *orig = load_report(&samples[1]); /* v3: CPUID set, mit area zero */

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[REPORT_SIZE];
		struct report r;
		int ret;

		memcpy(buf, orig, REPORT_SIZE);
		put_le32(buf, cases[i].version);
		if (cases[i].version == 2)
			memset(buf + 0x188, 0, 3); /* v2 has no CPUID bytes */
		ret = report_parse(buf, REPORT_SIZE, &r);
		ck_assert_msg(ret == cases[i].ret, "version %u: %d", cases[i].version, ret);
		if (ret == 0) {
			uint8_t out[REPORT_SIZE];

			ck_assert_int_eq(report_serialise(&r, out), 0);
			ck_assert(memcmp(out, buf, REPORT_SIZE) == 0);
			/* v4 is read like v3: CPUID kept */
			if (cases[i].version >= 3)
				ck_assert_uint_eq(r.cpuid_fam_id, 0x19);
		}
	}
	/* v2 with the CPUID bytes of v3 left in: reserved there */
	{
		uint8_t buf[REPORT_SIZE];
		struct report r;

		memcpy(buf, orig, REPORT_SIZE);
		put_le32(buf, 2);
		ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), -EBADMSG);
		/* v3/v4 with mit vectors set: reserved before v5 */
		memcpy(buf, orig, REPORT_SIZE);
		put_le64(buf + 0x1f8, 0x3f);
		ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), -EBADMSG);
		put_le32(buf, 4);
		ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), -EBADMSG);
		put_le32(buf, 5);
		ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), 0);
		ck_assert_uint_eq(r.launch_mit_vector, 0x3f);
	}
	free(orig);
}
END_TEST

/* A Turin v5 report with the values of facts §10 (Turin firmware 1.55.65). */
static void turin_v5(struct report *r)
{
	memset(r, 0, sizeof(*r));
	r->version = 5;
	r->guest_svn = 1;
	r->policy = 0x30000; /* SMT allowed, reserved bit 17 */
	r->family_id[0] = 0x11;
	r->image_id[15] = 0x22;
	r->vmpl = 0;
	r->signature_algo = REPORT_SIG_ALGO_ECDSA_P384_SHA384;
	r->current_tcb = 0x5100000004010101ull; /* bytes 01 01 01 04 00 00 00 51 */
	r->platform_info = 0x65;		/* undocumented bit 6 set */
	r->signing_key = REPORT_SIGNING_KEY_VCEK;
	r->author_key_en = true;
	for (size_t i = 0; i < sizeof(r->report_data); i++)
		r->report_data[i] = (uint8_t)i;
	memset(r->measurement, 0xa5, sizeof(r->measurement));
	memset(r->host_data, 0x5a, sizeof(r->host_data));
	memset(r->report_id, 0x33, sizeof(r->report_id));
	memset(r->report_id_ma, 0xff, sizeof(r->report_id_ma));
	r->reported_tcb = 0x5100000004010101ull;
	r->cpuid_fam_id = 0x1a;
	r->cpuid_mod_id = 0x02;
	r->cpuid_step = 0x01;
	memcpy(r->chip_id, "\x8a\x1b\x2c\x3d\x4e\x5f\x60\x71", 8); /* Turin: 8 bytes */
	r->committed_tcb = 0x5100000004010101ull;
	r->current_build = 65;
	r->current_minor = 55;
	r->current_major = 1;
	r->committed_build = 65;
	r->committed_minor = 55;
	r->committed_major = 1;
	r->launch_tcb = 0x5100000004010101ull;
	r->launch_mit_vector = 0x3f;
	r->current_mit_vector = 0x3f;
}

START_TEST(test_turin_v5_sign_parse_verify)
{
	EVP_PKEY *key = gen_key("P-384"), *other = gen_key("P-384");
	uint8_t buf[REPORT_SIZE];
	struct report r, back;
	struct tcb_version t;
	enum snp_product p;

	turin_v5(&r);
	ck_assert_int_eq(report_serialise(&r, buf), 0);
	ck_assert_uint_eq(buf[0x48], 0x01); /* AUTHOR_KEY_EN, VCEK */
	ck_assert_uint_eq(buf[0x40], 0x65);
	ck_assert(memcmp(buf + 0x38, "\x01\x01\x01\x04\x00\x00\x00\x51", 8) == 0);
	ck_assert(memcmp(buf + 0x188, "\x1a\x02\x01", 3) == 0);
	ck_assert_uint_eq(buf[0x1f8], 0x3f);
	ck_assert_uint_eq(buf[0x200], 0x3f);
	ck_assert_int_eq(report_sign(buf, key), 0);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), 0);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, other), -EKEYREJECTED);

	ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &back), 0);
	memcpy(r.sig_r, back.sig_r, sizeof(r.sig_r));
	memcpy(r.sig_s, back.sig_s, sizeof(r.sig_s));
	r.signer_info = 0x01;
	assert_report_eq(&r, &back);
	ck_assert(!mem_is_zero(back.sig_r, 48));

	ck_assert_int_eq(report_product(&back, &p), 0);
	ck_assert_int_eq(p, SNP_PRODUCT_TURIN);
	tcb_decode(back.reported_tcb, p, &t);
	ck_assert_uint_eq(t.fmc, 1);
	ck_assert_uint_eq(t.bootloader, 1);
	ck_assert_uint_eq(t.tee, 1);
	ck_assert_uint_eq(t.snp, 4);
	ck_assert_uint_eq(t.microcode, 0x51);

	buf[0x50] ^= 1;
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), -EKEYREJECTED);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}
END_TEST

START_TEST(test_sign_layout)
{
	EVP_PKEY *key = gen_key("P-384");
	uint8_t buf[REPORT_SIZE];
	struct report r;

	turin_v5(&r);
	ck_assert_int_eq(report_serialise(&r, buf), 0);
	memset(buf + REPORT_SIGNED_LEN, 0xee, REPORT_SIZE - REPORT_SIGNED_LEN); /* stale junk */
	ck_assert_int_eq(report_sign(buf, key), 0);
	/* R and S are 48-byte scalars zero-padded to 72; the rest of the area is zero */
	ck_assert(mem_is_zero(buf + 0x2a0 + 48, 24));
	ck_assert(mem_is_zero(buf + 0x2e8 + 48, 24));
	ck_assert(mem_is_zero(buf + 0x330, REPORT_SIZE - 0x330));
	ck_assert_int_eq(report_parse(buf, REPORT_SIZE, &r), 0);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), 0);

	/* refuses a report that does not claim ECDSA P-384 */
	put_le32(buf + 0x34, 2);
	memset(buf + 0x2a0, 0x77, 8);
	ck_assert_int_eq(report_sign(buf, key), -EBADMSG);
	ck_assert_uint_eq(buf[0x2a0], 0x77); /* untouched */
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, key), -EBADMSG);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_wrong_key_types)
{
	EVP_PKEY *p256 = gen_key("P-256"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t *orig = load_report(&samples[1]);
	uint8_t buf[REPORT_SIZE];

	ck_assert(ed);
	memcpy(buf, orig, REPORT_SIZE);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, p256), -EINVAL);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, ed), -EINVAL);
	ck_assert_int_eq(report_verify_signature(buf, REPORT_SIZE, NULL), -EINVAL);
	ck_assert_int_eq(report_sign(buf, p256), -EINVAL);
	ck_assert_int_eq(report_sign(buf, ed), -EINVAL);
	ck_assert_int_eq(report_sign(buf, NULL), -EINVAL);
	ck_assert(memcmp(buf, orig, REPORT_SIZE) == 0);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(ed);
	free(orig);
}
END_TEST

/* One way each to make a struct that report_parse could never have produced. */
#define MUTATION(name, stmt)                                                                       \
	static void name(struct report *r)                                                         \
	{                                                                                          \
		stmt;                                                                              \
	}
MUTATION(mut_version1, r->version = 1)
MUTATION(mut_version6, r->version = 6)
MUTATION(mut_policy17, r->policy &= ~(1ull << 17))
MUTATION(mut_policy26, r->policy |= 1ull << 26)
MUTATION(mut_vmpl4, r->vmpl = 4)
MUTATION(mut_algo0, r->signature_algo = 0)
MUTATION(mut_platform8, r->platform_info |= 0x100)
MUTATION(mut_key3, r->signing_key = 3)
MUTATION(mut_signer_mismatch, r->signer_info = 0x04) /* says VLEK, fields say VCEK */
MUTATION(mut_r_pad, r->sig_r[48] = 1)
MUTATION(mut_s_pad, r->sig_s[71] = 1)

START_TEST(test_serialise_refuses)
{
	static const struct {
		const char *what;
		void (*mutate)(struct report *r);
		int ret;
	} cases[] = {
		{"version 1", mut_version1, -EPROTONOSUPPORT},
		{"version 6", mut_version6, -EPROTONOSUPPORT},
		{"policy bit 17 clear", mut_policy17, -EINVAL},
		{"policy bit 26", mut_policy26, -EINVAL},
		{"vmpl 4", mut_vmpl4, -EINVAL},
		{"sig algo 0", mut_algo0, -EINVAL},
		{"platform bit 8", mut_platform8, -EINVAL},
		{"signing key 3", mut_key3, -EINVAL},
		{"signer_info mismatch", mut_signer_mismatch, -EINVAL},
		{"sig_r padding", mut_r_pad, -EINVAL},
		{"sig_s padding", mut_s_pad, -EINVAL},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t out[REPORT_SIZE];
		struct report r;

		turin_v5(&r);
		ck_assert_int_eq(report_serialise(&r, out), 0); /* the base case is valid */
		cases[i].mutate(&r);
		memset(out, 0xcc, sizeof(out));
		ck_assert_msg(report_serialise(&r, out) == cases[i].ret, "%s", cases[i].what);
		ck_assert_msg(out[0] == 0xcc && out[REPORT_SIZE - 1] == 0xcc, "%s: out written",
			      cases[i].what);
	}
}
END_TEST

START_TEST(test_serialise_drops_undefined_fields)
{
	uint8_t out[REPORT_SIZE];
	struct report r, back;

	/* a v2 struct carrying CPUID and mit vectors: neither exists in v2 */
	turin_v5(&r);
	r.version = 2;
	ck_assert_int_eq(report_serialise(&r, out), 0);
	ck_assert(mem_is_zero(out + 0x188, 0x18));
	ck_assert(mem_is_zero(out + 0x1f8, 0x2a0 - 0x1f8));
	ck_assert_int_eq(report_parse(out, REPORT_SIZE, &back), 0);
	ck_assert_uint_eq(back.cpuid_fam_id, 0);
	ck_assert_uint_eq(back.launch_mit_vector, 0);
	ck_assert_uint_eq(back.reported_tcb, r.reported_tcb);

	/* v4 keeps CPUID but not the mit vectors */
	r.version = 4;
	ck_assert_int_eq(report_serialise(&r, out), 0);
	ck_assert_uint_eq(out[0x188], 0x1a);
	ck_assert(mem_is_zero(out + 0x1f8, 16));
}
END_TEST

START_TEST(test_signer_info)
{
	static const struct {
		uint32_t word;
		int ret;
		bool author, mask;
		uint8_t key;
	} cases[] = {
		{0x00, 0, false, false, 0},	 {0x01, 0, true, false, 0},
		{0x02, 0, false, true, 0},	 {0x04, 0, false, false, 1},
		{0x1f, 0, true, true, 7},	 {0x1c, 0, false, false, 7},
		{0x08, -EBADMSG, 0, 0, 0}, /* key 2 reserved */
		{0x18, -EBADMSG, 0, 0, 0}, /* key 6 reserved */
		{0x20, -EBADMSG, 0, 0, 0}, /* bit 5 MBZ */
		{0x80000000, -EBADMSG, 0, 0, 0},
	};
	uint8_t *orig = load_report(&samples[1]);

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[REPORT_SIZE], out[REPORT_SIZE];
		struct report r;

		memcpy(buf, orig, REPORT_SIZE);
		put_le32(buf + 0x48, cases[i].word);
		ck_assert_msg(report_parse(buf, REPORT_SIZE, &r) == cases[i].ret, "case %zu", i);
		if (cases[i].ret)
			continue;
		ck_assert_int_eq(r.author_key_en, cases[i].author);
		ck_assert_int_eq(r.mask_chip_key, cases[i].mask);
		ck_assert_uint_eq(r.signing_key, cases[i].key);
		ck_assert_int_eq(report_serialise(&r, out), 0);
		ck_assert(memcmp(out, buf, REPORT_SIZE) == 0);
	}
	free(orig);
}
END_TEST

START_TEST(test_field_limits)
{
	static const struct {
		size_t off;
		unsigned width; /* 4 or 8 */
		uint64_t value;
		int ret;
	} cases[] = {
		{0x30, 4, 3, 0}, /* VMPL 3 is the highest */
		{0x30, 4, 4, -EBADMSG},
		{0x08, 8, 0x0000000003ffffffull, 0},	    /* every defined POLICY bit */
		{0x08, 8, 0x0000000004020000ull, -EBADMSG}, /* bit 26 */
		{0x08, 8, 0x8000000000020000ull, -EBADMSG},
		{0x08, 8, 0x0000000000000000ull, -EBADMSG}, /* bit 17 must be 1 */
		{0x40, 8, 0xff, 0},			    /* PLATFORM_INFO 7:0, incl. bit 6 */
		{0x40, 8, 0x65, 0},			    /* the real Turin value */
		{0x40, 8, 0x100, -EBADMSG},
		{0x34, 4, 0, -EBADMSG}, /* SIGNATURE_ALGO */
		{0x34, 4, 2, -EBADMSG},
		{0x4c, 4, 1, -EBADMSG},		  /* reserved after signer info */
		{0x1f8, 8, 0x3f, -EBADMSG},	  /* mit vector in a v3 report */
		{0x298, 8, 1ull << 63, -EBADMSG}, /* last reserved byte */
	};
	uint8_t *orig = load_report(&samples[1]);

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t buf[REPORT_SIZE], out[REPORT_SIZE];
		struct report r;
		int ret;

		memcpy(buf, orig, REPORT_SIZE);
		if (cases[i].width == 4)
			put_le32(buf + cases[i].off, (uint32_t)cases[i].value);
		else
			put_le64(buf + cases[i].off, cases[i].value);
		ret = report_parse(buf, REPORT_SIZE, &r);
		ck_assert_msg(ret == cases[i].ret, "case %zu: %d", i, ret);
		if (ret == 0) {
			ck_assert_int_eq(report_serialise(&r, out), 0);
			ck_assert(memcmp(out, buf, REPORT_SIZE) == 0);
		}
	}
	free(orig);
}
END_TEST

START_TEST(test_product)
{
	static const struct {
		uint32_t version;
		uint8_t fam, mod;
		const char *chip; /* first 8 bytes; NULL = all 64 set; "" = masked */
		int ret;
		enum snp_product p;
	} cases[] = {
		{3, 0x19, 0x01, NULL, 0, SNP_PRODUCT_MILAN},
		{3, 0x19, 0x11, NULL, 0, SNP_PRODUCT_GENOA},
		{5, 0x1a, 0x02, "12345678", 0, SNP_PRODUCT_TURIN},
		{4, 0x19, 0xa1, NULL, 0, SNP_PRODUCT_GENOA},
		{3, 0x1a, 0x50, NULL, -ENOENT, 0},
		{3, 0x00, 0x00, "", -ENOENT, 0},
		{2, 0, 0, "12345678", 0, SNP_PRODUCT_TURIN}, /* v2 heuristic */
		{2, 0, 0, NULL, -ENOENT, 0},		     /* Milan or Genoa: unknown */
		{2, 0, 0, "", -ENOENT, 0},		     /* masked chip id */
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct report r;
		enum snp_product p = (enum snp_product)99;
		int ret;

		turin_v5(&r);
		r.version = cases[i].version;
		r.cpuid_fam_id = cases[i].fam;
		r.cpuid_mod_id = cases[i].mod;
		memset(r.chip_id, 0, sizeof(r.chip_id));
		if (!cases[i].chip)
			memset(r.chip_id, 0x42, sizeof(r.chip_id));
		else
			memcpy(r.chip_id, cases[i].chip, strlen(cases[i].chip));
		ret = report_product(&r, &p);
		ck_assert_msg(ret == cases[i].ret, "case %zu: %d", i, ret);
		ck_assert_int_eq(p, ret == 0 ? cases[i].p : 99);
	}
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *real = tcase_create("real");
	TCase *synth = tcase_create("synthetic");

	tcase_add_loop_test(real, test_real_parse_roundtrip_verify, 0, ELEMENTSOF(samples));
	tcase_add_test(real, test_real_field_values);
	tcase_add_test(real, test_wrong_key_rejected);
	tcase_add_loop_test(real, test_every_signed_byte_corruption, 0, ELEMENTSOF(samples));
	tcase_add_test(real, test_signature_area_corruption);
	tcase_add_test(real, test_hostile_signature_values);
	tcase_add_test(real, test_sizes);
	tcase_add_test(real, test_versions);
	tcase_add_test(real, test_signer_info);
	tcase_add_test(real, test_field_limits);
	tcase_add_test(real, test_wrong_key_types);
	tcase_add_test(synth, test_turin_v5_sign_parse_verify);
	tcase_add_test(synth, test_sign_layout);
	tcase_add_test(synth, test_serialise_refuses);
	tcase_add_test(synth, test_serialise_drops_undefined_fields);
	tcase_add_test(synth, test_product);
	suite_add_tcase(s, real);
	suite_add_tcase(s, synth);
	return s;
}

int main(void)
{
	return test_run_suite(report_suite());
}
