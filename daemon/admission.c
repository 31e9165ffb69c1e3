/* SPDX-License-Identifier: Apache-2.0 */
/* admission: GUEST_REQ -> exactly one VERDICT, GUEST_DONE accounting, the VM table and its
 * VM_DUMP reconciliation, the scheduler instance and its timers. Decisions come from
 * proto/sched-policy.c; the rules are design §4 (guest contract) and §5. */
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

#include "broker-int.h"

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

void on_sched_event(void *userdata, const struct sched_event *ev)
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

int sched_config_from(const struct conf *c, struct sched_config *sc)
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

void drop_all_vms(struct broker *b)
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

const struct nlsock_handler nl_handler = {
	.on_message = on_message,
	.on_registered = on_registered,
	.on_unregistered = on_unregistered,
	.on_resync = on_resync,
};

/* --- timers --- */

void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, deadline);

	(void)loop;
	(void)revents;
	(void)sched_tick(b->sched, now_usec());
	broker_arm(b);
}

void broker_arm(struct broker *b)
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

void on_housekeeping(struct ev_loop *loop, ev_timer *w, int revents)
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

