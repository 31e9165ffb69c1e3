/* SPDX-License-Identifier: Apache-2.0 */
/* admission: the admission core (admission.h). Owns the VM table, the custom quotas, the
 * scheduler instance and its timers, each VM's in-flight and queued request, and the
 * admission counters and histograms. Decisions come from proto/sched-policy.c; the rules are
 * design §4 (guest contract) and §5. Knows no wire format: verdicts leave through the
 * transport's ops. */
#include "admission.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exitinfo.h"
#include "log.h"
#include "manager.h"
#include "msg.h"
#include "ratelimit.h"
#include "u64map.h"
#include "util.h"

#define ADM_HOUSEKEEPING_SEC 1.0
/* VM lifecycle lines ("VM added", "VM removed"): one each for up to this many a second; the rest
 * of a burst (a host starting its VMs, a kernel side replaying thousands) is counted and summed
 * up by housekeeping. 10,000 lines in a second flood the journal, whose per-service rate limit
 * then drops the daemon's other messages too, and each line is a write on the loop. */
#define ADM_LIFECYCLE_LOG_BURST 20

const uint64_t adm_wait_bounds_usec[ADM_WAIT_NBOUNDS] = {
	10,   50,   100,  250,	 500,	1000,  2000,  2500,  3000,  4000,  5000,  6000,
	7000, 8000, 9000, 10000, 11000, 12000, 15000, 20000, 25000, 30000, 50000, 100000,
};

const uint64_t adm_fw_bounds_nsec[ADM_FW_NBOUNDS] = {
	100000,	  250000,   500000,   1000000,	2500000,   5000000,   6000000,
	7000000,  8000000,  9000000,  10000000, 11000000,  12000000,  13000000,
	14000000, 15000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};

static size_t bucket_of(const uint64_t *bounds, size_t n, uint64_t v)
{
	size_t i = 0;

	while (i < n && v > bounds[i])
		i++;
	return i;
}

/* A request the core has decided on or will: what its verdict needs. */
struct adm_req {
	uint64_t req_id;
	bool wants_table;
	uint32_t npages;
	uint64_t arrived;
};

/* The one record of a VM. It is found through the scheduler's per-VM state (its owner
 * pointer), so the VM table is the scheduler's: a record and the scheduler's state are
 * created and removed together, and cannot disagree. */
struct adm_vm {
	struct adm_vm *prev, *next; /* a->all: iteration only, never lookup */
	struct adm_vm_info info;    /* counters; info.sched filled on demand */
	struct adm_transport *t;    /* borrowed: the transport the VM lives on */
	void *peer;		    /* the transport's handle of the VM (adm_vm_set_peer) */
	uint64_t resync_gen;	    /* t->resync_begun when last listed or added */
	bool has_inflight;	    /* ALLOW sent, no done yet */
	uint64_t inflight_req;
	uint64_t inflight_since;
	/* a->inflight, linked while has_inflight */
	struct adm_vm *iprev, *inext;
	bool has_queued; /* the scheduler holds a request of this VM */
	struct adm_req queued;
	struct ratelimit rl;
};

struct adm {
	struct ev_loop *loop; /* borrowed */
	struct adm_config cfg;
	struct adm_hooks hooks;
	struct sched *sched; /* owned; holds the VM table (struct adm_vm as owner) */
	struct adm_vm *all;  /* owned: every record, for iteration */
	size_t n_vms;
	/* The records with has_inflight, oldest inflight_since first, so that housekeeping looks
	 * at the stale ones only instead of walking every VM each second (at 10,000 VMs that walk
	 * held the loop for a millisecond or more, a stall in the guests' latency tail). */
	struct adm_vm *inflight, *inflight_last;
	/* vm_id -> struct sched_quota (owned): the custom quotas as set, live VM or not; a live
	 * VM's quota in force is the scheduler's state, set from here. */
	struct u64map quotas;
	uint64_t handoff_rx; /* a done freed a slot with a queue: the next admission is its
			      * hand-off (0: none pending) */
	uint64_t next_alloc_id;
	const uint8_t *table; /* borrowed: the served certificate table, or NULL */
	size_t table_len;
	uint32_t table_pages;
	struct adm_stats stats;
	struct ratelimit lifecycle_rl;
	uint64_t lifecycle_unlogged[2]; /* [0] added, [1] removed: lines held back this burst */
	ev_timer deadline;
	ev_timer housekeeping;
};

static uint64_t now_usec(void)
{
	return manager_now_usec();
}

/* vm has no request in flight any more. */
static void inflight_clear(struct adm *a, struct adm_vm *vm)
{
	if (!vm->has_inflight)
		return;
	if (vm->iprev)
		vm->iprev->inext = vm->inext;
	else
		a->inflight = vm->inext;
	if (vm->inext)
		vm->inext->iprev = vm->iprev;
	else
		a->inflight_last = vm->iprev;
	vm->iprev = vm->inext = NULL;
	vm->has_inflight = false;
}

/* vm now has a request in flight since `since`: linked in order of since (from the newest end,
 * where it almost always belongs). */
static void inflight_set(struct adm *a, struct adm_vm *vm, uint64_t req_id, uint64_t since)
{
	struct adm_vm *after = a->inflight_last;

	if (vm->has_inflight)
		inflight_clear(a, vm);
	vm->has_inflight = true;
	vm->inflight_req = req_id;
	vm->inflight_since = since;
	while (after && after->inflight_since > since)
		after = after->iprev;
	vm->iprev = after;
	vm->inext = after ? after->inext : a->inflight;
	if (vm->inext)
		vm->inext->iprev = vm;
	else
		a->inflight_last = vm;
	if (after)
		after->inext = vm;
	else
		a->inflight = vm;
}

void adm_transport_init(struct adm_transport *t, const struct adm_transport_ops *ops)
{
	*t = (struct adm_transport){.ops = ops};
}

/* --- verdicts --- */

static int send_busy(struct adm *a, struct adm_transport *t, uint64_t vm_id, void *peer,
		     uint64_t req_id)
{
	int r;

	if (t->lost)
		return -ENOTCONN; /* the peer and its requests are gone: nothing to answer */
	a->stats.verdicts_busy++;
	r = t->ops->busy(t, vm_id, peer, req_id);
	if (r < 0)
		a->stats.send_failures++;
	return r;
}

static int send_invalid_len(struct adm *a, struct adm_transport *t, uint64_t vm_id, void *peer,
			    uint64_t req_id, uint32_t npages)
{
	int r;

	if (t->lost)
		return -ENOTCONN;
	a->stats.verdicts_invalid_len++;
	r = t->ops->invalid_len(t, vm_id, peer, req_id, npages);
	if (r < 0)
		a->stats.send_failures++;
	return r;
}

static void vm_log(struct adm_vm *vm, int level, uint64_t req_id, const char *what)
{
	uint64_t suppressed = 0;

	if (!ratelimit_pass(&vm->rl, now_usec(), &suppressed))
		return;
	if (suppressed)
		log_vm(LOG_NOTICE, vm->info.vm_id, req_id, "%llu similar messages suppressed",
		       (unsigned long long)suppressed);
	log_vm(level, vm->info.vm_id, req_id, "%s", what);
}

static void count_wait(struct adm *a, struct adm_vm *vm, uint64_t usec)
{
	size_t i = bucket_of(adm_wait_bounds_usec, ADM_WAIT_NBOUNDS, usec);

	a->stats.admission_wait_usec_total += usec;
	a->stats.wait_buckets[i]++;
	vm->info.wait_buckets[i]++;
	vm->info.wait_usec_total += usec;
}

/* The scheduler admitted rq of vm: send ALLOW (with the table) or, if the table grew past the
 * guest's buffer while it waited, INVALID_LEN. */
static void send_admission(struct adm *a, struct adm_vm *vm, const struct adm_req *rq, uint64_t now)
{
	struct adm_transport *t = vm->t;
	uint64_t vm_id = vm->info.vm_id;
	int r;

	/* A rotation may have grown the table while this request waited: never hand over a
	 * table the guest buffer cannot hold. */
	if (rq->wants_table && a->table && rq->npages < a->table_pages) {
		(void)sched_done(a->sched, vm_id, rq->req_id, now, SCHED_OUTCOME_NOT_RUN);
		vm->info.invalid_len++;
		send_invalid_len(a, t, vm_id, vm->peer, rq->req_id, a->table_pages);
		return;
	}
	/* The table goes with the ALLOW: it is the chain of the key that signs this report,
	 * since the table only changes while nothing is in flight (rotation pauses). */
	if (t->lost)
		r = -ENOTCONN;
	else if (rq->wants_table && a->table)
		r = t->ops->allow(t, vm_id, vm->peer, rq->req_id, a->table, a->table_len);
	else
		r = t->ops->allow(t, vm_id, vm->peer, rq->req_id, NULL, 0);
	if (r < 0) {
		/* The peer never saw the ALLOW; it answers BUSY on its own timeout. */
		a->stats.send_failures++;
		(void)sched_done(a->sched, vm_id, rq->req_id, now, SCHED_OUTCOME_NOT_RUN);
		return;
	}
	a->stats.verdicts_allow++;
	inflight_set(a, vm, rq->req_id, now);
	if (a->handoff_rx) {
		uint64_t t1 = now_usec();

		a->stats.handoffs++;
		a->stats.handoff_usec_total += t1 > a->handoff_rx ? t1 - a->handoff_rx : 0;
		a->handoff_rx = 0;
	}
	count_wait(a, vm, now - rq->arrived);
}

static void on_sched_event(void *userdata, const struct sched_event *ev)
{
	struct adm *a = userdata;
	struct adm_vm *vm;
	struct adm_req rq;
	uint64_t now = now_usec();

	if (ev->type == SCHED_EV_DRAINED) {
		if (a->hooks.drained)
			a->hooks.drained(a->hooks.userdata);
		return;
	}
	vm = ev->owner; /* also for the REMOVED event of a VM being dropped */
	if (!vm)
		return; /* cannot happen: every VM of the scheduler has its record */
	if (vm->has_queued && vm->queued.req_id == ev->req_id) {
		rq = vm->queued;
		vm->has_queued = false;
	} else {
		rq = (struct adm_req){.req_id = ev->req_id, .arrived = now};
	}
	if (ev->type == SCHED_EV_ADMIT) {
		/* Rule 4 over the slots: it waits for the PSP in the peer. */
		if (sched_inflight(a->sched) > a->cfg.sched.psp_concurrency)
			a->stats.admissions_over_slots++;
		send_admission(a, vm, &rq, now);
	} else if (!vm->t->lost) {
		a->stats.busy_by_reason[ev->reason < _SCHED_BUSY_MAX ? ev->reason : 0]++;
		send_busy(a, vm->t, vm->info.vm_id, vm->peer, ev->req_id);
	}
}

/* --- timers --- */

static void arm_deadline(struct adm *a)
{
	uint64_t when, now;

	ev_timer_stop(a->loop, &a->deadline);
	if (sched_next_deadline(a->sched, &when) < 0)
		return;
	now = now_usec();
	ev_timer_set(&a->deadline, when > now ? (double)(when - now) / 1e6 : 0., 0.);
	ev_timer_start(a->loop, &a->deadline);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct adm *a = container_of(w, struct adm, deadline);

	(void)loop;
	(void)revents;
	(void)sched_tick(a->sched, now_usec());
	arm_deadline(a);
}

/* A VM lifecycle line may be written now (else it is counted for lifecycle_flush). */
static bool lifecycle_log_pass(struct adm *a, bool removed)
{
	if (ratelimit_pass(&a->lifecycle_rl, now_usec(), NULL))
		return true;
	a->lifecycle_unlogged[removed]++;
	return false;
}

static void lifecycle_flush(struct adm *a)
{
	uint64_t *n = a->lifecycle_unlogged;

	if (!n[0] && !n[1])
		return;
	log_info("%llu more VMs added and %llu removed, not logged one by one (over %d a second); "
		 "'snpctl vm list' shows the VMs",
		 (unsigned long long)n[0], (unsigned long long)n[1], ADM_LIFECYCLE_LOG_BURST);
	n[0] = n[1] = 0;
}

void adm_housekeeping(struct adm *a)
{
	uint64_t now = now_usec();
	struct adm_vm *vm;

	lifecycle_flush(a);
	/* Oldest first: the first one that is not stale ends the look. A slot freed here may
	 * admit a queued request; it joins the list at the new end, not stale. */
	while ((vm = a->inflight) && now - vm->inflight_since > ADM_STALE_INFLIGHT_USEC) {
		a->stats.stale_inflight_freed++;
		vm_log(vm, LOG_WARNING, vm->inflight_req,
		       "no GUEST_DONE for an admitted request; freeing its slot");
		inflight_clear(a, vm);
		(void)sched_done(a->sched, vm->info.vm_id, vm->inflight_req, now,
				 SCHED_OUTCOME_NOT_RUN);
	}
	arm_deadline(a);
}

static void on_housekeeping(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	adm_housekeeping(container_of(w, struct adm, housekeeping));
}

/* --- requests --- */

void adm_request(struct adm *a, struct adm_transport *t, uint64_t vm_id,
		 const struct adm_request *m)
{
	struct sched_decision d;
	struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);
	uint64_t now = now_usec();
	int r;

	a->stats.guest_reqs++;
	if (a->hooks.request)
		a->hooks.request(a->hooks.userdata);
	if (vm && vm->t != t)
		vm = NULL; /* another transport's VM: this one does not know it */
	if (vm) {
		/* A request without its header that wants the table is an extended report
		 * request (the VMM socket's only kind). */
		if ((m->has_msg && m->msg.type == MSG_REPORT_REQ) ||
		    (!m->has_msg && m->wants_table))
			vm->info.req_report++;
		else if (m->has_msg && m->msg.type == MSG_KEY_REQ)
			vm->info.req_key++;
		else
			vm->info.req_other++;
	}

	/* Rule 6: a buffer too small for the table (none at all included) gets INVALID_LEN with
	 * the exact page count, before the PSP and before any quota is spent. */
	if (vm && m->wants_table && a->table && m->npages < a->table_pages) {
		vm->info.invalid_len++;
		send_invalid_len(a, t, vm_id, vm->peer, m->req_id, a->table_pages);
		return;
	}

	if (!vm && sched_vm_owner(a->sched, vm_id)) {
		/* The id is another transport's: never let one transport's guest touch the
		 * scheduler state of another's. */
		a->stats.busy_by_reason[SCHED_BUSY_NO_VM]++;
		send_busy(a, t, vm_id, NULL, m->req_id);
		return;
	}
	r = sched_request(a->sched, vm_id, m->req_id, m->has_msg ? &m->msg : NULL, now, &d);
	if (r < 0) {
		/* Cannot happen with valid pointers; answer BUSY, the safe answer. */
		send_busy(a, t, vm_id, vm ? vm->peer : NULL, m->req_id);
		return;
	}
	if (d.anomalies && vm) {
		for (int k = 0; k < _SCHED_ANOM_MAX; k++)
			if (d.anomalies & (1u << k)) {
				char what[160];
				a->stats.anomalies[k]++;
				snprintf(what, sizeof(what),
					 "sequence anomaly: %s (seqno %llu, type %u, vmpck %u)",
					 sched_anomaly_name((enum sched_anomaly)k),
					 (unsigned long long)m->msg.seqno, m->msg.type,
					 m->msg.vmpck);
				vm_log(vm, LOG_WARNING, m->req_id, what);
			}
	} else if (d.anomalies) {
		for (int k = 0; k < _SCHED_ANOM_MAX; k++)
			if (d.anomalies & (1u << k))
				a->stats.anomalies[k]++;
	}
	if (d.need_dump && t->ops->request_resync && !t->lost && t->ops->request_resync(t) == 0)
		adm_resync_begin(a, t);
	switch (d.verdict) {
	case SCHED_ADMIT: {
		struct adm_req rq = {.req_id = m->req_id,
				     .wants_table = m->wants_table,
				     .npages = m->npages,
				     .arrived = now};
		/* sched admits only known VMs */
		if (vm)
			send_admission(a, vm, &rq, now);
		break;
	}
	case SCHED_QUEUED:
		/* The decision comes as an event; the record keeps what the verdict needs. The
		 * scheduler queues only known VMs, at most one request each. */
		if (vm) {
			vm->has_queued = true;
			vm->queued = (struct adm_req){.req_id = m->req_id,
						      .wants_table = m->wants_table,
						      .npages = m->npages,
						      .arrived = now};
		}
		break;
	case SCHED_BUSY:
		a->stats.busy_by_reason[d.reason < _SCHED_BUSY_MAX ? d.reason : 0]++;
		send_busy(a, t, vm_id, vm ? vm->peer : NULL, m->req_id);
		break;
	}
	arm_deadline(a);
}

void adm_done(struct adm *a, uint64_t vm_id, uint64_t req_id, enum adm_done_kind kind,
	      uint32_t fw_status, uint64_t fw_time_ns)
{
	struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);
	enum sched_outcome o = SCHED_OUTCOME_NOT_RUN;
	uint64_t now = now_usec();

	a->stats.done++;
	switch (kind) {
	case ADM_DONE_FIRMWARE:
		o = fw_status == 0 ? SCHED_OUTCOME_SUCCESS : SCHED_OUTCOME_FW_ERROR;
		if (vm) {
			vm->info.fw_time_ns_total += fw_time_ns;
			a->stats.fw_buckets[bucket_of(adm_fw_bounds_nsec, ADM_FW_NBOUNDS,
						      fw_time_ns)]++;
			a->stats.fw_time_ns_total += fw_time_ns;
			a->stats.fw_time_count++;
			if (fw_status == 0)
				vm->info.fw_ok++;
			else {
				char what[128];
				vm->info.fw_errors++;
				snprintf(what, sizeof(what), "firmware answered %s (0x%x)",
					 exitinfo_fw_status_name(fw_status), fw_status);
				vm_log(vm, LOG_NOTICE, req_id, what);
			}
		}
		break;
	case ADM_DONE_EXPIRED:
		if (vm) {
			vm->info.expired++;
			vm_log(vm, LOG_WARNING, req_id,
			       "the kernel answered BUSY before our verdict arrived");
		}
		break;
	default:
		break;
	}
	if (vm && vm->has_inflight && vm->inflight_req == req_id)
		inflight_clear(a, vm);
	if (vm && vm->has_queued && vm->queued.req_id == req_id)
		vm->has_queued = false;
	/* A slot freed while requests wait: time the hand-off to the next one. */
	if (sched_queued(a->sched) > 0) {
		uint64_t rx = vm && vm->t->ops->rx_usec ? vm->t->ops->rx_usec(vm->t) : 0;

		a->handoff_rx = rx ? rx : now;
	}
	(void)sched_done(a->sched, vm_id, req_id, now, o);
	a->handoff_rx = 0;
	arm_deadline(a);
}

/* --- VM table --- */

static void apply_quota(struct adm *a, uint64_t vm_id, uint64_t now)
{
	const struct sched_quota *q = u64map_get(&a->quotas, vm_id);
	const char *why = NULL;

	if (q && sched_vm_set_quota(a->sched, vm_id, q, now, &why) < 0)
		log_warning("Stored quota for VM %llu no longer valid (%s); using the default",
			    (unsigned long long)vm_id, why ? why : "?");
}

int adm_vm_add(struct adm *a, struct adm_transport *t, uint64_t vm_id,
	       const struct adm_vm_attrs *attrs, bool resync, bool has_inflight,
	       uint64_t inflight_req)
{
	struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);
	uint64_t now = now_usec();
	int r;

	if (vm && vm->t != t)
		return -EEXIST;
	if (!vm) {
		vm = calloc(1, sizeof(*vm));
		if (!vm)
			return log_error_errno(-ENOMEM, "Out of memory adding VM %llu",
					       (unsigned long long)vm_id);
		vm->info.vm_id = vm_id;
		vm->info.transport = t->ops->name;
		vm->t = t;
		ratelimit_init(&vm->rl, a->cfg.guest_log_interval_usec, a->cfg.guest_log_burst);
		/* Record and scheduler state are added together or not at all. */
		r = sched_vm_add(a->sched, vm_id, now);
		if (r < 0) {
			free(vm);
			return r; /* -EEXIST: a VM without a record cannot exist */
		}
		(void)sched_vm_set_owner(a->sched, vm_id, vm);
		vm->next = a->all;
		if (a->all)
			a->all->prev = vm;
		a->all = vm;
		a->n_vms++;
		apply_quota(a, vm_id, now);
		if (!resync && lifecycle_log_pass(a, false))
			log_vm(LOG_INFO, vm_id, 0, "VM added (VMM pid %u, ASID %u)",
			       attrs ? attrs->vmm_pid : 0, attrs ? attrs->asid : 0);
	}
	if (attrs) {
		vm->info.vmm_pid = attrs->vmm_pid;
		vm->info.asid = attrs->asid;
		vm->info.policy = attrs->policy;
	}
	vm->resync_gen = t->resync_begun;

	if (resync) {
		/* Make our in-flight accounting match the peer's (a restart or overrun). */
		if (vm->has_inflight && (!has_inflight || vm->inflight_req != inflight_req) &&
		    now - vm->inflight_since > ADM_STALE_INFLIGHT_USEC) {
			(void)sched_done(a->sched, vm_id, vm->inflight_req, now,
					 SCHED_OUTCOME_NOT_RUN);
			inflight_clear(a, vm);
		}
		if (has_inflight && !vm->has_inflight) {
			if (vm->has_queued && vm->queued.req_id == inflight_req)
				vm->has_queued = false;
			r = sched_vm_restore_inflight(a->sched, vm_id, inflight_req, now);
			if (r == 0)
				inflight_set(a, vm, inflight_req, now);
		}
	}
	arm_deadline(a);
	return 0;
}

int adm_vm_set_peer(struct adm *a, uint64_t vm_id, void *peer)
{
	struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);

	if (!vm)
		return -ENOENT;
	vm->peer = peer;
	return 0;
}

static void vm_drop(struct adm *a, struct adm_vm *vm, const char *why)
{
	uint64_t vm_id = vm->info.vm_id;

	/* A queued request gets its BUSY from the REMOVED event, which carries the record. */
	(void)sched_vm_remove(a->sched, vm_id, now_usec());
	inflight_clear(a, vm);
	if (vm->prev)
		vm->prev->next = vm->next;
	else
		a->all = vm->next;
	if (vm->next)
		vm->next->prev = vm->prev;
	a->n_vms--;
	if (why && lifecycle_log_pass(a, true))
		log_vm(LOG_INFO, vm_id, 0, "VM removed (%s)", why);
	free(vm);
}

int adm_vm_remove(struct adm *a, uint64_t vm_id, const char *why)
{
	struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);

	if (!vm)
		return -ENOENT;
	vm_drop(a, vm, why);
	arm_deadline(a);
	return 0;
}

void adm_resync_begin(struct adm *a, struct adm_transport *t)
{
	t->resync_begun++;
	a->stats.dumps_sent++;
}

void adm_resync_end(struct adm *a, struct adm_transport *t)
{
	struct adm_vm *vm, *next;

	t->resync_ended++;
	/* VMs the peer no longer lists (their removal was lost) go away. */
	for (vm = a->all; vm; vm = next) {
		next = vm->next;
		if (vm->t == t && vm->resync_gen < t->resync_ended) {
			a->stats.vms_pruned++;
			vm_drop(a, vm, "not in the kernel's VM list");
		}
	}
	arm_deadline(a);
}

void adm_transport_lost(struct adm *a, struct adm_transport *t)
{
	struct adm_vm *vm, *next;

	/* The peer is gone and every pending request died with it: nothing is sent. */
	t->lost = true;
	for (vm = a->all; vm; vm = next) {
		next = vm->next;
		if (vm->t == t)
			vm_drop(a, vm, NULL);
	}
	t->lost = false;
	t->resync_begun = t->resync_ended = 0;
	arm_deadline(a);
}

uint64_t adm_vm_id_alloc(struct adm *a)
{
	uint64_t id;

	do
		id = (1ull << 63) | a->next_alloc_id++;
	while (sched_vm_owner(a->sched, id));
	return id;
}

/* --- control side --- */

void adm_set_table(struct adm *a, const uint8_t *table, size_t len, uint32_t pages)
{
	a->table = table;
	a->table_len = table ? len : 0;
	a->table_pages = table ? pages : 0;
}

int adm_pause(struct adm *a)
{
	return sched_pause(a->sched, now_usec());
}

void adm_resume(struct adm *a)
{
	if (sched_paused(a->sched))
		(void)sched_resume(a->sched, now_usec());
	arm_deadline(a);
}

bool adm_paused(const struct adm *a)
{
	return sched_paused(a->sched);
}

int adm_set_default_quota(struct adm *a, const struct sched_quota *q, const char **reason)
{
	int r = sched_set_default_quota(a->sched, q, now_usec(), reason);

	if (r == 0)
		a->cfg.sched.quota = *q;
	return r;
}

/* --- quotas --- */

int adm_quota_check(const struct adm *a, const struct sched_quota *q, const char **reason)
{
	return sched_quota_check(&a->cfg.sched, q, reason);
}

int adm_quota_set(struct adm *a, uint64_t vm_id, const struct sched_quota *q, const char **reason)
{
	struct sched_quota *n = NULL;
	bool added = false;
	int r;

	if (q) {
		r = adm_quota_check(a, q, reason);
		if (r < 0)
			return r;
		/* Allocate before changing anything: a failure leaves every state as it was. */
		n = u64map_get(&a->quotas, vm_id);
		if (!n) {
			n = malloc(sizeof(*n));
			if (!n)
				return -ENOMEM;
			*n = *q;
			r = u64map_put(&a->quotas, vm_id, n);
			if (r < 0) {
				free(n);
				return r;
			}
			added = true;
		}
	}
	/* The live VM's scheduler state (its quota in force), then the remembered one. */
	if (sched_vm_owner(a->sched, vm_id)) {
		r = sched_vm_set_quota(a->sched, vm_id, q, now_usec(), reason);
		if (r < 0) {
			if (added)
				free(u64map_remove(&a->quotas, vm_id));
			return r;
		}
	}
	if (q)
		*n = *q;
	else
		free(u64map_remove(&a->quotas, vm_id));
	return 0;
}

void adm_quota_default(const struct adm *a, struct sched_quota *ret)
{
	*ret = a->cfg.sched.quota;
}

bool adm_quota_get(const struct adm *a, uint64_t vm_id, struct sched_quota *ret)
{
	const struct sched_quota *q = u64map_get(&a->quotas, vm_id);

	if (q) {
		*ret = *q;
		return true;
	}
	adm_quota_default(a, ret);
	return false;
}

size_t adm_quota_count(const struct adm *a)
{
	return u64map_size(&a->quotas);
}

size_t adm_quota_foreach(const struct adm *a,
			 void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			 void *userdata)
{
	size_t it = 0, n = 0;
	uint64_t id;
	void *v;

	while (u64map_next(&a->quotas, &it, &id, &v)) {
		fn(userdata, id, v);
		n++;
	}
	return n;
}

/* --- read-only view --- */

const struct adm_stats *adm_get_stats(const struct adm *a)
{
	return &a->stats;
}

unsigned adm_inflight(const struct adm *a)
{
	return sched_inflight(a->sched);
}

unsigned adm_queued(const struct adm *a)
{
	return sched_queued(a->sched);
}

size_t adm_vm_count(const struct adm *a)
{
	return a->n_vms;
}

int adm_vm_info(const struct adm *a, uint64_t vm_id, struct adm_vm_info *ret)
{
	const struct adm_vm *vm = sched_vm_owner(a->sched, vm_id);

	if (!vm)
		return -ENOENT;
	*ret = vm->info;
	if (sched_vm_stats(a->sched, vm_id, now_usec(), &ret->sched) < 0)
		memset(&ret->sched, 0, sizeof(ret->sched));
	return 0;
}

size_t adm_vm_foreach(const struct adm *a,
		      void (*fn)(void *userdata, const struct adm_vm_info *info), void *userdata)
{
	size_t n = 0;

	for (const struct adm_vm *vm = a->all; vm; vm = vm->next) {
		struct adm_vm_info info;
		if (adm_vm_info(a, vm->info.vm_id, &info) == 0) {
			fn(userdata, &info);
			n++;
		}
	}
	return n;
}

int adm_selfcheck(const struct adm *a)
{
	size_t n = 0;

	if (sched_selfcheck(a->sched) < 0)
		return -EUCLEAN;
	for (const struct adm_vm *vm = a->all; vm; vm = vm->next) {
		struct sched_vm_stats st;
		if (++n > a->n_vms || (vm->next && vm->next->prev != vm))
			return -EUCLEAN;
		if (sched_vm_owner(a->sched, vm->info.vm_id) != vm)
			return -EUCLEAN;
		if (sched_vm_stats(a->sched, vm->info.vm_id, 0, &st) < 0)
			return -EUCLEAN;
		if (vm->has_inflight != st.inflight || vm->has_queued != st.queued)
			return -EUCLEAN;
	}
	if (n != a->n_vms || sched_vm_count(a->sched) != n)
		return -EUCLEAN;
	/* The in-flight list: exactly the records with has_inflight, oldest first. */
	n = 0;
	for (const struct adm_vm *vm = a->inflight; vm; vm = vm->inext) {
		if (++n > a->n_vms || !vm->has_inflight || (vm->inext && vm->inext->iprev != vm) ||
		    (vm->inext && vm->inext->inflight_since < vm->inflight_since) ||
		    (!vm->inext && a->inflight_last != vm))
			return -EUCLEAN;
	}
	for (const struct adm_vm *vm = a->all; vm; vm = vm->next)
		n -= vm->has_inflight;
	if (n != 0 || (!a->inflight && a->inflight_last))
		return -EUCLEAN;
	return 0;
}

/* --- life cycle --- */

int adm_new(struct ev_loop *loop, const struct adm_config *c, const struct adm_hooks *h,
	    struct adm **ret, const char **reason)
{
	struct adm *a;
	int r;

	r = sched_config_check(&c->sched, reason);
	if (r < 0)
		return r;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->cfg = *c;
	if (h)
		a->hooks = *h;
	u64map_init(&a->quotas, (uint64_t)time(NULL) ^ 0x5bd1e995u);
	r = sched_new(&c->sched, on_sched_event, a, &a->sched);
	if (r < 0) {
		u64map_done(&a->quotas);
		free(a);
		return r;
	}
	ratelimit_init(&a->lifecycle_rl, 1000000, ADM_LIFECYCLE_LOG_BURST);
	ev_timer_init(&a->deadline, on_deadline, 0., 0.);
	ev_timer_init(&a->housekeeping, on_housekeeping, ADM_HOUSEKEEPING_SEC,
		      ADM_HOUSEKEEPING_SEC);
	ev_timer_start(loop, &a->housekeeping);
	*ret = a;
	return 0;
}

void adm_free(struct adm *a)
{
	size_t it = 0;
	void *v;

	if (!a)
		return;
	ev_timer_stop(a->loop, &a->deadline);
	ev_timer_stop(a->loop, &a->housekeeping);
	lifecycle_flush(a);
	/* Queued requests are dropped without events (sched_free). */
	sched_free(a->sched);
	while (a->all) {
		struct adm_vm *vm = a->all;
		a->all = vm->next;
		free(vm);
	}
	while (u64map_next(&a->quotas, &it, NULL, &v))
		free(v);
	u64map_done(&a->quotas);
	free(a);
}
