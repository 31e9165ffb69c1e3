/* SPDX-License-Identifier: Apache-2.0 */
/* platform: the platform view of the broker. Reads SNP_PLATFORM_STATUS and GET_ID2 (on the
 * worker after start), tells the product from CPUID when the backend does not, polls the
 * platform status for TCB changes made outside the daemon, and waits out "SNP not initialised"
 * (kvm_amd not loaded with sev_snp=1 yet): probing with backoff, then loading the chain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#include "broker-int.h"

/* --- platform status --- */

/* Non-logging, callable on the worker: fills pf from SNP_PLATFORM_STATUS and GET_ID2. The
 * product comes from the backend, or stays what pf held (CPUID at start). */
int platform_read(struct fw *fw, struct platform_facts *pf, char *err, size_t err_size)
{
	struct sev_user_data_snp_status st;
	struct platform_facts n = *pf;
	uint32_t fs = 0;
	int r;

	r = fw_platform_status(fw, &st, &fs);
	if (r < 0) {
		snprintf(err, err_size, "SNP_PLATFORM_STATUS failed: %s (firmware status 0x%x)",
			 fw_strerror(r), fs);
		return r;
	}
	n.current_tcb = st.current_tcb_version;
	n.reported_tcb = st.reported_tcb_version;
	n.status_flags = st.flags;
	n.vlek_loaded = (st.flags & SNP_STATUS_F_VLEK_EN) != 0;
	r = fw_get_id(fw, n.chip_id, sizeof(n.chip_id), &n.chip_id_len, &fs);
	if (r < 0) {
		snprintf(err, err_size, "GET_ID2 failed: %s (firmware status 0x%x)", fw_strerror(r),
			 fs);
		return r;
	}
	if (fw_product(fw, &n.product) < 0)
		n.product = pf->product;
	*pf = n;
	return 0;
}

int cpuid_product(enum snp_product *ret)
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

void poll_run(struct worker_job *j)
{
	struct broker_poll *p = container_of(j, struct broker_poll, job);
	char err[256];

	p->r = platform_read(p->fw, &p->pf, err, sizeof(err));
	p->committed_r = fw_committed_tcb(p->fw, &p->committed);
}

/* --- SNP not initialised --- */

static void probe_arm(struct broker *b)
{
	/* Jitter upwards only, never sooner than the step: the clock's microseconds differ from
	 * host to host, so hosts restarted together spread out. */
	double d = b->probe_delay * (1. + 0.25 * ((double)(now_usec() % 1000) / 1000.));

	ev_timer_stop(b->m->loop, &b->probe_timer);
	ev_timer_set(&b->probe_timer, d, 0.);
	ev_timer_start(b->m->loop, &b->probe_timer);
	b->probe_delay = MIN(b->probe_delay * 2., BROKER_PROBE_MAX_SEC);
}

static void probe_submit(struct broker *b)
{
	if (b->poll.busy || b->stopping || b->draining || !b->worker)
		return; /* the read in flight answers for this probe too */
	ev_timer_stop(b->m->loop, &b->probe_timer);
	b->poll.busy = true;
	b->poll.pf = b->pf;
	b->snp_probes++;
	b->probe_last_usec = now_usec();
	worker_submit(b->worker, &b->poll.job);
}

void snp_wait_status(struct broker *b)
{
	manager_notify_status(b->m,
			      "SNP not initialised: waiting for kvm_amd with sev_snp=1 (%llu "
			      "probes so far); guests get no certificates meanwhile",
			      (unsigned long long)b->snp_probes);
}

void snp_wait_enter(struct broker *b, const char *why)
{
	if (b->snp_uninit)
		return;
	b->snp_uninit = true;
	b->probe_delay = BROKER_PROBE_MIN_SEC;
	log_warning("%s: %s. Waiting for it: probing with backoff (%.0f s up to %.0f s)", why,
		    fw_strerror(-FW_ERR_SNP_UNINIT), BROKER_PROBE_MIN_SEC, BROKER_PROBE_MAX_SEC);
	if (!b->draining && !b->stopping)
		probe_arm(b);
	/* After the manager's own STATUS (READY at start, a rotation's outcome later). */
	ev_timer_stop(b->m->loop, &b->status_timer);
	ev_timer_set(&b->status_timer, 0., 0.);
	ev_timer_start(b->m->loop, &b->status_timer);
}

void snp_probe_on_request(struct broker *b)
{
	if (!b->snp_uninit || b->poll.busy)
		return;
	if (now_usec() - b->probe_last_usec < (uint64_t)(BROKER_PROBE_MIN_SEC * 1e6))
		return;
	probe_submit(b);
}

void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, probe_timer);

	(void)loop;
	(void)revents;
	if (b->snp_uninit)
		probe_submit(b);
}

void on_status_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, status_timer);

	(void)loop;
	(void)revents;
	if (b->snp_uninit)
		snp_wait_status(b);
}

/* A probe found SNP up: take the platform view, then load the chain as a rotation would. */
static void snp_up(struct broker *b, const struct broker_poll *p)
{
	char t[TCB_FORMAT_MAX];

	b->snp_uninit = false;
	ev_timer_stop(b->m->loop, &b->probe_timer);
	ev_timer_stop(b->m->loop, &b->status_timer);
	b->pf = p->pf;
	b->committed_r = p->committed_r;
	b->committed_tcb = p->committed;
	log_notice("SNP is initialised (after %llu probes): reported TCB %s%s; loading the chain",
		   (unsigned long long)b->snp_probes,
		   tcb_format(b->pf.reported_tcb, b->pf.product, t, sizeof(t)),
		   b->pf.vlek_loaded ? " (VLEK)" : "");
	manager_notify_status(b->m, "SNP initialised: loading the certificate chain");
	rot_start_internal(b, "SNP initialised", NULL);
}

void poll_done(struct worker_job *j)
{
	struct broker_poll *p = container_of(j, struct broker_poll, job);
	struct broker *b = p->b;
	char t0[TCB_FORMAT_MAX], t1[TCB_FORMAT_MAX], why[160];

	p->busy = false;
	if (b->stopping || b->draining)
		return;
	if (fw_error_is_snp_uninit(p->r)) {
		if (b->snp_uninit) {
			probe_arm(b);
			snp_wait_status(b); /* the probe count, and over any other STATUS */
		} else if (!b->rot) {
			snp_wait_enter(b, "The platform status poll failed");
		}
		return;
	}
	if (b->snp_uninit) {
		if (p->r < 0) {
			log_warning("SNP probe: %s", fw_strerror(p->r));
			probe_arm(b);
		} else {
			snp_up(b, p);
		}
		return;
	}
	if (p->r < 0 || b->rot)
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

void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, poll_timer);

	(void)loop;
	(void)revents;
	if (b->poll.busy || b->rot || b->draining || b->snp_uninit)
		return;
	b->poll.busy = true;
	b->poll.pf = b->pf;
	worker_submit(b->worker, &b->poll.job);
}

void poll_arm(struct broker *b)
{
	double iv = (double)b->m->conf.tcb_poll_interval_usec / 1e6;

	ev_timer_stop(b->m->loop, &b->poll_timer);
	if (iv <= 0.)
		return;
	ev_timer_set(&b->poll_timer, iv, iv);
	ev_timer_start(b->m->loop, &b->poll_timer);
}

bool broker_snp_initialized(const struct broker *b)
{
	return !b->snp_uninit;
}

uint64_t broker_snp_probes(const struct broker *b)
{
	return b->snp_probes;
}
