/* SPDX-License-Identifier: Apache-2.0 */
/* chain: chain loading, verification against the platform, and the GHCB table. */
#include "chain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "certs.h"
#include "certtable.h"
#include "smallfile.h"
#include "util.h"

#define STORE_FILE_MAX (64 * 1024)

static void x509_freep(X509 **x)
{
	X509_free(*x);
}

void chain_free(struct chain *c)
{
	if (!c)
		return;
	X509_free(c->leaf);
	X509_free(c->ask);
	X509_free(c->ark);
	free(c->table);
	free(c);
}

/* A certificate or CRL file: anything but 1..STORE_FILE_MAX bytes of a regular file is
 * -EMSGSIZE (as the parsers would say), read errors as they are. */
static int read_small_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = smallfile_read(path, STORE_FILE_MAX, &buf, &len);
	if (r == -EINVAL || r == -EFBIG)
		return -EMSGSIZE;
	if (r < 0)
		return r;
	if (len == 0) {
		free(buf);
		return -EMSGSIZE;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int load_cert(const char *path, X509 **ret)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	size_t len;
	int r = read_small_file(path, &buf, &len);

	if (r < 0)
		return r;
	return certs_parse(buf, len, ret);
}

int chain_load_sim_ark(const char *sim_state_dir, enum snp_product p, X509 **ret)
{
	char path[4096], lower[16];
	const char *name = snp_product_name(p);
	size_t i;
	int r;

	for (i = 0; name[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	lower[i] = '\0';
	snprintf(path, sizeof(path), "%s/kds/ark-%s.pem", sim_state_dir, lower);
	r = load_cert(path, ret);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* (Re)builds c->table from the chain and an optional DER CRL. */
static int build_table(struct chain *c, const uint8_t *crl, size_t crl_len)
{
	_cleanup_(freep) uint8_t *d_ark = NULL, *d_ask = NULL, *d_leaf = NULL;
	struct certtable_entry e[4];
	size_t l_ark, l_ask, l_leaf, n = 3, len;
	uint8_t *table;
	int r;

	if ((r = certs_to_der(c->ark, &d_ark, &l_ark)) < 0 ||
	    (r = certs_to_der(c->ask, &d_ask, &l_ask)) < 0 ||
	    (r = certs_to_der(c->leaf, &d_leaf, &l_leaf)) < 0)
		return r;
	memset(e, 0, sizeof(e));
	memcpy(e[0].guid, certtable_guid(CERTTABLE_ARK), 16);
	e[0].data = d_ark;
	e[0].length = (uint32_t)l_ark;
	memcpy(e[1].guid, certtable_guid(CERTTABLE_ASK), 16);
	e[1].data = d_ask;
	e[1].length = (uint32_t)l_ask;
	memcpy(e[2].guid, certtable_guid(c->vlek ? CERTTABLE_VLEK : CERTTABLE_VCEK), 16);
	e[2].data = d_leaf;
	e[2].length = (uint32_t)l_leaf;
	if (crl) {
		memcpy(e[3].guid, certtable_guid(CERTTABLE_CRL), 16);
		e[3].data = crl;
		e[3].length = (uint32_t)crl_len;
		n = 4;
	}
	r = certtable_build(e, n, &table, &len);
	if (r < 0)
		return r;
	free(c->table);
	c->table = table;
	c->table_len = len;
	c->table_pages = (uint32_t)certtable_npages(len);
	return 0;
}

int chain_build(X509 *leaf, X509 *ask, X509 *ark, X509 *extra_ark, const struct platform_facts *pf,
		const char *source, time_t now, struct chain **ret, char *err, size_t err_size)
{
	struct certs_verify_opts opts = {.extra_ark = extra_ark, .now = now};
	struct certs_amd_ext ext;
	enum snp_product product;
	struct chain *c;
	bool pinned;
	int r;

	r = certs_verify_chain(leaf, ask, ark, &opts, &product);
	if (r == -EKEYEXPIRED) {
		/* Name the certificate and the bound it misses, not only "not valid". */
		X509 *certs[] = {leaf, ask, ark};
		const char *roles[] = {"leaf", "ASK", "ARK"};
		char why[128] = "";
		size_t i;

		for (i = 0; i < ELEMENTSOF(certs); i++)
			if (certs_check_validity(certs[i], now, why, sizeof(why)) == -EKEYEXPIRED)
				break;
		snprintf(err, err_size, "chain from %s does not verify: %s (%s %s)", source,
			 snp_verify_strerror(r), i < ELEMENTSOF(certs) ? roles[i] : "a certificate",
			 why[0] ? why : "outside its validity");
		return r;
	}
	if (r < 0) {
		snprintf(err, err_size, "chain from %s does not verify: %s", source,
			 snp_verify_strerror(r));
		return r;
	}
	if (product != pf->product) {
		snprintf(err, err_size, "chain from %s is for %s, the platform is %s", source,
			 snp_product_name(product), snp_product_name(pf->product));
		return -EXDEV;
	}
	r = certs_amd_ext_parse(leaf, &ext);
	if (r < 0) {
		snprintf(err, err_size, "leaf certificate from %s has bad AMD extensions: %s",
			 source, snp_strerror(r));
		return r;
	}
	r = certs_check_platform(leaf, pf->product, pf->reported_tcb,
				 ext.hwid_len ? pf->chip_id : NULL, pf->chip_id_len);
	if (r < 0) {
		char a[96];
		snprintf(err, err_size,
			 "leaf certificate from %s does not match the platform (reported TCB %s, "
			 "chip id): %s",
			 source, tcb_format(pf->reported_tcb, pf->product, a, sizeof(a)),
			 snp_strerror(r));
		return r;
	}
	if ((ext.hwid_len == 0) != pf->vlek_loaded) {
		snprintf(err, err_size,
			 "leaf certificate from %s is a %s, the platform signs with its %s", source,
			 ext.hwid_len ? "VCEK" : "VLEK", pf->vlek_loaded ? "VLEK" : "VCEK");
		return -ENOKEY;
	}
	pinned = certs_ark_pinned(ark, &(enum snp_product){0}) == 0;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vlek = ext.hwid_len == 0;
	c->leaf = leaf;
	c->ask = ask;
	c->ark = ark;
	r = build_table(c, NULL, 0);
	if (r < 0) {
		snprintf(err, err_size, "cannot build the certificate table: %s", snp_strerror(r));
		c->leaf = c->ask = c->ark = NULL; /* not ours until success */
		chain_free(c);
		return r;
	}
	c->product = product;
	c->tcb = pf->reported_tcb;
	c->sim_root = !pinned;
	snprintf(c->source, sizeof(c->source), "%s", source);
	c->not_after = asn1_to_time(X509_get0_notAfter(leaf));
	{
		time_t t;
		if ((t = asn1_to_time(X509_get0_notAfter(ask))) && t < c->not_after)
			c->not_after = t;
		if ((t = asn1_to_time(X509_get0_notAfter(ark))) && t < c->not_after)
			c->not_after = t;
	}
	*ret = c;
	return 0;
}

int chain_add_crl(struct chain *c, const uint8_t *crl, size_t len, time_t now, char *err,
		  size_t err_size)
{
	const unsigned char *p = crl;
	X509_CRL *x = NULL;
	_cleanup_(freep) uint8_t *der = NULL;
	EVP_PKEY *ark_key;
	time_t next;
	int der_len, r;

	if (!crl || len == 0 || len > STORE_FILE_MAX) {
		snprintf(err, err_size, "CRL: empty or too large");
		return -EBADMSG;
	}
	if (len > 10 && memcmp(crl, "-----BEGIN", 10) == 0) {
		BIO *bio = BIO_new_mem_buf(crl, (int)len);
		if (bio)
			x = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		x = d2i_X509_CRL(NULL, &p, (long)len);
		if (x && p != crl + len) {
			X509_CRL_free(x);
			x = NULL;
		}
	}
	if (!x) {
		ERR_clear_error();
		snprintf(err, err_size, "CRL: not a DER or PEM CRL");
		return -EBADMSG;
	}
	ark_key = X509_get0_pubkey(c->ark);
	if (!ark_key || X509_CRL_verify(x, ark_key) != 1) {
		ERR_clear_error();
		X509_CRL_free(x);
		snprintf(err, err_size, "CRL: not signed by the chain's ARK");
		return -EKEYREJECTED;
	}
	next = asn1_to_time(X509_CRL_get0_nextUpdate(x));
	if (next == 0 || (now && next <= now)) {
		X509_CRL_free(x);
		snprintf(err, err_size, "CRL: past its nextUpdate (or has none)");
		return -EKEYEXPIRED;
	}
	der_len = i2d_X509_CRL(x, &der);
	X509_CRL_free(x);
	if (der_len <= 0) {
		ERR_clear_error();
		der = NULL;
		snprintf(err, err_size, "CRL: cannot encode");
		return -EBADMSG;
	}
	r = build_table(c, der, (size_t)der_len);
	if (r < 0) {
		snprintf(err, err_size, "CRL: table with it: %s", snp_strerror(r));
		return r;
	}
	c->has_crl = true;
	c->crl_next_update = next;
	return 0;
}

bool chain_matches(const struct chain *c, const struct platform_facts *pf)
{
	return c && c->vlek == pf->vlek_loaded && c->tcb == pf->reported_tcb &&
	       c->product == pf->product;
}

static int load_intermediates(const char *dir, bool vlek, X509 **ret_ask, X509 **ret_ark, char *err,
			      size_t err_size)
{
	_cleanup_(x509_freep) X509 *ask = NULL, *ark = NULL;
	char path[4096];
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, vlek ? "cert_chain_vlek.pem" : "cert_chain.pem");
	if (access(path, F_OK) == 0) {
		_cleanup_(freep) uint8_t *buf = NULL;
		size_t len;

		r = read_small_file(path, &buf, &len);
		if (r < 0) {
			snprintf(err, err_size, "%s: %s", path, snp_strerror(r));
			return r;
		}
		r = certs_parse_kds_chain(buf, len, ret_ask, ret_ark);
		if (r < 0) {
			snprintf(err, err_size, "%s: %s (expected %s then ARK)", path,
				 snp_strerror(r), vlek ? "ASVK" : "ASK");
			return r;
		}
		return 0;
	}
	snprintf(path, sizeof(path), "%s/ark.pem", dir);
	r = load_cert(path, &ark);
	if (r >= 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, vlek ? "asvk.pem" : "ask.pem");
		r = load_cert(path, &ask);
	}
	if (r < 0) {
		snprintf(err, err_size, "%s: %s", path, r == -ENOENT ? "missing" : snp_strerror(r));
		return r;
	}
	*ret_ask = TAKE_PTR(ask);
	*ret_ark = TAKE_PTR(ark);
	return 0;
}

int chain_from_dir(const char *dir, X509 *extra_ark, const struct platform_facts *pf, time_t now,
		   struct chain **ret, char *err, size_t err_size)
{
	const char *kind = pf->vlek_loaded ? "vlek" : "vcek";
	char names[5][64], path[4096], source[4200], first_err[4608] = "";
	const size_t n_names = pf->vlek_loaded ? 4 : 5;
	int first_r = -ENOENT, r;
	bool found = false;

	snprintf(names[0], sizeof(names[0]), "%s-%016llx.der", kind,
		 (unsigned long long)pf->reported_tcb);
	snprintf(names[1], sizeof(names[1]), "%s-%016llx.pem", kind,
		 (unsigned long long)pf->reported_tcb);
	snprintf(names[2], sizeof(names[2]), "%s.der", kind);
	snprintf(names[3], sizeof(names[3]), "%s.pem", kind);
	snprintf(names[4], sizeof(names[4]), "%s.crt", kind);

	for (size_t i = 0; i < n_names; i++) {
		_cleanup_(x509_freep) X509 *leaf = NULL, *ask = NULL, *ark = NULL;
		struct chain *c = NULL;
		char e[4608] = "";

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		r = load_cert(path, &leaf);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			snprintf(e, sizeof(e), "%s: %s", path, snp_strerror(r));
		} else {
			r = load_intermediates(dir, pf->vlek_loaded, &ask, &ark, e, sizeof(e));
			if (r == 0) {
				snprintf(source, sizeof(source), "dir:%s", path);
				r = chain_build(leaf, ask, ark, extra_ark, pf, source, now, &c, e,
						sizeof(e));
			}
		}
		if (r == 0) {
			_cleanup_(freep) uint8_t *crl = NULL;
			size_t crl_len;
			char crl_err[256];

			leaf = ask = ark = NULL; /* owned by c */
			for (int k = 0; k < 2 && !c->has_crl; k++) {
				snprintf(path, sizeof(path), "%s/crl%s.%s", dir,
					 pf->vlek_loaded ? "-vlek" : "", k ? "pem" : "der");
				free(TAKE_PTR(crl));
				if (read_small_file(path, &crl, &crl_len) == 0)
					(void)chain_add_crl(c, crl, crl_len, now, crl_err,
							    sizeof(crl_err));
			}
			*ret = c;
			return 0;
		}
		if (!found) {
			found = true;
			first_r = r;
			snprintf(first_err, sizeof(first_err), "%s", e);
		}
	}
	if (!found)
		snprintf(err, err_size, "%s: no %s-%016llx.der, %s.der or %s.pem", dir, kind,
			 (unsigned long long)pf->reported_tcb, kind, kind);
	else
		snprintf(err, err_size, "%s", first_err);
	return first_r;
}
