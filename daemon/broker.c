/* SPDX-License-Identifier: Apache-2.0 */
/* broker: the manager module that ties admission, platform, rotation, chain source and quotas
 * together: start, stop, reload, drain, and the read-only accessors. */
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

struct broker *broker_get(struct manager *m)
{
	return m->broker;
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


const struct nlsock_stats *broker_nlsock_stats(const struct broker *b)
{
	return b->nl ? nlsock_get_stats(b->nl) : NULL;
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
					       "it with snp-kvmsim --state DIR --product P)",
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
		r = vmmfile_open(c->vmm_certs_file, &b->vmm);
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
			int r = m->conf.vmm_certs_file[0] ? vmmfile_open(m->conf.vmm_certs_file, &v)
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
