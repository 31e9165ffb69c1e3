/* SPDX-License-Identifier: Apache-2.0 */
/* cache: the on-disk KDS certificate cache, one self-describing file per (product, hwid, TCB)
 * key, written atomically; a corrupt entry is moved aside and reported as missing. No network.
 *
 * Layout: <dir>/<kds_cache_key>.kdsc, e.g. "Milan-cert_chain.kdsc". Each file is
 *   0  magic "SNPKDSC\n" (8)        8  format version, le32 (1)     12 kind, le32 (enum kds_kind)
 *   16 fetched, le64 (unix s)       24 fresh_until, le64 (unix s; UINT64_MAX: no expiry)
 *   32 body length, le32            36 etag length, le16            38 last-modified length, le16
 *   40 key length, le16             42 zero (2)
 *   44 SHA-256 over bytes 0..43 and everything from 76 on (32)
 *   76 key, etag, last-modified, body (the KDS answer as received: PEM chain or DER).
 * Writers create ".<name>.tmp-XXXXXX", write, fsync, rename over <name>, fsync the directory;
 * readers ignore temporary files, so a crash at any step leaves the previous entry or none.
 * In the daemon every write goes through cache_put_async (the worker thread does the disk
 * work; the event loop never waits on fsync). A corrupt entry is quarantined as
 * "<name>.corrupt-<unix time>"; at most CACHE_CORRUPT_KEEP of them are kept, none older than
 * CACHE_CORRUPT_MAX_AGE_SEC (pruned at start-up and after every write). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kds.h"

struct worker;

#define CACHE_BODY_MAX (64 * 1024)
#define CACHE_CORRUPT_KEEP 8
#define CACHE_CORRUPT_MAX_AGE_SEC (7 * 24 * 3600)
#define CACHE_FRESH_FOREVER UINT64_MAX

struct cache_meta {
	uint64_t fetched;	/* unix seconds of the fetch or last revalidation */
	uint64_t fresh_until;	/* unix seconds; CACHE_FRESH_FOREVER if the answer had no expiry */
	char etag[128];		/* "" if none */
	char last_modified[64]; /* HTTP-date as received, "" if none */
};

/* Checks that body is what KDS answers for kind: a PEM chain of exactly two certificates
 * (ASK/ASVK then ARK) for a cert_chain, one DER X.509 certificate for a VCEK, one DER CRL for
 * a CRL. -EBADMSG otherwise, -EMSGSIZE above CACHE_BODY_MAX. */
int cache_body_check(enum kds_kind kind, const uint8_t *body, size_t len);

/* Path of the entry for q: "<dir>/<key>.kdsc". -ENAMETOOLONG if it does not fit. */
int cache_entry_path(const char *dir, const struct kds_request *q, char *buf, size_t size);

/* Reads the entry for q. -ENOENT if there is none, or if it was corrupt (bad magic, version,
 * checksum, key or kind, or a body that does not parse): then it has been renamed to
 * "<name>.corrupt-<unix time>" so the next fetch replaces it. Other -errno on I/O errors.
 * On success *ret_buf is malloc'd (the caller frees it). ret_meta may be NULL. */
int cache_get(const char *dir, const struct kds_request *q, uint8_t **ret_buf, size_t *ret_len,
	      struct cache_meta *ret_meta);

/* Writes the entry for q atomically (temp file + fsync + rename + fsync of dir). The body is
 * checked with cache_body_check first: nothing is written for a bad body (-EBADMSG). dir is
 * created (0755) if missing; its parent must exist. */
int cache_put(const char *dir, const struct kds_request *q, const uint8_t *body, size_t len,
	      const struct cache_meta *meta);

/* The same write on the worker thread w: body, meta, q and dir are copied before this returns;
 * done(userdata, r) runs later on the loop thread with cache_put's result (never from inside
 * this call), then the corrupt-file bound is applied on the worker too. Returns 0, or -ENOMEM
 * without calling done. The worker's FIFO order keeps two writes of one key in order. */
typedef void (*cache_put_done_fn)(void *userdata, int r);
int cache_put_async(struct worker *w, const char *dir, const struct kds_request *q,
		    const uint8_t *body, size_t len, const struct cache_meta *meta,
		    cache_put_done_fn done, void *userdata);
/* Several entries in one job, in order (e.g. a certificate import: the VCEK, then the chain):
 * stops at the first failure; done gets 0 or that failure's -errno. Same copying and
 * threading as cache_put_async; -EINVAL for no worker or dir. */
struct cache_item {
	struct kds_request q;
	const uint8_t *body;
	size_t len;
	struct cache_meta meta;
};
int cache_put_all_async(struct worker *w, const char *dir, const struct cache_item *items, size_t n,
			cache_put_done_fn done, void *userdata);

/* Removes temporary files left by an interrupted cache_put (at start-up). Returns how many. */
int cache_clean_temp(const char *dir);

/* Applies the bound on quarantined corrupt entries: deletes those older than max_age_sec
 * (by the time in their name) and, of the rest, all but the keep newest. Returns how many it
 * deleted, or -errno if dir cannot be read (-ENOENT counts as 0). now: unix seconds. */
int cache_prune_corrupt(const char *dir, unsigned keep, uint64_t max_age_sec, uint64_t now);

/* The steps of cache_put, for crash simulation in tests: cache_put_until stops (as if the
 * process died) right after the given step and leaves whatever is on disk. */
enum cache_step {
	CACHE_STEP_CREATE,  /* temp file created, empty */
	CACHE_STEP_HALF,    /* half the bytes written */
	CACHE_STEP_WRITTEN, /* all bytes written, not synced */
	CACHE_STEP_SYNCED,  /* fsync'd, not renamed */
	CACHE_STEP_RENAMED, /* renamed, directory not synced */
	CACHE_STEP_ALL,	    /* complete (same as cache_put) */
};
int cache_put_until(const char *dir, const struct kds_request *q, const uint8_t *body, size_t len,
		    const struct cache_meta *meta, enum cache_step stop);
