/* SPDX-License-Identifier: Apache-2.0 */
/* testserver: a small VMM-socket server built on proto/vmmproto, standing in for snp-attestd
 * in the libsnpattest and upstream-kvmsim tests. It runs on its own thread; the test steers
 * it (mode, release a held request) and reads its counters. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmmproto.h"

enum ts_mode {
	TS_ALLOW,   /* ALLOW with the table (ENOSPC when it does not fit; BUSY while in flight) */
	TS_BUSY,    /* BUSY for every CERTS */
	TS_HOLD,    /* read CERTS but do not answer until ts_release() */
	TS_DENY,    /* ERROR denied to HELLO, then close */
	TS_GARBAGE, /* answer CERTS with bytes that do not parse */
	TS_BUSY_EVERY, /* ALLOW, but BUSY for every busy_every-th CERTS */
};

struct ts_counts {
	uint64_t conns, hellos, certs, allows, busys, enospcs;
	uint64_t done_fw, done_abandoned, errors_sent, malformed;
	uint64_t released;
};

struct ts_conn {
	int fd;
	bool hello;
	uint64_t inflight; /* ALLOWed, no DONE yet */
	uint64_t held;	   /* TS_HOLD: the CERTS waiting for ts_release() */
	uint32_t held_npages;
};

#define TS_MAX_CONNS 1024

struct ts {
	char path[108];
	int lfd;
	int ctl[2]; /* wake-up pipe */
	pthread_t thread;
	bool running;
	pthread_mutex_t mtx;	/* guards everything below */
	pthread_cond_t changed; /* signalled after every batch of events */
	enum ts_mode mode;
	unsigned busy_every;
	uint8_t *table; /* owned */
	size_t table_len;
	bool stop, release;
	struct ts_counts c;
	uint8_t last_uuid[16];
	char last_name[VMMPROTO_NAME_MAX + 1];
	uint32_t last_pid;
	struct ts_conn conns[TS_MAX_CONNS];
	size_t n_conns;
};

/* Listens on path (unlinked first) and starts the thread. 0 or -errno. */
int ts_start(struct ts *s, const char *path, enum ts_mode mode, const uint8_t *table,
	     size_t table_len);
/* Stops the thread, closes every connection and the listener, unlinks the path. */
void ts_stop(struct ts *s);
void ts_set_mode(struct ts *s, enum ts_mode mode);
/* TS_HOLD: answer the held requests (ALLOW) now. */
void ts_release(struct ts *s);
struct ts_counts ts_counts(struct ts *s);
/* Waits (no timeout: the test's own timeout catches a hang) until the uint64_t counter at
 * offset off in struct ts_counts reaches at least value. */
void ts_wait(struct ts *s, size_t off, uint64_t value);
#define TS_WAIT(s, field, value) ts_wait((s), offsetof(struct ts_counts, field), (value))
