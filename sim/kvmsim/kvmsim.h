/* SPDX-License-Identifier: Apache-2.0 */
/* kvmsim: shared state of snp-kvmsim's parts (kernel side, guests, PSP worker, verifier).
 * Internal to the tool: everything runs on the one libev loop except the PSP worker. */
#pragma once

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "msg.h"
#include "nl.h"
#include "psp.h"
#include "state.h"
#include "tcb.h"
#include "u64map.h"

struct sim_ca;

/* The kernel's broker_wait_ms default: BUSY without a broker for at most this, then fail-open. */
#define KVS_FAILOPEN_MS_DEFAULT 10000u

/* Launch policy of every simulated guest: bit 17 (must be one) and SMT allowed. */
#define SIM_KVS_POLICY 0x30000ull

/* Latency histogram in microseconds: exact below 16 us, then 16 sub-buckets per octave
 * (about 6 % resolution) up to 2^40 us. */
#define KVS_HIST_BUCKETS 640
struct kvs_hist {
	uint32_t b[KVS_HIST_BUCKETS];
	uint64_t n;
	uint64_t max_us;
};
void kvs_hist_add(struct kvs_hist *h, uint64_t us);
void kvs_hist_merge(struct kvs_hist *into, const struct kvs_hist *h);
/* Value (us) at quantile q in [0,1]: the bucket's upper edge, capped at the exact max. */
uint64_t kvs_hist_quantile(const struct kvs_hist *h, double q);

enum kvs_kind {
	KVS_KIND_EXT_REPORT,
	KVS_KIND_REPORT,
	KVS_KIND_KEY,
};

enum kvs_gstate {
	KVS_G_IDLE,	    /* between requests (timer: next request) */
	KVS_G_WAIT_VERDICT, /* GUEST_REQ sent, vCPU blocked (timer: verdict timeout) */
	KVS_G_IN_PSP,	    /* admitted, queued for or running on the PSP worker */
	KVS_G_RETRY_WAIT,   /* BUSY seen, sleeping the retry delay (timer) */
	KVS_G_FINISHED,	    /* ran its request count, or the run is over */
	KVS_G_WIPED,	    /* VMPCK wiped: never requests again */
};

struct kvs_vm_stats {
	uint64_t requests;  /* logical requests started */
	uint64_t attempts;  /* GHCB calls (re-sends included) */
	uint64_t completed; /* ended without a wipe */
	uint64_t busy;
	uint64_t invalid_len;
	uint64_t fw_errors;
	uint64_t vmpck_wipes;
	uint64_t verify_failures; /* report / certificate verification */
	uint64_t msg_failures;	  /* response message did not verify (seqno, type, GCM) */
	uint64_t reports_verified;
	uint64_t keys_ok;
	uint64_t payload_errors; /* firmware status inside a response payload */
	uint64_t abandoned;	 /* request pending when the run ended */
	double max_busy_streak_s;
	struct kvs_hist lat;
};

struct kvs_guest {
	struct kvs *k; /* borrowed */
	uint64_t vm_id;
	uint32_t asid;
	struct sim_psp_vm *pvm; /* owned; NULL in load mode or once removed */
	uint8_t vmpck[MSG_KEY_LEN];
	uint32_t counter;   /* the guest's sequence counter for VMPCK0 */
	uint32_t buf_pages; /* certificate buffer offered with extended requests */
	bool noisy;
	bool live;	     /* between VM_ADD and VM_REMOVE */
	bool remove_pending; /* churn chose it while its request was on the PSP */
	enum kvs_gstate state;
	uint64_t rng;
	uint64_t target; /* requests to run; 0 = until the end of the run */
	ev_timer timer;

	/* The request in progress. */
	enum kvs_kind kind;
	bool cur_ext;		   /* the exit code of the current attempt is the extended one */
	bool override_invalid_len; /* re-sent as plain after INVALID_LEN (facts §1.5) */
	uint32_t cur_npages;	   /* RBX of the current extended attempt */
	uint64_t req_id;	   /* of the current attempt */
	bool allowed;		   /* the broker said ALLOW (GUEST_DONE is due) */
	double started, first_busy;
	bool had_busy;
	struct msg_hdr req_hdr;
	uint8_t nonce[64];
	uint8_t *req_page;     /* owned, MSG_PAGE_SIZE */
	uint8_t *resp_page;    /* owned, MSG_PAGE_SIZE */
	uint8_t *certbuf;      /* owned, cur_npages pages, or NULL */
	bool table_written;    /* the kernel wrote a table into certbuf for this attempt */
	bool vmm_done_pending; /* upstream: the VMM answered 0, snpattest_done() is due */
	/* Written by the PSP worker while state == IN_PSP. */
	int psp_rc;
	uint32_t fw_status;
	uint64_t fw_time_ns;
	struct kvs_guest *job_next;

	struct kvs_vm_stats st;
};

struct kvs_options {
	const char *state_dir;
	enum snp_product product;
	unsigned vms;
	uint64_t requests;
	double duration;
	double rate;
	double total_rate; /* > 0: the quiet guests' aggregate rate, paced by the run */
	unsigned noisy;
	double noisy_rate;
	bool churn;
	double time_scale;
	uint32_t psp_delay_ms;
	bool no_broker;
	/* The kernel's fail-open rule (docs/kernel-interface.md): with no broker registered, BUSY
	 * for at most failopen_ms (real time, not scaled by time_scale), then requests go to the
	 * PSP unadmitted with an empty certificate table until a broker registers again. */
	uint32_t failopen_ms;
	bool broker_required; /* never fail open: BUSY for as long as no broker is registered */
	bool json;
	const char *dump_dir;
	const char *trust_ark;
	bool load;
	unsigned malformed;
	uint64_t seed;
	double wait_broker;
	double linger; /* seconds to keep the VMs after the run, before VM_REMOVE */
	double settle; /* seconds between adding the guests and their first request */
	uint32_t port;
	bool quiet;
	/* --kernel upstream (upstream.c): Linux 7.0 KVM and a VMM using libsnpattest */
	bool upstream;
	const char *vmm_socket;	    /* NULL: libsnpattest's default */
	const char *vmm_certs_file; /* NULL: no file fallback */
};

struct kvs_kstats {
	uint64_t rx_msgs, rx_malformed, rx_foreign, rx_ignored;
	uint64_t tx_msgs, tx_errors, tx_dropped;
	uint64_t registrations, register_refused, brokers_lost;
	uint64_t verdicts, verdicts_unknown, verdict_timeouts;
	uint64_t dumps;
	uint64_t broker_bugs; /* e.g. a certificate table larger than the guest's buffer */
	uint64_t malformed_sent;
	uint64_t psp_errors; /* the PSP could not run at all */
	uint64_t churn_removed, churn_added;
	uint64_t failopen_serves;  /* requests served without a broker (fail-open) */
	uint64_t failopen_periods; /* times the fail-open window ran out */
};

struct kvs {
	struct kvs_options o;
	struct ev_loop *loop;
	struct sim_state *state;   /* owned */
	struct sim_psp *psp;	   /* owned */
	struct kvs_verifier *ver;  /* owned */
	struct kvs_guest **guests; /* owned: every guest ever created, in creation order */
	size_t n_guests, cap_guests;
	uint64_t next_vm_id;
	uint64_t rng;
	double t_start, t_end;
	bool stopping;
	bool started;
	int exit_code;

	/* kernel side */
	int fd;
	uint32_t broker_port;	/* 0: none */
	double no_broker_since; /* kvs_now() when the broker went (or the kernel started) */
	bool failing_open;	/* the window ran out: serving unbrokered until a REGISTER */
	uint64_t next_req_id;
	struct u64map waiting; /* req_id -> guest waiting for a VERDICT (borrowed) */
	ev_io io;
	ev_timer malformed_timer, churn_timer, end_timer, wait_timer, pace_timer;
	/* --total-rate: requests due so far, the next guest in turn, requests that found
	 * every quiet guest busy (dropped, not caught up later). */
	uint64_t pace_issued, pace_missed;
	size_t pace_next;
	double pace_t0, pace_t1; /* the pacing window: every guest added .. the end */
	struct kvs_kstats ks;
	uint8_t rx[SNPA_MSG_MAX + 4096] __attribute__((aligned(4)));
	uint8_t tx[SNPA_MSG_MAX] __attribute__((aligned(4)));

	/* PSP worker */
	pthread_t worker;
	bool worker_running;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	bool worker_stop;
	struct kvs_guest *jobs_head, *jobs_tail, *done_head, *done_tail;
	ev_async async;
	size_t in_psp;

	struct kvs_upstream *up; /* owned; --kernel upstream only */
};

/* Counts of --kernel upstream, split by path. */
struct kvs_upstream_stats {
	uint64_t exits;	 /* KVM_EXIT_SNP_REQ_CERTS: extended MSG_REPORT_REQ attempts */
	uint64_t direct; /* every other attempt: straight to the PSP, unadmitted */
	uint64_t ret_ok, ret_enospc, ret_busy;
	uint64_t admitted;	   /* ret 0 decided by the daemon (ALLOW) */
	uint64_t from_file, empty; /* ret 0 from the fallbacks */
	uint64_t daemon_busy, daemon_enospc;
	uint64_t dropped;  /* the VM went away during the exit */
	uint64_t vmm_bugs; /* a ret KVM would not take (never expected) */
};

/* kernel.c: the netlink side, request routing and the PSP worker. */
int kvs_kernel_open(struct kvs *k);
void kvs_kernel_close(struct kvs *k);
int kvs_psp_worker_start(struct kvs *k);
void kvs_psp_worker_stop(struct kvs *k);
/* The guest's request (req_page, cur_ext, cur_npages) enters the host. */
void kvs_kernel_submit(struct kvs *k, struct kvs_guest *g);
/* The guest's timer fired while it waited for a VERDICT: BUSY and GUEST_DONE EXPIRED. */
void kvs_kernel_verdict_timeout(struct kvs *k, struct kvs_guest *g);
void kvs_kernel_vm_add(struct kvs *k, struct kvs_guest *g);
void kvs_kernel_vm_remove(struct kvs *k, struct kvs_guest *g);
void kvs_kernel_send_malformed(struct kvs *k, unsigned kind);
bool kvs_kernel_registered(const struct kvs *k);
/* Monotonic seconds (latencies are measured with it, not with the loop's cached time). */
double kvs_now(void);

/* Queues the guest's request for the PSP worker (the firmware call). */
void kvs_kernel_run_psp(struct kvs *k, struct kvs_guest *g);

/* upstream.c: --kernel upstream. */
int kvs_upstream_start(struct kvs *k);
void kvs_upstream_stop(struct kvs *k);
void kvs_upstream_vm_add(struct kvs *k, struct kvs_guest *g);
void kvs_upstream_vm_remove(struct kvs *k, struct kvs_guest *g);
void kvs_upstream_submit(struct kvs *k, struct kvs_guest *g);
/* After the firmware call of a request the VMM answered 0: snpattest_done(). */
void kvs_upstream_fw_done(struct kvs *k, struct kvs_guest *g);
const struct kvs_upstream_stats *kvs_upstream_stats(const struct kvs *k);

/* guest.c: the Linux guest driver model (facts §1.5). */
int kvs_guest_new(struct kvs *k, uint64_t vm_id, unsigned index, struct kvs_guest **ret);
void kvs_guest_free(struct kvs_guest *g);
void kvs_guest_start(struct kvs_guest *g, double delay);
/* What the host answered: SW_EXITINFO2 and RBX. */
void kvs_guest_on_answer(struct kvs_guest *g, uint64_t exitinfo2, uint32_t rbx);
/* Ends the run for this guest: a request waiting for a retry is abandoned. */
void kvs_guest_finish(struct kvs_guest *g);
/* The guest is paced by the run (--total-rate), not by its own timer. */
bool kvs_guest_paced(const struct kvs_guest *g);
/* Paced mode: starts the guest's next request if it is idle; false when it is not. */
bool kvs_guest_kick(struct kvs_guest *g);
uint64_t kvs_rand(uint64_t *state);
double kvs_rand01(uint64_t *state);
/* Called by guest.c when a guest reaches FINISHED or WIPED. */
void kvs_check_end(struct kvs *k);

/* verify.c: report verification as a relying party would do it. */
struct kvs_verifier;
int kvs_verifier_new(struct sim_state *state, const char *state_dir, enum snp_product p,
		     const char *trust_ark_pem, struct kvs_verifier **ret);
void kvs_verifier_free(struct kvs_verifier *v);
/* report: the REPORT_RSP's report; table: the guest's certificate buffer when the kernel
 * wrote one (NULL or an empty table: verify with the VCEK the simulated KDS issues). The
 * report must carry nonce as REPORT_DATA. 0, or -errno with *ret_why naming the check. */
int kvs_verify_report(struct kvs_verifier *v, const uint8_t *report, size_t len,
		      const uint8_t *table, size_t table_len, const uint8_t nonce[64],
		      const char **ret_why);
