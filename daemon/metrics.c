/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: GET /metrics over libmicrohttpd, driven from the libev loop (MHD's epoll fd is
 * watched with an ev_io, its timeout with an ev_timer). Reads the broker's counters on the
 * loop thread and never writes them; the text is built in memory and sent without blocking.
 * The listening socket is ours, not MHD's: we accept, apply the connection limits (total, per
 * peer address, evicting the oldest connection still waiting for its request headers) and the
 * per-request deadline, and hand the connection to MHD. (MHD in external epoll mode takes its
 * listening socket out of its epoll set at its connection limit and only puts it back inside a
 * later MHD_run; nothing woke the loop for that run once those connections had closed, so the
 * endpoint stopped accepting for good.) */
#include "metrics.h"
#include "metrics-vmm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "broker.h"
#include "config.h"
#include "log.h"
/* The pure writer shares the module's name; "metrics.h" here is this directory's header. */
#include "../proto/metrics.h"
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
	500,   1000,  2000,  3000,  4000,  5000,  6000,	 7000,	8000,
	9000,  10000, 11000, 12000, 15000, 20000, 30000, 50000, 100000,
};
#define VM_WAIT_NBOUNDS ELEMENTSOF(vm_wait_bounds_usec)

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

/* The per-VM counter vector fed to the series set (proto/metrics.h). */
enum {
	VC_REQ_REPORT,
	VC_REQ_KEY,
	VC_REQ_OTHER,
	VC_OUT_SUCCESS,
	VC_OUT_FW_ERROR,
	VC_OUT_EXPIRED,
	VC_OUT_INVALID_LEN,
	VC_BUSY_FIRST, /* one per enum sched_busy_reason, index by reason (NONE unused) */
	VC_ANOM_FIRST = VC_BUSY_FIRST + _SCHED_BUSY_MAX,
	VC_ADMITTED = VC_ANOM_FIRST + _SCHED_ANOM_MAX,
	VC_FORCED,
	VC_FW_NSEC,
	VC_WAIT_FIRST, /* VM_WAIT_NBOUNDS + 1 bucket counts (not cumulative) */
	VC_WAIT_USEC = VC_WAIT_FIRST + VM_WAIT_NBOUNDS + 1,
	_VC_MAX,
};

/* Label values: snake_case, stable (docs/metrics.md). */
static const char *const busy_names[_SCHED_BUSY_MAX] = {
	[SCHED_BUSY_NONE] = NULL,
	[SCHED_BUSY_INFLIGHT] = "in_flight",
	[SCHED_BUSY_QUOTA] = "quota",
	[SCHED_BUSY_OVERLOAD] = "overload",
	[SCHED_BUSY_NO_VM] = "no_vm",
	[SCHED_BUSY_PAUSED] = "paused",
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

enum http_code_idx { HC_200, HC_404, HC_405, HC_500, _HC_MAX };
static const unsigned http_codes[_HC_MAX] = { 200, 404, 405, 500 };

/* One HTTP connection, from our accept to MHD's close notification. */
struct metrics_conn {
	struct metrics *x; /* borrowed */
	struct metrics_conn *prev, *next;
	int fd;                      /* owned by MHD once added */
	struct MHD_Connection *mc;   /* borrowed; NULL until MHD reports it started */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
	ev_timer deadline;
	ev_tstamp since;   /* start of the current request: accept, or the end of the last answer */
	bool answering;    /* headers complete, the answer not yet completed */
	bool doomed;       /* shut down by us (deadline or eviction); MHD closes it next */
};

struct metrics {
	struct manager *m; /* borrowed */
	struct MHD_Daemon *mhd; /* owned; NULL: not listening */
	int listen_fd;          /* owned while mhd is set */
	ev_io accept_io;        /* listen_fd */
	struct metrics_conn *conns; /* owned list: every connection MHD holds */
	size_t n_conns;         /* not doomed */
	uint64_t conn_deadline, conn_evicted, conn_refused;
	char *listen;           /* owned: the address in use, NULL with socket activation */
	bool activated;         /* listening on systemd's "metrics" socket */
	ev_io io;               /* MHD's epoll fd */
	ev_timer timer;         /* MHD's next timeout */
	struct metrics_vmset vmset;
	char *cache;            /* owned: last rendered text */
	size_t cache_len;
	uint64_t cache_at;      /* manager_now_usec of the render */
	uint64_t renders;
	uint64_t render_errors;
	uint64_t http[_HC_MAX];
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
	uint64_t c[_VC_MAX] = { 0 };

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
			struct metrics_label l[2] = { { "vm", rows[i].id }, { label, values[k] } };
			if (!values[k])
				continue;
			metrics_sample_u64(w, l, label ? 2 : 1, rows[i].c[first + k]);
		}
}

static void render_vms(struct metrics *x, struct metrics_writer *w)
{
	static const char *const types[] = { "report", "key", "other" };
	static const char *const outcomes[] = { "success", "firmware_error", "expired",
						"invalid_len" };
	static const char *const one[] = { "" };
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
		struct metrics_label l = { "vm", rows[i].id };
		metrics_sample_double(w, &l, 1, (double)rows[i].c[VC_FW_NSEC] / 1e9);
	}
	metrics_family(w, "snp_attestd_vm_admission_wait_seconds", METRICS_HISTOGRAM,
		       "Time from GUEST_REQ to ALLOW for admitted requests, per VM (1 ms buckets "
		       "around one PSP report slot).");
	for (size_t i = 0; i < n; i++) {
		struct metrics_label l = { "vm", rows[i].id };
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
		{ "bootloader", &t.bootloader }, { "tee", &t.tee }, { "snp", &t.snp },
		{ "microcode", &t.microcode },   { "fmc", &t.fmc },
	};

	tcb_decode(raw, p, &t);
	for (size_t i = 0; i < ELEMENTSOF(comps); i++) {
		struct metrics_label l[2] = { { "tcb", which }, { "component", comps[i].name } };
		if (strcmp(comps[i].name, "fmc") == 0 && !snp_product_has_fmc(p))
			continue;
		metrics_sample_u64(w, l, 2, *comps[i].v);
	}
}

static void render_platform(struct metrics_writer *w, const struct broker *b)
{
	const struct store_platform *pf = broker_platform(b);
	const struct store_chain *ch = broker_chain(b);
	uint64_t committed;
	char source[32];

	metrics_family(w, "snp_attestd_platform_info", METRICS_GAUGE,
		       "The platform: product and firmware backend (value 1).");
	{
		struct metrics_label l[2] = { { "product", snp_product_name(pf->product) },
					      { "backend", broker_backend_name(b) } };
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
			{ "source", source },
			{ "key", ch->vlek ? "vlek" : "vcek" },
			{ "root", ch->sim_root ? "simulator" : "amd" },
			{ "product", snp_product_name(ch->product) },
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
		} vs[] = { { "allow", st->verdicts_allow },
			   { "busy", st->verdicts_busy },
			   { "invalid_len", st->verdicts_invalid_len } };
		for (size_t i = 0; i < ELEMENTSOF(vs); i++) {
			struct metrics_label l = { "verdict", vs[i].v };
			metrics_sample_u64(w, &l, 1, vs[i].n);
		}
	}
	metrics_family(w, "snp_attestd_busy_answers_total", METRICS_COUNTER,
		       "BUSY answers over all VMs, by reason (no_vm: the VM was not known).");
	for (size_t r = 0; r < _SCHED_BUSY_MAX; r++) {
		struct metrics_label l = { "reason", busy_names[r] };
		if (busy_names[r])
			metrics_sample_u64(w, &l, 1, st->busy_by_reason[r]);
	}
	metrics_family(w, "snp_attestd_sequence_anomalies_total", METRICS_COUNTER,
		       "Guest message sequence anomalies over all VMs, by kind.");
	for (size_t a = 0; a < _SCHED_ANOM_MAX; a++) {
		struct metrics_label l = { "kind", anomaly_names[a] };
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
		"wait for the PSP in the kernel.", st->admissions_over_slots);
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
			struct metrics_label rx = { "direction", "rx" }, tx = { "direction", "tx" };
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
			} es[] = { { "send", ns->tx_errors },
				   { "malformed", ns->malformed },
				   { "malformed_answered", ns->malformed_answered },
				   { "foreign_sender", ns->foreign_sender },
				   { "overrun", ns->enobufs } };
			for (size_t i = 0; i < ELEMENTSOF(es); i++) {
				struct metrics_label l = { "kind", es[i].k };
				metrics_sample_u64(w, &l, 1, es[i].n);
			}
		}
		counter(w, "snp_attestd_netlink_register_attempts_total",
			"REGISTER messages sent to claim the broker role.", ns->register_attempts);
		counter(w, "snp_attestd_netlink_registrations_total",
			"Times the broker role was granted.", ns->registrations);
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
		struct metrics_label ok = { "result", "succeeded" }, bad = { "result", "failed" };
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
		} os[] = { { "ok", ks.ok },
			   { "not_modified", ks.not_modified },
			   { "not_found", ks.not_found },
			   { "throttled", ks.throttled },
			   { "server_error", ks.server_error },
			   { "other_status", ks.other_status },
			   { "timeout", ks.timeouts },
			   { "bad_body", ks.bad_body },
			   { "transport_error", ks.transport_errors } };
		for (size_t i = 0; i < ELEMENTSOF(os); i++) {
			struct metrics_label l = { "outcome", os[i].o };
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

static int render(struct metrics *x, char **ret_text, size_t *ret_len)
{
	const struct broker *b = broker_get(x->m);
	struct metrics_writer w;
	int r;

	metrics_writer_init(&w);
	metrics_family(&w, "snp_attestd_build_info", METRICS_GAUGE,
		       "Build of the running daemon (value 1).");
	{
		struct metrics_label l = { "version", PACKAGE_VERSION };
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
		struct metrics_label l = { "code", code };
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
		} ds[] = { { "deadline", x->conn_deadline },
			   { "evicted", x->conn_evicted },
			   { "refused", x->conn_refused } };
		for (size_t i = 0; i < ELEMENTSOF(ds); i++) {
			struct metrics_label l = { "reason", ds[i].reason };
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

/* --- HTTP --- */

static enum MHD_Result reply(struct metrics *x, struct MHD_Connection *c, enum http_code_idx hc,
			     const char *body, size_t len, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (hc == HC_405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	x->http[hc]++;
	r = MHD_queue_response(c, http_codes[hc], resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static const char index_text[] = "snp-attestd: metrics at /metrics\n";
	static const char not_found[] = "not found\n";
	struct metrics *x = cls;
	const union MHD_ConnectionInfo *ci;
	uint64_t now;

	(void)version;
	(void)upload_data;
	/* The headers are complete: this connection is being answered, not waiting. */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		((struct metrics_conn *)ci->socket_context)->answering = true;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(x, c, HC_405, "method not allowed\n", 19, "text/plain");
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* a body on GET is ignored */
		return MHD_YES;
	}
	(void)con_cls;
	if (strcmp(url, "/") == 0)
		return reply(x, c, HC_200, index_text, sizeof(index_text) - 1, "text/plain");
	if (strcmp(url, "/metrics") != 0)
		return reply(x, c, HC_404, not_found, sizeof(not_found) - 1, "text/plain");

	now = manager_now_usec();
	if (!x->cache || now - x->cache_at >= METRICS_RENDER_MIN_INTERVAL_USEC) {
		char *text = NULL;
		size_t len = 0;
		if (render(x, &text, &len) < 0)
			return reply(x, c, HC_500, "render failed\n", 14, "text/plain");
		free(x->cache);
		x->cache = text;
		x->cache_len = len;
		x->cache_at = now;
	}
	return reply(x, c, HC_200, x->cache, x->cache_len, METRICS_CONTENT_TYPE);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	(void)cls;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(buf, sizeof(buf), fmt, ap);
#pragma GCC diagnostic pop
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("metrics http: %s", buf);
}

static void mhd_arm(struct metrics *x)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	ev_timer_stop(x->m->loop, &x->timer);
	if (MHD_get_timeout(x->mhd, &ms) == MHD_YES) {
		ev_timer_set(&x->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(x->m->loop, &x->timer);
	}
}

/* Lets MHD do what it can now, and sets the timer to its next timeout. */
static void mhd_kick(struct metrics *x)
{
	if (!x->mhd)
		return;
	MHD_run(x->mhd);
	mhd_arm(x);
}

static void on_mhd_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics *x = container_of(w, struct metrics, io);

	(void)loop;
	(void)revents;
	mhd_kick(x);
}

static void on_mhd_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct metrics *x = container_of(w, struct metrics, timer);

	(void)loop;
	(void)revents;
	mhd_kick(x);
}

/* --- connections: limits and deadlines --- */

static ev_tstamp request_timeout(const struct metrics *x)
{
	return (ev_tstamp)x->m->conf.metrics_request_timeout_usec / 1e6;
}

/* Shuts the connection down under MHD: MHD sees the end of it and closes it (and tells us).
 * Its slot counts as free from now on. */
static void conn_doom(struct metrics_conn *k)
{
	if (k->doomed)
		return;
	k->doomed = true;
	k->x->n_conns--;
	ev_timer_stop(k->x->m->loop, &k->deadline);
	(void)shutdown(k->fd, SHUT_RDWR);
}

static void conn_arm(struct metrics_conn *k)
{
	struct ev_loop *loop = k->x->m->loop;

	ev_timer_stop(loop, &k->deadline);
	if (k->doomed)
		return;
	ev_timer_set(&k->deadline, MAX(k->since + request_timeout(k->x) - ev_now(loop), 0.), 0.);
	ev_timer_start(loop, &k->deadline);
}

/* The request (headers from the start, then the answer) did not complete in time. */
static void on_conn_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct metrics_conn *k = container_of(w, struct metrics_conn, deadline);
	struct metrics *x = k->x;

	(void)loop;
	(void)revents;
	x->conn_deadline++;
	log_debug("metrics http: closing a connection that did not complete its request in time");
	conn_doom(k);
	mhd_kick(x);
}

static void conn_free(struct metrics_conn *k)
{
	struct metrics *x = k->x;

	ev_timer_stop(x->m->loop, &k->deadline);
	if (!k->doomed)
		x->n_conns--;
	if (k->prev)
		k->prev->next = k->next;
	else
		x->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
}

static bool same_peer(const struct metrics_conn *a, const struct metrics_conn *b)
{
	if (a->peer.sa.sa_family != b->peer.sa.sa_family)
		return false;
	if (a->peer.sa.sa_family == AF_INET)
		return a->peer.in.sin_addr.s_addr == b->peer.in.sin_addr.s_addr;
	if (a->peer.sa.sa_family == AF_INET6)
		return memcmp(&a->peer.in6.sin6_addr, &b->peer.in6.sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return true; /* AF_UNIX (socket activation): one peer */
}

/* MHD tells when a connection starts and ends; ours is found by its socket. */
static void on_mhd_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct metrics *x = cls;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		for (struct metrics_conn *k = x->conns; ci && k; k = k->next)
			if (!k->mc && k->fd == ci->connect_fd) {
				k->mc = c;
				*socket_context = k;
				break;
			}
		return;
	}
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		conn_free(*socket_context);
		*socket_context = NULL;
	}
}

/* An answer went out (or failed): the connection waits for its next request, with a new
 * deadline. */
static void on_mhd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			     enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct metrics_conn *k;

	(void)cls;
	(void)con_cls;
	(void)toe;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	k = ci ? ci->socket_context : NULL;
	if (!k)
		return;
	k->answering = false;
	k->since = ev_now(k->x->m->loop);
	conn_arm(k);
}

/* Room for a connection from the peer of n: at most METRICS_MAX_CONNECTIONS in all and
 * METRICS_MAX_PER_PEER per peer address. When full, the connection that has waited longest for
 * its request headers (of that peer, or of anyone when the total is reached) makes room. Every
 * connection is offered to MHD as soon as it is accepted, and a scraper sends its request at
 * once, so slow, silent or dead connections are the ones that go. false: no room. */
static bool make_room(struct metrics *x, const struct metrics_conn *n)
{
	struct metrics_conn *victim = NULL;
	size_t same = 0;
	bool per_peer;

	for (struct metrics_conn *k = x->conns; k; k = k->next)
		if (!k->doomed && same_peer(k, n))
			same++;
	per_peer = same >= METRICS_MAX_PER_PEER;
	if (!per_peer && x->n_conns < METRICS_MAX_CONNECTIONS)
		return true;
	for (struct metrics_conn *k = x->conns; k; k = k->next) {
		if (k->doomed || k->answering)
			continue;
		if (per_peer && !same_peer(k, n))
			continue;
		if (!victim || k->since < victim->since)
			victim = k;
	}
	if (!victim)
		return false;
	x->conn_evicted++;
	log_debug("metrics http: closing the connection that waited longest for its request "
		  "to make room");
	conn_doom(victim);
	return true;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	struct metrics *x = container_of(w, struct metrics, accept_io);

	(void)revents;
	/* A bounded batch per wake-up: a connect storm cannot starve the loop. */
	for (int i = 0; i < 32 && x->mhd; i++) {
		struct metrics_conn *k = calloc(1, sizeof(*k));
		socklen_t len;
		int fd;

		if (!k)
			break;
		len = sizeof(k->peer);
		fd = accept4(x->listen_fd, &k->peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			free(k);
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(-errno, "metrics http: accept failed");
			break;
		}
		k->x = x;
		k->fd = fd;
		k->since = ev_now(loop);
		if (!make_room(x, k)) {
			x->conn_refused++;
			(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			free(k);
			continue;
		}
		ev_init(&k->deadline, on_conn_deadline);
		k->next = x->conns;
		if (x->conns)
			x->conns->prev = k;
		x->conns = k;
		x->n_conns++;
		conn_arm(k);
		/* MHD closes fd whatever the outcome; on failure our record was never claimed. */
		if (MHD_add_connection(x->mhd, fd, &k->peer.sa, len) != MHD_YES && !k->mc)
			conn_free(k);
		/* Reads the request if it is there (the connection is then no longer waiting) and
		 * closes connections whose peers left, before the next accept weighs them. */
		mhd_kick(x);
	}
}

/* The listening socket systemd passed with FileDescriptorName=metrics, or -ENOENT. */
static int activated_fd(void)
{
	char **names = NULL;
	int n, fd = -ENOENT;

	n = sd_listen_fds_with_names(0, &names);
	for (int i = 0; i < n; i++) {
		if (fd < 0 && names && names[i] && strcmp(names[i], "metrics") == 0)
			fd = SD_LISTEN_FDS_START + i;
		if (names)
			free(names[i]);
	}
	free(names);
	if (fd >= 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		log_error("The socket named \"metrics\" from systemd is not a listening stream socket");
		return -ENOTSOCK;
	}
	return fd;
}

static int listen_on(const char *addr)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa = { 0 };
	socklen_t salen;
	int fd, one = 1;

	if (metrics_listen_split(addr, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
		salen = sizeof(sa.in);
	} else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		salen = sizeof(sa.in6);
	} else {
		return -EINVAL;
	}
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa.sa.sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &sa.sa, salen) < 0 || listen(fd, 16) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void http_stop(struct metrics *x)
{
	if (!x->mhd)
		return;
	ev_io_stop(x->m->loop, &x->io);
	ev_io_stop(x->m->loop, &x->accept_io);
	ev_timer_stop(x->m->loop, &x->timer);
	MHD_stop_daemon(x->mhd); /* closes every connection, telling us */
	x->mhd = NULL;
	while (x->conns)
		conn_free(x->conns); /* any MHD did not report (none expected) */
	close(x->listen_fd);
	x->listen_fd = -1;
	free(x->listen);
	x->listen = NULL;
	x->activated = false;
}

/* Starts serving on the listening socket fd (taken over, closed on failure). MHD gets no
 * listening socket: on_accept hands it each connection. Its connection limit is above ours so
 * that it never refuses one we admitted (a doomed connection still holds an MHD slot briefly);
 * its idle timeout is a backstop to our per-request deadline. */
static int http_start(struct metrics *x, int fd)
{
	const union MHD_DaemonInfo *info;
	unsigned idle = (unsigned)((x->m->conf.metrics_request_timeout_usec + 999999) / 1000000);
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	x->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET, 0,
				  NULL, NULL, on_request, x,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, x,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * METRICS_MAX_CONNECTIONS),
				  MHD_OPTION_CONNECTION_TIMEOUT, idle,
				  MHD_OPTION_NOTIFY_CONNECTION, on_mhd_connection, x,
				  MHD_OPTION_NOTIFY_COMPLETED, on_mhd_completed, x,
				  MHD_OPTION_END);
	if (!x->mhd) {
		close(fd);
		return -EIO;
	}
	info = MHD_get_daemon_info(x->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		MHD_stop_daemon(x->mhd);
		x->mhd = NULL;
		close(fd);
		return -EIO;
	}
	x->listen_fd = fd;
	ev_io_init(&x->io, on_mhd_io, info->epoll_fd, EV_READ);
	ev_io_start(x->m->loop, &x->io);
	ev_io_init(&x->accept_io, on_accept, fd, EV_READ);
	ev_io_start(x->m->loop, &x->accept_io);
	ev_timer_init(&x->timer, on_mhd_timer, 0., 0.);
	mhd_arm(x);
	return 0;
}

/* Listens as configured: systemd's socket first, else conf metrics_listen ("" = off). A bind
 * failure is logged and the daemon runs without metrics (guests matter more); a malformed
 * address is a configuration error. */
static int http_configure(struct metrics *x)
{
	const char *addr = x->m->conf.metrics_listen ? x->m->conf.metrics_listen : "";
	int fd, r;

	fd = activated_fd();
	if (fd == -ENOTSOCK)
		return fd;
	if (fd >= 0) {
		r = http_start(x, fd);
		if (r < 0)
			return log_error_errno(r, "Cannot serve metrics on the systemd socket");
		x->activated = true;
		log_info("Metrics on the socket passed by systemd");
		return 0;
	}
	if (!*addr) {
		log_info("Metrics endpoint off ([metrics] listen is empty)");
		return 0;
	}
	fd = listen_on(addr);
	if (fd == -EINVAL)
		return log_error_errno(fd,
				       "Invalid [metrics] listen '%s': expected ADDRESS:PORT or [IPV6]:PORT with a numeric address",
				       addr);
	if (fd < 0) {
		log_error_errno(fd, "Cannot listen for metrics on %s; running without metrics", addr);
		return 0;
	}
	r = http_start(x, fd);
	if (r < 0) {
		log_error_errno(r, "Cannot start the metrics HTTP server; running without metrics");
		return 0;
	}
	x->listen = strdup(addr);
	if (!x->listen) {
		http_stop(x);
		return -ENOMEM;
	}
	log_info("Metrics on http://%s/metrics", addr);
	return 0;
}

/* --- module --- */

static void metrics_stop(struct manager *m)
{
	struct metrics *x = m->metrics;

	if (!x)
		return;
	http_stop(x);
	metrics_vmset_done(&x->vmset);
	free(x->cache);
	free(x);
	m->metrics = NULL;
}

static int metrics_start(struct manager *m)
{
	struct metrics *x;
	int r;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->m = m;
	x->listen_fd = -1;
	m->metrics = x;
	r = metrics_vmset_init(&x->vmset, _VC_MAX, METRICS_MAX_VM_SERIES,
				       (uint64_t)time(NULL) ^ 0x6d657472u);
	if (r < 0) {
		metrics_stop(m);
		return r;
	}
	r = http_configure(x);
	if (r < 0) {
		metrics_stop(m);
		return r;
	}
	return 0;
}

static int metrics_reload(struct manager *m, const struct conf *old)
{
	struct metrics *x = m->metrics;
	const char *now_addr = m->conf.metrics_listen ? m->conf.metrics_listen : "";

	(void)old;
	if (!x || x->activated)
		return 0; /* systemd's socket is kept whatever the file says */
	if (x->listen && strcmp(x->listen, now_addr) == 0)
		return 0;
	if (*now_addr) {
		char host[INET6_ADDRSTRLEN];
		uint16_t port;
		if (metrics_listen_split(now_addr, host, sizeof(host), &port) < 0)
			return log_error_errno(-EINVAL,
					       "Invalid [metrics] listen '%s'; keeping the current endpoint",
					       now_addr);
	}
	http_stop(x);
	return http_configure(x);
}

const struct manager_module metrics_module = {
	.name = "metrics",
	.start = metrics_start,
	.stop = metrics_stop,
	.reload = metrics_reload,
};
