/* SPDX-License-Identifier: Apache-2.0 */
/* kdsc: the KDS client's keys: per-key coalescing of fetches, pacing (minimum interval, backoff
 * with jitter, Retry-After, the per-host hold after a 429), conditional requests against the disk
 * cache, cache writes on the worker, the outcome counters and the public API. The HTTP transfers
 * are kdsc-http.c's (libcurl multi inside the libev loop). Must never block the loop on the
 * network. */
#include "kdsc.h"
#include "kdsc-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <curl/curl.h>

#include "cache.h"
#include "config.h"
#include "log.h"
#include "manager.h"
#include "util.h"
#include "worker.h"

static uint64_t rng_next(struct kdsc *k)
{
	/* xorshift64*: jitter only, no security role. */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545f4914f6cdd1dull;
}

/* ---- completions ---- */

static void ready_push(struct kdsc *k, struct kdsc_ready *r)
{
	r->next = NULL;
	*k->ready_tail = r;
	k->ready_tail = &r->next;
	if (!ev_is_active(&k->deliver)) {
		ev_timer_set(&k->deliver, 0., 0.);
		ev_timer_start(k->loop, &k->deliver);
	}
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kdsc *k = container_of(w, struct kdsc, deliver);
	struct kdsc_ready *list = k->ready;

	/* Detach first: callbacks may fetch again and queue new items. */
	k->ready = NULL;
	k->ready_tail = &k->ready;
	while (list) {
		struct kdsc_ready *r = list;
		list = r->next;
		r->cb(r->userdata, r->r, r->r == 0 ? r->body : NULL, r->r == 0 ? r->len : 0,
		      &r->meta);
		free(r->body);
		free(r);
	}
}

static int defer_answer(struct kdsc *k, kdsc_done_fn cb, void *userdata, int r, uint8_t *body,
			size_t len, const struct kdsc_meta *meta)
{
	struct kdsc_ready *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return -ENOMEM;
	rd->cb = cb;
	rd->userdata = userdata;
	rd->r = r;
	rd->body = body;
	rd->len = len;
	rd->meta = *meta;
	ready_push(k, rd);
	return 0;
}

/* ---- keys ---- */

static struct kdsc_key *key_find(const struct kdsc *k, const char *name)
{
	for (struct kdsc_key *e = k->keys; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* No request for e before this: its own schedule, and the whole KDS's pause after a 429. */
static uint64_t key_next_attempt(const struct kdsc *k, const struct kdsc_key *e)
{
	return MAX(e->next_attempt_usec, k->host_next_usec);
}

static void key_fill_state(const struct kdsc *k, const struct kdsc_key *e, struct kdsc_key_state *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", e->name);
	s->in_flight = e->xfer != NULL;
	s->waiters = e->n_waiters;
	s->failures = e->failures;
	s->last_error = e->last_error;
	s->last_http_status = e->last_http_status;
	s->last_attempt_usec = e->last_attempt_usec;
	s->next_attempt_usec = key_next_attempt(k, e);
	s->retry_after_usec = e->retry_after_usec;
}

/* Makes room by forgetting an idle key, preferring one whose schedule is over (forgetting a
 * key that backs off would let the next fetch of it go out early). */
static int key_evict(struct kdsc *k, uint64_t now)
{
	struct kdsc_key **victim = NULL;

	for (struct kdsc_key **pp = &k->keys; *pp; pp = &(*pp)->next) {
		struct kdsc_key *e = *pp;
		if (e->xfer || e->n_waiters || e->writing)
			continue;
		if (e->next_attempt_usec <= now) {
			victim = pp;
			break;
		}
	}
	if (!victim)
		return -EMFILE;
	{
		struct kdsc_key *e = *victim;
		*victim = e->next;
		free(e->held);
		free(e);
		k->n_keys--;
	}
	return 0;
}

static int key_get(struct kdsc *k, const struct kds_request *q, const char *name,
		   struct kdsc_key **ret)
{
	struct kdsc_key *e = key_find(k, name);
	int r;

	if (e) {
		*ret = e;
		return 0;
	}
	if (k->n_keys >= KDSC_MAX_KEYS) {
		r = key_evict(k, now_usec());
		if (r < 0)
			return r;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->q = *q;
	e->owner = k;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->waiters_tail = &e->waiters;
	e->next = k->keys;
	k->keys = e;
	k->n_keys++;
	*ret = e;
	return 0;
}

/* ---- cache writes (on the worker thread) ---- */

static void write_held(struct kdsc_key *e);

static void on_written(void *userdata, int r)
{
	struct kdsc_write *w = userdata;
	struct kdsc_key *e = w->e;
	struct kdsc *k = e->owner;
	bool current = w->gen == e->held_gen;

	free(w);
	e->writing--;
	k->writes_pending--;
	if (!current) {
		write_held(e); /* a newer answer arrived meanwhile: store that one */
		return;
	}
	if (r == 0) {
		if (e->write_failed)
			log_info("Cached %s now (kept in memory since the cache write failed)",
				 e->name);
		e->write_failed = false;
		free(e->held);
		e->held = NULL;
		e->held_len = 0;
		return;
	}
	k->stats.cache_write_errors++;
	if (!e->write_failed)
		log_warning_errno(r,
				  "Failed to cache KDS answer for %s; keeping it in memory and "
				  "writing it again at its next use",
				  e->name);
	e->write_failed = true;
}

/* Starts writing e's held answer unless a write of it is already running (that write's
 * completion starts the next one if held changed meanwhile). */
static void write_held(struct kdsc_key *e)
{
	struct kdsc *k = e->owner;
	struct kdsc_write *w;

	if (!e->held || e->writing || !k->worker || k->freeing)
		return;
	w = calloc(1, sizeof(*w));
	if (w) {
		w->e = e;
		w->gen = e->held_gen;
		if (cache_put_async(k->worker, k->cache_dir, &e->q, e->held, e->held_len,
				    &e->held_cm, on_written, w) == 0) {
			e->writing++;
			k->writes_pending++;
			return;
		}
		free(w);
	}
	k->stats.cache_write_errors++; /* no memory to even queue it: the next use retries */
}

/* Keeps a copy of an answer in memory and has the worker store it. */
static void store_answer(struct kdsc *k, struct kdsc_key *e, const uint8_t *body, size_t len,
			 const struct cache_meta *cm)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy) {
		k->stats.cache_write_errors++;
		return;
	}
	memcpy(copy, body, len);
	free(e->held);
	e->held = copy;
	e->held_len = len;
	e->held_cm = *cm;
	e->held_gen++;
	write_held(e);
}

/* ---- outcomes: backoff, counting, completion ---- */

static uint64_t backoff_usec(struct kdsc *k, unsigned failures)
{
	uint64_t d = k->params.backoff_base_usec;

	for (unsigned i = 1; i < failures && d < k->params.backoff_max_usec; i++)
		d *= 2;
	d = MIN(d, k->params.backoff_max_usec);
	/* Jitter only ever adds (0..50 %), so the schedule is never earlier than the base. */
	return d + (d / 2 ? rng_next(k) % (d / 2 + 1) : 0);
}

static void count_outcome(struct kdsc *k, int r, long status)
{
	switch (r) {
	case 0:
		if (status == 304)
			k->stats.not_modified++;
		else
			k->stats.ok++;
		break;
	case -ENOENT:
		k->stats.not_found++;
		break;
	case -EAGAIN:
		k->stats.throttled++;
		break;
	case -EREMOTEIO:
		k->stats.server_error++;
		break;
	case -EPROTO:
		if (status)
			k->stats.other_status++;
		else
			k->stats.transport_errors++;
		break;
	case -ETIMEDOUT:
		k->stats.timeouts++;
		break;
	case -EBADMSG:
	case -EMSGSIZE:
		k->stats.bad_body++;
		break;
	default:
		k->stats.transport_errors++;
	}
}

/* Hands the outcome to every waiter of the key. The key is idle again before the first
 * callback runs, so a callback may fetch the same key (it then sees the new schedule). */
static void key_complete(struct kdsc *k, struct kdsc_key *e, struct kdsc_xfer *x, int r,
			 const uint8_t *body, size_t len, const struct kdsc_meta *meta)
{
	struct kdsc_waiter *w = e->waiters;

	e->waiters = NULL;
	e->waiters_tail = &e->waiters;
	e->n_waiters = 0;
	e->xfer = NULL;
	while (w) {
		struct kdsc_waiter *next = w->next;
		w->cb(w->userdata, r, r == 0 ? body : NULL, r == 0 ? len : 0, meta);
		free(w);
		w = next;
	}
	xfer_free(k, x);
}

void xfer_done(struct kdsc *k, struct kdsc_xfer *x, CURLcode cc)
{
	struct kdsc_key *e = x->key;
	struct kdsc_meta meta = {.source = KDSC_SOURCE_NONE};
	uint64_t now = now_usec(), wall = (uint64_t)time(NULL), ra = 0;
	const uint8_t *body = NULL;
	size_t len = 0;
	long status = 0;
	int r;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK)
		r = map_curl_error(cc, x);
	else if (status == 200)
		r = cache_body_check(e->q.kind, x->buf, x->len);
	else if (status == 304)
		r = x->have_cached ? 0 : -EPROTO; /* we asked nothing conditional */
	else if (status == 404)
		r = -ENOENT;
	else if (status == 429)
		r = -EAGAIN;
	else if (status >= 500 && status <= 599)
		r = -EREMOTEIO;
	else
		r = -EPROTO;
	if (cc == CURLE_OK && (status == 429 || status == 503))
		ra = retry_after_usec(x->easy);
	k->stats.bytes += x->len;
	count_outcome(k, r, cc == CURLE_OK ? status : 0);

	e->last_http_status = (unsigned)status;
	e->last_error = r;
	e->retry_after_usec = ra;
	if (cc == CURLE_OK && (status == 429 || (status == 503 && ra))) {
		/* The throttle is per client, not per key: every key waits (Retry-After, or the
		 * base backoff when the server named no time). */
		uint64_t hold = ra ? ra : k->params.backoff_base_usec;
		k->host_next_usec = MAX(k->host_next_usec, now + hold);
	}
	if (r == 0) {
		e->failures = 0;
		e->next_attempt_usec = x->started_usec + k->params.min_interval_usec;
	} else {
		uint64_t next = x->started_usec + k->params.min_interval_usec;
		e->failures++;
		next = MAX(next, now + backoff_usec(k, e->failures));
		next = MAX(next, now + ra);
		e->next_attempt_usec = next;
	}
	meta.http_status = (unsigned)status;
	meta.retry_at_usec = e->next_attempt_usec;

	if (r == 0 && status == 200) {
		struct cache_meta cm = {.fetched = wall};
		bool no_store;

		cache_control(x->easy, e->q.kind, wall, &cm.fresh_until, &no_store);
		copy_text_header(x->easy, "ETag", cm.etag, sizeof(cm.etag));
		copy_text_header(x->easy, "Last-Modified", cm.last_modified,
				 sizeof(cm.last_modified));
		if (!(x->flags & KDSC_FETCH_NO_CACHE) && k->cache_dir[0] && !no_store)
			store_answer(k, e, x->buf, x->len, &cm);
		log_info("Fetched %s from KDS (%zu bytes)", e->name, x->len);
		meta.source = KDSC_SOURCE_KDS;
		meta.fetched = wall;
		body = x->buf;
		len = x->len;
	} else if (r == 0) {
		/* 304: the cached copy is current; record the revalidation. */
		struct cache_meta cm = x->cmeta;
		char etag[sizeof(cm.etag)];
		bool no_store;

		cm.fetched = wall;
		cache_control(x->easy, e->q.kind, wall, &cm.fresh_until, &no_store);
		copy_text_header(x->easy, "ETag", etag, sizeof(etag));
		if (etag[0])
			memcpy(cm.etag, etag, sizeof(etag));
		if (!(x->flags & KDSC_FETCH_NO_CACHE) && k->cache_dir[0] && !no_store)
			store_answer(k, e, x->cached, x->cached_len, &cm);
		meta.source = KDSC_SOURCE_CACHE;
		meta.fetched = wall;
		body = x->cached;
		len = x->cached_len;
	} else {
		char when[32];
		if (r == -ENOENT)
			log_warning("KDS has no %s (404): chip id masked (MASK_CHIP_ID), "
				    "wrong product, or a TCB it never issued",
				    e->name);
		else
			log_warning_errno(r,
					  "KDS fetch of %s failed (HTTP %ld, try %u), next in %s",
					  e->name, status, e->failures,
					  format_duration_usec(e->next_attempt_usec - now, when,
							       sizeof(when)));
		if (x->have_cached) {
			k->stats.stale_served++;
			meta.source = KDSC_SOURCE_CACHE;
			meta.stale = true;
			meta.fetch_error = r;
			meta.fetched = x->cmeta.fetched;
			body = x->cached;
			len = x->cached_len;
			r = 0;
		}
	}
	key_complete(k, e, x, r, body, len, &meta);
}

/* ---- public ---- */

int kdsc_fetch(struct kdsc *k, const struct kds_request *q, unsigned flags, kdsc_done_fn cb,
	       void *userdata)
{
	_cleanup_(freep) uint8_t *cached = NULL;
	struct kdsc_waiter *w;
	struct cache_meta cm;
	struct kdsc_meta meta = {.source = KDSC_SOURCE_NONE};
	struct kdsc_key *e;
	char name[256], url[KDSC_URL_MAX];
	size_t clen = 0;
	uint64_t now, wall, next;
	bool fresh = false;
	int r;

	if (k->freeing)
		return -ECANCELED;
	if (!cb || kds_cache_key(q, name, sizeof(name)) < 0 ||
	    kds_url(q, k->base, url, sizeof(url)) < 0)
		return -EINVAL;
	r = key_get(k, q, name, &e);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->userdata = userdata;

	if (e->xfer) {
		k->stats.coalesced++;
		goto wait;
	}

	now = now_usec();
	wall = (uint64_t)time(NULL);
	if (!(flags & KDSC_FETCH_NO_CACHE) && k->cache_dir[0]) {
		r = cache_get(k->cache_dir, q, &cached, &clen, &cm);
		if (r < 0 && r != -ENOENT)
			log_warning_errno(r, "Failed to read cached %s", name);
		if (r != 0 && e->held) {
			/* Not on disk: the answer the cache could not store earlier. */
			cached = malloc(e->held_len ? e->held_len : 1);
			if (cached) {
				memcpy(cached, e->held, e->held_len);
				clen = e->held_len;
				cm = e->held_cm;
				r = 0;
			}
		}
		/* An answer a failed write left in memory: try the disk again (off the loop). */
		write_held(e);
		if (r == 0)
			fresh = cm.fresh_until == CACHE_FRESH_FOREVER || cm.fresh_until > wall;
	}
	next = key_next_attempt(k, e);
	meta.retry_at_usec = next;
	if (cached && ((fresh && !(flags & KDSC_FETCH_REVALIDATE)) || now < next)) {
		/* Fresh, or not allowed to ask yet: the copy we have is the answer. */
		meta.source = KDSC_SOURCE_CACHE;
		meta.fetched = cm.fetched;
		meta.stale = !fresh;
		meta.fetch_error = meta.stale ? (e->last_error ? e->last_error : -EAGAIN) : 0;
		if (fresh)
			k->stats.cache_hits++;
		else
			k->stats.stale_served++;
		free(w);
		r = defer_answer(k, cb, userdata, 0, cached, clen, &meta);
		if (r >= 0)
			TAKE_PTR(cached);
		return r;
	}
	if (now < next) {
		k->stats.backoff_refused++;
		free(w);
		return defer_answer(k, cb, userdata, -EAGAIN, NULL, 0, &meta);
	}
	if (cached && !(flags & KDSC_FETCH_REVALIDATE)) {
		/* Expired: answer with the copy we have now and revalidate in the background (a
		 * VCEK or chain never changes for its key; a slow or hung mirror must not hold up a
		 * chain we already have). The transfer refreshes the cache entry. */
		uint8_t *copy = malloc(clen ? clen : 1);

		if (copy) {
			memcpy(copy, cached, clen);
			meta.source = KDSC_SOURCE_CACHE;
			meta.fetched = cm.fetched;
			meta.stale = true;
			meta.fetch_error = -EAGAIN;
			k->stats.stale_served++;
			free(w);
			r = defer_answer(k, cb, userdata, 0, copy, clen, &meta);
			if (r < 0) {
				free(copy);
				return r; /* cached is freed on return */
			}
			if (xfer_start(k, e, flags, cached, clen, &cm) == 0)
				TAKE_PTR(cached); /* the transfer owns it now */
			return 0;
		}
	}
	r = xfer_start(k, e, flags, cached, clen, &cm);
	if (r < 0) {
		free(w);
		return r;
	}
	TAKE_PTR(cached); /* the transfer owns it now */
wait:
	w->next = NULL;
	*e->waiters_tail = w;
	e->waiters_tail = &w->next;
	e->n_waiters++;
	return 0;
}

int kdsc_new(struct ev_loop *loop, const struct conf *conf, struct kdsc **ret)
{
	struct kdsc *k;
	uint64_t seed = 0;
	int r;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->loop = loop;
	k->ready_tail = &k->ready;
	ev_init(&k->curl_timer, on_curl_timeout);
	ev_init(&k->deliver, on_deliver);
	k->params = (struct kdsc_params){
		.timeout_usec = conf->kds_timeout_usec ? conf->kds_timeout_usec : 30000000ull,
		.min_interval_usec = 10000000ull,
		.backoff_base_usec = 10000000ull,
		.backoff_max_usec = 600000000ull,
	};
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = now_usec();
	k->rng = seed | 1;
	k->base = strdup(conf->kds_url && conf->kds_url[0] ? conf->kds_url : KDS_DEFAULT_BASE);
	k->proxy = strdup(conf->kds_proxy ? conf->kds_proxy : "");
	k->ca_bundle = strdup(conf->kds_ca_bundle ? conf->kds_ca_bundle : "");
	k->cache_dir = strdup(conf->cache_dir ? conf->cache_dir : "");
	if (!k->base || !k->proxy || !k->ca_bundle || !k->cache_dir) {
		r = -ENOMEM;
		goto fail;
	}
	/* kds_url() appends "/vcek/...": a trailing slash would double it. */
	for (size_t n = strlen(k->base); n > 0 && k->base[n - 1] == '/'; n--)
		k->base[n - 1] = '\0';
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		r = -EIO;
		goto fail;
	}
	k->curl_global = true;
	k->multi = curl_multi_init();
	if (!k->multi) {
		r = -ENOMEM;
		goto fail;
	}
	if (curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k) != CURLM_OK) {
		r = -EIO;
		goto fail;
	}
	if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS))
		log_warning("libcurl resolves names synchronously: a slow DNS can stall the loop");
	if (k->cache_dir[0]) {
		r = cache_clean_temp(k->cache_dir);
		if (r > 0)
			log_info("Removed %d unfinished cache file(s) from %s", r, k->cache_dir);
		else if (r < 0)
			log_warning_errno(r, "Cannot scan cache directory %s", k->cache_dir);
		r = cache_prune_corrupt(k->cache_dir, CACHE_CORRUPT_KEEP, CACHE_CORRUPT_MAX_AGE_SEC,
					(uint64_t)time(NULL));
		if (r > 0)
			log_info("Removed %d old quarantined corrupt cache file(s) from %s", r,
				 k->cache_dir);
		r = worker_new(loop, &k->worker);
		if (r < 0)
			goto fail;
	}
	*ret = k;
	return 0;
fail:
	kdsc_free(k);
	return r;
}

void kdsc_free(struct kdsc *k)
{
	struct kdsc_ready *rd;

	if (!k)
		return;
	k->freeing = true;
	for (struct kdsc_key *e = k->keys; e; e = e->next)
		if (e->xfer || e->waiters) {
			struct kdsc_meta meta = {.source = KDSC_SOURCE_NONE};
			key_complete(k, e, e->xfer, -ECANCELED, NULL, 0, &meta);
		}
	while ((rd = k->ready)) {
		k->ready = rd->next;
		rd->meta.source = KDSC_SOURCE_NONE;
		rd->cb(rd->userdata, -ECANCELED, NULL, 0, &rd->meta);
		free(rd->body);
		free(rd);
	}
	/* Queued cache writes finish (a fetched answer is worth keeping); their completions run
	 * from here while the keys still exist. */
	worker_free(k->worker);
	k->worker = NULL;
	while (k->keys) {
		struct kdsc_key *e = k->keys;
		k->keys = e->next;
		free(e->held);
		free(e);
	}
	if (k->loop) {
		ev_timer_stop(k->loop, &k->curl_timer);
		ev_timer_stop(k->loop, &k->deliver);
	}
	if (k->multi)
		curl_multi_cleanup(k->multi);
	while (k->socks)
		sock_free(k, k->socks);
	if (k->curl_global)
		curl_global_cleanup();
	free(k->base);
	free(k->proxy);
	free(k->ca_bundle);
	free(k->cache_dir);
	free(k);
}

void kdsc_get_params(const struct kdsc *k, struct kdsc_params *ret)
{
	*ret = k->params;
}

void kdsc_set_params(struct kdsc *k, const struct kdsc_params *p)
{
	k->params = *p;
	if (!k->params.timeout_usec)
		k->params.timeout_usec = 1;
	if (!k->params.backoff_base_usec)
		k->params.backoff_base_usec = 1;
	k->params.backoff_max_usec = MAX(k->params.backoff_max_usec, k->params.backoff_base_usec);
}

int kdsc_key_state(const struct kdsc *k, const struct kds_request *q, struct kdsc_key_state *ret)
{
	char name[256];
	const struct kdsc_key *e;

	if (kds_cache_key(q, name, sizeof(name)) < 0)
		return -EINVAL;
	e = key_find(k, name);
	if (!e)
		return -ENOENT;
	key_fill_state(k, e, ret);
	return 0;
}

void kdsc_get_stats(const struct kdsc *k, struct kdsc_stats *ret)
{
	*ret = k->stats;
}

unsigned kdsc_writes_pending(const struct kdsc *k)
{
	return k->writes_pending;
}

unsigned kdsc_pending(const struct kdsc *k)
{
	unsigned n = 0;

	for (const struct kdsc_key *e = k->keys; e; e = e->next)
		n += e->n_waiters;
	return n;
}
