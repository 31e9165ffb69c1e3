/* SPDX-License-Identifier: Apache-2.0 */
/* admission: the admission core, independent of how guest requests reach the daemon.
 *
 * Owns the VM table: one record per VM, found through the scheduler's per-VM state (the
 * record is its owner pointer, sched_vm_set_owner), created and removed together with it, so
 * there is no second table to reconcile. Also owns the custom quotas, each VM's in-flight and
 * queued request, the verdict decision (through proto/sched-policy.c) and the rules of design §4:
 * exactly one verdict per request, at most one request per VM admitted or queued, INVALID_LEN with
 * the exact page count before any quota is spent, a certificate table that always matches the key
 * that signs the report. One scheduler serves every VM of every transport, so DRR fairness, the PSP
 * slots and the BUSY budget span them all.
 *
 * A transport (nltransport.c: the kernel's netlink family; next, the VMM socket) owns a
 * struct adm_transport, registers it with adm_transport_init, turns its wire messages into the
 * calls below and turns the decisions the core hands to its ops back into its wire format.
 *
 *   wire message                      core call
 *   a VM appears / is replayed        adm_vm_add (attrs; resync with the in-flight request)
 *   a VM goes away                    adm_vm_remove
 *   a guest request                   adm_request            -> ops.allow/busy/invalid_len
 *   the firmware call ended           adm_done
 *   the peer will list every VM       adm_resync_begin ... adm_vm_add(resync) ... adm_resync_end
 *   the peer is gone (role lost)      adm_transport_lost
 *
 * Each request gets exactly one of allow/busy/invalid_len, either from inside adm_request or
 * later (a queued request) from adm_done, adm_vm_remove, adm_tick or the deadline timer. An
 * op's error is counted (send_failures) and the request is treated as never admitted.
 *
 * VM ids are the core's keys. The netlink transport uses the kernel's VM id. A transport
 * whose VMs are named otherwise (the VMM socket: a UUID per connection) takes a fresh id from
 * adm_vm_id_alloc and keeps its own name for it; its quotas are then stored under its key by
 * the transport (issue 12), and applied here with adm_quota_set.
 *
 * Everything runs on the loop thread. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched-policy.h"

struct adm;
struct adm_vm;

/* Admission wait (GUEST_REQ to ALLOW), µs: one bucket scheme, recorded once per admitted
 * request, serving both the fleet-wide and the per-VM histograms (each exposes a subset of
 * these bounds, docs/metrics.md). The last bucket is above every bound. */
#define ADM_WAIT_NBOUNDS 24
extern const uint64_t adm_wait_bounds_usec[ADM_WAIT_NBOUNDS];
/* Firmware time reported by the transport on done, ns. */
#define ADM_FW_NBOUNDS 21
extern const uint64_t adm_fw_bounds_nsec[ADM_FW_NBOUNDS];

struct adm_transport;

struct adm_transport_ops {
	const char *name;
	/* The verdicts, for the request req_id of VM vm_id. peer is what the transport gave
	 * adm_vm_add for that VM (e.g. its connection), NULL for a VM the core does not know.
	 * allow carries the certificate table when the request asked for it and a chain is
	 * served (table NULL otherwise). Return 0 or a negative errno (not sent). */
	int (*allow)(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
		     const uint8_t *table, size_t table_len);
	int (*busy)(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id);
	int (*invalid_len)(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
			   uint32_t npages);
	/* Ask the peer to list every VM (a request came for a VM the core does not know).
	 * 0 when asked (adm_resync_begin is then implied), <0 otherwise. NULL: not possible. */
	int (*request_resync)(struct adm_transport *t);
	/* CLOCK_MONOTONIC µs at which the message being handled was received (0: unknown). */
	uint64_t (*rx_usec)(struct adm_transport *t);
};

/* Owned by the transport (embed it); the fields below ops are the core's. */
struct adm_transport {
	const struct adm_transport_ops *ops;
	uint64_t resync_begun, resync_ended;
	bool lost;
};

void adm_transport_init(struct adm_transport *t, const struct adm_transport_ops *ops);

struct adm_config {
	struct sched_config sched;
	uint64_t guest_log_interval_usec; /* per-VM log rate limit */
	uint32_t guest_log_burst;
};

struct adm_hooks {
	/* Admission is paused and the last in-flight request is done. */
	void (*drained)(void *userdata);
	/* A guest request arrived (before its verdict); may be NULL. */
	void (*request)(void *userdata);
	void *userdata;
};

struct adm_vm_attrs {
	uint32_t vmm_pid;
	uint32_t asid;
	uint64_t policy;
};

struct adm_request {
	uint64_t req_id;      /* the transport's id of the request */
	struct sched_msg msg; /* plaintext header of the guest message */
	bool has_msg;	      /* false: header unknown (no sequence tracking, counted "other") */
	bool wants_table;     /* an extended report request: the table goes with ALLOW */
	uint32_t npages;      /* with wants_table: pages the guest offers for the table */
};

enum adm_done_kind {
	ADM_DONE_FIRMWARE = 1, /* the firmware ran; fw_status, fw_time_ns valid */
	ADM_DONE_EXPIRED,      /* the peer gave up waiting for the verdict */
	ADM_DONE_NOT_RUN,      /* anything else: the firmware did not run */
};

struct adm_vm_info {
	uint64_t vm_id;
	const char *transport; /* ops name (static) */
	uint32_t vmm_pid;
	uint32_t asid;
	uint64_t policy;
	uint64_t invalid_len; /* INVALID_LEN answers */
	uint64_t fw_errors;   /* done with a non-zero firmware status */
	uint64_t fw_ok;	      /* done with status 0 */
	uint64_t expired;     /* the peer gave up waiting for our verdict */
	uint64_t fw_time_ns_total;
	uint64_t req_report, req_key, req_other;
	/* Admission wait of this VM's admitted requests: a count per adm_wait_bounds_usec
	 * bucket and the sum. */
	uint64_t wait_buckets[ADM_WAIT_NBOUNDS + 1];
	uint64_t wait_usec_total;
	struct sched_vm_stats sched;
};

struct adm_stats {
	uint64_t guest_reqs;
	uint64_t verdicts_allow;
	uint64_t verdicts_busy;
	uint64_t verdicts_invalid_len;
	uint64_t done;
	uint64_t send_failures;
	uint64_t stale_inflight_freed; /* in flight too long without done */
	uint64_t dumps_sent;	       /* resyncs begun */
	uint64_t vms_pruned;	       /* removed because a resync no longer listed them */
	uint64_t busy_by_reason[_SCHED_BUSY_MAX];
	uint64_t anomalies[_SCHED_ANOM_MAX];
	uint64_t admission_wait_usec_total;
	/* Fleet-wide admission wait and firmware time, bucketed as above. */
	uint64_t wait_buckets[ADM_WAIT_NBOUNDS + 1];
	uint64_t fw_buckets[ADM_FW_NBOUNDS + 1];
	uint64_t fw_time_ns_total, fw_time_count;
	/* Slot hand-offs: a done freed a PSP slot while requests were queued. The time from the
	 * receipt of that done to the ALLOW of the next queued request is the daemon's share of
	 * the PSP's idle time while admissible work waited. */
	uint64_t handoffs;
	uint64_t handoff_usec_total;
	uint64_t admissions_over_slots; /* forced (rule 4) while every slot was taken */
};

/* A request in flight (ALLOW sent) older than this lost its done and is freed. */
#define ADM_STALE_INFLIGHT_USEC (5 * 1000000ull)

/* -EINVAL if the scheduler configuration is refused (*reason), -ENOMEM. */
int adm_new(struct ev_loop *loop, const struct adm_config *c, const struct adm_hooks *h,
	    struct adm **ret, const char **reason);
/* Frees every VM and quota; no verdict is sent. NULL accepted. */
void adm_free(struct adm *a);

/* --- transport side --- */
/* Adds a VM (or refreshes its attributes if known). With resync, the VM is listed by the
 * transport's resync under way; has_inflight/inflight_req tell the request the peer still
 * waits on, and the core's in-flight accounting is made to match it. -ENOMEM, -EEXIST if the
 * id belongs to a VM of another transport. */
int adm_vm_add(struct adm *a, struct adm_transport *t, uint64_t vm_id,
	       const struct adm_vm_attrs *attrs, bool resync, bool has_inflight,
	       uint64_t inflight_req);
/* The transport's handle of a known VM (its connection, ...), handed to the ops. -ENOENT. */
int adm_vm_set_peer(struct adm *a, uint64_t vm_id, void *peer);
/* Removes a VM: its queued request gets BUSY, its in-flight slot is freed. -ENOENT. */
int adm_vm_remove(struct adm *a, uint64_t vm_id, const char *why);
/* A guest request of vm_id arriving through t: exactly one verdict follows (see above). */
void adm_request(struct adm *a, struct adm_transport *t, uint64_t vm_id,
		 const struct adm_request *rq);
/* The firmware call of req_id ended (or the peer answered it itself). */
void adm_done(struct adm *a, uint64_t vm_id, uint64_t req_id, enum adm_done_kind kind,
	      uint32_t fw_status, uint64_t fw_time_ns);
/* The transport asked its peer to list every VM; adm_resync_end prunes the VMs of t that the
 * listing did not name. */
void adm_resync_begin(struct adm *a, struct adm_transport *t);
void adm_resync_end(struct adm *a, struct adm_transport *t);
/* The peer of t is gone: every VM of t is forgotten (no verdict is sent through t). */
void adm_transport_lost(struct adm *a, struct adm_transport *t);
/* A fresh id no VM uses, for transports without their own numeric ids (from 2^63 up). */
uint64_t adm_vm_id_alloc(struct adm *a);

/* --- control side (rotation, drain, configuration) --- */
/* The certificate table served with ALLOW (borrowed until the next call; NULL: none). Only
 * change it while nothing is in flight (paused and drained). */
void adm_set_table(struct adm *a, const uint8_t *table, size_t len, uint32_t pages);
/* New requests get BUSY(PAUSED). Returns the number in flight; the drained hook follows when
 * it was > 0. */
int adm_pause(struct adm *a);
void adm_resume(struct adm *a);
bool adm_paused(const struct adm *a);
/* Frees the slots of requests in flight longer than ADM_STALE_INFLIGHT_USEC (housekeeping;
 * the core also runs it from its own timer). */
void adm_housekeeping(struct adm *a);
/* New default quota (the scheduler's configuration is otherwise fixed per instance). */
int adm_set_default_quota(struct adm *a, const struct sched_quota *q, const char **reason);

/* --- quotas --- */
/* -EINVAL with *reason if q is not valid under the configuration. */
int adm_quota_check(const struct adm *a, const struct sched_quota *q, const char **reason);
/* Applies vm_id's custom quota now (if the VM is live) and remembers it for when it comes;
 * q NULL resets to the default. -EINVAL (*reason), -ENOMEM: nothing changed. */
int adm_quota_set(struct adm *a, uint64_t vm_id, const struct sched_quota *q, const char **reason);
/* Custom quota of vm_id into *ret (true), or the default (false). */
bool adm_quota_get(const struct adm *a, uint64_t vm_id, struct sched_quota *ret);
void adm_quota_default(const struct adm *a, struct sched_quota *ret);
size_t adm_quota_count(const struct adm *a);
size_t adm_quota_foreach(const struct adm *a,
			 void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			 void *userdata);

/* --- read-only view (ctl, metrics, tests) --- */
const struct adm_stats *adm_get_stats(const struct adm *a);
unsigned adm_inflight(const struct adm *a);
unsigned adm_queued(const struct adm *a);
size_t adm_vm_count(const struct adm *a);
/* -ENOENT for an unknown VM. */
int adm_vm_info(const struct adm *a, uint64_t vm_id, struct adm_vm_info *ret);
size_t adm_vm_foreach(const struct adm *a,
		      void (*fn)(void *userdata, const struct adm_vm_info *info), void *userdata);
/* Internal consistency (VM table against the scheduler), O(n): for tests. 0 or -EUCLEAN. */
int adm_selfcheck(const struct adm *a);
