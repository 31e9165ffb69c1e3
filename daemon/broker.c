/* SPDX-License-Identifier: Apache-2.0 */
/* broker: GUEST_REQ -> exactly one VERDICT, GUEST_DONE accounting, VM lifecycle, quotas.
 * Decisions come from proto/sched-policy.c; this file only connects it to netlink, the
 * served chain and the clock. Rules: design §4 (guest contract) and §5. */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>

#include "cache.h"
#include "certs.h"
#include "certtable.h"
#include "exitinfo.h"
#include "fw.h"
#include "kdsc.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "nl.h"
#include "nlsock.h"
#include "quotafile.h"
#include "ratelimit.h"
#include "u64map.h"
#include "util.h"
#include "vmmfile.h"
#include "worker.h"

/* A request is in flight (ALLOW sent) until GUEST_DONE; the kernel always sends one, so an
 * entry older than this lost its DONE (e.g. a receive overrun) and is freed to keep the VM
 * from being refused forever. Well under busy_budget. */
#define BROKER_STALE_INFLIGHT_USEC (5 * 1000000ull)
#define BROKER_HOUSEKEEPING_SEC 1.0
/* Longest start-up wait for the first chain before READY=1 (KDS slow or down, cache cold). */
#define BROKER_READY_MAX_SEC 10.0
/* Refetch this long before the chain's (or CRL's) end of validity; retry no more often than
 * BROKER_EXPIRY_RETRY_SEC once inside that window. */
#define BROKER_EXPIRY_MARGIN_SEC (24 * 3600)
#define BROKER_EXPIRY_RETRY_SEC 600
#define BROKER_KDS_RETRY_SEC 30.
/* Admission is paused while the worker waits for the VMM file lock: bound the wait. */
#define BROKER_VMM_LOCK_MSEC 2000

struct broker_req {
	uint64_t req_id;
	uint64_t vm_id;
	bool ext_report;
	uint32_t data_npages;
	uint64_t arrived;
};

const uint64_t broker_wait_bounds_usec[BROKER_WAIT_NBOUNDS] = {
	500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000,
	15000, 20000, 30000, 50000, 100000,
};

static void count_wait(struct broker_vm_info *info, uint64_t usec)
{
	size_t i = 0;

	while (i < BROKER_WAIT_NBOUNDS && usec > broker_wait_bounds_usec[i])
		i++;
	info->wait_buckets[i]++;
	info->wait_usec_total += usec;
}

struct broker_vm {
	struct broker_vm_info info; /* counters; info.sched filled on demand */
	uint64_t dump_gen;
	uint64_t inflight_req; /* valid if has_inflight */
	uint64_t inflight_since;
	bool has_inflight;
	struct broker_req *queued; /* owned, or NULL */
	struct ratelimit rl;
};

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
	struct store_platform pf_old;
	struct store_platform pf_expect;
	const struct store_chain *old_chain; /* borrowed; not swapped while we run */
	struct store_chain *prepared; /* owned: built before pausing for the expected platform */
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
	struct store_platform pf_new;
	enum broker_rot_outcome outcome;
	struct store_chain *new_chain; /* owned until swapped in */
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

static void fetch_free(struct broker_fetch *f)
{
	free(f->chain);
	free(f->leaf);
	free(f);
}

struct broker_poll {
	struct worker_job job;
	struct broker *b; /* borrowed */
	struct fw *fw;	  /* borrowed */
	bool busy;
	int r;
	struct store_platform pf;
	int committed_r;
	uint64_t committed;
};

struct broker {
	struct manager *m;	     /* borrowed */
	struct worker *worker;	     /* owned: every firmware call after start runs here */
	struct kdsc *kdsc;	     /* owned; the chain source when no cert_dir is configured */
	bool ready_held;	     /* READY=1 waits for the first chain decision */
	ev_timer ready_timer;	     /* ... at most BROKER_READY_MAX_SEC */
	struct vmmfile *vmm;	     /* owned; NULL if no vmm_certs_file */
	struct broker_rotation *rot; /* owned: the rotation under way, or NULL */
	struct broker_fetch *fetch;  /* owned: the snpctl cert fetch under way, or NULL */
	bool import_next;	     /* the next KDS-cache chain was put there by cert import */
	time_t chain_since;	     /* wall clock when the served chain was swapped in */
	bool rotate_again;	     /* an internal trigger arrived during a rotation */
	char again_why[128];
	struct broker_poll poll;
	struct broker_rotation_stats rstats;
	int committed_r;
	uint64_t committed_tcb;
	ev_timer rot_timeout;
	ev_timer poll_timer;
	ev_timer expiry;
	struct fw *fw;		   /* owned */
	struct sched *sched;	   /* owned */
	struct nlsock *nl;	   /* owned */
	uint64_t handoff_rx;	   /* a GUEST_DONE received then freed a slot with a queue: the
				    * next admission is its hand-off (0: none pending) */
	struct store_chain *chain; /* owned; NULL = serve no certificates */
	X509 *sim_ark;		   /* owned; trusted extra root (sim backend only) */
	struct store_platform pf;
	struct u64map vms;    /* vm_id -> struct broker_vm (owned) */
	struct u64map quotas; /* vm_id -> struct sched_quota (owned): custom quotas */
	struct broker_stats stats;
	uint64_t dump_sent, dump_done;
	bool draining;
	ev_timer deadline;
	ev_timer housekeeping;
};

static void broker_arm(struct broker *b);
static void rot_submit(struct broker *b);

struct broker *broker_get(struct manager *m)
{
	return m->broker;
}

static uint64_t now_usec(void)
{
	return manager_now_usec();
}

/* --- sending verdicts --- */

static int send_answer(struct broker *b, uint64_t req_id, uint64_t exitinfo2, uint32_t npages)
{
	struct snpa_msg v = {
		.cmd = SNPA_CMD_VERDICT,
		.present =
			(1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT) | (1u << SNPA_A_EXITINFO2),
		.req_id = req_id,
		.verdict = SNPA_VERDICT_ANSWER,
		.exitinfo2 = exitinfo2,
	};
	int r;

	if (exitinfo2 == EXITINFO2_INVALID_LEN) {
		v.present |= 1u << SNPA_A_NPAGES;
		v.npages = npages;
		b->stats.verdicts_invalid_len++;
	} else {
		b->stats.verdicts_busy++;
	}
	r = nlsock_send(b->nl, &v);
	if (r < 0)
		b->stats.send_failures++;
	return r;
}

static int send_allow(struct broker *b, const struct broker_req *rq)
{
	struct snpa_msg v = {
		.cmd = SNPA_CMD_VERDICT,
		.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
		.req_id = rq->req_id,
		.verdict = SNPA_VERDICT_ALLOW,
	};
	int r;

	/* The table goes with the ALLOW: it is the chain of the key that signs this report,
	 * since the chain is only swapped while nothing is in flight (rotation pauses). */
	if (rq->ext_report && b->chain) {
		v.present |= 1u << SNPA_A_CERT_TABLE;
		v.cert_table = b->chain->table;
		v.cert_table_len = (uint32_t)b->chain->table_len;
	}
	r = nlsock_send(b->nl, &v);
	if (r < 0)
		b->stats.send_failures++;
	else
		b->stats.verdicts_allow++;
	return r;
}

/* --- per-VM bookkeeping --- */

static struct broker_vm *vm_get(struct broker *b, uint64_t vm_id)
{
	return u64map_get(&b->vms, vm_id);
}

static void vm_log(struct broker *b, struct broker_vm *vm, int level, uint64_t req_id,
		   const char *what)
{
	uint64_t suppressed = 0;

	if (!ratelimit_pass(&vm->rl, now_usec(), &suppressed))
		return;
	if (suppressed)
		log_vm(LOG_NOTICE, vm->info.vm_id, req_id, "%llu similar messages suppressed",
		       (unsigned long long)suppressed);
	log_vm(level, vm->info.vm_id, req_id, "%s", what);
}

static void vm_free(struct broker_vm *vm)
{
	if (!vm)
		return;
	free(vm->queued);
	free(vm);
}

static void admitted(struct broker *b, struct broker_vm *vm, const struct broker_req *rq,
		     uint64_t now)
{
	int r;

	/* A rotation may have grown the table while this request waited: never hand over a
	 * table the guest buffer cannot hold. */
	if (rq->ext_report && b->chain && rq->data_npages < b->chain->table_pages) {
		(void)sched_done(b->sched, rq->vm_id, rq->req_id, now, SCHED_OUTCOME_NOT_RUN);
		if (vm)
			vm->info.invalid_len++;
		send_answer(b, rq->req_id, EXITINFO2_INVALID_LEN, b->chain->table_pages);
		return;
	}
	r = send_allow(b, rq);
	if (r < 0) {
		/* The kernel never saw the ALLOW; it answers BUSY on its own timeout. */
		(void)sched_done(b->sched, rq->vm_id, rq->req_id, now, SCHED_OUTCOME_NOT_RUN);
		return;
	}
	if (vm) {
		vm->has_inflight = true;
		vm->inflight_req = rq->req_id;
		vm->inflight_since = now;
	}
	b->stats.admission_wait_usec_total += now - rq->arrived;
	if (b->handoff_rx) {
		uint64_t t = now_usec();

		b->stats.handoffs++;
		b->stats.handoff_usec_total += t > b->handoff_rx ? t - b->handoff_rx : 0;
		b->handoff_rx = 0;
	}
	metrics_observe_admission_wait(b->m, now - rq->arrived);
	if (vm)
		count_wait(&vm->info, now - rq->arrived);
}

static void on_sched_event(void *userdata, const struct sched_event *ev)
{
	struct broker *b = userdata;
	struct broker_vm *vm;
	struct broker_req *rq;
	uint64_t now = now_usec();

	if (ev->type == SCHED_EV_DRAINED) {
		/* Nothing in flight any more: the rotation's firmware/table change may run. */
		if (b->rot)
			rot_submit(b);
		return;
	}
	vm = vm_get(b, ev->vm_id);
	rq = vm && vm->queued && vm->queued->req_id == ev->req_id ? vm->queued : NULL;
	if (rq)
		vm->queued = NULL;
	if (ev->type == SCHED_EV_ADMIT) {
		struct broker_req tmp = {.req_id = ev->req_id, .vm_id = ev->vm_id, .arrived = now};
		/* Rule 4 over the slots: it waits for the PSP in the kernel. */
		if (sched_inflight(b->sched) > b->m->conf.psp_concurrency)
			b->stats.admissions_over_slots++;
		admitted(b, vm, rq ? rq : &tmp, now);
	} else {
		b->stats.busy_by_reason[ev->reason < _SCHED_BUSY_MAX ? ev->reason : 0]++;
		send_answer(b, ev->req_id, EXITINFO2_BUSY, 0);
	}
	free(rq);
}

/* --- netlink messages --- */

static void handle_guest_req(struct broker *b, const struct snpa_msg *m)
{
	struct sched_msg sm = {
		.seqno = m->msg_seqno,
		.type = m->msg_type,
		.version = m->msg_version,
		.vmpck = m->msg_vmpck,
		.size = m->msg_size,
	};
	struct sched_decision d;
	struct broker_vm *vm = vm_get(b, m->vm_id);
	struct broker_req *rq;
	uint64_t now = now_usec();
	bool ext = m->exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST;
	bool ext_report = ext && m->msg_type == MSG_REPORT_REQ;
	int r;

	b->stats.guest_reqs++;
	if (vm) {
		if (m->msg_type == MSG_REPORT_REQ)
			vm->info.req_report++;
		else if (m->msg_type == MSG_KEY_REQ)
			vm->info.req_key++;
		else
			vm->info.req_other++;
	}

	/* Rule 6: a buffer too small for the table (RBX = 0 included) gets INVALID_LEN with the
	 * exact page count, before the PSP and before any quota is spent. */
	if (vm && ext_report && b->chain && m->data_npages < b->chain->table_pages) {
		vm->info.invalid_len++;
		send_answer(b, m->req_id, EXITINFO2_INVALID_LEN, b->chain->table_pages);
		return;
	}

	r = sched_request(b->sched, m->vm_id, m->req_id, &sm, now, &d);
	if (r < 0) {
		/* Cannot happen with valid pointers; answer BUSY, the safe answer. */
		send_answer(b, m->req_id, EXITINFO2_BUSY, 0);
		return;
	}
	if (d.anomalies) {
		for (int a = 0; a < _SCHED_ANOM_MAX; a++)
			if (d.anomalies & (1u << a)) {
				char what[160];
				b->stats.anomalies[a]++;
				snprintf(what, sizeof(what),
					 "sequence anomaly: %s (seqno %llu, type %u, vmpck %u)",
					 sched_anomaly_name((enum sched_anomaly)a),
					 (unsigned long long)m->msg_seqno, m->msg_type,
					 m->msg_vmpck);
				if (vm)
					vm_log(b, vm, LOG_WARNING, m->req_id, what);
			}
	}
	if (d.need_dump) {
		struct snpa_msg dump = {.cmd = SNPA_CMD_VM_DUMP};
		if (nlsock_send(b->nl, &dump) == 0) {
			b->dump_sent++;
			b->stats.dumps_sent++;
		}
	}
	switch (d.verdict) {
	case SCHED_ADMIT: {
		struct broker_req tmp = {.req_id = m->req_id,
					 .vm_id = m->vm_id,
					 .ext_report = ext_report,
					 .data_npages = m->data_npages,
					 .arrived = now};
		admitted(b, vm, &tmp, now);
		break;
	}
	case SCHED_QUEUED:
		rq = calloc(1, sizeof(*rq));
		if (!rq || !vm) {
			/* Out of memory: the decision will still come as an event; without the
			 * record an extended request would get no table, so refuse it now would
			 * break "exactly once". Keep a minimal record if we can. */
			free(rq);
			break;
		}
		*rq = (struct broker_req){.req_id = m->req_id,
					  .vm_id = m->vm_id,
					  .ext_report = ext_report,
					  .data_npages = m->data_npages,
					  .arrived = now};
		free(vm->queued);
		vm->queued = rq;
		break;
	case SCHED_BUSY:
		b->stats.busy_by_reason[d.reason < _SCHED_BUSY_MAX ? d.reason : 0]++;
		send_answer(b, m->req_id, EXITINFO2_BUSY, 0);
		break;
	}
	broker_arm(b);
}

static void handle_done(struct broker *b, const struct snpa_msg *m)
{
	struct broker_vm *vm = vm_get(b, m->vm_id);
	enum sched_outcome o;
	uint64_t now = now_usec();

	b->stats.done++;
	switch (m->outcome) {
	case SNPA_OUTCOME_FIRMWARE:
		o = m->fw_status == 0 ? SCHED_OUTCOME_SUCCESS : SCHED_OUTCOME_FW_ERROR;
		if (vm) {
			vm->info.fw_time_ns_total += m->fw_time_ns;
			metrics_observe_fw_time(b->m, m->vm_id, m->fw_time_ns);
			if (m->fw_status == 0)
				vm->info.fw_ok++;
			else {
				char what[128];
				vm->info.fw_errors++;
				snprintf(what, sizeof(what), "firmware answered %s (0x%x)",
					 exitinfo_fw_status_name(m->fw_status), m->fw_status);
				vm_log(b, vm, LOG_NOTICE, m->req_id, what);
			}
		}
		break;
	case SNPA_OUTCOME_EXPIRED:
		o = SCHED_OUTCOME_NOT_RUN;
		if (vm) {
			vm->info.expired++;
			vm_log(b, vm, LOG_WARNING, m->req_id,
			       "the kernel answered BUSY before our verdict arrived");
		}
		break;
	default:
		o = SCHED_OUTCOME_NOT_RUN;
		break;
	}
	if (vm && vm->has_inflight && vm->inflight_req == m->req_id)
		vm->has_inflight = false;
	if (vm && vm->queued && vm->queued->req_id == m->req_id) {
		free(vm->queued);
		vm->queued = NULL;
	}
	/* A slot freed while requests wait: time the hand-off to the next one. */
	if (sched_queued(b->sched) > 0) {
		uint64_t rx = nlsock_rx_usec(b->nl);

		b->handoff_rx = rx ? rx : now;
	}
	(void)sched_done(b->sched, m->vm_id, m->req_id, now, o);
	b->handoff_rx = 0;
	broker_arm(b);
}

static void apply_quota(struct broker *b, uint64_t vm_id, uint64_t now)
{
	const struct sched_quota *q = u64map_get(&b->quotas, vm_id);
	const char *why = NULL;

	if (q && sched_vm_set_quota(b->sched, vm_id, q, now, &why) < 0)
		log_warning("Stored quota for VM %llu no longer valid (%s); using the default",
			    (unsigned long long)vm_id, why ? why : "?");
}

static void handle_vm_add(struct broker *b, const struct snpa_msg *m)
{
	struct broker_vm *vm = vm_get(b, m->vm_id);
	uint64_t now = now_usec();
	int r;

	if (!vm) {
		vm = calloc(1, sizeof(*vm));
		if (!vm) {
			log_error("Out of memory adding VM %llu", (unsigned long long)m->vm_id);
			return;
		}
		vm->info.vm_id = m->vm_id;
		ratelimit_init(&vm->rl, b->m->conf.guest_log_interval_usec,
			       b->m->conf.guest_log_burst);
		r = u64map_put(&b->vms, m->vm_id, vm);
		if (r < 0) {
			free(vm);
			return;
		}
		r = sched_vm_add(b->sched, m->vm_id, now);
		if (r < 0 && r != -EEXIST) {
			u64map_remove(&b->vms, m->vm_id);
			free(vm);
			return;
		}
		apply_quota(b, m->vm_id, now);
		if (!snpa_has(m, SNPA_A_DUMP))
			log_vm(LOG_INFO, m->vm_id, 0, "VM added (VMM pid %u, ASID %u)", m->vmm_pid,
			       m->asid);
	}
	vm->info.vmm_pid = m->vmm_pid;
	vm->info.asid = m->asid;
	vm->info.policy = m->policy;
	vm->dump_gen = b->dump_sent;

	if (snpa_has(m, SNPA_A_DUMP)) {
		bool replay_inflight = snpa_has(m, SNPA_A_INFLIGHT_REQ);
		/* Make our in-flight accounting match the kernel's (a restart or overrun). */
		if (vm->has_inflight && (!replay_inflight || vm->inflight_req != m->inflight_req) &&
		    now - vm->inflight_since > BROKER_STALE_INFLIGHT_USEC) {
			(void)sched_done(b->sched, m->vm_id, vm->inflight_req, now,
					 SCHED_OUTCOME_NOT_RUN);
			vm->has_inflight = false;
		}
		if (replay_inflight && !vm->has_inflight) {
			if (vm->queued && vm->queued->req_id == m->inflight_req) {
				free(vm->queued);
				vm->queued = NULL;
			}
			r = sched_vm_restore_inflight(b->sched, m->vm_id, m->inflight_req, now);
			if (r == 0) {
				vm->has_inflight = true;
				vm->inflight_req = m->inflight_req;
				vm->inflight_since = now;
			}
		}
	}
	broker_arm(b);
}

static void remove_vm(struct broker *b, uint64_t vm_id, const char *why)
{
	struct broker_vm *vm = u64map_remove(&b->vms, vm_id);

	/* A queued request gets its BUSY from the REMOVED event before we free the record. */
	(void)sched_vm_remove(b->sched, vm_id, now_usec());
	if (vm) {
		log_vm(LOG_INFO, vm_id, 0, "VM removed (%s)", why);
		vm_free(vm);
	}
}

static void handle_dump_end(struct broker *b, const struct snpa_msg *m)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	b->dump_done++;
	/* VMs the kernel no longer lists (their VM_REMOVE was lost) go away. */
	while (u64map_next(&b->vms, &it, &id, &v)) {
		struct broker_vm *vm = v;
		if (vm->dump_gen < b->dump_done) {
			b->stats.vms_pruned++;
			remove_vm(b, id, "not in the kernel's VM list");
		}
	}
	log_debug("VM list synchronised: %zu VMs (kernel says %u)", u64map_size(&b->vms),
		  snpa_has(m, SNPA_A_VM_COUNT) ? m->vm_count : 0);
}

static void on_message(void *userdata, const struct snpa_msg *m)
{
	struct broker *b = userdata;

	switch (m->cmd) {
	case SNPA_CMD_GUEST_REQ:
		handle_guest_req(b, m);
		break;
	case SNPA_CMD_GUEST_DONE:
		handle_done(b, m);
		break;
	case SNPA_CMD_VM_ADD:
		handle_vm_add(b, m);
		break;
	case SNPA_CMD_VM_REMOVE:
		remove_vm(b, m->vm_id, "VM_REMOVE");
		broker_arm(b);
		break;
	case SNPA_CMD_VM_DUMP:
		handle_dump_end(b, m);
		break;
	default:
		break; /* REGISTER/VERDICT are ours to send, not to receive */
	}
}

static int sched_config_from(const struct conf *c, struct sched_config *sc)
{
	const char *why = NULL;

	sched_config_defaults(sc);
	sc->psp_concurrency = c->psp_concurrency;
	sc->busy_budget_usec = c->busy_budget_usec;
	sc->max_queue_wait_usec = c->max_queue_wait_usec;
	sc->retry_interval_usec = c->guest_retry_interval_usec;
	sc->quota.rate_milli = c->quota_rate_milli;
	sc->quota.burst = c->quota_burst;
	sc->quota.weight = c->quota_weight;
	if (sched_config_check(sc, &why) < 0) {
		log_error("Scheduler configuration refused: %s", why ? why : "?");
		return -EINVAL;
	}
	return 0;
}

static void drop_all_vms(struct broker *b)
{
	size_t it = 0;
	void *v;

	while (u64map_next(&b->vms, &it, NULL, &v))
		vm_free(v);
	u64map_done(&b->vms);
	u64map_init(&b->vms, (uint64_t)time(NULL));
}

static void on_registered(void *userdata)
{
	struct broker *b = userdata;

	/* nlsock has sent VM_DUMP: the kernel replays every VM. */
	b->dump_sent++;
	b->stats.dumps_sent++;
	manager_notify_status(b->m, "serving: broker registered");
}

static void on_unregistered(void *userdata, int reason)
{
	struct broker *b = userdata;
	struct sched_config sc;
	struct sched *n;

	/* The kernel side is gone: every pending request died with it. Start clean; the
	 * VM_DUMP after the next REGISTER rebuilds the VM list and in-flight state. */
	log_warning("Lost the broker role (%s); guests get BUSY until it is back",
		    strerror(reason < 0 ? -reason : reason));
	if (sched_config_from(&b->m->conf, &sc) == 0 &&
	    sched_new(&sc, on_sched_event, b, &n) == 0) {
		sched_free(b->sched);
		b->sched = n;
		/* A rotation or drain under way keeps admission paused; nothing is in flight. */
		if (b->rot || b->draining)
			(void)sched_pause(b->sched, now_usec());
		if (b->rot)
			rot_submit(b);
	}
	drop_all_vms(b);
	b->dump_sent = b->dump_done = 0;
	manager_notify_status(b->m, "waiting for the kernel (broker role lost)");
}

static void on_resync(void *userdata)
{
	struct broker *b = userdata;

	b->dump_sent++;
	b->stats.dumps_sent++;
}

static const struct nlsock_handler nl_handler = {
	.on_message = on_message,
	.on_registered = on_registered,
	.on_unregistered = on_unregistered,
	.on_resync = on_resync,
};

/* --- timers --- */

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, deadline);

	(void)loop;
	(void)revents;
	(void)sched_tick(b->sched, now_usec());
	broker_arm(b);
}

static void broker_arm(struct broker *b)
{
	uint64_t when, now;
	struct ev_loop *loop = b->m->loop;

	if (sched_next_deadline(b->sched, &when) < 0) {
		ev_timer_stop(loop, &b->deadline);
		return;
	}
	now = now_usec();
	ev_timer_stop(loop, &b->deadline);
	ev_timer_set(&b->deadline, when > now ? (double)(when - now) / 1e6 : 0., 0.);
	ev_timer_start(loop, &b->deadline);
}

static void on_housekeeping(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, housekeeping);
	uint64_t now = now_usec();
	size_t it = 0;
	void *v;

	(void)loop;
	(void)revents;
	while (u64map_next(&b->vms, &it, NULL, &v)) {
		struct broker_vm *vm = v;
		if (vm->has_inflight && now - vm->inflight_since > BROKER_STALE_INFLIGHT_USEC) {
			b->stats.stale_inflight_freed++;
			vm_log(b, vm, LOG_WARNING, vm->inflight_req,
			       "no GUEST_DONE for an admitted request; freeing its slot");
			vm->has_inflight = false;
			(void)sched_done(b->sched, vm->info.vm_id, vm->inflight_req, now,
					 SCHED_OUTCOME_NOT_RUN);
		}
	}
	broker_arm(b);
}

/* --- platform and chain --- */

/* Non-logging, callable on the worker: fills pf from SNP_PLATFORM_STATUS and GET_ID2. The
 * product comes from the backend, or stays what pf held (CPUID at start). */
static int platform_read(struct fw *fw, struct store_platform *pf, char *err, size_t err_size)
{
	struct sev_user_data_snp_status st;
	struct store_platform n = *pf;
	uint32_t fs = 0;
	int r;

	r = fw_platform_status(fw, &st, &fs);
	if (r < 0) {
		snprintf(err, err_size, "SNP_PLATFORM_STATUS failed: %s (firmware status 0x%x)",
			 snp_strerror(r), fs);
		return r;
	}
	n.current_tcb = st.current_tcb_version;
	n.reported_tcb = st.reported_tcb_version;
	n.status_flags = st.flags;
	n.vlek_loaded = (st.flags & SNP_STATUS_F_VLEK_EN) != 0;
	r = fw_get_id(fw, n.chip_id, sizeof(n.chip_id), &n.chip_id_len, &fs);
	if (r < 0) {
		snprintf(err, err_size, "GET_ID2 failed: %s (firmware status 0x%x)",
			 snp_strerror(r), fs);
		return r;
	}
	if (fw_product(fw, &n.product) < 0)
		n.product = pf->product;
	*pf = n;
	return 0;
}

static int read_platform(struct broker *b)
{
	char err[256];
	int r = platform_read(b->fw, &b->pf, err, sizeof(err));

	if (r < 0)
		return log_error_errno(r, "%s", err);
	b->committed_r = fw_committed_tcb(b->fw, &b->committed_tcb);
	return 0;
}

static int cpuid_product(enum snp_product *ret)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];
	int family = -1, model = -1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f) && (family < 0 || model < 0)) {
		if (sscanf(line, "cpu family : %d", &family) == 1 ||
		    sscanf(line, "cpu family\t: %d", &family) == 1)
			continue;
		if (sscanf(line, "model\t: %d", &model) == 1)
			continue;
	}
	fclose(f);
	if (family < 0 || model < 0)
		return -ENOENT;
	return snp_product_from_cpuid((uint8_t)family, (uint8_t)model, ret);
}

static const uint8_t empty_table[CERTTABLE_ENTRY_SIZE];

/* Start-up only (nothing admitted yet): the first chain, and the VMM file to match. */
static void load_chain(struct broker *b)
{
	struct store_chain *c = NULL;
	char err[600] = "";
	int r;

	if (!b->m->conf.cert_dir[0]) {
		if (b->kdsc)
			log_info("Certificates come from KDS (%s) through the cache in %s",
				 b->m->conf.kds_url, b->m->conf.cache_dir);
		else
			log_warning("No certificate source configured ([certs] cert_dir or "
				    "kds_url): extended requests get an empty certificate table");
	} else {
		r = store_chain_from_dir(b->m->conf.cert_dir, b->sim_ark, &b->pf, time(NULL), &c,
					 err, sizeof(err));
		if (r < 0) {
			log_error("Not serving certificates: %s", err);
		} else {
			store_chain_free(b->chain);
			b->chain = c;
			b->chain_since = time(NULL);
			log_info("Serving the %s %s chain from %s (%u-page table%s%s)",
				 snp_product_name(c->product), c->vlek ? "VLEK" : "VCEK", c->source,
				 c->table_pages, c->has_crl ? ", with CRL" : "",
				 c->sim_root ? ", simulator root: NOT an AMD root" : "");
		}
	}
	if (b->vmm) {
		r = vmmfile_replace(b->vmm, b->chain ? b->chain->table : empty_table,
				    b->chain ? b->chain->table_len : sizeof(empty_table));
		if (r < 0) {
			b->rstats.vmm_file_errors++;
			log_error_errno(r, "Cannot write the VMM certificate file %s",
					b->m->conf.vmm_certs_file);
		} else {
			b->rstats.vmm_file_writes++;
		}
	}
}

/* --- rotation --- */

static void rot_arm_expiry(struct broker *b);
static void rot_start_internal(struct broker *b, const char *why,
			       const struct store_platform *expect);

static void rot_free(struct broker_rotation *rot)
{
	if (!rot)
		return;
	store_chain_free(rot->prepared);
	store_chain_free(rot->new_chain);
	free(rot->cert_dir);
	free(rot->fetch_chain);
	free(rot->fetch_leaf);
	free(rot);
}

static const char *op_name(enum broker_fw_op op)
{
	switch (op) {
	case BROKER_OP_SET_CONFIG:
		return "SNP_SET_CONFIG";
	case BROKER_OP_COMMIT:
		return "SNP_COMMIT";
	case BROKER_OP_VLEK_LOAD:
		return "SNP_VLEK_LOAD";
	default:
		return "none";
	}
}

/* Worker thread: everything between taking and releasing the exclusive OFD lock. Touches only
 * the job, the firmware backend (only ever used from this thread after start) and read-only
 * certificates. */
static void rot_run(struct worker_job *j)
{
	struct broker_rotation *rot = container_of(j, struct broker_rotation, job);
	char perr[256] = "";
	const uint8_t *table;
	size_t table_len;
	int r;

	rot->pf_new = rot->pf_old;
	if (rot->vmm) {
		r = vmmfile_lock_timeout(rot->vmm, BROKER_VMM_LOCK_MSEC);
		if (r < 0) {
			rot->r = r;
			snprintf(rot->err, sizeof(rot->err),
				 "cannot take the exclusive lock on the VMM certificate file: %s",
				 r == -ETIMEDOUT ? "a reader (VMM) held it too long"
						 : snp_strerror(r));
			return; /* nothing changed */
		}
	}
	switch (rot->op) {
	case BROKER_OP_SET_CONFIG:
		r = fw_set_config(rot->fw, rot->tcb, rot->config_flags, &rot->fw_status);
		break;
	case BROKER_OP_COMMIT:
		r = fw_commit(rot->fw, &rot->fw_status);
		break;
	case BROKER_OP_VLEK_LOAD:
		r = fw_vlek_load(rot->fw, rot->hashstick, &rot->fw_status);
		break;
	default:
		r = 0;
		break;
	}
	if (r < 0) {
		rot->r = r;
		snprintf(rot->err, sizeof(rot->err), "%s failed: %s (firmware status 0x%x)",
			 op_name(rot->op), snp_strerror(r), rot->fw_status);
	}
	/* Whatever the firmware answered, serve what the platform now says. */
	if (platform_read(rot->fw, &rot->pf_new, perr, sizeof(perr)) < 0) {
		/* If the change went through, the platform is what we asked for. */
		rot->pf_new = rot->r == 0 ? rot->pf_expect : rot->pf_old;
		if (rot->r == 0) {
			rot->r = -EIO;
			snprintf(rot->err, sizeof(rot->err), "%s", perr);
		}
	}
	rot->committed_r = fw_committed_tcb(rot->fw, &rot->committed);

	if (store_chain_matches(rot->prepared, &rot->pf_new)) {
		rot->outcome = BROKER_ROT_NEW;
		rot->new_chain = TAKE_PTR(rot->prepared);
	} else if (rot->cert_dir[0] &&
		   store_chain_from_dir(rot->cert_dir, rot->extra_ark, &rot->pf_new, time(NULL),
					&rot->new_chain, rot->chain_err,
					sizeof(rot->chain_err)) == 0) {
		rot->outcome = BROKER_ROT_NEW;
	} else if (store_chain_matches(rot->old_chain, &rot->pf_new)) {
		rot->outcome = BROKER_ROT_KEEP;
	} else {
		rot->outcome =
			rot->old_chain || rot->cert_dir[0] ? BROKER_ROT_NONE : BROKER_ROT_KEEP;
	}

	if (rot->vmm) {
		if (rot->outcome == BROKER_ROT_NEW) {
			table = rot->new_chain->table;
			table_len = rot->new_chain->table_len;
		} else if (rot->outcome == BROKER_ROT_KEEP && rot->old_chain) {
			table = rot->old_chain->table;
			table_len = rot->old_chain->table_len;
		} else {
			table = empty_table;
			table_len = sizeof(empty_table);
		}
		rot->vmm_r = vmmfile_write_locked(rot->vmm, table, table_len);
		rot->vmm_written = rot->vmm_r == 0;
		if (rot->vmm_r < 0) {
			/* A blob that may no longer match must not stay readable as if current:
			 * try the empty table (VMM hands out no certificates) before unlocking. */
			(void)vmmfile_write_locked(rot->vmm, empty_table, sizeof(empty_table));
		}
		(void)vmmfile_unlock(rot->vmm);
	}
}

/* The first chain decision (a chain, or running without one) lets the daemon report READY. */
static void release_ready(struct broker *b, const char *why)
{
	if (!b->ready_held)
		return;
	b->ready_held = false;
	ev_timer_stop(b->m->loop, &b->ready_timer);
	log_info("Start-up chain decision: %s", why);
	manager_ready_release(b->m);
}

static void on_ready_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, ready_timer);

	(void)loop;
	(void)revents;
	release_ready(b, "no chain yet: serving without certificates until one arrives");
}

static void rot_finish(struct broker *b, struct broker_rotation *rot, int r, const char *msg)
{
	broker_op_done_fn cb = rot->cb;
	void *userdata = rot->userdata;
	struct broker_rotation_stats *st = &b->rstats;

	ev_timer_stop(b->m->loop, &b->rot_timeout);
	if (b->rot == rot)
		b->rot = NULL;
	if (!b->draining && sched_paused(b->sched))
		(void)sched_resume(b->sched, now_usec());
	st->in_progress = false;
	st->last_time = time(NULL);
	st->last_result = r;
	snprintf(st->last_message, sizeof(st->last_message), "%.250s", msg);
	if (r < 0) {
		st->failed++;
		log_error("Rotation (%s) failed: %s", rot->why, msg);
	} else {
		st->succeeded++;
		log_notice("Rotation (%s): %s", rot->why, msg);
	}
	if (b->ready_held)
		release_ready(b, b->chain ? "chain loaded" : "running without a chain for now");
	else
		manager_notify_status(b->m, "serving: %s", msg);
	rot_free(rot);
	broker_arm(b);
	if (cb)
		cb(userdata, r, msg);
	if (b->rotate_again && !b->rot && !b->draining) {
		char why[128];
		snprintf(why, sizeof(why), "%s", b->again_why);
		b->rotate_again = false;
		rot_start_internal(b, why, NULL);
	}
}

/* Loop thread: swap what the worker decided, resume admission. */
static void rot_done(struct worker_job *j)
{
	struct broker_rotation *rot = container_of(j, struct broker_rotation, job);
	struct broker *b = rot->b;
	char msg[1400], t[TCB_FORMAT_MAX];
	int r = rot->r;

	if (rot->vmm) {
		if (rot->vmm_written)
			b->rstats.vmm_file_writes++;
		else if (rot->vmm_r < 0)
			b->rstats.vmm_file_errors++;
	}
	if (rot->r < 0 && rot->outcome == BROKER_ROT_KEEP && !rot->new_chain &&
	    rot->pf_new.reported_tcb == b->pf.reported_tcb &&
	    rot->pf_new.vlek_loaded == b->pf.vlek_loaded) {
		/* Nothing changed (lock or firmware refused): the old chain stays. */
		snprintf(msg, sizeof(msg), "%s; still serving the previous chain", rot->err);
		rot_finish(b, rot, r, msg);
		return;
	}
	b->pf = rot->pf_new;
	b->committed_r = rot->committed_r;
	b->committed_tcb = rot->committed;
	tcb_format(b->pf.reported_tcb, b->pf.product, t, sizeof(t));
	switch (rot->outcome) {
	case BROKER_ROT_NEW:
		store_chain_free(b->chain);
		b->chain = TAKE_PTR(rot->new_chain);
		b->chain_since = time(NULL);
		snprintf(msg, sizeof(msg), "serving the %s chain for reported TCB %s from %s%s%s",
			 b->chain->vlek ? "VLEK" : "VCEK", t, b->chain->source,
			 b->chain->has_crl ? " (with CRL)" : "",
			 b->chain->sim_root ? " (simulator root, not AMD)" : "");
		break;
	case BROKER_ROT_KEEP:
		snprintf(msg, sizeof(msg), "%s for reported TCB %s (%s)",
			 b->chain ? "kept the previous chain" : "no certificate source; no chain",
			 t, rot->chain_err[0] ? rot->chain_err : "no newer chain in the source");
		break;
	case BROKER_ROT_NONE:
		store_chain_free(b->chain);
		b->chain = NULL;
		if (r == 0)
			r = -ENOKEY;
		snprintf(msg, sizeof(msg),
			 "NOT serving certificates: no chain matches reported TCB %s%s (%s)", t,
			 b->pf.vlek_loaded ? " with the VLEK" : "",
			 rot->chain_err[0] ? rot->chain_err : "no source");
		break;
	}
	if (rot->r < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, "; %s", rot->err);
	}
	if (rot->vmm && rot->vmm_r < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l,
			 "; VMM certificate file not written (%s), left empty",
			 snp_strerror(rot->vmm_r));
		if (r == 0)
			r = rot->vmm_r;
	}
	rot_arm_expiry(b);
	rot_finish(b, rot, r, msg);
}

static void rot_submit(struct broker *b)
{
	struct broker_rotation *rot = b->rot;

	if (!rot || rot->submitted)
		return;
	ev_timer_stop(b->m->loop, &b->rot_timeout);
	rot->submitted = true;
	rot->old_chain = b->chain;
	worker_submit(b->worker, &rot->job);
}

static void on_rot_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, rot_timeout);
	char msg[160];

	(void)loop;
	(void)revents;
	if (!b->rot || b->rot->submitted)
		return;
	snprintf(msg, sizeof(msg),
		 "%u requests still in flight after %.0f s; rotation abandoned, still serving the "
		 "previous chain",
		 sched_inflight(b->sched), BROKER_ROTATE_DRAIN_SEC);
	rot_finish(b, b->rot, -ETIMEDOUT, msg);
}

/* The platform view expected after op. */
static struct store_platform expected_platform(const struct broker *b, enum broker_fw_op op,
					       uint64_t tcb)
{
	struct store_platform pf = b->pf;

	switch (op) {
	case BROKER_OP_SET_CONFIG:
		if (tcb != pf.reported_tcb)
			pf.vlek_loaded = false; /* the firmware drops the VLEK with the TCB */
		pf.reported_tcb = tcb;
		break;
	case BROKER_OP_COMMIT:
		if (pf.current_tcb != pf.reported_tcb)
			pf.vlek_loaded = false;
		pf.reported_tcb = pf.current_tcb;
		break;
	case BROKER_OP_VLEK_LOAD:
		pf.vlek_loaded = true;
		break;
	default:
		break;
	}
	return pf;
}

static void rot_pause(struct broker *b)
{
	int n;

	log_info("Rotation (%s): pausing admission", b->rot->why);
	n = sched_pause(b->sched, now_usec());
	if (n <= 0) {
		rot_submit(b);
	} else {
		ev_timer_set(&b->rot_timeout, BROKER_ROTATE_DRAIN_SEC, 0.);
		ev_timer_start(b->m->loop, &b->rot_timeout);
	}
}

static void refusal_text(const struct broker_rotation *rot, const char *cerr, char *err,
			 size_t err_size)
{
	char t[TCB_FORMAT_MAX];

	if (rot->op == BROKER_OP_NONE)
		snprintf(err, err_size,
			 "cannot build the new chain, still serving the previous one: %s", cerr);
	else
		snprintf(err, err_size, "refusing %s: cannot obtain the %s for reported TCB %s: %s",
			 op_name(rot->op), rot->pf_expect.vlek_loaded ? "VLEK" : "VCEK",
			 tcb_format(rot->pf_expect.reported_tcb, rot->pf_expect.product, t,
				    sizeof(t)),
			 cerr);
}

/* Both KDS answers are in (or failed): build the chain, then pause, or give up. */
static void rot_fetched(struct broker_rotation *rot)
{
	struct broker *b = rot->b;
	_cleanup_(freep) uint8_t *chain = TAKE_PTR(rot->fetch_chain),
				 *leaf = TAKE_PTR(rot->fetch_leaf);
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	char cerr[600], msg[1000];
	int r = rot->fetch_r;

	rot->fetching = false;
	if (b->draining) {
		rot_finish(b, rot, -ECANCELED, "the daemon is stopping");
		return;
	}
	snprintf(cerr, sizeof(cerr), "%s", rot->fetch_err);
	if (r == 0) {
		r = certs_parse_pem_chain(chain, rot->fetch_chain_len, &sk);
		if (r == 0 && sk_X509_num(sk) != 2)
			r = -EBADMSG;
		if (r == 0)
			r = certs_parse(leaf, rot->fetch_leaf_len, &x);
		if (r < 0)
			snprintf(cerr, sizeof(cerr), "KDS answer does not parse: %s",
				 snp_strerror(r));
	}
	if (r == 0) {
		X509 *ask = sk_X509_value(sk, 0), *ark = sk_X509_value(sk, 1);
		r = store_chain_build(x, ask, ark, b->sim_ark, &rot->pf_expect, rot->fetch_source,
				      time(NULL), &rot->prepared, cerr, sizeof(cerr));
		if (r == 0) {
			x = NULL;
			(void)sk_X509_pop(sk);
			(void)sk_X509_pop(sk);
		}
	}
	X509_free(x);
	if (sk)
		sk_X509_pop_free(sk, X509_free);
	if (r < 0 && !rot->must_run) {
		refusal_text(rot, cerr, msg, sizeof(msg));
		rot_finish(b, rot, -ENOKEY, msg); /* the cause is in msg */
		return;
	}
	if (r < 0)
		snprintf(rot->chain_err, sizeof(rot->chain_err), "%s", cerr);
	rot_pause(b);
}

static void on_fetch(struct broker_rotation *rot, int r, const uint8_t *body, size_t len,
		     const struct kdsc_meta *meta, bool is_leaf)
{
	if (r == 0) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			r = -ENOMEM;
		else {
			memcpy(copy, body, len);
			if (is_leaf) {
				rot->fetch_leaf = copy;
				rot->fetch_leaf_len = len;
				snprintf(rot->fetch_source, sizeof(rot->fetch_source), "%s",
					 rot->b->import_next			   ? "import"
					 : meta && meta->source == KDSC_SOURCE_CACHE ? "cache"
										     : "kds");
				rot->b->import_next = false;
			} else {
				rot->fetch_chain = copy;
				rot->fetch_chain_len = len;
			}
		}
	}
	if (r < 0 && rot->fetch_r == 0) {
		char why[96] = "";
		uint64_t now = now_usec();

		if (r == -EAGAIN && meta && meta->retry_at_usec > now)
			/* Not asked: KDS manners (pacing or backoff after failures). */
			snprintf(why, sizeof(why), " (KDS not asked again yet: next attempt in %.1fs)",
				 (double)(meta->retry_at_usec - now) / 1e6);
		else if (r == -ENOENT)
			snprintf(why, sizeof(why), " (404: masked chip id or wrong product?)");
		rot->fetch_r = r;
		snprintf(rot->fetch_err, sizeof(rot->fetch_err), "%s from KDS: %s%s",
			 is_leaf ? "VCEK" : "certificate chain", snp_strerror(r), why);
	}
	if (--rot->fetch_pending == 0)
		rot_fetched(rot);
}

static void on_fetch_chain(void *userdata, int r, const uint8_t *body, size_t len,
			   const struct kdsc_meta *meta)
{
	on_fetch(userdata, r, body, len, meta, false);
}

static void on_fetch_leaf(void *userdata, int r, const uint8_t *body, size_t len,
			  const struct kdsc_meta *meta)
{
	on_fetch(userdata, r, body, len, meta, true);
}

/* Starts the two KDS fetches (cache first, inside kdsc). 0 or -errno with cerr. */
static int rot_fetch(struct broker *b, struct broker_rotation *rot, char *cerr, size_t size)
{
	struct kds_request chain = {.kind = KDS_VCEK_CHAIN, .product = rot->pf_expect.product};
	struct kds_request leaf = {.kind = KDS_VCEK,
				   .product = rot->pf_expect.product,
				   .tcb = rot->pf_expect.reported_tcb};
	int r;

	if (rot->pf_expect.vlek_loaded) {
		snprintf(cerr, size,
			 "KDS does not hand out VLEKs: put vlek-<TCB>.der and "
			 "cert_chain_vlek.pem in [certs] cert_dir");
		return -ENOKEY;
	}
	leaf.hwid_len = snp_product_hwid_len(leaf.product);
	if (!leaf.hwid_len || leaf.hwid_len > rot->pf_expect.chip_id_len) {
		snprintf(cerr, size, "no chip id of the right length for %s",
			 snp_product_name(leaf.product));
		return -ENOKEY;
	}
	memcpy(leaf.hwid, rot->pf_expect.chip_id, leaf.hwid_len);
	rot->fetching = true;
	rot->fetch_pending = 2;
	r = kdsc_fetch(b->kdsc, &chain, 0, on_fetch_chain, rot);
	if (r < 0) {
		rot->fetching = false;
		snprintf(cerr, size, "cannot start the KDS fetch: %s", snp_strerror(r));
		return r;
	}
	r = kdsc_fetch(b->kdsc, &leaf, 0, on_fetch_leaf, rot);
	if (r < 0) {
		/* The chain fetch completes later and finds the failure recorded. */
		rot->fetch_r = r;
		snprintf(rot->fetch_err, sizeof(rot->fetch_err), "cannot start the KDS fetch: %s",
			 snp_strerror(r));
		rot->fetch_pending--;
	}
	return 0;
}

static int rot_start(struct broker *b, const char *why, enum broker_fw_op op, uint64_t tcb,
		     const uint8_t *hashstick, const struct store_platform *expect, bool must_run,
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size)
{
	struct broker_rotation *rot;
	char cerr[600] = "";
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (b->rot) {
		snprintf(err, err_size, "a rotation (%s) is under way", b->rot->why);
		return -EBUSY;
	}
	rot = calloc(1, sizeof(*rot));
	if (!rot)
		return -ENOMEM;
	rot->cert_dir = strdup(b->m->conf.cert_dir);
	if (!rot->cert_dir) {
		free(rot);
		return -ENOMEM;
	}
	rot->b = b;
	rot->job.run = rot_run;
	rot->job.done = rot_done;
	snprintf(rot->why, sizeof(rot->why), "%s", why);
	rot->op = op;
	rot->tcb = tcb;
	rot->config_flags =
		b->pf.status_flags & (SNP_CONFIG_F_MASK_CHIP_ID | SNP_CONFIG_F_MASK_CHIP_KEY);
	if (hashstick)
		memcpy(rot->hashstick, hashstick, sizeof(rot->hashstick));
	rot->must_run = must_run;
	rot->fw = b->fw;
	rot->vmm = b->vmm;
	rot->extra_ark = b->sim_ark;
	rot->pf_old = b->pf;
	rot->cb = cb;
	rot->userdata = userdata;
	rot->pf_expect = expect ? *expect : expected_platform(b, op, tcb);

	/* The new chain first, before any guest waits for it (design §6): the certificate
	 * directory if configured, else KDS through the cache (asynchronous). */
	if (rot->cert_dir[0]) {
		r = store_chain_from_dir(rot->cert_dir, b->sim_ark, &rot->pf_expect, time(NULL),
					 &rot->prepared, cerr, sizeof(cerr));
	} else if (b->kdsc) {
		r = rot_fetch(b, rot, cerr, sizeof(cerr));
		if (r == 0) {
			b->rot = rot;
			b->rstats.started++;
			b->rstats.in_progress = true;
			log_info("Rotation (%s): fetching the chain for the new platform state",
				 why);
			return 0;
		}
	} else {
		snprintf(cerr, sizeof(cerr),
			 "no certificate source configured ([certs] cert_dir or kds_url)");
		r = -ENOKEY;
	}
	if (r < 0 && !must_run && (op != BROKER_OP_NONE || rot->cert_dir[0] || b->kdsc)) {
		refusal_text(rot, cerr, err, err_size);
		rot_free(rot);
		b->rstats.failed++;
		return r == -ENOENT ? -ENOKEY : r;
	}
	snprintf(rot->chain_err, sizeof(rot->chain_err), "%s", cerr);

	b->rot = rot;
	b->rstats.started++;
	b->rstats.in_progress = true;
	rot_pause(b);
	return 0;
}

static void rot_start_internal(struct broker *b, const char *why,
			       const struct store_platform *expect)
{
	char err[700];
	int r;

	if (b->rot) {
		/* One more after this one: its outcome may predate the trigger. */
		b->rotate_again = true;
		snprintf(b->again_why, sizeof(b->again_why), "%.120s", why);
		return;
	}
	r = rot_start(b, why, BROKER_OP_NONE, 0, NULL, expect, expect != NULL, NULL, NULL, err,
		      sizeof(err));
	if (r < 0) {
		b->rstats.last_time = time(NULL);
		b->rstats.last_result = r;
		snprintf(b->rstats.last_message, sizeof(b->rstats.last_message), "%.250s", err);
		log_error("Rotation (%s) refused: %s", why, err);
		release_ready(b, "no chain could be obtained: serving without certificates");
	}
}

/* --- TCB polling and expiry --- */

static void poll_run(struct worker_job *j)
{
	struct broker_poll *p = container_of(j, struct broker_poll, job);
	char err[256];

	p->r = platform_read(p->fw, &p->pf, err, sizeof(err));
	p->committed_r = fw_committed_tcb(p->fw, &p->committed);
}

static void poll_done(struct worker_job *j)
{
	struct broker_poll *p = container_of(j, struct broker_poll, job);
	struct broker *b = p->b;
	char t0[TCB_FORMAT_MAX], t1[TCB_FORMAT_MAX], why[160];

	p->busy = false;
	if (p->r < 0 || b->rot || b->draining)
		return; /* a rotation reads the platform itself */
	b->pf.current_tcb = p->pf.current_tcb;
	b->committed_r = p->committed_r;
	b->committed_tcb = p->committed;
	if (p->pf.reported_tcb == b->pf.reported_tcb && p->pf.vlek_loaded == b->pf.vlek_loaded &&
	    p->pf.chip_id_len == b->pf.chip_id_len &&
	    memcmp(p->pf.chip_id, b->pf.chip_id, p->pf.chip_id_len) == 0)
		return;
	b->rstats.tcb_changes_seen++;
	log_warning("Reported TCB changed outside the daemon: %s%s -> %s%s; rotating",
		    tcb_format(b->pf.reported_tcb, b->pf.product, t0, sizeof(t0)),
		    b->pf.vlek_loaded ? " (VLEK)" : "",
		    tcb_format(p->pf.reported_tcb, p->pf.product, t1, sizeof(t1)),
		    p->pf.vlek_loaded ? " (VLEK)" : "");
	snprintf(why, sizeof(why), "platform status shows a new reported TCB");
	rot_start_internal(b, why, &p->pf);
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, poll_timer);

	(void)loop;
	(void)revents;
	if (b->poll.busy || b->rot || b->draining)
		return;
	b->poll.busy = true;
	b->poll.pf = b->pf;
	worker_submit(b->worker, &b->poll.job);
}

static void poll_arm(struct broker *b)
{
	double iv = (double)b->m->conf.tcb_poll_interval_usec / 1e6;

	ev_timer_stop(b->m->loop, &b->poll_timer);
	if (iv <= 0.)
		return;
	ev_timer_set(&b->poll_timer, iv, iv);
	ev_timer_start(b->m->loop, &b->poll_timer);
}

static void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, expiry);

	(void)loop;
	(void)revents;
	rot_start_internal(b, "the chain or CRL is close to its end of validity", NULL);
	rot_arm_expiry(b); /* retry later if nothing newer came */
}

static void rot_arm_expiry(struct broker *b)
{
	time_t now = time(NULL), deadline, at;

	ev_timer_stop(b->m->loop, &b->expiry);
	if (!b->chain && b->kdsc) {
		/* No chain yet: ask again (kdsc paces the requests). */
		ev_timer_set(&b->expiry, BROKER_KDS_RETRY_SEC, 0.);
		ev_timer_start(b->m->loop, &b->expiry);
		return;
	}
	if (!b->chain)
		return;
	deadline = b->chain->not_after;
	if (b->chain->has_crl && (!deadline || b->chain->crl_next_update < deadline))
		deadline = b->chain->crl_next_update;
	if (!deadline)
		return;
	at = deadline - BROKER_EXPIRY_MARGIN_SEC;
	if (at < now + BROKER_EXPIRY_RETRY_SEC)
		at = now + BROKER_EXPIRY_RETRY_SEC;
	ev_timer_set(&b->expiry, (double)(at - now), 0.);
	ev_timer_start(b->m->loop, &b->expiry);
}

static int load_quotas(struct broker *b)
{
	struct quotafile_entry *e = NULL;
	size_t n = 0;
	char err[512] = "";
	int r;

	r = quotafile_load(b->m->conf.state_dir, &e, &n, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Cannot read stored quotas: %s", err);
	for (size_t i = 0; i < n; i++) {
		struct sched_quota *q = malloc(sizeof(*q));
		if (!q || u64map_put(&b->quotas, e[i].vm_id, q) < 0) {
			free(q);
			continue;
		}
		*q = e[i].q;
	}
	free(e);
	if (n)
		log_info("Restored %zu per-VM quotas from %s", n, b->m->conf.state_dir);
	return 0;
}

static int save_quotas(struct broker *b)
{
	struct quotafile_entry *e;
	size_t n = 0, it = 0;
	uint64_t id;
	void *v;
	int r;

	e = calloc(u64map_size(&b->quotas) + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	while (u64map_next(&b->quotas, &it, &id, &v)) {
		e[n].vm_id = id;
		e[n].q = *(struct sched_quota *)v;
		n++;
	}
	r = quotafile_save(b->m->conf.state_dir, e, n);
	free(e);
	if (r < 0)
		log_error_errno(r, "Cannot store quotas in %s", b->m->conf.state_dir);
	return r;
}

/* --- public accessors --- */

const struct broker_stats *broker_get_stats(const struct broker *b)
{
	return &b->stats;
}

const struct store_chain *broker_chain(const struct broker *b)
{
	return b->chain;
}

const struct store_platform *broker_platform(const struct broker *b)
{
	return &b->pf;
}

bool broker_registered(const struct broker *b)
{
	return nlsock_registered(b->nl);
}

unsigned broker_inflight(const struct broker *b)
{
	return sched_inflight(b->sched);
}

unsigned broker_queued(const struct broker *b)
{
	return sched_queued(b->sched);
}

size_t broker_vm_count(const struct broker *b)
{
	return u64map_size(&b->vms);
}

bool broker_paused(const struct broker *b)
{
	return sched_paused(b->sched);
}

const char *broker_backend_name(const struct broker *b)
{
	return fw_name(b->fw);
}

bool broker_sim_root_trusted(const struct broker *b)
{
	return b->sim_ark != NULL;
}

int broker_vm_info(const struct broker *b, uint64_t vm_id, struct broker_vm_info *ret)
{
	struct broker_vm *vm = u64map_get(&b->vms, vm_id);
	int r;

	if (!vm)
		return -ENOENT;
	*ret = vm->info;
	r = sched_vm_stats(b->sched, vm_id, now_usec(), &ret->sched);
	if (r < 0)
		memset(&ret->sched, 0, sizeof(ret->sched));
	return 0;
}

size_t broker_vm_foreach(const struct broker *b,
			 void (*fn)(void *userdata, const struct broker_vm_info *info),
			 void *userdata)
{
	size_t it = 0, n = 0;
	uint64_t id;
	void *v;

	while (u64map_next(&b->vms, &it, &id, &v)) {
		struct broker_vm_info info;
		if (broker_vm_info(b, id, &info) == 0) {
			fn(userdata, &info);
			n++;
		}
	}
	return n;
}

void broker_default_quota(const struct broker *b, struct sched_quota *ret)
{
	ret->rate_milli = b->m->conf.quota_rate_milli;
	ret->burst = b->m->conf.quota_burst;
	ret->weight = b->m->conf.quota_weight;
}

bool broker_get_quota(const struct broker *b, uint64_t vm_id, struct sched_quota *ret)
{
	const struct sched_quota *q = u64map_get(&b->quotas, vm_id);

	if (q) {
		*ret = *q;
		return true;
	}
	broker_default_quota(b, ret);
	return false;
}

size_t broker_quota_foreach(const struct broker *b,
			    void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			    void *userdata)
{
	size_t it = 0, n = 0;
	uint64_t id;
	void *v;

	while (u64map_next(&b->quotas, &it, &id, &v)) {
		fn(userdata, id, v);
		n++;
	}
	return n;
}

int broker_set_quota(struct broker *b, uint64_t vm_id, const struct sched_quota *q,
		     const char **reason)
{
	struct sched_config sc;
	struct sched_quota *old;
	int r;

	if (q) {
		if (sched_config_from(&b->m->conf, &sc) < 0)
			return -EINVAL;
		r = sched_quota_check(&sc, q, reason);
		if (r < 0)
			return r;
	}
	if (u64map_get(&b->vms, vm_id)) {
		r = sched_vm_set_quota(b->sched, vm_id, q, now_usec(), reason);
		if (r < 0)
			return r;
	}
	old = u64map_remove(&b->quotas, vm_id);
	if (q) {
		struct sched_quota *n = old ? old : malloc(sizeof(*n));
		if (!n)
			return -ENOMEM;
		*n = *q;
		old = NULL;
		r = u64map_put(&b->quotas, vm_id, n);
		if (r < 0) {
			free(n);
			return r;
		}
	}
	free(old);
	return save_quotas(b);
}

/* --- rotation API (control socket) --- */

int broker_rotate(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		  size_t err_size)
{
	return rot_start(b, "snpctl cert rotate", BROKER_OP_NONE, 0, NULL, NULL, false, cb,
			 userdata, err, err_size);
}

int broker_tcb_set(struct broker *b, uint64_t reported_tcb, broker_op_done_fn cb, void *userdata,
		   char *err, size_t err_size)
{
	char a[TCB_FORMAT_MAX], c[TCB_FORMAT_MAX];

	if (!tcb_le(reported_tcb, b->pf.current_tcb, b->pf.product)) {
		snprintf(err, err_size, "reported TCB %s is newer than the current TCB %s",
			 tcb_format(reported_tcb, b->pf.product, a, sizeof(a)),
			 tcb_format(b->pf.current_tcb, b->pf.product, c, sizeof(c)));
		return -ERANGE;
	}
	return rot_start(b, "snpctl tcb set", BROKER_OP_SET_CONFIG, reported_tcb, NULL, NULL, false,
			 cb, userdata, err, err_size);
}

int broker_tcb_commit(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		      size_t err_size)
{
	/* COMMIT with reported == current still moves the committed TCB (anti-rollback); the
	 * chain stays the same but the operation runs under the same protocol. */
	return rot_start(b, "snpctl tcb commit", BROKER_OP_COMMIT, 0, NULL, NULL, false, cb,
			 userdata, err, err_size);
}

int broker_vlek_load(struct broker *b, const uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE],
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size)
{
	if (!hashstick) {
		snprintf(err, err_size, "no hashstick");
		return -EINVAL;
	}
	return rot_start(b, "snpctl vlek load", BROKER_OP_VLEK_LOAD, 0, hashstick, NULL, false, cb,
			 userdata, err, err_size);
}

void broker_op_forget(struct broker *b, void *userdata)
{
	if (b && b->fetch && b->fetch->userdata == userdata) {
		b->fetch->cb = NULL;
		b->fetch->userdata = NULL;
	}
	if (b && b->rot && b->rot->userdata == userdata) {
		b->rot->cb = NULL;
		b->rot->userdata = NULL;
	}
}

const struct nlsock_stats *broker_nlsock_stats(const struct broker *b)
{
	return b->nl ? nlsock_get_stats(b->nl) : NULL;
}

int broker_committed_tcb(const struct broker *b, uint64_t *ret)
{
	if (b->committed_r < 0)
		return b->committed_r;
	*ret = b->committed_tcb;
	return 0;
}

struct kdsc *broker_kdsc(const struct broker *b)
{
	return b->kdsc;
}

time_t broker_chain_since(const struct broker *b)
{
	return b->chain ? b->chain_since : 0;
}

time_t broker_next_refresh(const struct broker *b)
{
	if (!ev_is_active(&b->expiry))
		return 0;
	return time(NULL) + (time_t)ev_timer_remaining(b->m->loop, (ev_timer *)&b->expiry);
}

/* The KDS keys of the platform's VCEK chain; -EOPNOTSUPP with err when KDS is not the source. */
static int kds_keys(const struct broker *b, struct kds_request *chain, struct kds_request *leaf,
		    const char *what, char *err, size_t err_size)
{
	if (b->m->conf.cert_dir[0]) {
		snprintf(err, err_size,
			 "KDS is not the certificate source: the chain comes from [certs] cert_dir "
			 "%s (%s: put the files there and run snpctl cert rotate)",
			 b->m->conf.cert_dir, what);
		return -EOPNOTSUPP;
	}
	if (!b->kdsc) {
		snprintf(err, err_size,
			 "no KDS cache is configured ([certs] kds_url and cache_dir): %s needs it",
			 what);
		return -EOPNOTSUPP;
	}
	if (b->pf.vlek_loaded) {
		snprintf(err, err_size,
			 "a VLEK is loaded and KDS does not hand out VLEKs: VLEK chains are served "
			 "from [certs] cert_dir only");
		return -EOPNOTSUPP;
	}
	*chain = (struct kds_request){ .kind = KDS_VCEK_CHAIN, .product = b->pf.product };
	*leaf = (struct kds_request){ .kind = KDS_VCEK,
				      .product = b->pf.product,
				      .tcb = b->pf.reported_tcb };
	leaf->hwid_len = snp_product_hwid_len(leaf->product);
	if (!leaf->hwid_len || leaf->hwid_len > b->pf.chip_id_len) {
		snprintf(err, err_size, "no chip id of the right length for %s",
			 snp_product_name(leaf->product));
		return -EOPNOTSUPP;
	}
	memcpy(leaf->hwid, b->pf.chip_id, leaf->hwid_len);
	return 0;
}

/* ASK then ARK as PEM, as KDS serves a cert_chain (malloc'd). */
static int chain_pem(X509 *ask, X509 *ark, uint8_t **ret, size_t *ret_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = -ENOMEM;

	if (!bio)
		return -ENOMEM;
	if (PEM_write_bio_X509(bio, ask) == 1 && PEM_write_bio_X509(bio, ark) == 1) {
		n = BIO_get_mem_data(bio, &data);
		*ret = n > 0 ? malloc((size_t)n) : NULL;
		if (*ret) {
			memcpy(*ret, data, (size_t)n);
			*ret_len = (size_t)n;
			r = 0;
		}
	}
	BIO_free(bio);
	return r;
}

int broker_cert_import(struct broker *b, X509 *leaf, X509 *ask, X509 *ark, broker_op_done_fn cb,
		       void *userdata, char *err, size_t err_size)
{
	struct kds_request qc, ql;
	struct store_chain *c = NULL;
	_cleanup_(freep) uint8_t *pem = NULL;
	_cleanup_(freep) uint8_t *der = NULL;
	size_t pem_len = 0, der_len = 0;
	struct cache_meta meta = { 0 };
	char cerr[600] = "";
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		r = -ESHUTDOWN;
		goto fail;
	}
	if (b->rot) {
		snprintf(err, err_size, "a rotation (%s) is under way", b->rot->why);
		r = -EBUSY;
		goto fail;
	}
	r = kds_keys(b, &qc, &ql, "cert import", err, err_size);
	if (r < 0)
		goto fail;
	r = store_chain_build(leaf, ask, ark, b->sim_ark, &b->pf, "import", time(NULL), &c, cerr,
			      sizeof(cerr));
	if (r < 0) {
		snprintf(err, err_size, "import refused: %s", cerr);
		goto fail;
	}
	/* From here the certificates belong to c. */
	r = chain_pem(c->ask, c->ark, &pem, &pem_len);
	if (r == 0)
		r = certs_to_der(c->leaf, &der, &der_len);
	store_chain_free(c);
	if (r < 0) {
		snprintf(err, err_size, "cannot encode the certificates: %s", snp_strerror(r));
		return r;
	}
	meta.fetched = (uint64_t)time(NULL);
	meta.fresh_until = CACHE_FRESH_FOREVER;
	r = cache_put(b->m->conf.cache_dir, &ql, der, der_len, &meta);
	if (r == 0)
		r = cache_put(b->m->conf.cache_dir, &qc, pem, pem_len, &meta);
	if (r < 0) {
		snprintf(err, err_size, "cannot write the KDS cache in %s: %s",
			 b->m->conf.cache_dir, snp_strerror(r));
		return r;
	}
	log_notice("Imported the %s VCEK chain for TCB 0x%016llx into the KDS cache %s",
		   snp_product_name(b->pf.product), (unsigned long long)b->pf.reported_tcb,
		   b->m->conf.cache_dir);
	b->import_next = true;
	r = rot_start(b, "snpctl cert import", BROKER_OP_NONE, 0, NULL, NULL, false, cb, userdata,
		      err, err_size);
	if (r < 0)
		b->import_next = false;
	return r;
fail:
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
	return r;
}

static void fetch_finish(struct broker_fetch *f)
{
	struct broker *b = f->b;

	if (b->fetch == f)
		b->fetch = NULL;
	if (f->cb)
		f->cb(f->userdata, &f->res);
	fetch_free(f);
}

static void on_fetch_rotated(void *userdata, int r, const char *message)
{
	struct broker_fetch *f = userdata;

	f->res.rotated = true;
	f->res.rotate_r = r;
	snprintf(f->res.message, sizeof(f->res.message), "%s%s",
		 r < 0 ? "the chain changed but the rotation failed: " : "", message);
	fetch_finish(f);
}

/* Whether the fetched bodies are what is served now. */
static bool fetch_same(const struct broker_fetch *f, const struct store_chain *c)
{
	_cleanup_(freep) uint8_t *der = NULL;
	STACK_OF(X509) *sk = NULL;
	size_t der_len = 0;
	bool same = false;

	if (!c || c->vlek || certs_to_der(c->leaf, &der, &der_len) < 0)
		return false;
	if (der_len != f->leaf_len || memcmp(der, f->leaf, der_len) != 0)
		return false;
	if (certs_parse_pem_chain(f->chain, f->chain_len, &sk) < 0)
		return false;
	same = sk_X509_num(sk) == 2 && X509_cmp(sk_X509_value(sk, 0), c->ask) == 0 &&
	       X509_cmp(sk_X509_value(sk, 1), c->ark) == 0;
	sk_X509_pop_free(sk, X509_free);
	return same;
}

static void fetch_all_done(struct broker_fetch *f)
{
	struct broker *b = f->b;
	char err[700] = "";
	int r;

	if (f->res.chain.r < 0 || f->res.leaf.r < 0) {
		snprintf(f->res.message, sizeof(f->res.message),
			 "KDS did not give the chain: %s; the served chain is unchanged",
			 snp_strerror(f->res.leaf.r < 0 ? f->res.leaf.r : f->res.chain.r));
		fetch_finish(f);
		return;
	}
	f->res.changed = !fetch_same(f, b->chain);
	if (!f->res.changed) {
		snprintf(f->res.message, sizeof(f->res.message),
			 "the chain from KDS is the one served; nothing to rotate");
		fetch_finish(f);
		return;
	}
	if (b->draining) {
		snprintf(f->res.message, sizeof(f->res.message), "the daemon is stopping");
		fetch_finish(f);
		return;
	}
	r = rot_start(b, "snpctl cert fetch", BROKER_OP_NONE, 0, NULL, NULL, false,
		      on_fetch_rotated, f, err, sizeof(err));
	if (r < 0) {
		f->res.rotated = true;
		f->res.rotate_r = r;
		snprintf(f->res.message, sizeof(f->res.message),
			 "the chain changed but no rotation could start: %s", err);
		fetch_finish(f);
	}
}

static void on_cert_fetch(struct broker_fetch *f, bool is_leaf, int r, const uint8_t *body,
			  size_t len, const struct kdsc_meta *meta)
{
	struct broker_fetch_key *k = is_leaf ? &f->res.leaf : &f->res.chain;
	struct kdsc_key_state st;
	uint64_t now = manager_now_usec();

	k->r = r;
	if (meta) {
		k->http_status = meta->http_status;
		k->from_kds = meta->source == KDSC_SOURCE_KDS;
		k->stale = meta->stale;
		k->fetch_error = meta->fetch_error;
		k->retry_in_sec = meta->retry_at_usec > now
					  ? (double)(meta->retry_at_usec - now) / 1e6
					  : 0.;
	}
	if (f->b->kdsc) {
		struct kds_request qc, ql;
		char err[8];
		if (kds_keys(f->b, &qc, &ql, "", err, sizeof(err)) == 0 &&
		    kdsc_key_state(f->b->kdsc, is_leaf ? &ql : &qc, &st) == 0)
			k->failures = st.failures;
	}
	if (r == 0) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			k->r = -ENOMEM;
		else {
			memcpy(copy, body, len);
			if (is_leaf) {
				f->leaf = copy;
				f->leaf_len = len;
			} else {
				f->chain = copy;
				f->chain_len = len;
			}
		}
	}
	if (--f->pending == 0)
		fetch_all_done(f);
}

static void on_cert_fetch_chain(void *userdata, int r, const uint8_t *body, size_t len,
				const struct kdsc_meta *meta)
{
	on_cert_fetch(userdata, false, r, body, len, meta);
}

static void on_cert_fetch_leaf(void *userdata, int r, const uint8_t *body, size_t len,
			       const struct kdsc_meta *meta)
{
	on_cert_fetch(userdata, true, r, body, len, meta);
}

int broker_cert_fetch(struct broker *b, broker_fetch_done_fn cb, void *userdata, char *err,
		      size_t err_size)
{
	struct kds_request qc, ql;
	struct broker_fetch *f;
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (b->fetch || b->rot) {
		snprintf(err, err_size, "a %s is under way",
			 b->fetch ? "certificate fetch" : "rotation");
		return -EBUSY;
	}
	r = kds_keys(b, &qc, &ql, "cert fetch", err, err_size);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->b = b;
	f->cb = cb;
	f->userdata = userdata;
	f->pending = 2;
	r = kdsc_fetch(b->kdsc, &qc, KDSC_FETCH_REVALIDATE, on_cert_fetch_chain, f);
	if (r < 0) {
		free(f);
		snprintf(err, err_size, "cannot start the KDS fetch: %s", snp_strerror(r));
		return r;
	}
	b->fetch = f;
	r = kdsc_fetch(b->kdsc, &ql, KDSC_FETCH_REVALIDATE, on_cert_fetch_leaf, f);
	if (r < 0) {
		/* The chain's completion finds the leaf failed and finishes. */
		f->res.leaf.r = r;
		f->pending--;
	}
	return 0;
}

const struct broker_rotation_stats *broker_get_rotation_stats(const struct broker *b)
{
	return &b->rstats;
}

/* --- module --- */

static int broker_start(struct manager *m)
{
	struct broker *b;
	struct sched_config sc;
	const struct conf *c = &m->conf;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m = m;
	m->broker = b;
	u64map_init(&b->vms, (uint64_t)time(NULL));
	u64map_init(&b->quotas, (uint64_t)time(NULL) ^ 0x5bd1e995u);
	ev_timer_init(&b->deadline, on_deadline, 0., 0.);
	ev_timer_init(&b->housekeeping, on_housekeeping, BROKER_HOUSEKEEPING_SEC,
		      BROKER_HOUSEKEEPING_SEC);
	ev_timer_init(&b->rot_timeout, on_rot_timeout, BROKER_ROTATE_DRAIN_SEC, 0.);
	ev_timer_init(&b->poll_timer, on_poll, 1., 1.);
	ev_timer_init(&b->expiry, on_expiry, 1., 0.);
	b->poll.b = b;
	b->poll.job.run = poll_run;
	b->poll.job.done = poll_done;

	if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "Cannot create the state directory %s",
				       c->state_dir);
	if (c->backend == CONF_BACKEND_SIM) {
		r = fw_open_sim(c->sim_state_dir, &b->fw);
		if (r < 0)
			return log_error_errno(r,
					       "Cannot open the simulated platform in %s (create "
					       "it with snp-kdssim --state DIR --product P "
					       "--listen ADDR:PORT; it and its files must be "
					       "readable by the daemon's user)",
					       c->sim_state_dir);
	} else {
		r = fw_open_sev(c->sev_device, &b->fw);
		if (r < 0)
			return log_error_errno(r, "Cannot open %s", c->sev_device);
	}
	r = read_platform(b);
	if (r < 0)
		return r;
	if (b->pf.product == SNP_PRODUCT_UNKNOWN && cpuid_product(&b->pf.product) < 0)
		log_warning(
			"Cannot tell the SNP product from CPUID; certificates cannot be checked");
	if (c->backend == CONF_BACKEND_SIM && c->trust_sim_ark) {
		r = store_load_sim_ark(c->sim_state_dir, b->pf.product, &b->sim_ark);
		if (r < 0)
			log_warning_errno(r, "Cannot read the simulator's ARK");
		else if (b->sim_ark)
			log_notice("Trusting the simulator's ARK (backend=sim): not an AMD root");
	}
	if (c->vmm_certs_file[0]) {
		r = vmmfile_open_access(c->vmm_certs_file, c->vmm_certs_group,
					c->vmm_certs_mode, &b->vmm);
		if (r < 0)
			return log_error_errno(r, "Cannot open the VMM certificate file %s",
					       c->vmm_certs_file);
	}
	if (!c->cert_dir[0] && c->kds_url[0]) {
		r = kdsc_new(m->loop, c, &b->kdsc);
		if (r < 0)
			return log_error_errno(r, "Cannot set up the KDS client");
	}
	load_chain(b);
	r = worker_new(m->loop, &b->worker);
	if (r < 0)
		return log_error_errno(r, "Cannot start the worker thread");
	b->poll.fw = b->fw;
	rot_arm_expiry(b);
	poll_arm(b);
	r = load_quotas(b);
	if (r < 0)
		return r;
	r = sched_config_from(c, &sc);
	if (r < 0)
		return r;
	r = sched_new(&sc, on_sched_event, b, &b->sched);
	if (r < 0)
		return log_error_errno(r, "Cannot create the scheduler");
	r = nlsock_new(m->loop, c, &nl_handler, b, &b->nl);
	if (r < 0)
		return r;
	ev_timer_start(m->loop, &b->housekeeping);
	if (b->kdsc) {
		/* READY waits for the first chain from the cache (instant when warm) or KDS, or
		 * for the decision to run without one: at most BROKER_READY_MAX_SEC. */
		b->ready_held = true;
		manager_ready_hold(m);
		ev_timer_init(&b->ready_timer, on_ready_timer, BROKER_READY_MAX_SEC, 0.);
		ev_timer_start(m->loop, &b->ready_timer);
		rot_start_internal(b, "first chain from the cache or KDS", NULL);
	}
	return nlsock_start(b->nl);
}

static void broker_stop(struct manager *m)
{
	struct broker *b = m->broker;
	size_t it = 0;
	void *v;

	if (!b)
		return;
	if (b->ready_held)
		ev_timer_stop(m->loop, &b->ready_timer);
	ev_timer_stop(m->loop, &b->deadline);
	ev_timer_stop(m->loop, &b->housekeeping);
	ev_timer_stop(m->loop, &b->rot_timeout);
	ev_timer_stop(m->loop, &b->poll_timer);
	ev_timer_stop(m->loop, &b->expiry);
	b->rotate_again = false;
	b->draining = true; /* no new rotation from completions delivered below */
	if (b->rot)
		b->rot->cb = NULL; /* modules that own callers (ctl) are already gone */
	if (b->fetch)
		b->fetch->cb = NULL;
	kdsc_free(b->kdsc);	   /* a fetching rotation completes with -ECANCELED here */
	b->kdsc = NULL;
	if (b->rot && !b->rot->submitted)
		rot_finish(b, b->rot, -ECANCELED, "the daemon is stopping");
	worker_free(b->worker); /* runs and completes a submitted rotation */
	b->worker = NULL;
	if (b->fetch) { /* its rotation was cut short without a callback */
		fetch_free(b->fetch);
		b->fetch = NULL;
	}
	nlsock_free(b->nl);
	sched_free(b->sched);
	drop_all_vms(b);
	u64map_done(&b->vms);
	while (u64map_next(&b->quotas, &it, NULL, &v))
		free(v);
	u64map_done(&b->quotas);
	store_chain_free(b->chain);
	X509_free(b->sim_ark);
	vmmfile_free(b->vmm);
	fw_free(b->fw);
	free(b);
	m->broker = NULL;
}

static int broker_reload(struct manager *m, const struct conf *old)
{
	struct broker *b = m->broker;
	struct sched_quota q;
	const char *why = NULL;

	q.rate_milli = m->conf.quota_rate_milli;
	q.burst = m->conf.quota_burst;
	q.weight = m->conf.quota_weight;
	if (sched_set_default_quota(b->sched, &q, now_usec(), &why) < 0)
		log_warning("New default quota refused by the scheduler: %s", why ? why : "?");
	if (strcmp(old->vmm_certs_file, m->conf.vmm_certs_file) != 0) {
		if (b->rot)
			log_warning("vmm_certs_file changes take effect after the rotation under "
				    "way; reload again");
		else {
			struct vmmfile *v = NULL;
			int r = m->conf.vmm_certs_file[0]
					? vmmfile_open_access(m->conf.vmm_certs_file,
							      m->conf.vmm_certs_group,
							      m->conf.vmm_certs_mode, &v)
					: 0;
			if (r < 0)
				log_error_errno(
					r, "Cannot open the VMM certificate file %s; keeping %s",
					m->conf.vmm_certs_file, old->vmm_certs_file);
			else {
				vmmfile_free(b->vmm);
				b->vmm = v;
			}
		}
	} else if (b->vmm && (strcmp(old->vmm_certs_group, m->conf.vmm_certs_group) != 0 ||
			      old->vmm_certs_mode != m->conf.vmm_certs_mode)) {
		int r = vmmfile_set_access(b->vmm, m->conf.vmm_certs_group, m->conf.vmm_certs_mode);
		if (r < 0)
			log_error_errno(r, "Cannot give %s group '%s' and mode %04o",
					m->conf.vmm_certs_file, m->conf.vmm_certs_group,
					(unsigned)m->conf.vmm_certs_mode);
	}
	if (old->tcb_poll_interval_usec != m->conf.tcb_poll_interval_usec)
		poll_arm(b);
	/* SIGHUP rebuilds the chain from the source (e.g. renewed files) as a rotation. */
	rot_start_internal(b, "configuration reload", NULL);
	if (old->psp_concurrency != m->conf.psp_concurrency ||
	    old->busy_budget_usec != m->conf.busy_budget_usec ||
	    old->max_queue_wait_usec != m->conf.max_queue_wait_usec)
		log_notice(
			"Scheduler slot/budget changes take effect when the broker re-registers");
	return 0;
}

static bool broker_drained(struct manager *m)
{
	struct broker *b = m->broker;

	if (!b || !b->sched)
		return true;
	if (!b->draining) {
		b->draining = true;
		(void)sched_pause(b->sched, now_usec());
	}
	return sched_inflight(b->sched) == 0;
}

const struct manager_module broker_module = {
	.name = "broker",
	.start = broker_start,
	.stop = broker_stop,
	.reload = broker_reload,
	.drained = broker_drained,
};
