/* SPDX-License-Identifier: Apache-2.0 */
/* certs: parses AMD certificates, checks VCEK/VLEK -> ASK/ASVK -> ARK chains against pinned
 * roots under the one signature scheme AMD uses, and reads the AMD TCB extensions. Pure. */
#include "certs.h"

#include <ctype.h>
#include <stdio.h>
#include <time.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "util.h"

/* Far above any real certificate (ARK ~1.7 KB DER) and chain; keeps hostile input bounded. */
#define CERTS_MAX_INPUT (64 * 1024)
#define CERTS_MAX_CHAIN 8
/* AMD signs with salt length 48 = the SHA-384 output size (facts §7.1). */
#define CERTS_PSS_SALT_LEN 48
#define CERTS_MIN_RSA_BITS 2048

#define AMD_EXT_ARC "1.3.6.1.4.1.3704.1."

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

/* SHA-256 of the DER of AMD's ARKs (facts §7.3, testdata README). */
static const struct {
	enum snp_product product;
	uint8_t sha256[32];
} pinned_arks[] = {
	{SNP_PRODUCT_MILAN, {0x69, 0xd0, 0x63, 0xb4, 0x53, 0x44, 0xd2, 0x6a, 0x2e, 0x94, 0xe1,
			     0xf4, 0x21, 0x0d, 0xe4, 0x9e, 0xf5, 0x55, 0x30, 0x82, 0x87, 0xd4,
			     0xc1, 0x74, 0x44, 0x5c, 0x95, 0x63, 0x9a, 0x54, 0x0b, 0xcd}},
	{SNP_PRODUCT_GENOA, {0x4c, 0x65, 0x98, 0xd1, 0x9c, 0x18, 0x71, 0x9c, 0x5d, 0xfd, 0x4a,
			     0x7d, 0x33, 0x5f, 0x67, 0x4e, 0x5b, 0xfe, 0x1d, 0x8f, 0x80, 0x0c,
			     0xea, 0x2c, 0xf2, 0x70, 0xc1, 0x0d, 0x10, 0x3d, 0xb2, 0xf1}},
	{SNP_PRODUCT_TURIN, {0x1f, 0x08, 0x41, 0x61, 0xa4, 0x4b, 0xb6, 0xd9, 0x37, 0x78, 0xa9,
			     0x04, 0x87, 0x7d, 0x48, 0x19, 0xca, 0xfa, 0x5d, 0x05, 0xef, 0x41,
			     0x93, 0xb2, 0xde, 0xd9, 0xdd, 0x9c, 0x73, 0xdd, 0x3f, 0x6a}},
};

static void x509p(X509 **p)
{
	X509_free(*p);
}

static void biop(BIO **p)
{
	BIO_free(*p);
}

static void x509_stackp(STACK_OF(X509) * *p)
{
	sk_X509_pop_free(*p, X509_free);
}

static void pss_paramsp(RSA_PSS_PARAMS **p)
{
	RSA_PSS_PARAMS_free(*p);
}

static void algorp(X509_ALGOR **p)
{
	X509_ALGOR_free(*p);
}

static void asn1_integerp(ASN1_INTEGER **p)
{
	ASN1_INTEGER_free(*p);
}

static void asn1_stringp(ASN1_STRING **p)
{
	ASN1_STRING_free(*p);
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One PEM CERTIFICATE block (exactly, begin to end line) into an X509. */
static int parse_pem_block(const uint8_t *buf, size_t len, X509 **ret)
{
	_cleanup_(biop) BIO *bio = NULL;
	X509 *x;

	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio)
		return -ENOMEM;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x) {
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = x;
	return 0;
}

/* Finds the next CERTIFICATE block at or after *pos; only whitespace may precede it. Returns 1
 * and the block bounds, 0 at the end of input, -EBADMSG on anything else. */
static int next_pem_block(const uint8_t *buf, size_t len, size_t *pos, size_t *ret_start,
			  size_t *ret_end)
{
	size_t p = *pos;
	const uint8_t *end;

	while (p < len && is_space(buf[p]))
		p++;
	if (p == len)
		return 0;
	if (len - p < sizeof(pem_begin) - 1 || memcmp(buf + p, pem_begin, sizeof(pem_begin) - 1))
		return -EBADMSG;
	end = memmem(buf + p, len - p, pem_end, sizeof(pem_end) - 1);
	if (!end)
		return -EBADMSG;
	*ret_start = p;
	*ret_end = (size_t)(end - buf) + sizeof(pem_end) - 1;
	*pos = *ret_end;
	return 1;
}

static bool looks_like_pem(const uint8_t *buf, size_t len)
{
	size_t p = 0;

	while (p < len && is_space(buf[p]))
		p++;
	return len - p >= 5 && memcmp(buf + p, "-----", 5) == 0;
}

int certs_parse(const uint8_t *buf, size_t len, X509 **ret)
{
	_cleanup_(x509p) X509 *x = NULL;
	size_t pos = 0, start, end;
	int r;

	if (!buf || !ret)
		return -EINVAL;
	if (len == 0 || len > CERTS_MAX_INPUT)
		return -EBADMSG;

	if (looks_like_pem(buf, len)) {
		r = next_pem_block(buf, len, &pos, &start, &end);
		if (r <= 0)
			return -EBADMSG;
		r = parse_pem_block(buf + start, end - start, &x);
		if (r < 0)
			return r;
		/* Exactly one certificate: a second block or trailing garbage is refused. */
		if (next_pem_block(buf, len, &pos, &start, &end) != 0)
			return -EBADMSG;
	} else {
		const unsigned char *p = buf;

		x = d2i_X509(NULL, &p, (long)len);
		if (!x || p != buf + len) {
			ERR_clear_error();
			return -EBADMSG;
		}
	}
	*ret = TAKE_PTR(x);
	return 0;
}

int certs_parse_pem_chain(const uint8_t *buf, size_t len, STACK_OF(X509) * *ret)
{
	_cleanup_(x509_stackp) STACK_OF(X509) *sk = NULL;
	size_t pos = 0, start, end;
	int r;

	if (!buf || !ret)
		return -EINVAL;
	if (len == 0)
		return -EBADMSG;
	if (len > CERTS_MAX_INPUT)
		return -EMSGSIZE;
	sk = sk_X509_new_null();
	if (!sk)
		return -ENOMEM;
	while ((r = next_pem_block(buf, len, &pos, &start, &end)) > 0) {
		_cleanup_(x509p) X509 *x = NULL;

		if (sk_X509_num(sk) >= CERTS_MAX_CHAIN)
			return -EMSGSIZE;
		r = parse_pem_block(buf + start, end - start, &x);
		if (r < 0)
			return r;
		if (!sk_X509_push(sk, x))
			return -ENOMEM;
		x = NULL;
	}
	if (r < 0)
		return r;
	if (sk_X509_num(sk) == 0)
		return -EBADMSG;
	*ret = TAKE_PTR(sk);
	return 0;
}

int certs_kds_chain_pair(STACK_OF(X509) * sk, X509 **ret_ask, X509 **ret_ark)
{
	if (!sk || sk_X509_num(sk) != 2)
		return -EBADMSG;
	if (ret_ask)
		*ret_ask = sk_X509_value(sk, 0);
	if (ret_ark)
		*ret_ark = sk_X509_value(sk, 1);
	return 0;
}

int certs_parse_kds_chain(const uint8_t *pem, size_t len, X509 **ret_ask, X509 **ret_ark)
{
	_cleanup_(x509_stackp) STACK_OF(X509) *sk = NULL;
	X509 *ask, *ark;
	int r;

	r = certs_parse_pem_chain(pem, len, &sk);
	if (r < 0)
		return r;
	r = certs_kds_chain_pair(sk, &ask, &ark);
	if (r < 0)
		return r;
	if (ret_ask) {
		X509_up_ref(ask);
		*ret_ask = ask;
	}
	if (ret_ark) {
		X509_up_ref(ark);
		*ret_ark = ark;
	}
	return 0;
}

/* DER of any OpenSSL ASN.1 object into a malloc'd buffer (one free(), no OPENSSL_free). */
static int item_to_der(const ASN1_VALUE *v, const ASN1_ITEM *it, uint8_t **ret_buf, size_t *ret_len)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	unsigned char *p;
	int n;

	if (!v || !ret_buf || !ret_len)
		return -EINVAL;
	n = ASN1_item_i2d(v, NULL, it);
	if (n <= 0)
		return -EBADMSG;
	buf = malloc((size_t)n);
	if (!buf)
		return -ENOMEM;
	p = buf;
	if (ASN1_item_i2d(v, &p, it) != n)
		return -EBADMSG;
	*ret_buf = TAKE_PTR(buf);
	*ret_len = (size_t)n;
	return 0;
}

int certs_to_der(X509 *x, uint8_t **ret_buf, size_t *ret_len)
{
	return item_to_der((const ASN1_VALUE *)x, ASN1_ITEM_rptr(X509), ret_buf, ret_len);
}

int certs_crl_to_der(X509_CRL *c, uint8_t **ret_buf, size_t *ret_len)
{
	return item_to_der((const ASN1_VALUE *)c, ASN1_ITEM_rptr(X509_CRL), ret_buf, ret_len);
}

int certs_fingerprint_sha256(X509 *x, uint8_t out[32])
{
	_cleanup_(freep) uint8_t *der = NULL;
	unsigned int n = 0;
	uint8_t md[EVP_MAX_MD_SIZE];
	size_t len;
	int r;

	if (!x || !out)
		return -EINVAL;
	r = certs_to_der(x, &der, &len);
	if (r < 0)
		return r;
	if (!EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return -ENOMEM;
	memcpy(out, md, 32);
	return 0;
}

int certs_ark_pinned(X509 *ark, enum snp_product *ret_product)
{
	uint8_t fp[32];
	int r;

	if (!ark)
		return -EINVAL;
	r = certs_fingerprint_sha256(ark, fp);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(pinned_arks); i++)
		if (memcmp(fp, pinned_arks[i].sha256, sizeof(fp)) == 0) {
			if (ret_product)
				*ret_product = pinned_arks[i].product;
			return 0;
		}
	return -ENOENT;
}

/* ---- AMD extensions ---- */

static int ext_integer(const ASN1_OCTET_STRING *os, int64_t min, int64_t max, int64_t *ret)
{
	_cleanup_(asn1_integerp) ASN1_INTEGER *ai = NULL;
	const unsigned char *p = ASN1_STRING_get0_data(os);
	int len = ASN1_STRING_length(os);
	int64_t v;

	if (!p || len <= 0)
		return -EBADMSG;
	ai = d2i_ASN1_INTEGER(NULL, &p, len);
	if (!ai || p != ASN1_STRING_get0_data(os) + len) {
		ERR_clear_error();
		return -EBADMSG;
	}
	if (!ASN1_INTEGER_get_int64(&v, ai)) {
		ERR_clear_error();
		return -EBADMSG;
	}
	if (v < min || v > max)
		return -EBADMSG;
	*ret = v;
	return 0;
}

/* An IA5String value into a NUL-terminated buffer; printable ASCII only. */
static int ext_ia5(const ASN1_OCTET_STRING *os, char *out, size_t size)
{
	_cleanup_(asn1_stringp) ASN1_STRING *s = NULL;
	const unsigned char *p = ASN1_STRING_get0_data(os);
	int len = ASN1_STRING_length(os);
	const unsigned char *d;
	int n;

	if (!p || len <= 0)
		return -EBADMSG;
	s = (ASN1_STRING *)d2i_ASN1_IA5STRING(NULL, &p, len);
	if (!s || p != ASN1_STRING_get0_data(os) + len) {
		ERR_clear_error();
		return -EBADMSG;
	}
	n = ASN1_STRING_length(s);
	d = ASN1_STRING_get0_data(s);
	if (n <= 0 || (size_t)n >= size)
		return -EBADMSG;
	for (int i = 0; i < n; i++)
		if (d[i] < 0x20 || d[i] > 0x7e)
			return -EBADMSG;
	memcpy(out, d, (size_t)n);
	out[n] = '\0';
	return 0;
}

int certs_amd_ext_parse(X509 *cert, struct certs_amd_ext *ret)
{
	struct certs_amd_ext e = {0};
	uint32_t seen = 0;
	int n;

	if (!cert || !ret)
		return -EINVAL;
	n = X509_get_ext_count(cert);
	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ext = X509_get_ext(cert, i);
		const ASN1_OCTET_STRING *os;
		char oid[80], *tail;
		unsigned long id;
		uint32_t bit;
		int64_t v;
		int r, l;

		if (!ext)
			return -EBADMSG;
		l = OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1);
		if (l <= 0 || (size_t)l >= sizeof(oid))
			continue; /* not ours: AMD OIDs are short */
		if (strncmp(oid, AMD_EXT_ARC, strlen(AMD_EXT_ARC)) != 0)
			continue;
		tail = oid + strlen(AMD_EXT_ARC);
		os = X509_EXTENSION_get_data(ext);
		if (!os)
			return -EBADMSG;

		/* Map the OID tail to a bit for duplicate detection: .1 .2 .4 .5 -> 1,2,4,5;
		 * .3.k -> 16+k. Anything else under the arc is unknown and ignored. */
		if (tail[0] == '3' && tail[1] == '.' && tail[2] >= '1' && tail[2] <= '9' &&
		    !tail[3])
			id = 16 + (unsigned long)(tail[2] - '0');
		else if (tail[0] >= '1' && tail[0] <= '5' && tail[0] != '3' && !tail[1])
			id = (unsigned long)(tail[0] - '0');
		else
			continue;
		bit = UINT32_C(1) << id;
		if (seen & bit)
			return -EBADMSG;
		seen |= bit;

		switch (id) {
		case 1:
			r = ext_integer(os, 0, INT32_MAX, &v);
			if (r < 0)
				return r;
			e.has_struct_version = true;
			e.struct_version = (long)v;
			break;
		case 2:
			r = ext_ia5(os, e.product_name, sizeof(e.product_name));
			if (r < 0)
				return r;
			break;
		case 4: {
			/* hwID is the raw chip id, not wrapped in an inner OCTET STRING. */
			int len = ASN1_STRING_length(os);

			if (len != 8 && len != 64)
				return -EBADMSG;
			memcpy(e.hwid, ASN1_STRING_get0_data(os), (size_t)len);
			e.hwid_len = (size_t)len;
			break;
		}
		case 5:
			r = ext_ia5(os, e.csp_id, sizeof(e.csp_id));
			if (r < 0)
				return r;
			break;
		default: /* 16 + 1..9: the SPLs, each one byte of the TCB */
			r = ext_integer(os, 0, 255, &v);
			if (r < 0)
				return r;
			switch (id - 16) {
			case 1:
				e.has_bl = true, e.bl = (uint8_t)v;
				break;
			case 2:
				e.has_tee = true, e.tee = (uint8_t)v;
				break;
			case 3:
				e.has_snp = true, e.snp = (uint8_t)v;
				break;
			case 8:
				e.has_ucode = true, e.ucode = (uint8_t)v;
				break;
			case 9:
				e.has_fmc = true, e.fmc = (uint8_t)v;
				break;
			default: /* 4..7 */
				e.spl[id - 16 - 4] = (uint8_t)v;
				e.spl_present |= (uint8_t)(1u << (id - 16 - 4));
				break;
			}
			break;
		}
	}
	/* A key is either a VCEK (hwID) or a VLEK (csp_id), never both. */
	if (e.hwid_len && e.csp_id[0])
		return -EBADMSG;
	*ret = e;
	return 0;
}

int certs_product_from_name(const char *product_name, enum snp_product *ret)
{
	char base[16];
	size_t n;

	if (!product_name || !ret)
		return -EINVAL;
	/* "Milan-B0": the product is the part before the stepping suffix. */
	n = strcspn(product_name, "-");
	if (n == 0 || n >= sizeof(base))
		return -ENOENT;
	memcpy(base, product_name, n);
	base[n] = '\0';
	if (snp_product_from_string(base, ret) < 0)
		return -ENOENT;
	return 0;
}

int certs_amd_ext_tcb(const struct certs_amd_ext *e, enum snp_product p, uint64_t *ret)
{
	struct tcb_version t = {0};

	if (!e || !ret || p <= SNP_PRODUCT_UNKNOWN || p >= _SNP_PRODUCT_MAX)
		return -EINVAL;
	if (!e->has_bl || !e->has_tee || !e->has_snp || !e->has_ucode)
		return -EBADMSG;
	t.bootloader = e->bl;
	t.tee = e->tee;
	t.snp = e->snp;
	t.microcode = e->ucode;
	if (snp_product_has_fmc(p)) {
		if (!e->has_fmc)
			return -EBADMSG;
		/* The FMC layout has no room for spl_4 (its byte 2 is TEE). */
		if ((e->spl_present & 1) && e->spl[0])
			return -EBADMSG;
		t.fmc = e->fmc;
		/* spl_5..spl_7 are the reserved TCB bytes 4..6. */
		for (int i = 0; i < 3; i++)
			t.reserved[i] = e->spl[i + 1];
	} else {
		if (e->has_fmc)
			return -EBADMSG;
		/* spl_4..spl_7 are the reserved TCB bytes 2..5. */
		for (int i = 0; i < 4; i++)
			t.reserved[i] = e->spl[i];
	}
	*ret = tcb_encode(&t, p);
	return 0;
}

/* ---- signatures ---- */

static bool algor_is(const X509_ALGOR *a, int nid)
{
	const ASN1_OBJECT *obj = NULL;
	int ptype = 0;
	const void *pval = NULL;

	if (!a)
		return false;
	X509_ALGOR_get0(&obj, &ptype, &pval, a);
	if (OBJ_obj2nid(obj) != nid)
		return false;
	/* Hash AlgorithmIdentifiers carry NULL or absent parameters; anything else is odd. */
	return ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL;
}

/* The signature scheme is fixed by AMD: RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48, trailer 1.
 * The certificate's own claim about its algorithm is checked, never taken on trust. */
static int check_pss_params(X509 *x)
{
	_cleanup_(pss_paramsp) RSA_PSS_PARAMS *pss = NULL;
	_cleanup_(algorp) X509_ALGOR *mgf_hash = NULL;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	int ptype = 0;
	int64_t salt;

	X509_get0_signature(NULL, &alg, x);
	if (!alg)
		return -EBADMSG;
	/* The signed (tbs) copy of the algorithm must be the same as the outer one. */
	if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(x)) != 0)
		return -EKEYREJECTED;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (OBJ_obj2nid(obj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE)
		return -EKEYREJECTED;
	pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
	if (!pss) {
		ERR_clear_error();
		return -EKEYREJECTED;
	}
	/* Absent fields mean the RFC 4055 defaults (SHA-1, salt 20): not AMD's scheme. */
	if (!algor_is(pss->hashAlgorithm, NID_sha384))
		return -EKEYREJECTED;
	if (!pss->maskGenAlgorithm)
		return -EKEYREJECTED;
	X509_ALGOR_get0(&obj, &ptype, &pval, pss->maskGenAlgorithm);
	if (OBJ_obj2nid(obj) != NID_mgf1 || ptype != V_ASN1_SEQUENCE)
		return -EKEYREJECTED;
	mgf_hash = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
					     pss->maskGenAlgorithm->parameter);
	if (!mgf_hash) {
		ERR_clear_error();
		return -EKEYREJECTED;
	}
	if (!algor_is(mgf_hash, NID_sha384))
		return -EKEYREJECTED;
	if (!pss->saltLength || !ASN1_INTEGER_get_int64(&salt, pss->saltLength) ||
	    salt != CERTS_PSS_SALT_LEN) {
		ERR_clear_error();
		return -EKEYREJECTED;
	}
	if (pss->trailerField) {
		int64_t trailer;

		if (!ASN1_INTEGER_get_int64(&trailer, pss->trailerField) || trailer != 1) {
			ERR_clear_error();
			return -EKEYREJECTED;
		}
	}
	return 0;
}

/* Verifies x's signature with the issuer's RSA key under AMD's PSS scheme. */
static int verify_signed_by(X509 *x, X509 *issuer)
{
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	int r;

	if (!key) {
		ERR_clear_error();
		return -EBADMSG;
	}
	if (!EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "RSA-PSS"))
		return -EKEYREJECTED;
	if (EVP_PKEY_get_bits(key) < CERTS_MIN_RSA_BITS)
		return -EKEYREJECTED;
	r = check_pss_params(x);
	if (r < 0)
		return r;
	if (X509_verify(x, key) != 1) {
		ERR_clear_error();
		return -EKEYREJECTED;
	}
	return 0;
}

/* The product named by a CN of the form "<prefix><Product>" (e.g. "ARK-Milan"). */
static int product_from_cn(X509 *x, const char *prefix, enum snp_product *ret)
{
	const X509_NAME *name = X509_get_subject_name(x);
	const ASN1_STRING *s;
	size_t plen = strlen(prefix);
	char buf[32];
	int idx, n;

	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return -ENOENT;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	n = s ? ASN1_STRING_length(s) : 0;
	if (n <= (int)plen || (size_t)n >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n || strncmp(buf, prefix, plen) != 0)
		return -ENOENT;
	return snp_product_from_string(buf + plen, ret) < 0 ? -ENOENT : 0;
}

static void asn1_time_text(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		snprintf(buf, size, "(unreadable time)");
	else
		snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int certs_check_validity(X509 *x, time_t now, char *buf, size_t size)
{
	const ASN1_TIME *bound;
	char when[64];
	int c;

	if (size > 0)
		buf[0] = '\0';
	bound = X509_get0_notBefore(x);
	c = X509_cmp_time(bound, &now);
	if (c == 0)
		return -EBADMSG;
	if (c > 0) {
		if (size > 0) {
			asn1_time_text(bound, when, sizeof(when));
			snprintf(buf, size, "not yet valid: notBefore %s", when);
		}
		return -EKEYEXPIRED;
	}
	bound = X509_get0_notAfter(x);
	c = X509_cmp_time(bound, &now);
	if (c == 0)
		return -EBADMSG;
	if (c < 0) {
		if (size > 0) {
			asn1_time_text(bound, when, sizeof(when));
			snprintf(buf, size, "expired: notAfter %s", when);
		}
		return -EKEYEXPIRED;
	}
	return 0;
}

static bool same_cert(X509 *a, X509 *b)
{
	uint8_t fa[32], fb[32];

	return certs_fingerprint_sha256(a, fa) == 0 && certs_fingerprint_sha256(b, fb) == 0 &&
	       memcmp(fa, fb, sizeof(fa)) == 0;
}

/* The product a leaf says it belongs to (productName). */
static int leaf_product(X509 *leaf, enum snp_product *ret)
{
	struct certs_amd_ext e;
	int r;

	r = certs_amd_ext_parse(leaf, &e);
	if (r < 0)
		return r;
	if (!e.product_name[0])
		return -EBADMSG;
	return certs_product_from_name(e.product_name, ret);
}

int certs_verify_chain(X509 *leaf, X509 *ask, X509 *ark, const struct certs_verify_opts *opts,
		       enum snp_product *ret_product)
{
	static const struct certs_verify_opts no_opts = {0};
	enum snp_product product = SNP_PRODUCT_UNKNOWN, lp;
	X509 *certs[3] = {ark, ask, leaf};
	int r;

	if (!ask || !ark)
		return -EINVAL;
	if (!opts)
		opts = &no_opts;

	/* Trust: a pinned AMD root, or the extra root the caller explicitly passed. */
	r = certs_ark_pinned(ark, &product);
	if (r == -ENOENT) {
		if (!opts->extra_ark || !same_cert(ark, opts->extra_ark))
			return -EPERM;
		/* An extra root names its product like AMD's do ("ARK-Milan"), else the leaf does.
		 */
		if (product_from_cn(ark, "ARK-", &product) < 0) {
			if (!leaf || leaf_product(leaf, &product) < 0)
				return -EXDEV;
		}
	} else if (r < 0)
		return r;

	/* ARK: self-issued and self-signed, a CA. */
	if (X509_NAME_cmp(X509_get_subject_name(ark), X509_get_issuer_name(ark)) != 0)
		return -EPERM;
	r = verify_signed_by(ark, ark);
	if (r < 0)
		return r;
	if (X509_check_ca(ark) != 1)
		return -EBADMSG;

	/* ASK/ASVK: issued by this ARK (another product's ASK names another issuer). */
	if (X509_NAME_cmp(X509_get_issuer_name(ask), X509_get_subject_name(ark)) != 0)
		return -EXDEV;
	r = verify_signed_by(ask, ark);
	if (r < 0)
		return r;
	if (X509_check_ca(ask) != 1)
		return -EBADMSG;

	if (leaf) {
		if (X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ask)) != 0)
			return -EXDEV;
		r = leaf_product(leaf, &lp);
		if (r == -ENOENT)
			return -EXDEV; /* a product this code does not know is not this chain's */
		if (r < 0)
			return r;
		if (lp != product)
			return -EXDEV;
		r = verify_signed_by(leaf, ask);
		if (r < 0)
			return r;
	}

	if (opts->now != 0)
		for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
			if (!certs[i])
				continue;
			r = certs_check_validity(certs[i], opts->now, NULL, 0);
			if (r < 0)
				return r;
		}

	if (ret_product)
		*ret_product = product;
	return 0;
}

/* ---- leaf vs. platform/report ---- */

static int check_leaf(X509 *leaf, enum snp_product p, uint64_t reported_tcb, int want_kind,
		      const uint8_t *chip_id, size_t chip_id_len)
{
	struct certs_amd_ext e;
	enum snp_product lp;
	uint64_t tcb;
	size_t n;
	int r;

	if (!leaf || p <= SNP_PRODUCT_UNKNOWN || p >= _SNP_PRODUCT_MAX)
		return -EINVAL;
	r = certs_amd_ext_parse(leaf, &e);
	if (r < 0)
		return r;
	if (e.product_name[0]) {
		if (certs_product_from_name(e.product_name, &lp) < 0 || lp != p)
			return -ENOKEY;
	}
	if (e.hwid_len == 0 && !e.csp_id[0])
		return -EBADMSG; /* neither a VCEK nor a VLEK */
	if (want_kind == CERTS_LEAF_VCEK && e.hwid_len == 0)
		return -ENOKEY;
	if (want_kind == CERTS_LEAF_VLEK && !e.csp_id[0])
		return -ENOKEY;

	r = certs_amd_ext_tcb(&e, p, &tcb);
	if (r < 0)
		return r;
	if (tcb != reported_tcb)
		return -ENOKEY;

	if (e.hwid_len && chip_id) {
		n = snp_product_hwid_len(p);
		if (e.hwid_len != n || chip_id_len < n)
			return -ENOKEY;
		if (memcmp(e.hwid, chip_id, n) != 0)
			return -ENOKEY;
	}
	return 0;
}

int certs_check_platform(X509 *leaf, enum snp_product p, uint64_t reported_tcb,
			 const uint8_t *chip_id, size_t chip_id_len)
{
	return check_leaf(leaf, p, reported_tcb, -1, chip_id, chip_id_len);
}

int certs_check_report(X509 *leaf, const struct report *r, enum snp_product p)
{
	if (!r)
		return -EINVAL;
	switch (r->signing_key) {
	case REPORT_SIGNING_KEY_VCEK:
		return check_leaf(leaf, p, r->reported_tcb, CERTS_LEAF_VCEK, r->chip_id,
				  sizeof(r->chip_id));
	case REPORT_SIGNING_KEY_VLEK:
		return check_leaf(leaf, p, r->reported_tcb, CERTS_LEAF_VLEK, NULL, 0);
	default:
		return -ENOKEY; /* unsigned report: no certificate can match */
	}
}

int certs_verify_report(const uint8_t *report, size_t len, X509 *leaf, X509 *ask, X509 *ark,
			const struct certs_verify_opts *opts)
{
	struct report rep;
	enum snp_product p, rp;
	EVP_PKEY *pub;
	int r;

	if (!report || !leaf || (!ask) != (!ark))
		return -EINVAL;
	r = report_parse(report, len, &rep);
	if (r < 0)
		return r;
	pub = X509_get0_pubkey(leaf);
	if (!pub) {
		ERR_clear_error();
		return -EBADMSG;
	}
	r = report_verify_signature(report, len, pub);
	if (r < 0)
		return r;

	r = leaf_product(leaf, &p);
	if (r == -ENOENT)
		return -ENOKEY;
	if (r < 0)
		return r;
	/* v3+ reports say which product made them; a leaf for another product cannot match. */
	if (report_product(&rep, &rp) == 0 && rp != p)
		return -ENOKEY;
	r = certs_check_report(leaf, &rep, p);
	if (r < 0)
		return r;

	if (ask && ark) {
		r = certs_verify_chain(leaf, ask, ark, opts, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}
