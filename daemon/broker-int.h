/* SPDX-License-Identifier: Apache-2.0 */
/* broker-int: what the files of the broker module (broker.c, admission.c, platform.c,
 * rotation.c, chainsrc.c, quotas.c) share and nothing outside them may include: the broker's
 * state, sectioned by the file that owns each part, and the calls between those files. */
#pragma once

#include "broker.h"

#include <ev.h>

#include "certtable.h"
#include "fw.h"
#include "kdsc.h"
#include "admission.h"
#include "nltransport.h"
#include "vmmtransport.h"
#include "vmmfile.h"
#include "worker.h"

/* Longest start-up wait for the first chain before READY=1 (KDS slow or down, cache cold). */
#define BROKER_READY_MAX_SEC 10.0
/* Refetch this long before the chain's (or CRL's) end of validity; retry no more often than
 * BROKER_EXPIRY_RETRY_SEC once inside that window. */
#define BROKER_EXPIRY_MARGIN_SEC (24 * 3600)
#define BROKER_EXPIRY_RETRY_SEC 600
#define BROKER_KDS_RETRY_SEC 30.
/* Admission is paused while the worker waits for the VMM file lock: bound the wait. */
#define BROKER_VMM_LOCK_MSEC 2000
/* SNP not initialised: one SNP_PLATFORM_STATUS per probe (some kernels run a full SNP init and
 * shutdown, with a cache flush, per call), the first after BROKER_PROBE_MIN_SEC, doubling up to
 * BROKER_PROBE_MAX_SEC, plus up to 25 % jitter; a guest request may bring the next one forward
 * but never closer than BROKER_PROBE_MIN_SEC to the last. */
#define BROKER_PROBE_MIN_SEC 1.0
#define BROKER_PROBE_MAX_SEC 60.0

enum broker_fw_op {
	BROKER_OP_NONE,
	BROKER_OP_SET_CONFIG,
	BROKER_OP_COMMIT,
	BROKER_OP_VLEK_LOAD,
};

enum broker_rot_outcome {
	BROKER_ROT_KEEP, /* the served chain still matches the platform */
	BROKER_ROT_NEW,	 /* serve new_chain */
	BROKER_ROT_NONE, /* nothing matches: serve no chain */
};

/* One rotation. Fields above "worker" are set on the loop before submission and only read by
 * the worker; fields below are written by the worker and read on the loop after completion. */
struct broker_rotation {
	struct worker_job job;
	struct broker *b; /* borrowed */
	char why[128];
	enum broker_fw_op op;
	uint64_t tcb;	       /* SET_CONFIG */
	uint32_t config_flags; /* SET_CONFIG: mask flags kept */
	uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE];
	bool must_run;	     /* platform already changed: follow it even without a chain */
	struct fw *fw;	     /* borrowed */
	struct vmmfile *vmm; /* borrowed, may be NULL */
	char *cert_dir;	     /* owned copy, "" = no source */
	X509 *extra_ark;     /* borrowed */
	struct platform_facts pf_old;
	struct platform_facts pf_expect;
	const struct chain *old_chain; /* borrowed; not swapped while we run */
	struct chain *prepared;	       /* owned: built before pausing for the expected platform */
	broker_op_done_fn cb;
	void *userdata;
	bool submitted;
	/* KDS fetch before the pause (loop thread) */
	bool fetching;
	unsigned fetch_pending;
	int fetch_r;
	char fetch_err[300];
	char fetch_source[16];
	uint8_t *fetch_chain, *fetch_leaf; /* owned */
	size_t fetch_chain_len, fetch_leaf_len;
	/* worker results */
	int r; /* of the operation as a whole */
	uint32_t fw_status;
	char err[600];
	struct platform_facts pf_new;
	enum broker_rot_outcome outcome;
	struct chain *new_chain; /* owned until swapped in */
	char chain_err[600];
	int vmm_r;
	bool vmm_written;
	int committed_r;
	uint64_t committed;
};

struct broker_fetch {
	struct broker *b; /* borrowed */
	broker_fetch_done_fn cb;
	void *userdata;
	unsigned pending;
	uint8_t *chain, *leaf; /* owned bodies */
	size_t chain_len, leaf_len;
	struct broker_fetch_result res;
};

struct broker_poll {
	struct worker_job job;
	struct broker *b; /* borrowed */
	struct fw *fw;	  /* borrowed */
	bool busy;
	int r;
	struct platform_facts pf;
	int committed_r;
	uint64_t committed;
};

/* A certificate import waiting for its cache write (on the broker's worker). */
struct broker_import {
	struct broker *b; /* borrowed */
	broker_op_done_fn cb;
	void *userdata;
};

struct broker {
	struct manager *m; /* borrowed */
	bool draining;	   /* SIGTERM: admission paused for good, no new rotation */
	bool stopping;	   /* broker_stop runs: nothing new is submitted to the worker */

	/* admission core and its transport (admission.c, nltransport.c) */
	struct adm *adm;	  /* owned */
	struct nltransport *nlt;  /* owned */
	struct vmmtransport *vmt; /* owned: the VMM socket (its VMs share the core) */

	/* platform (platform.c) */
	struct fw *fw;	       /* owned */
	struct worker *worker; /* owned: every firmware call after start runs here */
	struct platform_facts pf;
	int committed_r;
	uint64_t committed_tcb;
	struct broker_poll poll;
	ev_timer poll_timer;
	/* SNP not initialised (fw_error_is_snp_uninit): the daemon waits, probing with backoff */
	bool snp_uninit;
	double probe_delay;	  /* the next backoff step, s */
	uint64_t probe_last_usec; /* when the last probe was submitted */
	uint64_t snp_probes;
	ev_timer probe_timer;
	ev_timer status_timer; /* the waiting STATUS text, after the manager's READY=1 */

	/* rotation (rotation.c): the served chain, the VMM file, READY gating */
	struct chain *chain;	     /* owned; NULL = serve no certificates */
	time_t chain_since;	     /* wall clock when the served chain was swapped in */
	X509 *sim_ark;		     /* owned; trusted extra root (sim backend only) */
	struct vmmfile *vmm;	     /* owned; NULL if no vmm_certs_file */
	struct broker_rotation *rot; /* owned: the rotation under way, or NULL */
	bool rotate_again;	     /* an internal trigger arrived during a rotation */
	char again_why[128];
	struct broker_rotation_stats rstats;
	bool ready_held;      /* READY=1 waits for the first chain decision */
	ev_timer ready_timer; /* ... at most BROKER_READY_MAX_SEC */
	ev_timer rot_timeout;
	ev_timer expiry;

	/* chain source (chainsrc.c) */
	struct kdsc *kdsc;	      /* owned; the chain source when no cert_dir is configured */
	struct broker_fetch *fetch;   /* owned: the snpctl cert fetch under way, or NULL */
	struct broker_import *import; /* owned: a cert import whose cache write runs, or NULL */
	bool import_next;	      /* the next KDS-cache chain was put there by cert import */

	/* quotas (quotas.c): changes waiting for (or in) their write, oldest first */
	struct quota_change *quota_head, *quota_tail;
};

static inline uint64_t now_usec(void)
{
	return manager_now_usec();
}

/* admission glue (broker.c) */
int adm_config_from(const struct conf *c, struct adm_config *ac);

/* platform.c */
int platform_read(struct fw *fw, struct platform_facts *pf, char *err, size_t err_size);
int cpuid_product(enum snp_product *ret);
void poll_run(struct worker_job *j);
void poll_done(struct worker_job *j);
void on_poll(struct ev_loop *loop, ev_timer *w, int revents);
void poll_arm(struct broker *b);
/* SNP is not initialised (why: what said so): wait and probe. Idempotent. */
void snp_wait_enter(struct broker *b, const char *why);
/* A guest request arrived: while waiting, probe now unless the last probe is too recent. */
void snp_probe_on_request(struct broker *b);
/* The sd_notify STATUS text of the waiting state. */
void snp_wait_status(struct broker *b);
void on_probe(struct ev_loop *loop, ev_timer *w, int revents);
void on_status_timer(struct ev_loop *loop, ev_timer *w, int revents);

/* rotation.c */
extern const uint8_t empty_table[CERTTABLE_ENTRY_SIZE];
void load_chain(struct broker *b);
void rot_free(struct broker_rotation *rot);
/* Serves c (owned; NULL: none) from now on, to guests and in the accessors. */
void serve_chain(struct broker *b, struct chain *c);
void rot_submit(struct broker *b);
void rot_finish(struct broker *b, struct broker_rotation *rot, int r, const char *msg);
void rot_pause(struct broker *b);
void refusal_text(const struct broker_rotation *rot, const char *cerr, char *err, size_t err_size);
int rot_start(struct broker *b, const char *why, enum broker_fw_op op, uint64_t tcb,
	      const uint8_t *hashstick, const struct platform_facts *expect, bool must_run,
	      broker_op_done_fn cb, void *userdata, char *err, size_t err_size);
void rot_start_internal(struct broker *b, const char *why, const struct platform_facts *expect);
void rot_arm_expiry(struct broker *b);
void release_ready(struct broker *b, const char *why);
void on_ready_timer(struct ev_loop *loop, ev_timer *w, int revents);
void on_rot_timeout(struct ev_loop *loop, ev_timer *w, int revents);
void on_expiry(struct ev_loop *loop, ev_timer *w, int revents);

/* chainsrc.c */
int rot_fetch(struct broker *b, struct broker_rotation *rot, char *cerr, size_t size);
void fetch_free(struct broker_fetch *f);

/* quotas.c */
/* Start-up: an unreadable file is moved aside and the defaults apply (never fails). */
int load_quotas(struct broker *b);
/* The caller goes away: its callbacks are not called (userdata NULL: every caller). */
void quotas_forget(struct broker *b, void *userdata);
/* After the worker is gone: frees changes that never started. */
void quotas_stop(struct broker *b);
