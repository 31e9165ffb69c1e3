/* SPDX-License-Identifier: Apache-2.0 */
/* chainsrc: the chain source when it is KDS (through the cache). Owns the KDS client's use:
 * the fetch of a rotation's new chain and its parsing, snpctl cert import (verified, then
 * written into the KDS cache) and snpctl cert fetch (revalidation with KDS, rotating when the
 * answer differs). A configured certificate directory is read where the chain is needed, by
 * rotation.c (chain_from_dir). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "cache.h"
#include "certs.h"
#include "log.h"
#include "util.h"

#include "broker-int.h"

void fetch_free(struct broker_fetch *f)
{
	free(f->chain);
	free(f->leaf);
	free(f);
}

static void rot_fetched(struct broker_rotation *rot)
{
	struct broker *b = rot->b;
	_cleanup_(freep) uint8_t *chain = TAKE_PTR(rot->fetch_chain),
				 *leaf = TAKE_PTR(rot->fetch_leaf);
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	char cerr[600], msg[1000];
	int r = rot->fetch_r;

	rot->fetching = false;
	if (b->draining) {
		rot_finish(b, rot, -ECANCELED, "the daemon is stopping");
		return;
	}
	snprintf(cerr, sizeof(cerr), "%s", rot->fetch_err);
	if (r == 0) {
		r = certs_parse_pem_chain(chain, rot->fetch_chain_len, &sk);
		if (r == 0)
			r = certs_kds_chain_pair(sk, NULL, NULL);
		if (r == 0)
			r = certs_parse(leaf, rot->fetch_leaf_len, &x);
		if (r < 0)
			snprintf(cerr, sizeof(cerr), "KDS answer does not parse: %s",
				 snp_strerror(r));
	}
	if (r == 0) {
		X509 *ask = sk_X509_value(sk, 0), *ark = sk_X509_value(sk, 1);
		r = chain_build(x, ask, ark, b->sim_ark, &rot->pf_expect, rot->fetch_source,
				time(NULL), &rot->prepared, cerr, sizeof(cerr));
		if (r == 0) {
			x = NULL;
			(void)sk_X509_pop(sk);
			(void)sk_X509_pop(sk);
		}
	}
	X509_free(x);
	if (sk)
		sk_X509_pop_free(sk, X509_free);
	if (r < 0 && !rot->must_run) {
		refusal_text(rot, cerr, msg, sizeof(msg));
		rot_finish(b, rot, -ENOKEY, msg); /* the cause is in msg */
		return;
	}
	if (r < 0)
		snprintf(rot->chain_err, sizeof(rot->chain_err), "%s", cerr);
	rot_pause(b);
}

static void on_fetch(struct broker_rotation *rot, int r, const uint8_t *body, size_t len,
		     const struct kdsc_meta *meta, bool is_leaf)
{
	if (r == 0) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			r = -ENOMEM;
		else {
			memcpy(copy, body, len);
			if (is_leaf) {
				rot->fetch_leaf = copy;
				rot->fetch_leaf_len = len;
				snprintf(rot->fetch_source, sizeof(rot->fetch_source), "%s",
					 rot->b->import_next			     ? "import"
					 : meta && meta->source == KDSC_SOURCE_CACHE ? "cache"
										     : "kds");
				rot->b->import_next = false;
			} else {
				rot->fetch_chain = copy;
				rot->fetch_chain_len = len;
			}
		}
	}
	if (r < 0 && rot->fetch_r == 0) {
		char why[96] = "";
		uint64_t now = now_usec();

		if (r == -EAGAIN && meta && meta->retry_at_usec > now)
			/* Not asked: KDS manners (pacing or backoff after failures). */
			snprintf(why, sizeof(why),
				 " (KDS not asked again yet: next attempt in %.1fs)",
				 (double)(meta->retry_at_usec - now) / 1e6);
		else if (r == -ENOENT)
			snprintf(why, sizeof(why), " (404: masked chip id or wrong product?)");
		rot->fetch_r = r;
		snprintf(rot->fetch_err, sizeof(rot->fetch_err), "%s from KDS: %s%s",
			 is_leaf ? "VCEK" : "certificate chain", snp_strerror(r), why);
	}
	if (--rot->fetch_pending == 0)
		rot_fetched(rot);
}

static void on_fetch_chain(void *userdata, int r, const uint8_t *body, size_t len,
			   const struct kdsc_meta *meta)
{
	on_fetch(userdata, r, body, len, meta, false);
}

static void on_fetch_leaf(void *userdata, int r, const uint8_t *body, size_t len,
			  const struct kdsc_meta *meta)
{
	on_fetch(userdata, r, body, len, meta, true);
}

/* Starts the two KDS fetches (cache first, inside kdsc). 0 or -errno with cerr. */
int rot_fetch(struct broker *b, struct broker_rotation *rot, char *cerr, size_t size)
{
	struct kds_request chain = {.kind = KDS_VCEK_CHAIN, .product = rot->pf_expect.product};
	struct kds_request leaf = {.kind = KDS_VCEK,
				   .product = rot->pf_expect.product,
				   .tcb = rot->pf_expect.reported_tcb};
	int r;

	if (rot->pf_expect.vlek_loaded) {
		snprintf(cerr, size,
			 "KDS does not hand out VLEKs: put vlek-<TCB>.der and "
			 "cert_chain_vlek.pem in [certs] cert_dir");
		return -ENOKEY;
	}
	leaf.hwid_len = snp_product_hwid_len(leaf.product);
	if (!leaf.hwid_len || leaf.hwid_len > rot->pf_expect.chip_id_len) {
		snprintf(cerr, size, "no chip id of the right length for %s",
			 snp_product_name(leaf.product));
		return -ENOKEY;
	}
	memcpy(leaf.hwid, rot->pf_expect.chip_id, leaf.hwid_len);
	rot->fetching = true;
	rot->fetch_pending = 2;
	r = kdsc_fetch(b->kdsc, &chain, 0, on_fetch_chain, rot);
	if (r < 0) {
		rot->fetching = false;
		snprintf(cerr, size, "cannot start the KDS fetch: %s", snp_strerror(r));
		return r;
	}
	r = kdsc_fetch(b->kdsc, &leaf, 0, on_fetch_leaf, rot);
	if (r < 0) {
		/* The chain fetch completes later and finds the failure recorded. */
		rot->fetch_r = r;
		snprintf(rot->fetch_err, sizeof(rot->fetch_err), "cannot start the KDS fetch: %s",
			 snp_strerror(r));
		rot->fetch_pending--;
	}
	return 0;
}

/* The KDS keys of the platform's VCEK chain; -EOPNOTSUPP with err when KDS is not the source. */
static int kds_keys(const struct broker *b, struct kds_request *chain, struct kds_request *leaf,
		    const char *what, char *err, size_t err_size)
{
	if (b->m->conf.cert_dir[0]) {
		snprintf(err, err_size,
			 "KDS is not the certificate source: the chain comes from [certs] cert_dir "
			 "%s (%s: put the files there and run snpctl cert rotate)",
			 b->m->conf.cert_dir, what);
		return -EOPNOTSUPP;
	}
	if (!b->kdsc) {
		snprintf(err, err_size,
			 "no KDS cache is configured ([certs] kds_url and cache_dir): %s needs it",
			 what);
		return -EOPNOTSUPP;
	}
	if (b->pf.vlek_loaded) {
		snprintf(err, err_size,
			 "a VLEK is loaded and KDS does not hand out VLEKs: VLEK chains are served "
			 "from [certs] cert_dir only");
		return -EOPNOTSUPP;
	}
	*chain = (struct kds_request){.kind = KDS_VCEK_CHAIN, .product = b->pf.product};
	*leaf = (struct kds_request){
		.kind = KDS_VCEK, .product = b->pf.product, .tcb = b->pf.reported_tcb};
	leaf->hwid_len = snp_product_hwid_len(leaf->product);
	if (!leaf->hwid_len || leaf->hwid_len > b->pf.chip_id_len) {
		snprintf(err, err_size, "no chip id of the right length for %s",
			 snp_product_name(leaf->product));
		return -EOPNOTSUPP;
	}
	memcpy(leaf->hwid, b->pf.chip_id, leaf->hwid_len);
	return 0;
}

/* ASK then ARK as PEM, as KDS serves a cert_chain (malloc'd). */
static int chain_pem(X509 *ask, X509 *ark, uint8_t **ret, size_t *ret_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_X509(bio, ask) == 1 && PEM_write_bio_X509(bio, ark) == 1) {
		n = BIO_get_mem_data(bio, &data);
		*ret = n > 0 ? malloc((size_t)n) : NULL;
		if (*ret) {
			memcpy(*ret, data, (size_t)n);
			*ret_len = (size_t)n;
			r = 0;
		}
	}
	BIO_free(bio);
	return r;
}

static void on_import_written(void *userdata, int r)
{
	struct broker_import *imp = userdata;
	struct broker *b = imp->b;
	broker_op_done_fn cb = imp->cb;
	void *cb_data = imp->userdata;
	char err[700] = "";

	b->import = NULL;
	free(imp);
	if (r < 0) {
		snprintf(err, sizeof(err), "cannot write the KDS cache in %s: %s",
			 b->m->conf.cache_dir, snp_strerror(r));
		log_error("Certificate import: %s", err);
	} else if (b->draining) {
		r = -ESHUTDOWN;
		snprintf(err, sizeof(err), "the daemon is shutting down");
	} else {
		log_notice("Imported the %s VCEK chain for TCB 0x%016llx into the KDS cache %s",
			   snp_product_name(b->pf.product), (unsigned long long)b->pf.reported_tcb,
			   b->m->conf.cache_dir);
		b->import_next = true;
		r = rot_start(b, "snpctl cert import", BROKER_OP_NONE, 0, NULL, NULL, false, cb,
			      cb_data, err, sizeof(err));
		if (r == 0)
			return; /* the rotation answers */
		b->import_next = false;
	}
	if (cb)
		cb(cb_data, r, err);
}

int broker_cert_import(struct broker *b, X509 *leaf, X509 *ask, X509 *ark, broker_op_done_fn cb,
		       void *userdata, char *err, size_t err_size)
{
	struct kds_request qc, ql;
	struct chain *c = NULL;
	struct broker_import *imp = NULL;
	_cleanup_(freep) uint8_t *pem = NULL;
	_cleanup_(freep) uint8_t *der = NULL;
	size_t pem_len = 0, der_len = 0;
	struct cache_meta meta = {0};
	char cerr[600] = "";
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		r = -ESHUTDOWN;
		goto fail;
	}
	if (b->rot) {
		snprintf(err, err_size, "a rotation (%s) is under way", b->rot->why);
		r = -EBUSY;
		goto fail;
	}
	if (b->import) {
		snprintf(err, err_size, "another certificate import is being written");
		r = -EBUSY;
		goto fail;
	}
	r = kds_keys(b, &qc, &ql, "cert import", err, err_size);
	if (r < 0)
		goto fail;
	r = chain_build(leaf, ask, ark, b->sim_ark, &b->pf, "import", time(NULL), &c, cerr,
			sizeof(cerr));
	if (r < 0) {
		snprintf(err, err_size, "import refused: %s", cerr);
		goto fail;
	}
	/* From here the certificates belong to c. */
	r = chain_pem(c->ask, c->ark, &pem, &pem_len);
	if (r == 0)
		r = certs_to_der(c->leaf, &der, &der_len);
	chain_free(c);
	if (r < 0) {
		snprintf(err, err_size, "cannot encode the certificates: %s", snp_strerror(r));
		return r;
	}
	meta.fetched = (uint64_t)time(NULL);
	meta.fresh_until = CACHE_FRESH_FOREVER;
	imp = calloc(1, sizeof(*imp));
	if (!imp) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	*imp = (struct broker_import){.b = b, .cb = cb, .userdata = userdata};
	/* The VCEK, then the chain, written on the worker (fsync off the loop); the reply comes
	 * after the write and the rotation that serves it. */
	const struct cache_item items[2] = {
		{.q = ql, .body = der, .len = der_len, .meta = meta},
		{.q = qc, .body = pem, .len = pem_len, .meta = meta},
	};
	r = cache_put_all_async(b->worker, b->m->conf.cache_dir, items, 2, on_import_written, imp);
	if (r < 0) {
		free(imp);
		snprintf(err, err_size, "cannot write the KDS cache in %s: %s",
			 b->m->conf.cache_dir, snp_strerror(r));
		return r;
	}
	b->import = imp;
	return 0;
fail:
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
	return r;
}

static void fetch_finish(struct broker_fetch *f)
{
	struct broker *b = f->b;

	if (b->fetch == f)
		b->fetch = NULL;
	if (f->cb)
		f->cb(f->userdata, &f->res);
	fetch_free(f);
}

static void on_fetch_rotated(void *userdata, int r, const char *message)
{
	struct broker_fetch *f = userdata;

	f->res.rotated = true;
	f->res.rotate_r = r;
	snprintf(f->res.message, sizeof(f->res.message), "%s%s",
		 r < 0 ? "the chain changed but the rotation failed: " : "", message);
	fetch_finish(f);
}

/* Whether the fetched bodies are what is served now. */
static bool fetch_same(const struct broker_fetch *f, const struct chain *c)
{
	_cleanup_(freep) uint8_t *der = NULL;
	STACK_OF(X509) *sk = NULL;
	size_t der_len = 0;
	bool same = false;

	if (!c || c->vlek || certs_to_der(c->leaf, &der, &der_len) < 0)
		return false;
	if (der_len != f->leaf_len || memcmp(der, f->leaf, der_len) != 0)
		return false;
	if (certs_parse_pem_chain(f->chain, f->chain_len, &sk) < 0)
		return false;
	same = certs_kds_chain_pair(sk, NULL, NULL) == 0 &&
	       X509_cmp(sk_X509_value(sk, 0), c->ask) == 0 &&
	       X509_cmp(sk_X509_value(sk, 1), c->ark) == 0;
	sk_X509_pop_free(sk, X509_free);
	return same;
}

static void fetch_all_done(struct broker_fetch *f)
{
	struct broker *b = f->b;
	char err[700] = "";
	int r;

	if (f->res.chain.r < 0 || f->res.leaf.r < 0) {
		snprintf(f->res.message, sizeof(f->res.message),
			 "KDS did not give the chain: %s; the served chain is unchanged",
			 snp_strerror(f->res.leaf.r < 0 ? f->res.leaf.r : f->res.chain.r));
		fetch_finish(f);
		return;
	}
	f->res.changed = !fetch_same(f, b->chain);
	if (!f->res.changed) {
		snprintf(f->res.message, sizeof(f->res.message),
			 "the chain from KDS is the one served; nothing to rotate");
		fetch_finish(f);
		return;
	}
	if (b->draining) {
		snprintf(f->res.message, sizeof(f->res.message), "the daemon is stopping");
		fetch_finish(f);
		return;
	}
	r = rot_start(b, "snpctl cert fetch", BROKER_OP_NONE, 0, NULL, NULL, false,
		      on_fetch_rotated, f, err, sizeof(err));
	if (r < 0) {
		f->res.rotated = true;
		f->res.rotate_r = r;
		snprintf(f->res.message, sizeof(f->res.message),
			 "the chain changed but no rotation could start: %s", err);
		fetch_finish(f);
	}
}

static void on_cert_fetch(struct broker_fetch *f, bool is_leaf, int r, const uint8_t *body,
			  size_t len, const struct kdsc_meta *meta)
{
	struct broker_fetch_key *k = is_leaf ? &f->res.leaf : &f->res.chain;
	struct kdsc_key_state st;
	uint64_t now = manager_now_usec();

	k->r = r;
	if (meta) {
		k->http_status = meta->http_status;
		k->from_kds = meta->source == KDSC_SOURCE_KDS;
		k->stale = meta->stale;
		k->fetch_error = meta->fetch_error;
		k->retry_in_sec =
			meta->retry_at_usec > now ? (double)(meta->retry_at_usec - now) / 1e6 : 0.;
	}
	if (f->b->kdsc) {
		struct kds_request qc, ql;
		char err[8];
		if (kds_keys(f->b, &qc, &ql, "", err, sizeof(err)) == 0 &&
		    kdsc_key_state(f->b->kdsc, is_leaf ? &ql : &qc, &st) == 0)
			k->failures = st.failures;
	}
	if (r == 0) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			k->r = -ENOMEM;
		else {
			memcpy(copy, body, len);
			if (is_leaf) {
				f->leaf = copy;
				f->leaf_len = len;
			} else {
				f->chain = copy;
				f->chain_len = len;
			}
		}
	}
	if (--f->pending == 0)
		fetch_all_done(f);
}

static void on_cert_fetch_chain(void *userdata, int r, const uint8_t *body, size_t len,
				const struct kdsc_meta *meta)
{
	on_cert_fetch(userdata, false, r, body, len, meta);
}

static void on_cert_fetch_leaf(void *userdata, int r, const uint8_t *body, size_t len,
			       const struct kdsc_meta *meta)
{
	on_cert_fetch(userdata, true, r, body, len, meta);
}

int broker_cert_fetch(struct broker *b, broker_fetch_done_fn cb, void *userdata, char *err,
		      size_t err_size)
{
	struct kds_request qc, ql;
	struct broker_fetch *f;
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (b->fetch || b->rot) {
		snprintf(err, err_size, "a %s is under way",
			 b->fetch ? "certificate fetch" : "rotation");
		return -EBUSY;
	}
	r = kds_keys(b, &qc, &ql, "cert fetch", err, err_size);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->b = b;
	f->cb = cb;
	f->userdata = userdata;
	f->pending = 2;
	r = kdsc_fetch(b->kdsc, &qc, KDSC_FETCH_REVALIDATE, on_cert_fetch_chain, f);
	if (r < 0) {
		free(f);
		snprintf(err, err_size, "cannot start the KDS fetch: %s", snp_strerror(r));
		return r;
	}
	b->fetch = f;
	r = kdsc_fetch(b->kdsc, &ql, KDSC_FETCH_REVALIDATE, on_cert_fetch_leaf, f);
	if (r < 0) {
		/* The chain's completion finds the leaf failed and finishes. */
		f->res.leaf.r = r;
		f->pending--;
	}
	return 0;
}
