/* SPDX-License-Identifier: Apache-2.0 */
/* broker: the manager module that assembles the admission core and its netlink transport,
 * the platform view, the rotation of the served chain, the chain source and the quotas:
 * start (undone entirely when it fails), stop, reload, drain, and the read-only accessors
 * ctl and metrics use. broker-int.h says which file owns which state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "util.h"

#include "broker-int.h"

struct broker *broker_get(struct manager *m)
{
	return m->broker;
}

/* --- read-only accessors --- */

const struct adm *broker_adm(const struct broker *b)
{
	return b->adm;
}

const struct adm_stats *broker_get_stats(const struct broker *b)
{
	return adm_get_stats(b->adm);
}

const struct chain *broker_chain(const struct broker *b)
{
	return b->chain;
}

const struct platform_facts *broker_platform(const struct broker *b)
{
	return &b->pf;
}

bool broker_registered(const struct broker *b)
{
	return b->nlt && nltransport_registered(b->nlt);
}

unsigned broker_inflight(const struct broker *b)
{
	return adm_inflight(b->adm);
}

unsigned broker_queued(const struct broker *b)
{
	return adm_queued(b->adm);
}

size_t broker_vm_count(const struct broker *b)
{
	return adm_vm_count(b->adm);
}

bool broker_paused(const struct broker *b)
{
	return adm_paused(b->adm);
}

const char *broker_backend_name(const struct broker *b)
{
	return fw_name(b->fw);
}

bool broker_sim_root_trusted(const struct broker *b)
{
	return b->sim_ark != NULL;
}

int broker_vm_info(const struct broker *b, uint64_t vm_id, struct adm_vm_info *ret)
{
	return adm_vm_info(b->adm, vm_id, ret);
}

size_t broker_vm_foreach(const struct broker *b,
			 void (*fn)(void *userdata, const struct adm_vm_info *info), void *userdata)
{
	return adm_vm_foreach(b->adm, fn, userdata);
}

const struct nlsock_stats *broker_nlsock_stats(const struct broker *b)
{
	return b->nlt ? nltransport_stats(b->nlt) : NULL;
}

const struct vmmtransport *broker_vmmtransport(const struct broker *b)
{
	return b->vmt;
}

/* --- module --- */

int adm_config_from(const struct conf *c, struct adm_config *ac)
{
	struct sched_config *sc = &ac->sched;

	sched_config_defaults(sc);
	sc->psp_concurrency = c->psp_concurrency;
	sc->busy_budget_usec = c->busy_budget_usec;
	sc->max_queue_wait_usec = c->max_queue_wait_usec;
	sc->retry_interval_usec = c->guest_retry_interval_usec;
	sc->quota.rate_milli = c->quota_rate_milli;
	sc->quota.burst = c->quota_burst;
	sc->quota.weight = c->quota_weight;
	sc->hash_seed = (uint64_t)time(NULL);
	ac->guest_log_interval_usec = c->guest_log_interval_usec;
	ac->guest_log_burst = c->guest_log_burst;
	return 0;
}

static void on_drained(void *userdata)
{
	struct broker *b = userdata;

	/* Nothing in flight any more: the rotation's firmware/table change may run. */
	if (b->rot)
		rot_submit(b);
}

static void on_transport_status(void *userdata, const char *status)
{
	struct broker *b = userdata;

	if (b->snp_uninit)
		snp_wait_status(b); /* the waiting state is what the operator must see */
	else
		manager_notify_status(b->m, "%s", status);
}

static void on_request(void *userdata)
{
	snp_probe_on_request(userdata);
}

static void broker_stop(struct manager *m);

/* Each step that takes something is undone by broker_stop, which copes with a broker started
 * half way. */
static int broker_start(struct manager *m)
{
	struct broker *b;
	struct adm_config ac;
	const struct conf *c = &m->conf;
	struct adm_hooks hooks = {.drained = on_drained, .request = on_request};
	const char *why = NULL;
	char err[512], vmm_err[256] = "";
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m = m;
	m->broker = b;
	hooks.userdata = b;
	ev_timer_init(&b->rot_timeout, on_rot_timeout, BROKER_ROTATE_DRAIN_SEC, 0.);
	ev_timer_init(&b->poll_timer, on_poll, 1., 1.);
	ev_timer_init(&b->expiry, on_expiry, 1., 0.);
	ev_timer_init(&b->ready_timer, on_ready_timer, BROKER_READY_MAX_SEC, 0.);
	ev_timer_init(&b->probe_timer, on_probe, BROKER_PROBE_MIN_SEC, 0.);
	ev_timer_init(&b->status_timer, on_status_timer, 0., 0.);
	b->poll.b = b;
	b->poll.job.run = poll_run;
	b->poll.job.done = poll_done;

	if (mkdir(c->state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		manager_start_error(m, "cannot create the state directory %s: %s", c->state_dir,
				    strerror(-r));
		goto fail;
	}
	if (c->backend == CONF_BACKEND_SIM) {
		r = fw_open_sim(c->sim_state_dir, &b->fw);
		if (r < 0) {
			manager_start_error(m,
					    "cannot open the simulated platform in %s (create it "
					    "with snp-kdssim --state DIR --product P --listen "
					    "ADDR:PORT; it and its files must be readable by "
					    "the daemon's user): %s",
					    c->sim_state_dir, snp_strerror(r));
			goto fail;
		}
	} else {
		r = fw_open_sev(c->sev_device, &b->fw);
		if (r < 0) {
			manager_start_error(m, "cannot open %s: %s", c->sev_device,
					    snp_strerror(r));
			goto fail;
		}
	}
	r = manager_test_fail(m, "broker", "fw");
	if (r < 0)
		goto fail;
	r = platform_read(b->fw, &b->pf, err, sizeof(err));
	if (r == 0)
		b->committed_r = fw_committed_tcb(b->fw, &b->committed_tcb);
	if (fw_error_is_snp_uninit(r)) {
		/* A state, not a failure: start, say so, and probe until kvm_amd brings SNP up.
		 * GET_ID2 is a legacy command and answers already. */
		b->snp_uninit = true;
		(void)fw_get_id(b->fw, b->pf.chip_id, sizeof(b->pf.chip_id), &b->pf.chip_id_len,
				NULL);
		if (fw_product(b->fw, &b->pf.product) < 0)
			b->pf.product = SNP_PRODUCT_UNKNOWN;
		r = 0;
	}
	if (r < 0) {
		manager_start_error(m, "%s", err);
		goto fail;
	}
	if (b->pf.product == SNP_PRODUCT_UNKNOWN && cpuid_product(&b->pf.product) < 0)
		log_warning(
			"Cannot tell the SNP product from CPUID; certificates cannot be checked");
	if (c->backend == CONF_BACKEND_SIM && c->trust_sim_ark) {
		r = chain_load_sim_ark(c->sim_state_dir, b->pf.product, &b->sim_ark);
		if (r < 0)
			log_warning_errno(r, "Cannot read the simulator's ARK");
		else if (b->sim_ark)
			log_notice("Trusting the simulator's ARK (backend=sim): not an AMD root");
	}
	if (c->vmm_certs_file[0]) {
		r = vmmfile_open_access(c->vmm_certs_file, c->vmm_certs_group, c->vmm_certs_mode,
					&b->vmm);
		if (r < 0) {
			manager_start_error(m, "cannot open the VMM certificate file %s: %s",
					    c->vmm_certs_file, snp_strerror(r));
			goto fail;
		}
	}
	r = manager_test_fail(m, "broker", "vmm");
	if (r < 0)
		goto fail;
	if (!c->cert_dir[0] && c->kds_url[0]) {
		r = kdsc_new(m->loop, c, &b->kdsc);
		if (r < 0) {
			manager_start_error(m, "cannot set up the KDS client: %s", snp_strerror(r));
			goto fail;
		}
	}
	r = manager_test_fail(m, "broker", "kdsc");
	if (r < 0)
		goto fail;
	adm_config_from(c, &ac);
	r = adm_new(m->loop, &ac, &hooks, &b->adm, &why);
	if (r < 0) {
		manager_start_error(m, "scheduler configuration refused: %s",
				    why ? why : snp_strerror(r));
		goto fail;
	}
	load_chain(b);
	r = worker_new(m->loop, &b->worker);
	if (r < 0) {
		manager_start_error(m, "cannot start the worker thread: %s", strerror(-r));
		goto fail;
	}
	r = manager_test_fail(m, "broker", "worker");
	if (r < 0)
		goto fail;
	b->poll.fw = b->fw;
	rot_arm_expiry(b);
	poll_arm(b);
	(void)load_quotas(b);
	r = nltransport_new(m->loop, c, b->adm, on_transport_status, b, &b->nlt);
	if (r < 0) {
		manager_start_error(m, "cannot set up the netlink transport: %s", snp_strerror(r));
		goto fail;
	}
	r = manager_test_fail(m, "broker", "vmm");
	if (r == 0)
		r = vmmtransport_new(m->loop, c, b->adm, &b->vmt, vmm_err, sizeof(vmm_err));
	if (r < 0) {
		manager_start_error(m, "cannot set up the VMM socket: %s",
				    vmm_err[0] ? vmm_err : snp_strerror(r));
		goto fail;
	}
	if (b->snp_uninit) {
		/* READY now: the chain is loaded once SNP is up (snp_up). */
		b->snp_uninit = false;
		snp_wait_enter(b, "At start-up");
	} else if (b->kdsc) {
		/* READY waits for the first chain from the cache (instant when warm) or KDS, or
		 * for the decision to run without one: at most BROKER_READY_MAX_SEC. */
		b->ready_held = true;
		manager_ready_hold(m);
		ev_timer_start(m->loop, &b->ready_timer);
		rot_start_internal(b, "first chain from the cache or KDS", NULL);
	}
	r = manager_test_fail(m, "broker", "nl");
	if (r < 0)
		goto fail;
	r = nltransport_start(b->nlt);
	if (r < 0) {
		manager_start_error(m, "cannot register with the kernel: %s", snp_strerror(r));
		goto fail;
	}
	return 0;
fail:
	broker_stop(m);
	return r;
}

static void broker_stop(struct manager *m)
{
	struct broker *b = m->broker;

	if (!b)
		return;
	ev_timer_stop(m->loop, &b->ready_timer);
	ev_timer_stop(m->loop, &b->rot_timeout);
	ev_timer_stop(m->loop, &b->poll_timer);
	ev_timer_stop(m->loop, &b->expiry);
	ev_timer_stop(m->loop, &b->probe_timer);
	ev_timer_stop(m->loop, &b->status_timer);
	b->rotate_again = false;
	b->draining = true; /* no new rotation from completions delivered below */
	b->stopping = true; /* no new quota write either */
	if (b->rot)
		b->rot->cb = NULL; /* modules that own callers (ctl) are already gone */
	if (b->fetch)
		b->fetch->cb = NULL;
	if (b->import)
		b->import->cb = NULL;
	quotas_forget(b, NULL); /* every caller */
	kdsc_free(b->kdsc);	/* a fetching rotation completes with -ECANCELED here */
	b->kdsc = NULL;
	if (b->rot && !b->rot->submitted)
		rot_finish(b, b->rot, -ECANCELED, "the daemon is stopping");
	worker_free(b->worker); /* runs and completes a submitted rotation or quota write */
	b->worker = NULL;
	quotas_stop(b);
	if (b->fetch) { /* its rotation was cut short without a callback */
		fetch_free(b->fetch);
		b->fetch = NULL;
	}
	nltransport_free(b->nlt);
	b->nlt = NULL;
	vmmtransport_free(b->vmt);
	b->vmt = NULL;
	adm_free(b->adm);
	b->adm = NULL;
	chain_free(b->chain);
	X509_free(b->sim_ark);
	vmmfile_free(b->vmm);
	fw_free(b->fw);
	free(b);
	m->broker = NULL;
}

static void reload_skipped(void *userdata, const char *key)
{
	manager_reload_skipped(userdata, key);
}

static bool str_changed(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") != 0;
}

/* The KDS client is made from these keys (kdsc_new), and exists only without a cert_dir. */
static bool kds_changed(const struct conf *o, const struct conf *n)
{
	return !o->cert_dir[0] != !n->cert_dir[0] || str_changed(o->kds_url, n->kds_url) ||
	       str_changed(o->kds_proxy, n->kds_proxy) ||
	       str_changed(o->kds_ca_bundle, n->kds_ca_bundle) ||
	       str_changed(o->cache_dir, n->cache_dir) ||
	       o->kds_timeout_usec != n->kds_timeout_usec;
}

static void reload_kds(struct broker *b)
{
	struct manager *m = b->m;
	const struct conf *c = &m->conf;
	struct kdsc *k = NULL;
	int r = 0;

	if (b->rot || b->fetch) {
		log_warning("KDS settings take effect after the %s under way; reload again",
			    b->rot ? "rotation" : "certificate fetch");
		manager_reload_skipped(m, "[certs] kds_* and cache_dir (busy: reload again)");
		return;
	}
	if (!c->cert_dir[0] && c->kds_url[0]) {
		r = kdsc_new(m->loop, c, &k);
		if (r < 0) {
			log_error_errno(r,
					"Cannot set up the KDS client for %s; keeping the previous "
					"settings",
					c->kds_url);
			manager_reload_skipped(m, "[certs] kds_url (KDS client not created)");
			return;
		}
	}
	kdsc_free(b->kdsc);
	b->kdsc = k;
	if (k)
		log_info("Certificates now come from KDS (%s) through the cache in %s", c->kds_url,
			 c->cache_dir);
	else
		log_info("KDS is no longer the certificate source");
}

static int broker_reload(struct manager *m, const struct conf *old)
{
	struct broker *b = m->broker;
	const struct conf *c = &m->conf;
	struct sched_quota q;
	const char *why = NULL;

	q.rate_milli = c->quota_rate_milli;
	q.burst = c->quota_burst;
	q.weight = c->quota_weight;
	if (adm_set_default_quota(b->adm, &q, &why) < 0) {
		log_warning("New default quota refused by the scheduler: %s", why ? why : "?");
		manager_reload_skipped(m, "[quota] (refused)");
	}
	if (strcmp(old->vmm_certs_file, c->vmm_certs_file) != 0) {
		if (b->rot) {
			log_warning("vmm_certs_file changes take effect after the rotation under "
				    "way; reload again");
			manager_reload_skipped(m, "[certs] vmm_certs_file (busy: reload again)");
		} else {
			struct vmmfile *v = NULL;
			int r = c->vmm_certs_file[0]
					? vmmfile_open_access(c->vmm_certs_file, c->vmm_certs_group,
							      c->vmm_certs_mode, &v)
					: 0;
			if (r < 0) {
				log_error_errno(
					r, "Cannot open the VMM certificate file %s; keeping %s",
					c->vmm_certs_file, old->vmm_certs_file);
				manager_reload_skipped(m, "[certs] vmm_certs_file (cannot open)");
			} else {
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
	vmmtransport_reconfigure(b->vmt, old, c, reload_skipped, m);
	if (kds_changed(old, c))
		reload_kds(b);
	if (old->tcb_poll_interval_usec != c->tcb_poll_interval_usec)
		poll_arm(b);
	/* What is fixed for the life of the process (or of the scheduler instance). */
	if (old->backend != c->backend)
		manager_reload_skipped(m, "[daemon] backend");
	if (str_changed(old->sev_device, c->sev_device))
		manager_reload_skipped(m, "[daemon] sev_device");
	if (str_changed(old->sim_state_dir, c->sim_state_dir))
		manager_reload_skipped(m, "[daemon] sim_state_dir");
	if (old->transport != c->transport)
		manager_reload_skipped(m, "[daemon] transport");
	if (old->usersock_port != c->usersock_port)
		manager_reload_skipped(m, "[daemon] usersock_port");
	if (old->trust_sim_ark != c->trust_sim_ark)
		manager_reload_skipped(m, "[certs] trust_sim_ark");
	if (old->psp_concurrency != c->psp_concurrency)
		manager_reload_skipped(m, "[scheduler] psp_concurrency");
	if (old->busy_budget_usec != c->busy_budget_usec)
		manager_reload_skipped(m, "[scheduler] busy_budget");
	if (old->max_queue_wait_usec != c->max_queue_wait_usec)
		manager_reload_skipped(m, "[scheduler] max_queue_wait");
	if (old->guest_retry_interval_usec != c->guest_retry_interval_usec)
		manager_reload_skipped(m, "[scheduler] guest_retry_interval");
	if (old->guest_log_interval_usec != c->guest_log_interval_usec ||
	    old->guest_log_burst != c->guest_log_burst)
		manager_reload_skipped(m, "[daemon] guest_log_* (for VMs already known)");
	/* SIGHUP rebuilds the chain from the source (e.g. renewed files) as a rotation. */
	rot_start_internal(b, "configuration reload", NULL);
	return 0;
}

static bool broker_drained(struct manager *m)
{
	struct broker *b = m->broker;

	if (!b || !b->adm)
		return true;
	if (!b->draining) {
		b->draining = true;
		(void)adm_pause(b->adm);
	}
	return adm_inflight(b->adm) == 0;
}

const struct manager_module broker_module = {
	.name = "broker",
	.start = broker_start,
	.stop = broker_stop,
	.reload = broker_reload,
	.drained = broker_drained,
};
