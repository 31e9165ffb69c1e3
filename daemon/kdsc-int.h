/* SPDX-License-Identifier: Apache-2.0 */
/* kdsc-int: what the files of the KDS client (kdsc.c, the keys and their pacing; kdsc-http.c,
 * libcurl on the loop) share and nothing outside them may include: the client's state and the
 * calls between those files. */
#pragma once

#include "kdsc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <ev.h>

#include "cache.h"
#include "manager.h"
#include "worker.h"

#define KDSC_URL_MAX 2048
#define KDSC_MAX_AGE_CAP_SEC (365ull * 24 * 3600)

struct kdsc_waiter {
	struct kdsc_waiter *next;
	kdsc_done_fn cb;
	void *userdata;
};

/* A completion decided without a request (cache hit, backing off), run from a 0 s timer so
 * that callbacks never run inside kdsc_fetch. */
struct kdsc_ready {
	struct kdsc_ready *next;
	kdsc_done_fn cb;
	void *userdata;
	int r;
	uint8_t *body; /* owned */
	size_t len;
	struct kdsc_meta meta;
};

struct kdsc_key;

struct kdsc_xfer {
	struct kdsc_key *key;	    /* borrowed */
	CURL *easy;		    /* owned */
	struct curl_slist *headers; /* owned */
	char url[KDSC_URL_MAX];
	unsigned flags;
	uint8_t *buf; /* owned: body received so far */
	size_t len, cap;
	bool overflow;
	bool have_cached;
	uint8_t *cached; /* owned: the cached body, for 304 and stale answers */
	size_t cached_len;
	struct cache_meta cmeta;
	uint64_t started_usec;
};

struct kdsc_key {
	struct kdsc_key *next;
	struct kdsc *owner; /* borrowed */
	struct kds_request q;
	char name[256];
	struct kdsc_xfer *xfer;	     /* owned, NULL when idle */
	struct kdsc_waiter *waiters; /* owned, FIFO */
	struct kdsc_waiter **waiters_tail;
	unsigned n_waiters;
	unsigned failures;
	int last_error;
	unsigned last_http_status;
	uint64_t last_attempt_usec;
	uint64_t next_attempt_usec;
	uint64_t retry_after_usec;
	/* A fetched answer until the cache has stored it: served from memory while the write runs
	 * on the worker, and kept when the write fails (disk full), to be written again at the
	 * next use, so freeing the space needs no second fetch. */
	uint8_t *held;
	size_t held_len;
	struct cache_meta held_cm;
	uint64_t held_gen; /* bumped whenever held is replaced */
	unsigned writing;  /* cache writes of this key on the worker (0 or 1) */
	bool write_failed; /* the last write of held failed (logged once) */
};

/* One cache write in flight: which key and which version of its held answer. */
struct kdsc_write {
	struct kdsc_key *e; /* kept alive: a key with writing > 0 is never evicted */
	uint64_t gen;
};

struct kdsc_sock {
	ev_io io;
	struct kdsc *k; /* borrowed */
	struct kdsc_sock *prev, *next;
};

struct kdsc {
	struct ev_loop *loop; /* borrowed */
	CURLM *multi;	      /* owned */
	bool curl_global;
	ev_timer curl_timer;	  /* libcurl's timeout */
	ev_timer deliver;	  /* runs the ready list */
	struct kdsc_ready *ready; /* owned, FIFO */
	struct kdsc_ready **ready_tail;
	struct kdsc_sock *socks; /* owned: every socket libcurl asked us to watch */
	char *base, *proxy, *ca_bundle, *cache_dir; /* owned */
	struct kdsc_params params;
	struct kdsc_key *keys; /* owned */
	size_t n_keys;
	struct kdsc_stats stats;
	uint64_t rng;
	bool freeing;		 /* kdsc_free is cancelling: no new fetches */
	struct worker *worker;	 /* owned: the cache's disk writes (NULL without cache_dir) */
	unsigned writes_pending; /* cache writes submitted and not completed */
	/* KDS throttles per client: after a 429 (or a 503 with Retry-After) no request to this
	 * KDS starts before this, whatever its key (CLOCK_MONOTONIC usec, 0 none). */
	uint64_t host_next_usec;
};

static inline uint64_t now_usec(void)
{
	return manager_now_usec();
}

/* kdsc-http.c: libcurl's multi interface on the loop. */
int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
int on_curl_timer(CURLM *multi, long timeout_ms, void *userp);
void on_curl_timeout(struct ev_loop *loop, ev_timer *w, int revents);
void sock_free(struct kdsc *k, struct kdsc_sock *s);
/* Hands finished transfers to xfer_done. */
void check_multi_info(struct kdsc *k);
/* A GET of e's URL (conditional when cached is given: taken on success) added to the multi. */
int xfer_start(struct kdsc *k, struct kdsc_key *e, unsigned flags, uint8_t *cached,
	       size_t cached_len, const struct cache_meta *cmeta);
void xfer_free(struct kdsc *k, struct kdsc_xfer *x);
/* Reading an answer's headers. */
uint64_t retry_after_usec(CURL *easy);
void cache_control(CURL *easy, enum kds_kind kind, uint64_t wall, uint64_t *fresh_until,
		   bool *no_store);
void copy_text_header(CURL *easy, const char *name, char *buf, size_t size);
int map_curl_error(CURLcode cc, const struct kdsc_xfer *x);

/* kdsc.c: a finished transfer's outcome for its key (x is freed). */
void xfer_done(struct kdsc *k, struct kdsc_xfer *x, CURLcode cc);
