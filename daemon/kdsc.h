/* SPDX-License-Identifier: Apache-2.0 */
/* kdsc: the KDS client: libcurl multi driven by libev watchers on the loop thread (no thread,
 * no blocking network call), one request per key in flight, backoff, and the disk cache.
 * It fetches and parses bodies; it does not verify chains (that is chain_build's job).
 *
 * Per key (kds_cache_key: product, hwid, TCB or chain/CRL):
 *  - a fresh cache entry answers at once without any request (Cache-Control max-age; answers
 *    without one are fresh for ever for certificates, KDSC_CRL_DEFAULT_FRESH_SEC for CRLs);
 *  - otherwise one HTTP GET (conditional: If-None-Match / If-Modified-Since from the cached
 *    copy) and every fetch of that key meanwhile waits for it (coalesced);
 *  - no request starts before the key's next allowed attempt: min_interval after the last
 *    start (design §10: none repeated within 10 s), and after a failure an exponential backoff
 *    with jitter, never earlier than a Retry-After the server sent;
 *  - KDS throttles per client: after a 429 (or a 503 with Retry-After) no request for any key
 *    starts before the Retry-After (the base backoff if it named none);
 *  - a failed (re)validation with a cached copy still answers with that copy (stale).
 * Cache writes (with fsync) run on kdsc's own worker thread (cache_put_async); the answer is
 * served from memory until the write has completed, and kept there if it failed, to be
 * written again at the key's next use. Cache reads (a few KiB, no fsync) stay on the loop. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "kds.h"

#define KDSC_BODY_MAX (64 * 1024)
#define KDSC_MAX_KEYS 256
#define KDSC_CRL_DEFAULT_FRESH_SEC 3600
#define KDSC_RETRY_AFTER_MAX_SEC 3600 /* a hostile or broken Retry-After is clamped to this */

/* Timing policy. Defaults: kds_timeout from the configuration, min_interval 10 s, backoff
 * from 10 s doubling to 10 min, jitter adds 0..50 % (never subtracts). */
struct kdsc_params {
	uint64_t timeout_usec;
	uint64_t min_interval_usec;
	uint64_t backoff_base_usec;
	uint64_t backoff_max_usec;
};

enum kdsc_source {
	KDSC_SOURCE_NONE,
	KDSC_SOURCE_CACHE, /* answered from the disk cache (fresh, 304, or stale after an error) */
	KDSC_SOURCE_KDS,   /* a 200 answer just received */
};

struct kdsc_meta {
	enum kdsc_source source;
	bool stale;		/* cached copy served because revalidation failed or backs off */
	int fetch_error;	/* with stale: why the fresh copy could not be had */
	unsigned http_status;	/* of this fetch's request, 0 if none was made */
	uint64_t retry_at_usec; /* CLOCK_MONOTONIC: next allowed request for the key */
	uint64_t fetched;	/* unix seconds when the body was fetched or revalidated */
};

/* r: 0 (body valid for the kind), -ENOENT (404: masked chip id, wrong product or hwid),
 * -EAGAIN (429, or backing off and no request made: meta->retry_at_usec),
 * -ETIMEDOUT, -EREMOTEIO (5xx), -EPROTO (other HTTP status), -EBADMSG (body does not parse as
 * the kind, or truncated), -EMSGSIZE (body over KDSC_BODY_MAX), -ECONNREFUSED,
 * -EHOSTUNREACH (cannot resolve), -ECONNRESET, -EIO (other transport error),
 * -ECANCELED (kdsc_free). body/len are valid only during the call (NULL/0 unless r == 0). */
typedef void (*kdsc_done_fn)(void *userdata, int r, const uint8_t *body, size_t len,
			     const struct kdsc_meta *meta);

enum {
	KDSC_FETCH_REVALIDATE = 1 << 0, /* ask KDS even if the cached copy is fresh (snpctl
					   cert fetch); still subject to the key's next attempt */
	KDSC_FETCH_NO_CACHE = 1 << 1,	/* neither read nor write the disk cache */
};

struct kdsc_key_state {
	char key[256];
	bool in_flight;
	unsigned waiters;
	unsigned failures; /* consecutive failed attempts */
	int last_error;	   /* of the last attempt, 0 if it succeeded or none yet */
	unsigned last_http_status;
	uint64_t last_attempt_usec; /* CLOCK_MONOTONIC of the last request start, 0 never */
	uint64_t next_attempt_usec; /* no request before this */
	uint64_t retry_after_usec;  /* last Retry-After honoured, 0 none */
};

struct kdsc_stats {
	uint64_t requests;     /* HTTP requests started */
	uint64_t ok;	       /* 200 with a valid body */
	uint64_t not_modified; /* 304 */
	uint64_t not_found;    /* 404 */
	uint64_t throttled;    /* 429 */
	uint64_t server_error; /* 5xx */
	uint64_t other_status;
	uint64_t timeouts;
	uint64_t bad_body; /* unparseable, truncated or oversized */
	uint64_t transport_errors;
	uint64_t coalesced;	  /* fetches that joined a request in flight */
	uint64_t backoff_refused; /* fetches answered without a request because of the schedule */
	uint64_t cache_hits;	  /* fresh cache answers */
	uint64_t stale_served;
	uint64_t cache_write_errors;
	uint64_t bytes; /* body bytes received */
};

struct kdsc;

/* Reads kds_url, kds_proxy ("" = no proxy at all, environment ignored), kds_ca_bundle ("" =
 * system default), kds_timeout and cache_dir from conf (copied). Removes temporary files left
 * in the cache directory by a crash. -ENOMEM, -EIO if libcurl cannot be set up. */
int kdsc_new(struct ev_loop *loop, const struct conf *conf, struct kdsc **ret);
/* Completes every pending fetch with -ECANCELED (callbacks run from here), then frees. */
void kdsc_free(struct kdsc *k);
void kdsc_get_params(const struct kdsc *k, struct kdsc_params *ret);
/* For tests and the reload path; keys already backing off keep their next attempt. */
void kdsc_set_params(struct kdsc *k, const struct kdsc_params *p);

/* Starts getting q. Returns 0 and calls cb exactly once later on the loop thread (never from
 * inside this call), or a negative errno without calling cb: -EINVAL (invalid request),
 * -ENOMEM, -EMFILE (KDSC_MAX_KEYS keys known and all busy). */
int kdsc_fetch(struct kdsc *k, const struct kds_request *q, unsigned flags, kdsc_done_fn cb,
	       void *userdata);

/* State of one key (for snpctl status); -ENOENT if the key was never fetched. */
int kdsc_key_state(const struct kdsc *k, const struct kds_request *q, struct kdsc_key_state *ret);
void kdsc_get_stats(const struct kdsc *k, struct kdsc_stats *ret);
/* Cache writes submitted to the worker and not completed yet. */
unsigned kdsc_writes_pending(const struct kdsc *k);
/* Fetches waiting for a request in flight, over all keys. */
unsigned kdsc_pending(const struct kdsc *k);
