/* SPDX-License-Identifier: Apache-2.0 */
/* sim-ca: a stand-in for AMD's key hierarchy. It owns the ARK/ASK/ASVK files of one product in
 * its directory; it never logs (callers report errors) and never signs anything but RSA-PSS. */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "util.h"

enum role {
	ROLE_ARK,
	ROLE_ASK,
	ROLE_ASVK,
	_ROLE_MAX,
};

static const char *const role_file[_ROLE_MAX] = {"ark", "ask", "asvk"};

struct sim_ca {
	enum snp_product product;
	EVP_PKEY *key[_ROLE_MAX]; /* owned */
	X509 *cert[_ROLE_MAX];	  /* owned */
};

#define RSA_BITS 4096
#define PSS_SALT_LEN 48 /* facts §7.1 */
#define KDS_CRL_BASE "https://kdsintf.amd.com"
#define AMD_OID_ARC "1.3.6.1.4.1.3704.1"
#define VCEK_YEARS 7
#define VLEK_YEARS 1
#define ROOT_YEARS 25
#define CRL_DAYS 7

static void x509_freep(X509 **p)
{
	X509_free(*p);
}

static void pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}

static void bio_freep(BIO **p)
{
	BIO_free(*p);
}

static void crl_freep(X509_CRL **p)
{
	X509_CRL_free(*p);
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static const char *lower_name(enum snp_product p)
{
	switch (p) {
	case SNP_PRODUCT_MILAN:
		return "milan";
	case SNP_PRODUCT_GENOA:
		return "genoa";
	case SNP_PRODUCT_TURIN:
		return "turin";
	default:
		return NULL;
	}
}

const char *sim_ca_product_name(enum snp_product p, enum sim_ca_line line)
{
	/* Real VCEKs say "Milan-B0" for every Milan chip; the Milan VLEK says "Milan". */
	if (p == SNP_PRODUCT_MILAN && line == SIM_CA_VCEK)
		return "Milan-B0";
	return snp_product_name(p);
}

/* Adds years to t on the calendar (so 2020-10-22 + 25 = 2045-10-22, like AMD's roots). */
static time_t add_years(time_t t, int years)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_year += years;
	return timegm(&tm);
}

static int set_validity(X509 *x, time_t from, time_t to)
{
	if (!ASN1_TIME_set(X509_getm_notBefore(x), from) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), to))
		return -ENOMEM;
	return 0;
}

/* OU, C, L, ST, O, CN in AMD's order; C is a PrintableString, the rest UTF8String. */
static int set_amd_name(X509_NAME *n, const char *cn)
{
	static const struct {
		const char *field;
		const char *value;
	} rdns[] = {
		{"OU", "Engineering"},		 {"C", "US"},  {"L", "Santa Clara"}, {"ST", "CA"},
		{"O", "Advanced Micro Devices"}, {"CN", NULL},
	};

	for (size_t i = 0; i < ELEMENTSOF(rdns); i++) {
		const char *v = rdns[i].value ? rdns[i].value : cn;
		if (!X509_NAME_add_entry_by_txt(n, rdns[i].field, MBSTRING_UTF8,
						(const unsigned char *)v, -1, -1, 0))
			return -ENOMEM;
	}
	return 0;
}

/* Prepares an RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 signing context. */
static EVP_MD_CTX *pss_ctx(EVP_PKEY *key)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	if (!m)
		return NULL;
	if (EVP_DigestSignInit(m, &pctx, EVP_sha384(), NULL, key) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) <= 0) {
		EVP_MD_CTX_free(m);
		return NULL;
	}
	return m;
}

static int sign_cert(X509 *x, EVP_PKEY *key)
{
	EVP_MD_CTX *m = pss_ctx(key);
	int r;

	if (!m)
		return -EIO;
	r = X509_sign_ctx(x, m) > 0 ? 0 : -EIO;
	EVP_MD_CTX_free(m);
	return r;
}

int sim_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -EINVAL;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -ENOMEM;
}

/* An extension whose OCTET STRING holds der (already DER, or raw bytes for hwID). */
static int add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	int r = -ENOMEM;

	if (obj && os && ASN1_OCTET_STRING_set(os, der, (int)len))
		e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	if (e && X509_add_ext(x, e, -1))
		r = 0;
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return r;
}

/* DER INTEGER of a byte value: minimal, so values >= 0x80 get a leading zero (facts §7.2). */
static int add_int_ext(X509 *x, const char *suffix, uint8_t v)
{
	uint8_t der[4] = {0x02, 0x01, v};
	size_t len = 3;
	char oid[64];

	if (v >= 0x80) {
		der[1] = 0x02;
		der[2] = 0x00;
		der[3] = v;
		len = 4;
	}
	snprintf(oid, sizeof(oid), AMD_OID_ARC ".%s", suffix);
	return add_raw_ext(x, oid, der, len);
}

static int add_ia5_ext(X509 *x, const char *suffix, const char *s)
{
	uint8_t der[2 + 127];
	size_t n = strlen(s);
	char oid[64];

	if (n > 127)
		return -EINVAL;
	der[0] = 0x16; /* IA5String */
	der[1] = (uint8_t)n;
	memcpy(der + 2, s, n);
	snprintf(oid, sizeof(oid), AMD_OID_ARC ".%s", suffix);
	return add_raw_ext(x, oid, der, n + 2);
}

/* The AMD extensions in the order KDS emits them (checked on the real Milan, Genoa and Turin
 * certificates): Milan/Genoa list spl_4..7 between tee and snp; Turin puts fmcSPL first, has no
 * spl_4 and keeps spl_5..7 after snp. */
static int add_amd_exts(X509 *x, enum snp_product p, enum sim_ca_line line, uint64_t tcb)
{
	struct tcb_version t;
	bool turin = snp_product_has_fmc(p);
	int r;

	tcb_decode(tcb, p, &t);
	if ((r = add_int_ext(x, "1", turin ? 1 : 0)) < 0 ||
	    (r = add_ia5_ext(x, "2", sim_ca_product_name(p, line))) < 0)
		return r;
	if (turin) {
		if ((r = add_int_ext(x, "3.9", t.fmc)) < 0 ||
		    (r = add_int_ext(x, "3.1", t.bootloader)) < 0 ||
		    (r = add_int_ext(x, "3.2", t.tee)) < 0 ||
		    (r = add_int_ext(x, "3.3", t.snp)) < 0 ||
		    (r = add_int_ext(x, "3.5", t.reserved[0])) < 0 ||
		    (r = add_int_ext(x, "3.6", t.reserved[1])) < 0 ||
		    (r = add_int_ext(x, "3.7", t.reserved[2])) < 0)
			return r;
	} else {
		if ((r = add_int_ext(x, "3.1", t.bootloader)) < 0 ||
		    (r = add_int_ext(x, "3.2", t.tee)) < 0 ||
		    (r = add_int_ext(x, "3.4", t.reserved[0])) < 0 ||
		    (r = add_int_ext(x, "3.5", t.reserved[1])) < 0 ||
		    (r = add_int_ext(x, "3.6", t.reserved[2])) < 0 ||
		    (r = add_int_ext(x, "3.7", t.reserved[3])) < 0 ||
		    (r = add_int_ext(x, "3.3", t.snp)) < 0)
			return r;
	}
	return add_int_ext(x, "3.8", t.microcode);
}

static void role_cn(enum snp_product p, enum role role, char *buf, size_t size)
{
	static const char *const fmt[_ROLE_MAX] = {"ARK-%s", "SEV-%s", "SEV-VLEK-%s"};

	snprintf(buf, size, fmt[role], snp_product_name(p));
}

/* ARK (self-signed) or ASK/ASVK (signed by the ARK) with AMD's extension set. */
static int make_ca_cert(enum snp_product p, enum role role, EVP_PKEY *key, X509 *ark,
			EVP_PKEY *ark_key, X509 **ret)
{
	_cleanup_(x509_freep) X509 *x = X509_new();
	char cn[64], crl[128];
	time_t now = time(NULL);
	int r;

	if (!x)
		return -ENOMEM;
	role_cn(p, role, cn, sizeof(cn));
	snprintf(crl, sizeof(crl), "URI:" KDS_CRL_BASE "/%s/v1/%s/crl",
		 role == ROLE_ASVK ? "vlek" : "vcek", snp_product_name(p));
	/* Serials follow AMD's pattern: product << 16, +1 for the ASK, +0x101 for the ASVK. */
	static const long serial_low[_ROLE_MAX] = {0, 0x1, 0x101};
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), ((long)p << 16) | serial_low[role]) ||
	    !X509_set_pubkey(x, key))
		return -ENOMEM;
	if ((r = set_amd_name(X509_get_subject_name(x), cn)) < 0)
		return r;
	if (!X509_set_issuer_name(x, role == ROLE_ARK ? X509_get_subject_name(x)
						      : X509_get_subject_name(ark)))
		return -ENOMEM;
	if ((r = set_validity(x, now, add_years(now, ROOT_YEARS))) < 0)
		return r;
	if (role == ROLE_ARK) {
		if ((r = sim_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
		    (r = sim_add_ext(x, x, NID_subject_key_identifier, "hash")) < 0 ||
		    (r = sim_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
		    (r = sim_add_ext(x, x, NID_crl_distribution_points, crl)) < 0)
			return r;
		r = sign_cert(x, key);
	} else {
		if ((r = sim_add_ext(x, ark, NID_subject_key_identifier, "hash")) < 0 ||
		    (r = sim_add_ext(x, ark, NID_authority_key_identifier, "keyid:always")) < 0 ||
		    (r = sim_add_ext(x, ark, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) <
			    0 ||
		    (r = sim_add_ext(x, ark, NID_key_usage, "critical,keyCertSign")) < 0 ||
		    (r = sim_add_ext(x, ark, NID_crl_distribution_points, crl)) < 0)
			return r;
		r = sign_cert(x, ark_key);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(x);
	return 0;
}

/* Writes a file with mode 0600 via a temporary name, so a crash never leaves half a key. */
static int write_private(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	_cleanup_(closep) int fd = -1;
	size_t off = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;

	if (!b)
		return -ENOMEM;
	if (key && !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		return -EIO;
	if (cert && !PEM_write_bio_X509(b, cert))
		return -EIO;
	len = BIO_get_mem_data(b, &data);
	return write_private(path, data, (size_t)len);
}

/* -ENOENT if the file is absent, -EBADMSG if it holds no valid PEM of the wanted kind. */
static int read_pem(const char *path, EVP_PKEY **ret_key, X509 **ret_cert)
{
	_cleanup_(bio_freep) BIO *b = NULL;
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	b = BIO_new_file(path, "r");
	if (!b)
		return -EACCES;
	if (ret_key) {
		EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		if (!k)
			return -EBADMSG;
		*ret_key = k;
	} else {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (!x)
			return -EBADMSG;
		*ret_cert = x;
	}
	ERR_clear_error();
	return 0;
}

static int load_or_make(struct sim_ca *ca, const char *dir, enum role role, bool force_cert)
{
	char kpath[4096], cpath[4096];
	_cleanup_(pkey_freep) EVP_PKEY *key = NULL;
	_cleanup_(x509_freep) X509 *cert = NULL;
	const char *pn = lower_name(ca->product);
	int r;

	if ((size_t)snprintf(kpath, sizeof(kpath), "%s/%s-%s.key", dir, role_file[role], pn) >=
		    sizeof(kpath) ||
	    (size_t)snprintf(cpath, sizeof(cpath), "%s/%s-%s.pem", dir, role_file[role], pn) >=
		    sizeof(cpath))
		return -ENAMETOOLONG;

	r = read_pem(kpath, &key, NULL);
	if (r == -ENOENT) {
		key = EVP_RSA_gen(RSA_BITS);
		if (!key)
			return -EIO;
		if ((r = write_pem(kpath, key, NULL)) < 0)
			return r;
		force_cert = true;
	} else if (r < 0) {
		return r;
	}

	r = force_cert ? -ENOENT : read_pem(cpath, NULL, &cert);
	if (r == -ENOENT) {
		r = make_ca_cert(ca->product, role, key, ca->cert[ROLE_ARK], ca->key[ROLE_ARK],
				 &cert);
		if (r < 0)
			return r;
		if ((r = write_pem(cpath, NULL, cert)) < 0)
			return r;
	} else if (r < 0) {
		return r;
	}

	/* A stored certificate must belong to its key and be signed by our ARK. */
	if (X509_check_private_key(cert, key) != 1 ||
	    X509_verify(cert, role == ROLE_ARK ? key : ca->key[ROLE_ARK]) != 1) {
		ERR_clear_error();
		return -EXDEV;
	}
	ca->key[role] = TAKE_PTR(key);
	ca->cert[role] = TAKE_PTR(cert);
	return 0;
}

int sim_ca_open(const char *dir, enum snp_product p, struct sim_ca **ret)
{
	char lock[4096];
	_cleanup_(closep) int lfd = -1;
	struct sim_ca *ca;
	int r;

	if (!lower_name(p) || !dir)
		return -EINVAL;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(lock, sizeof(lock), "%s/.lock", dir) >= sizeof(lock))
		return -ENAMETOOLONG;
	/* Serialise generation between processes sharing a state directory. */
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -errno;
	if (flock(lfd, LOCK_EX) < 0)
		return -errno;

	ca = calloc(1, sizeof(*ca));
	if (!ca)
		return -ENOMEM;
	ca->product = p;
	r = load_or_make(ca, dir, ROLE_ARK, false);
	if (r < 0)
		goto fail;
	for (enum role role = ROLE_ASK; role < _ROLE_MAX; role++) {
		r = load_or_make(ca, dir, role, false);
		/* A certificate not signed by the current ARK (the ARK was regenerated) is
		 * reissued for the kept key. */
		if (r == -EXDEV)
			r = load_or_make(ca, dir, role, true);
		if (r < 0)
			goto fail;
	}
	*ret = ca;
	return 0;
fail:
	sim_ca_free(ca);
	return r;
}

void sim_ca_free(struct sim_ca *ca)
{
	if (!ca)
		return;
	for (int i = 0; i < _ROLE_MAX; i++) {
		EVP_PKEY_free(ca->key[i]);
		X509_free(ca->cert[i]);
	}
	free(ca);
}

X509 *sim_ca_ark(const struct sim_ca *ca)
{
	return ca->cert[ROLE_ARK];
}

X509 *sim_ca_signer(const struct sim_ca *ca, enum sim_ca_line line)
{
	return ca->cert[line == SIM_CA_VLEK ? ROLE_ASVK : ROLE_ASK];
}

int sim_ca_chain_pem(const struct sim_ca *ca, enum sim_ca_line line, char **ret_buf,
		     size_t *ret_len)
{
	_cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	if (!b)
		return -ENOMEM;
	if (!PEM_write_bio_X509(b, sim_ca_signer(ca, line)) ||
	    !PEM_write_bio_X509(b, ca->cert[ROLE_ARK]))
		return -EIO;
	len = BIO_get_mem_data(b, &data);
	out = malloc((size_t)len + 1);
	if (!out)
		return -ENOMEM;
	memcpy(out, data, (size_t)len);
	out[len] = '\0';
	*ret_buf = out;
	*ret_len = (size_t)len;
	return 0;
}

static bool is_p384(EVP_PKEY *k)
{
	char group[64];

	if (!k || !EVP_PKEY_is_a(k, "EC"))
		return false;
	if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL))
		return false;
	return strcmp(group, "secp384r1") == 0;
}

static int issue_leaf(const struct sim_ca *ca, enum sim_ca_line line, EVP_PKEY *pub,
		      const uint8_t *hwid, size_t hwid_len, const char *csp_id, uint64_t tcb,
		      time_t now, X509 **ret)
{
	_cleanup_(x509_freep) X509 *x = X509_new();
	X509 *signer = sim_ca_signer(ca, line);
	enum role srole = line == SIM_CA_VLEK ? ROLE_ASVK : ROLE_ASK;
	int r;

	if (!x)
		return -ENOMEM;
	/* Serial 0 like every real VCEK/VLEK (facts §7.1); the serial is already 0 in a new X509,
	 * set it explicitly anyway. */
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 0) || !X509_set_pubkey(x, pub) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(signer)))
		return -ENOMEM;
	if ((r = set_amd_name(X509_get_subject_name(x),
			      line == SIM_CA_VLEK ? "SEV-VLEK" : "SEV-VCEK")) < 0)
		return r;
	if ((r = set_validity(x, now,
			      add_years(now, line == SIM_CA_VLEK ? VLEK_YEARS : VCEK_YEARS))) < 0)
		return r;
	if ((r = add_amd_exts(x, ca->product, line, tcb)) < 0)
		return r;
	if (line == SIM_CA_VCEK)
		r = add_raw_ext(x, AMD_OID_ARC ".4", hwid, hwid_len);
	else
		r = add_ia5_ext(x, "5", csp_id);
	if (r < 0)
		return r;
	if ((r = sign_cert(x, ca->key[srole])) < 0)
		return r;
	*ret = TAKE_PTR(x);
	return 0;
}

int sim_ca_issue_vcek(const struct sim_ca *ca, EVP_PKEY *pub, const uint8_t *hwid, size_t hwid_len,
		      uint64_t tcb, time_t now, X509 **ret)
{
	if (!ca || !hwid || hwid_len != snp_product_hwid_len(ca->product) || !is_p384(pub))
		return -EINVAL;
	return issue_leaf(ca, SIM_CA_VCEK, pub, hwid, hwid_len, NULL, tcb, now, ret);
}

int sim_ca_issue_vlek(const struct sim_ca *ca, EVP_PKEY *pub, const char *csp_id, uint64_t tcb,
		      time_t now, X509 **ret)
{
	if (!ca || !csp_id || !*csp_id || strlen(csp_id) > 127 || !is_p384(pub))
		return -EINVAL;
	return issue_leaf(ca, SIM_CA_VLEK, pub, NULL, 0, csp_id, tcb, now, ret);
}

int sim_ca_issue_crl(const struct sim_ca *ca, enum sim_ca_line line, time_t now, X509_CRL **ret)
{
	_cleanup_(crl_freep) X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = NULL;
	EVP_MD_CTX *m;
	int r = -ENOMEM;

	if (!crl)
		return -ENOMEM;
	/* Both lines' CRLs are issued by the ARK: it is the one that revokes intermediates. */
	(void)line;
	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert[ROLE_ARK])))
		return -ENOMEM;
	t = ASN1_TIME_set(NULL, now);
	if (!t || !X509_CRL_set1_lastUpdate(crl, t))
		goto out;
	if (!ASN1_TIME_set(t, now + (time_t)CRL_DAYS * 86400) || !X509_CRL_set1_nextUpdate(crl, t))
		goto out;
	m = pss_ctx(ca->key[ROLE_ARK]);
	if (!m) {
		r = -EIO;
		goto out;
	}
	r = X509_CRL_sign_ctx(crl, m) > 0 ? 0 : -EIO;
	EVP_MD_CTX_free(m);
	if (r == 0)
		*ret = TAKE_PTR(crl);
out:
	ASN1_TIME_free(t);
	return r;
}
