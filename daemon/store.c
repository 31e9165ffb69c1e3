/* SPDX-License-Identifier: Apache-2.0 */
/* store: chain loading, verification against the platform, and the GHCB table. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>

#include "certs.h"
#include "certtable.h"
#include "util.h"

#define STORE_FILE_MAX (64 * 1024)

static void x509_freep(X509 **x)
{
	X509_free(*x);
}

void store_chain_free(struct store_chain *c)
{
	if (!c)
		return;
	X509_free(c->leaf);
	X509_free(c->ask);
	X509_free(c->ark);
	free(c->table);
	free(c);
}

static int read_small_file(const char *path, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf;
	struct stat st;
	size_t len = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > STORE_FILE_MAX) {
		close(fd);
		return -EMSGSIZE;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
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

int store_load_sim_ark(const char *sim_state_dir, enum snp_product p, X509 **ret)
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

int store_chain_build(X509 *leaf, X509 *ask, X509 *ark, X509 *extra_ark,
		      const struct store_platform *pf, const char *source, time_t now,
		      struct store_chain **ret, char *err, size_t err_size)
{
	struct certs_verify_opts opts = { .extra_ark = extra_ark, .now = now };
	struct certs_amd_ext ext;
	struct certtable_entry e[3];
	_cleanup_(freep) uint8_t *d_ark = NULL, *d_ask = NULL, *d_leaf = NULL;
	size_t l_ark, l_ask, l_leaf;
	enum snp_product product;
	struct store_chain *c;
	bool pinned;
	int r;

	r = certs_verify_chain(leaf, ask, ark, &opts, &product);
	if (r < 0) {
		snprintf(err, err_size, "chain from %s does not verify: %s", source,
			 snp_strerror(r));
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
			 "leaf certificate from %s does not match the platform (reported TCB %s, chip id): %s",
			 source, tcb_format(pf->reported_tcb, pf->product, a, sizeof(a)),
			 snp_strerror(r));
		return r;
	}
	pinned = certs_ark_pinned(ark, &(enum snp_product){ 0 }) == 0;

	if ((r = certs_to_der(ark, &d_ark, &l_ark)) < 0 ||
	    (r = certs_to_der(ask, &d_ask, &l_ask)) < 0 ||
	    (r = certs_to_der(leaf, &d_leaf, &l_leaf)) < 0) {
		snprintf(err, err_size, "cannot encode certificates: %s", snp_strerror(r));
		return r;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	memset(e, 0, sizeof(e));
	memcpy(e[0].guid, certtable_guid(CERTTABLE_ARK), 16);
	e[0].data = d_ark;
	e[0].length = (uint32_t)l_ark;
	memcpy(e[1].guid, certtable_guid(CERTTABLE_ASK), 16);
	e[1].data = d_ask;
	e[1].length = (uint32_t)l_ask;
	c->vlek = ext.hwid_len == 0;
	memcpy(e[2].guid, certtable_guid(c->vlek ? CERTTABLE_VLEK : CERTTABLE_VCEK), 16);
	e[2].data = d_leaf;
	e[2].length = (uint32_t)l_leaf;
	r = certtable_build(e, 3, &c->table, &c->table_len);
	if (r < 0) {
		snprintf(err, err_size, "cannot build the certificate table: %s", snp_strerror(r));
		free(c);
		return r;
	}
	c->table_pages = (uint32_t)certtable_npages(c->table_len);
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
	c->leaf = leaf;
	c->ask = ask;
	c->ark = ark;
	*ret = c;
	return 0;
}

int store_chain_from_dir(const char *dir, X509 *extra_ark, const struct store_platform *pf,
			 time_t now, struct store_chain **ret, char *err, size_t err_size)
{
	_cleanup_(x509_freep) X509 *leaf = NULL, *ask = NULL, *ark = NULL;
	static const char *const leaf_names[] = { "vcek.der", "vcek.pem", "vcek.crt",
						  "vlek.der", "vlek.pem" };
	char path[4096], source[300];
	int r = -ENOENT;

	snprintf(path, sizeof(path), "%s/cert_chain.pem", dir);
	if (access(path, F_OK) == 0) {
		_cleanup_(freep) uint8_t *buf = NULL;
		STACK_OF(X509) *sk = NULL;
		size_t len;

		r = read_small_file(path, &buf, &len);
		if (r >= 0)
			r = certs_parse_pem_chain(buf, len, &sk);
		if (r < 0) {
			snprintf(err, err_size, "%s: %s", path, snp_strerror(r));
			return r;
		}
		if (sk_X509_num(sk) != 2) {
			sk_X509_pop_free(sk, X509_free);
			snprintf(err, err_size, "%s: expected ASK then ARK", path);
			return -EBADMSG;
		}
		ask = sk_X509_value(sk, 0);
		ark = sk_X509_value(sk, 1);
		sk_X509_free(sk);
	} else {
		snprintf(path, sizeof(path), "%s/ark.pem", dir);
		r = load_cert(path, &ark);
		if (r >= 0) {
			snprintf(path, sizeof(path), "%s/ask.pem", dir);
			r = load_cert(path, &ask);
		}
		if (r < 0) {
			snprintf(err, err_size, "%s: %s", path,
				 r == -ENOENT ? "missing" : snp_strerror(r));
			return r;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(leaf_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, leaf_names[i]);
		r = load_cert(path, &leaf);
		if (r != -ENOENT)
			break;
	}
	if (r < 0) {
		snprintf(err, err_size, "%s/vcek.der (or vcek.pem, vlek.der): %s", dir,
			 r == -ENOENT ? "missing" : snp_strerror(r));
		return r;
	}
	snprintf(source, sizeof(source), "dir:%s", dir);
	r = store_chain_build(leaf, ask, ark, extra_ark, pf, source, now, ret, err, err_size);
	if (r == 0) {
		leaf = NULL;
		ask = NULL;
		ark = NULL;
	}
	return r;
}
