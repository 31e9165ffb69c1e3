/* SPDX-License-Identifier: Apache-2.0 */
/* metrics-int: what the files of the metrics module (metrics.c, the HTTP endpoint;
 * metrics-render.c, the exposition text) share and nothing outside them may include: the
 * module's state, the per-VM counter vector's layout and the one call between the files. */
#pragma once

#include "metrics.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <microhttpd.h>

#include "broker.h"
/* The Prometheus text writer (proto/promtext.h). */
#include "../proto/promtext.h"

/* Buckets of the per-VM admission-wait series: the length of vm_wait_bounds_usec
 * (metrics-render.c, which checks it). */
#define VM_WAIT_NBOUNDS 18

/* The per-VM counter vector fed to the series set (proto/promtext.h). */
enum {
	VC_REQ_REPORT,
	VC_REQ_KEY,
	VC_REQ_OTHER,
	VC_OUT_SUCCESS,
	VC_OUT_FW_ERROR,
	VC_OUT_EXPIRED,
	VC_OUT_INVALID_LEN,
	VC_BUSY_FIRST, /* one per enum sched_busy_reason, index by reason (NONE unused) */
	VC_ANOM_FIRST = VC_BUSY_FIRST + _SCHED_BUSY_MAX,
	VC_ADMITTED = VC_ANOM_FIRST + _SCHED_ANOM_MAX,
	VC_FORCED,
	VC_FW_NSEC,
	VC_WAIT_FIRST, /* VM_WAIT_NBOUNDS + 1 bucket counts (not cumulative) */
	VC_WAIT_USEC = VC_WAIT_FIRST + VM_WAIT_NBOUNDS + 1,
	_VC_MAX,
};

enum http_code_idx { HC_200, HC_404, HC_405, HC_500, _HC_MAX };
static const unsigned http_codes[_HC_MAX] = {200, 404, 405, 500};

/* One HTTP connection, from our accept to MHD's close notification. */
struct metrics_conn {
	struct metrics *x; /* borrowed */
	struct metrics_conn *prev, *next;
	int fd;			   /* owned by MHD once added */
	struct MHD_Connection *mc; /* borrowed; NULL until MHD reports it started */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	ev_timer deadline;
	ev_tstamp since; /* start of the current request: accept, or the end of the last answer */
	bool answering;	 /* headers complete, the answer not yet completed */
	bool doomed;	 /* shut down by us (deadline or eviction); MHD closes it next */
};

struct metrics {
	struct manager *m;	    /* borrowed */
	struct MHD_Daemon *mhd;	    /* owned; NULL: not listening */
	int listen_fd;		    /* owned while mhd is set */
	ev_io accept_io;	    /* listen_fd */
	struct metrics_conn *conns; /* owned list: every connection MHD holds */
	size_t n_conns;		    /* not doomed */
	uint64_t conn_deadline, conn_evicted, conn_refused;
	char *listen;	/* owned: the address in use, NULL with socket activation */
	bool activated; /* listening on systemd's "metrics" socket */
	ev_io io;	/* MHD's epoll fd */
	ev_timer timer; /* MHD's next timeout */
	struct metrics_vmset vmset;
	char *cache; /* owned: last rendered text */
	size_t cache_len;
	uint64_t cache_at; /* manager_now_usec of the render */
	uint64_t renders;
	uint64_t render_errors;
	uint64_t http[_HC_MAX];
};

/* metrics-render.c: the whole exposition text into *ret_text (malloc'd, *ret_len bytes);
 * -ENOMEM on failure (counted in render_errors). Reads the broker; writes only x's series set
 * and render counters. */
int render(struct metrics *x, char **ret_text, size_t *ret_len);
