/* SPDX-License-Identifier: Apache-2.0 */
/* metrics-render: the Prometheus exposition text (docs/metrics.md) built from the broker's
 * read-only accessors, the KDS client's, the netlink socket's and the control socket's
 * counters, and the per-VM series set (the busiest VMs by name, the rest summed into
 * vm="other"). Reads on the loop thread and never writes what it reads; no socket: metrics.c
 * serves what it builds. */
#include "metrics-int.h"
#include "metrics-vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "kdsc.h"
#include "nlsock.h"
#include "tcb.h"
#include "util.h"

/* The admission core records admission wait and firmware time once, in its own buckets
 * (admission.h); the families expose these subsets of its bounds (docs/metrics.md).
 * Fleet-wide admission wait: the kernel waits ~100 ms for a verdict, max_queue_wait is below
 * it. */
static const uint64_t wait_bounds_usec[] = {
	10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
};
/* Per VM: 1 ms steps around one PSP report slot (~8 ms), so that "within one slot + 1 ms" can
 * be read off exactly. */
static const uint64_t vm_wait_bounds_usec[] = {
	500,  1000,  2000,  3000,  4000,  5000,	 6000,	7000,  8000,
	9000, 10000, 11000, 12000, 15000, 20000, 30000, 50000, 100000,
};
_Static_assert(ELEMENTSOF(vm_wait_bounds_usec) == VM_WAIT_NBOUNDS,
	       "VM_WAIT_NBOUNDS (metrics-int.h) is the number of per-VM wait bounds");

/* Sums counts per bucket of the bounds `from` (n_from + 1 buckets) into the buckets of `bounds`
 * (n + 1 counts), whose bounds are all among `from`. */
static void rebucket(const uint64_t *from, size_t n_from, const uint64_t *counts,
		     const uint64_t *bounds, size_t n, uint64_t *ret)
{
	for (size_t i = 0; i <= n_from; i++) {
		size_t k = 0;

		if (i == n_from)
			k = n;
		else
			while (k < n && bounds[k] < from[i])
				k++;
		ret[k] += counts[i];
	}
}

/* Label values: snake_case, stable (docs/metrics.md). */
static const char *const busy_names[_SCHED_BUSY_MAX] = {
	[SCHED_BUSY_NONE] = NULL,	  [SCHED_BUSY_INFLIGHT] = "in_flight",
	[SCHED_BUSY_QUOTA] = "quota",	  [SCHED_BUSY_OVERLOAD] = "overload",
	[SCHED_BUSY_NO_VM] = "no_vm",	  [SCHED_BUSY_PAUSED] = "paused",
	[SCHED_BUSY_REMOVED] = "removed",
};
/* Per VM: no_vm never happens to a known VM. */
static const char *const vm_busy_names[_SCHED_BUSY_MAX] = {
	[SCHED_BUSY_INFLIGHT] = "in_flight", [SCHED_BUSY_QUOTA] = "quota",
	[SCHED_BUSY_OVERLOAD] = "overload",  [SCHED_BUSY_PAUSED] = "paused",
	[SCHED_BUSY_REMOVED] = "removed",
};
static const char *const anomaly_names[_SCHED_ANOM_MAX] = {
	[SCHED_ANOM_REPLAY] = "replay",
	[SCHED_ANOM_GAP] = "gap",
	[SCHED_ANOM_TYPE] = "unknown_type",
	[SCHED_ANOM_VMPCK] = "bad_vmpck",
};

/* --- rendering --- */

static void gauge(struct metrics_writer *w, const char *name, const char *help, double v)
{
	metrics_family(w, name, METRICS_GAUGE, help);
	metrics_sample_double(w, NULL, 0, v);
}

static void counter(struct metrics_writer *w, const char *name, const char *help, uint64_t v)
{
	metrics_family(w, name, METRICS_COUNTER, help);
	metrics_sample_u64(w, NULL, 0, v);
}

static void collect_vm(void *userdata, const struct adm_vm_info *info)
{
	struct metrics *x = userdata;
	uint64_t c[_VC_MAX] = {0};

	c[VC_REQ_REPORT] = info->req_report;
	c[VC_REQ_KEY] = info->req_key;
	c[VC_REQ_OTHER] = info->req_other;
	c[VC_OUT_SUCCESS] = info->fw_ok;
	c[VC_OUT_FW_ERROR] = info->fw_errors;
	c[VC_OUT_EXPIRED] = info->expired;
	c[VC_OUT_INVALID_LEN] = info->invalid_len;
	for (size_t r = 0; r < _SCHED_BUSY_MAX; r++)
		c[VC_BUSY_FIRST + r] = info->sched.busy[r];
	for (size_t a = 0; a < _SCHED_ANOM_MAX; a++)
		c[VC_ANOM_FIRST + a] = info->sched.anomalies[a];
	c[VC_ADMITTED] = info->sched.admitted;
	c[VC_FORCED] = info->sched.forced;
	c[VC_FW_NSEC] = info->fw_time_ns_total;
	rebucket(adm_wait_bounds_usec, ADM_WAIT_NBOUNDS, info->wait_buckets, vm_wait_bounds_usec,
		 VM_WAIT_NBOUNDS, &c[VC_WAIT_FIRST]);
	c[VC_WAIT_USEC] = info->wait_usec_total;
	if (metrics_vmset_update(&x->vmset, info->vm_id, c) < 0)
		x->render_errors++; /* this VM is missing from one scrape; nothing else is lost */
}

/* The VMs with their own series, then "other"; the same order for every family. */
struct vm_row {
	char id[24];
	const uint64_t *c;
};

static size_t vm_rows(struct metrics *x, struct vm_row **ret)
{
	size_t n = 0, it = 0;
	struct vm_row *rows;
	uint64_t id;
	const uint64_t *c;

	rows = calloc(x->vmset.n_series + 1, sizeof(*rows));
	if (!rows)
		return 0;
	while (n < x->vmset.n_series && metrics_vmset_next(&x->vmset, &it, &id, &c)) {
		snprintf(rows[n].id, sizeof(rows[n].id), "%llu", (unsigned long long)id);
		rows[n++].c = c;
	}
	if (x->vmset.other_vms > 0 || !mem_is_zero(x->vmset.other, _VC_MAX * sizeof(uint64_t))) {
		snprintf(rows[n].id, sizeof(rows[n].id), "other");
		rows[n++].c = metrics_vmset_other(&x->vmset);
	}
	*ret = rows;
	return n;
}

static void per_vm_family(struct metrics_writer *w, const struct vm_row *rows, size_t n,
			  const char *name, const char *help, const char *label,
			  const char *const *values, size_t first, size_t count)
{
	metrics_family(w, name, METRICS_COUNTER, help);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < count; k++) {
			struct metrics_label l[2] = {{"vm", rows[i].id}, {label, values[k]}};
			if (!values[k])
				continue;
			metrics_sample_u64(w, l, label ? 2 : 1, rows[i].c[first + k]);
		}
}

static void render_vms(struct metrics *x, struct metrics_writer *w)
{
	static const char *const types[] = {"report", "key", "other"};
	static const char *const outcomes[] = {"success", "firmware_error", "expired",
					       "invalid_len"};
	static const char *const one[] = {""};
	struct vm_row *rows = NULL;
	size_t n = vm_rows(x, &rows);

	per_vm_family(w, rows, n, "snp_attestd_guest_requests_total",
		      "Guest requests received per VM, by message type.", "type", types,
		      VC_REQ_REPORT, ELEMENTSOF(types));
	per_vm_family(w, rows, n, "snp_attestd_guest_request_outcomes_total",
		      "How admitted or answered guest requests ended per VM: firmware success or "
		      "error (GUEST_DONE), kernel gave up waiting, INVALID_LEN answer.",
		      "outcome", outcomes, VC_OUT_SUCCESS, ELEMENTSOF(outcomes));
	per_vm_family(w, rows, n, "snp_attestd_busy_total",
		      "BUSY answers per VM by reason (no_vm is only in "
		      "snp_attestd_busy_answers_total).",
		      "reason", vm_busy_names, VC_BUSY_FIRST, _SCHED_BUSY_MAX);
	per_vm_family(w, rows, n, "snp_attestd_anomalies_total",
		      "Guest message sequence anomalies per VM (counted, never acted on).", "kind",
		      anomaly_names, VC_ANOM_FIRST, _SCHED_ANOM_MAX);
	per_vm_family(w, rows, n, "snp_attestd_admitted_total",
		      "Guest requests admitted to the PSP per VM.", NULL, one, VC_ADMITTED, 1);
	per_vm_family(w, rows, n, "snp_attestd_forced_admissions_total",
		      "Admissions made over quota or overload by the bounded-BUSY rule, per VM.",
		      NULL, one, VC_FORCED, 1);
	metrics_family(w, "snp_attestd_vm_firmware_seconds_total", METRICS_COUNTER,
		       "Firmware time reported in GUEST_DONE per VM.");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label l = {"vm", rows[i].id};
		metrics_sample_double(w, &l, 1, (double)rows[i].c[VC_FW_NSEC] / 1e9);
	}
	metrics_family(w, "snp_attestd_vm_admission_wait_seconds", METRICS_HISTOGRAM,
		       "Time from GUEST_REQ to ALLOW for admitted requests, per VM (1 ms buckets "
		       "around one PSP report slot).");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label l = {"vm", rows[i].id};
		struct metrics_hist h;

		if (metrics_hist_init(&h, vm_wait_bounds_usec, VM_WAIT_NBOUNDS, 1e6) < 0)
			break;
		for (size_t k = 0; k <= VM_WAIT_NBOUNDS; k++) {
			h.counts[k] = rows[i].c[VC_WAIT_FIRST + k];
			h.count += h.counts[k];
		}
		h.sum = rows[i].c[VC_WAIT_USEC];
		metrics_sample_hist(w, &l, 1, &h);
	}
	free(rows);
	gauge(w, "snp_attestd_vms_in_other_series",
	      "Live VMs counted in vm=\"other\" because the per-VM series limit was reached.",
	      (double)x->vmset.other_vms);
	gauge(w, "snp_attestd_vm_series_limit", "VMs that get their own per-VM series.",
	      (double)x->vmset.max_series);
}

static void render_tcb(struct metrics_writer *w, const char *which, uint64_t raw,
		       enum snp_product p)
{
	struct tcb_version t;
	const struct {
		const char *name;
		const uint8_t *v;
	} comps[] = {
		{"bootloader", &t.bootloader}, {"tee", &t.tee}, {"snp", &t.snp},
		{"microcode", &t.microcode},   {"fmc", &t.fmc},
	};

	tcb_decode(raw, p, &t);
	for (size_t i = 0; i < ELEMENTSOF(comps); i++) {
		struct metrics_label l[2] = {{"tcb", which}, {"component", comps[i].name}};
		if (strcmp(comps[i].name, "fmc") == 0 && !snp_product_has_fmc(p))
			continue;
		metrics_sample_u64(w, l, 2, *comps[i].v);
	}
}

static void render_platform(struct metrics_writer *w, const struct broker *b)
{
	const struct platform_facts *pf = broker_platform(b);
	const struct chain *ch = broker_chain(b);
	uint64_t committed;
	char source[32];

	metrics_family(w, "snp_attestd_platform_info", METRICS_GAUGE,
		       "The platform: product and firmware backend (value 1).");
	{
		struct metrics_label l[2] = {{"product", snp_product_name(pf->product)},
					     {"backend", broker_backend_name(b)}};
		metrics_sample_u64(w, l, 2, 1);
	}
	gauge(w, "snp_attestd_vlek_loaded", "1 if a VLEK is loaded in the firmware.",
	      pf->vlek_loaded ? 1 : 0);
	gauge(w, "snp_attestd_snp_initialized",
	      "1 once SNP is initialised; 0 while the daemon waits for kvm_amd (sev_snp=1).",
	      broker_snp_initialized(b) ? 1 : 0);
	counter(w, "snp_attestd_snp_probes_total",
		"SNP_PLATFORM_STATUS probes made while SNP was not initialised.",
		broker_snp_probes(b));
	metrics_family(w, "snp_attestd_tcb_component", METRICS_GAUGE,
		       "TCB security version numbers: current and reported (platform status), "
		       "committed (when the backend tells), served (the chain's VCEK).");
	render_tcb(w, "current", pf->current_tcb, pf->product);
	render_tcb(w, "reported", pf->reported_tcb, pf->product);
	if (broker_committed_tcb(b, &committed) >= 0)
		render_tcb(w, "committed", committed, pf->product);
	if (ch)
		render_tcb(w, "served", ch->tcb, ch->product);

	gauge(w, "snp_attestd_cert_chain_loaded",
	      "1 if a verified certificate chain is served with extended requests.", ch ? 1 : 0);
	if (!ch)
		return;
	gauge(w, "snp_attestd_cert_not_after_timestamp_seconds",
	      "Earliest notAfter in the served chain, Unix time.", (double)ch->not_after);
	{
		time_t since = broker_chain_since(b), next = broker_next_refresh(b),
		       now = time(NULL);
		gauge(w, "snp_attestd_cert_chain_age_seconds",
		      "Time since the served chain was obtained (fetched, loaded or imported).",
		      since && now > since ? (double)(now - since) : 0.);
		if (next)
			gauge(w, "snp_attestd_cert_next_refresh_timestamp_seconds",
			      "When the chain is next re-fetched (before it expires), Unix time.",
			      (double)next);
	}
	/* Only the kind of source ("dir", "cache", "kds", "import"): paths stay out of labels. */
	snprintf(source, sizeof(source), "%.*s", (int)strcspn(ch->source, ":"), ch->source);
	metrics_family(w, "snp_attestd_cert_chain_info", METRICS_GAUGE,
		       "The served chain (value 1): source, key type and root.");
	{
		struct metrics_label l[4] = {
			{"source", source},
			{"key", ch->vlek ? "vlek" : "vcek"},
			{"root", ch->sim_root ? "simulator" : "amd"},
			{"product", snp_product_name(ch->product)},
		};
		metrics_sample_u64(w, l, 4, 1);
	}
	gauge(w, "snp_attestd_cert_table_bytes", "Size of the GHCB certificate table served.",
	      (double)ch->table_len);
}

static void render_broker(struct metrics *x, struct metrics_writer *w, const struct broker *b)
{
	const struct adm_stats *st = broker_get_stats(b);
	const struct nlsock_stats *ns;

	gauge(w, "snp_attestd_broker_registered",
	      "1 while the daemon holds the broker role with the kernel (or simulator).",
	      broker_registered(b) ? 1 : 0);
	gauge(w, "snp_attestd_admission_paused",
	      "1 while admission is paused (certificate rotation or shutdown).",
	      broker_paused(b) ? 1 : 0);
	gauge(w, "snp_attestd_vms", "VMs known to the daemon (between VM_ADD and VM_REMOVE).",
	      (double)broker_vm_count(b));
	gauge(w, "snp_attestd_psp_slots", "PSP slots (psp_concurrency).",
	      (double)x->m->conf.psp_concurrency);
	gauge(w, "snp_attestd_psp_slots_busy", "Requests admitted and not yet done.",
	      (double)broker_inflight(b));
	gauge(w, "snp_attestd_queue_depth", "Requests waiting for a PSP slot.",
	      (double)broker_queued(b));

	counter(w, "snp_attestd_guest_requests_received_total",
		"GUEST_REQ messages received (all VMs, known or not).", st->guest_reqs);
	metrics_family(w, "snp_attestd_verdicts_total", METRICS_COUNTER,
		       "VERDICT messages sent, by verdict.");
	{
		const struct {
			const char *v;
			uint64_t n;
		} vs[] = {{"allow", st->verdicts_allow},
			  {"busy", st->verdicts_busy},
			  {"invalid_len", st->verdicts_invalid_len}};
		for (size_t i = 0; i < ELEMENTSOF(vs); i++) {
			struct metrics_label l = {"verdict", vs[i].v};
			metrics_sample_u64(w, &l, 1, vs[i].n);
		}
	}
	metrics_family(w, "snp_attestd_busy_answers_total", METRICS_COUNTER,
		       "BUSY answers over all VMs, by reason (no_vm: the VM was not known).");
	for (size_t r = 0; r < _SCHED_BUSY_MAX; r++) {
		struct metrics_label l = {"reason", busy_names[r]};
		if (busy_names[r])
			metrics_sample_u64(w, &l, 1, st->busy_by_reason[r]);
	}
	metrics_family(w, "snp_attestd_sequence_anomalies_total", METRICS_COUNTER,
		       "Guest message sequence anomalies over all VMs, by kind.");
	for (size_t a = 0; a < _SCHED_ANOM_MAX; a++) {
		struct metrics_label l = {"kind", anomaly_names[a]};
		metrics_sample_u64(w, &l, 1, st->anomalies[a]);
	}
	counter(w, "snp_attestd_guest_done_total", "GUEST_DONE messages received.", st->done);
	counter(w, "snp_attestd_verdict_send_failures_total",
		"Verdicts that could not be sent (the kernel answers BUSY on its timeout).",
		st->send_failures);
	counter(w, "snp_attestd_stale_inflight_freed_total",
		"In-flight requests freed because their GUEST_DONE never came.",
		st->stale_inflight_freed);
	counter(w, "snp_attestd_admissions_over_slots_total",
		"Forced admissions (bounded-BUSY rule) made while every PSP slot was taken; they "
		"wait for the PSP in the kernel.",
		st->admissions_over_slots);
	counter(w, "snp_attestd_psp_idle_while_waiting_total",
		"GUEST_DONEs that freed a PSP slot while requests were queued.", st->handoffs);
	metrics_family(w, "snp_attestd_psp_idle_while_waiting_seconds_total", METRICS_COUNTER,
		       "Time from such a GUEST_DONE's receipt to the next queued request's ALLOW: "
		       "the daemon's share of PSP idle time while admissible work waited.");
	metrics_sample_double(w, NULL, 0, (double)st->handoff_usec_total / 1e6);
	counter(w, "snp_attestd_vm_dumps_sent_total", "VM_DUMP requests sent.", st->dumps_sent);
	counter(w, "snp_attestd_vms_pruned_total",
		"VMs dropped because a VM_DUMP no longer listed them.", st->vms_pruned);

	ns = broker_nlsock_stats(b);
	if (ns) {
		metrics_family(w, "snp_attestd_netlink_messages_total", METRICS_COUNTER,
			       "Netlink messages, by direction.");
		{
			struct metrics_label rx = {"direction", "rx"}, tx = {"direction", "tx"};
			metrics_sample_u64(w, &rx, 1, ns->rx_msgs);
			metrics_sample_u64(w, &tx, 1, ns->tx_msgs);
		}
		counter(w, "snp_attestd_netlink_tx_datagrams_total",
			"Datagrams sent; the verdicts answering one receive batch share one.",
			ns->tx_datagrams);
		metrics_family(w, "snp_attestd_netlink_errors_total", METRICS_COUNTER,
			       "Netlink problems, by kind.");
		{
			const struct {
				const char *k;
				uint64_t n;
			} es[] = {{"send", ns->tx_errors},
				  {"malformed", ns->malformed},
				  {"malformed_answered", ns->malformed_answered},
				  {"foreign_sender", ns->foreign_sender},
				  {"overrun", ns->enobufs}};
			for (size_t i = 0; i < ELEMENTSOF(es); i++) {
				struct metrics_label l = {"kind", es[i].k};
				metrics_sample_u64(w, &l, 1, es[i].n);
			}
		}
		counter(w, "snp_attestd_netlink_register_attempts_total",
			"REGISTER messages sent to claim the broker role.", ns->register_attempts);
		counter(w, "snp_attestd_netlink_registrations_total",
			"Times the broker role was granted.", ns->registrations);
		counter(w, "snp_attestd_netlink_family_missing_total",
			"Failed lookups of the generic netlink family snp_attest (KVM without the "
			"broker interface); retried with backoff.",
			ns->family_missing);
	}
}

/* KDS fetch outcomes and the certificate cache age: rendered once the KDS client and cache
 * (daemon/kdsc.h, daemon/cache.h) are owned by the manager; nothing to read before that. */
/* The fleet-wide histograms, from the admission core's buckets (zero without a broker). */
static void render_core_hists(struct metrics_writer *w, const struct broker *b)
{
	const struct adm_stats *st = b ? broker_get_stats(b) : NULL;
	struct metrics_hist h;

	metrics_family(w, "snp_attestd_admission_wait_seconds", METRICS_HISTOGRAM,
		       "Time from GUEST_REQ to ALLOW for admitted requests.");
	if (metrics_hist_init(&h, wait_bounds_usec, ELEMENTSOF(wait_bounds_usec), 1e6) == 0) {
		if (st) {
			rebucket(adm_wait_bounds_usec, ADM_WAIT_NBOUNDS, st->wait_buckets, h.bounds,
				 h.n_bounds, h.counts);
			for (size_t k = 0; k <= h.n_bounds; k++)
				h.count += h.counts[k];
			h.sum = st->admission_wait_usec_total;
		}
		metrics_sample_hist(w, NULL, 0, &h);
	}
	metrics_family(w, "snp_attestd_firmware_seconds", METRICS_HISTOGRAM,
		       "Firmware time of guest requests, as reported in GUEST_DONE.");
	if (metrics_hist_init(&h, adm_fw_bounds_nsec, ADM_FW_NBOUNDS, 1e9) == 0) {
		if (st) {
			memcpy(h.counts, st->fw_buckets, sizeof(st->fw_buckets));
			h.count = st->fw_time_count;
			h.sum = st->fw_time_ns_total;
		}
		metrics_sample_hist(w, NULL, 0, &h);
	}
}

static void render_kds(struct metrics *x, struct metrics_writer *w)
{
	const struct broker *b = broker_get(x->m);
	const struct broker_rotation_stats *rs;
	struct kdsc *k;
	struct kdsc_stats ks;

	if (!b)
		return;
	rs = broker_get_rotation_stats(b);
	metrics_family(w, "snp_attestd_rotations_total", METRICS_COUNTER,
		       "Certificate/TCB rotations, by result.");
	{
		struct metrics_label ok = {"result", "succeeded"}, bad = {"result", "failed"};
		metrics_sample_u64(w, &ok, 1, rs->succeeded);
		metrics_sample_u64(w, &bad, 1, rs->failed);
	}
	gauge(w, "snp_attestd_rotation_in_progress",
	      "1 while a rotation is under way (admission may be paused).", rs->in_progress);
	counter(w, "snp_attestd_tcb_changes_seen_total",
		"Reported-TCB changes noticed in platform status (made outside the daemon).",
		rs->tcb_changes_seen);
	counter(w, "snp_attestd_vmm_file_writes_total",
		"Rewrites of the VMM certificate file under the exclusive OFD lock.",
		rs->vmm_file_writes);
	counter(w, "snp_attestd_vmm_file_errors_total",
		"Failed rewrites of the VMM certificate file.", rs->vmm_file_errors);

	k = broker_kdsc(b);
	if (!k)
		return;
	kdsc_get_stats(k, &ks);
	metrics_family(w, "snp_attestd_kds_fetches_total", METRICS_COUNTER,
		       "KDS HTTP requests, by outcome.");
	{
		const struct {
			const char *o;
			uint64_t n;
		} os[] = {{"ok", ks.ok},
			  {"not_modified", ks.not_modified},
			  {"not_found", ks.not_found},
			  {"throttled", ks.throttled},
			  {"server_error", ks.server_error},
			  {"other_status", ks.other_status},
			  {"timeout", ks.timeouts},
			  {"bad_body", ks.bad_body},
			  {"transport_error", ks.transport_errors}};
		for (size_t i = 0; i < ELEMENTSOF(os); i++) {
			struct metrics_label l = {"outcome", os[i].o};
			metrics_sample_u64(w, &l, 1, os[i].n);
		}
	}
	counter(w, "snp_attestd_kds_requests_total", "KDS HTTP requests started.", ks.requests);
	counter(w, "snp_attestd_kds_coalesced_total",
		"Fetches that joined a KDS request already in flight for the same key.",
		ks.coalesced);
	counter(w, "snp_attestd_kds_backoff_refused_total",
		"Fetches answered without a request because the key is backing off.",
		ks.backoff_refused);
	counter(w, "snp_attestd_kds_cache_hits_total", "Fetches answered from a fresh cache entry.",
		ks.cache_hits);
	counter(w, "snp_attestd_kds_stale_served_total",
		"Fetches answered from a stale cache entry because KDS could not be reached.",
		ks.stale_served);
	counter(w, "snp_attestd_kds_cache_write_errors_total", "Failed cache writes.",
		ks.cache_write_errors);
	counter(w, "snp_attestd_kds_received_bytes_total", "KDS response body bytes received.",
		ks.bytes);
}

static void render_ctl(struct metrics *x, struct metrics_writer *w)
{
	struct ctl_stats cs;

	if (ctl_get_stats(x->m, &cs) < 0)
		return;
	counter(w, "snp_attestd_control_requests_total",
		"Control-socket requests answered (snpctl).", cs.requests);
	counter(w, "snp_attestd_control_errors_total",
		"Control-socket requests answered with an error.", cs.errors);
	counter(w, "snp_attestd_control_refused_total",
		"Control-socket requests refused for lack of authorisation.", cs.refused);
	counter(w, "snp_attestd_control_dropped_total",
		"Control-socket connections dropped (oversized, idle, too many).", cs.dropped);
	gauge(w, "snp_attestd_control_clients", "Control-socket connections open now.",
	      (double)cs.clients);
}

int render(struct metrics *x, char **ret_text, size_t *ret_len)
{
	const struct broker *b = broker_get(x->m);
	struct metrics_writer w;
	int r;

	metrics_writer_init(&w);
	metrics_family(&w, "snp_attestd_build_info", METRICS_GAUGE,
		       "Build of the running daemon (value 1).");
	{
		struct metrics_label l = {"version", PACKAGE_VERSION};
		metrics_sample_u64(&w, &l, 1, 1);
	}
	gauge(&w, "snp_attestd_ready", "1 once the daemon has reported READY.",
	      x->m->ready ? 1 : 0);
	counter(&w, "snp_attestd_config_reloads_total", "Configuration reloads applied.",
		x->m->reloads);
	counter(&w, "snp_attestd_config_reload_failures_total",
		"Configuration reloads refused (the running configuration stays).",
		x->m->reload_failures);

	metrics_vmset_begin(&x->vmset);
	if (b) {
		broker_vm_foreach(b, collect_vm, x);
		metrics_vmset_end(&x->vmset);
		render_broker(x, &w, b);
		render_platform(&w, b);
		render_vms(x, &w);
	}
	render_core_hists(&w, b);
	metrics_vmm_render(&w, b, &x->vmset);
	render_kds(x, &w);
	render_ctl(x, &w);

	counter(&w, "snp_attestd_metrics_renders_total", "Times the exposition was rendered.",
		++x->renders);
	counter(&w, "snp_attestd_metrics_render_errors_total",
		"Renders that failed or missed a VM (allocation failure).", x->render_errors);
	metrics_family(&w, "snp_attestd_metrics_http_requests_total", METRICS_COUNTER,
		       "HTTP requests to the metrics endpoint, by status code.");
	for (size_t i = 0; i < _HC_MAX; i++) {
		char code[8];
		struct metrics_label l = {"code", code};
		snprintf(code, sizeof(code), "%u", http_codes[i]);
		metrics_sample_u64(&w, &l, 1, x->http[i]);
	}
	metrics_family(&w, "snp_attestd_metrics_connections_dropped_total", METRICS_COUNTER,
		       "Metrics connections closed by the daemon: request not completed within "
		       "request_timeout (deadline), closed to make room for a new one (evicted), "
		       "refused at the limit (refused).");
	{
		const struct {
			const char *reason;
			uint64_t n;
		} ds[] = {{"deadline", x->conn_deadline},
			  {"evicted", x->conn_evicted},
			  {"refused", x->conn_refused}};
		for (size_t i = 0; i < ELEMENTSOF(ds); i++) {
			struct metrics_label l = {"reason", ds[i].reason};
			metrics_sample_u64(&w, &l, 1, ds[i].n);
		}
	}
	gauge(&w, "snp_attestd_metrics_connections", "Metrics HTTP connections open now.",
	      (double)x->n_conns);
	r = metrics_writer_finish(&w, ret_text, ret_len);
	metrics_writer_done(&w);
	if (r < 0)
		x->render_errors++;
	return r;
}
