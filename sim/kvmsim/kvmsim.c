/* SPDX-License-Identifier: Apache-2.0 */
/* snp-kvmsim: command line, the run (start, churn, hostile traffic, end) and the summary.
 * The kernel-side behaviour is documented in README.md beside this file. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kvmsim.h"
#include "util.h"

#define KVS_CHURN_INTERVAL_S 0.2
#define KVS_MALFORMED_INTERVAL_S 0.01

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: snp-kvmsim --state DIR --vms N (--requests K | --duration S) [OPTIONS]\n"
		"Plays the kernel side of the snp_attest netlink ABI over NETLINK_USERSOCK and\n"
		"runs N simulated SNP guests that behave like the Linux guest driver.\n\n"
		"  --state DIR         simulation state directory (shared with snp-kdssim)\n"
		"  --product NAME      milan|genoa|turin; creates the state if DIR has none\n"
		"  --vms N             number of guests (default 1)\n"
		"  --requests K        requests per guest, then stop\n"
		"  --duration S        run for S seconds (real time)\n"
		"  --rate R            requests per second per guest (default 10; 0 = back to "
		"back)\n"
		"  --total-rate R      the quiet guests together request at R per second, evenly\n"
		"                      spaced, each request going to the next idle guest in turn\n"
		"                      (replaces --rate for them; when every quiet guest is busy\n"
		"                      the request waits; pace_missed: still waiting at the end)\n"
		"  --noisy N           the first N guests are noisy ...\n"
		"  --noisy-rate R      ... and request at R per second (default 100)\n"
		"  --churn             remove and add VMs during the run (VM_REMOVE / VM_ADD)\n"
		"  --time-scale F      scale the driver's 2 s retry delay and 60 s budget (default "
		"1)\n"
		"  --psp-delay-ms MS   PSP time per report (default 8)\n"
		"  --no-broker         no daemon: admit every request, empty certificate table\n"
		"  --kernel MODEL      broker (default: the snp_attest netlink ABI) or upstream\n"
		"                      (Linux 7.0: extended report requests exit to a VMM that\n"
		"                      asks snp-attestd through libsnpattest; the rest go\n"
		"                      straight to the PSP, unadmitted)\n"
		"  --vmm-socket PATH   upstream: the daemon's VMM socket (default\n"
		"                      /run/snp-attestd/vmm.sock)\n"
		"  --vmm-certs-file P  upstream: the certificate file the VMM falls back to\n"
		"                      (default: none, an empty table)\n"
		"  --wait-broker S     wait up to S seconds for a REGISTER before starting guests\n"
		"  --failopen-ms MS    with no broker registered, answer BUSY for at most MS ms\n"
		"                      (real time), then serve requests without one, unadmitted\n"
		"                      and with an empty certificate table, until a broker\n"
		"                      registers again (the kernel's fail-open; default %u)\n"
		"  --broker-required   never fail open: BUSY for as long as no broker is there\n"
		"  --linger S          keep the VMs S seconds after the run before removing them\n"
		"  --settle S          after adding every guest, wait S seconds before the first\n"
		"                      request (the broker absorbs the burst of VM_ADDs first);\n"
		"                      --duration counts from the end of the wait\n"
		"  --port N            netlink port id to bind (default 0x%08x)\n"
		"  --load              no cryptography: pre-built messages, the PSP answers at "
		"once\n"
		"  --malformed N       send N malformed netlink messages to the broker\n"
		"  --trust-ark PEM     ARK the guests trust (default: the simulated KDS's ARK)\n"
		"  --dump DIR          write every report and certificate table to DIR\n"
		"  --seed N            workload seed (default 1)\n"
		"  --json              print the summary as JSON\n"
		"  --quiet             no progress messages on stderr\n"
		"  --help              this text\n\n"
		"Exit status: 0 when the run had no VMPCK wipe and no verification failure, 1\n"
		"otherwise, 2 for a usage error.\n",
		KVS_FAILOPEN_MS_DEFAULT, SNPA_USERSOCK_KERNEL_PORT);
}

static int parse_double(const char *s, double min, double max, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v;

	if (parse_u64(s, &v) < 0 || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* --- the run --- */

static bool all_finished(const struct kvs *k)
{
	for (size_t i = 0; i < k->n_guests; i++) {
		enum kvs_gstate s = k->guests[i]->state;
		if (s != KVS_G_FINISHED && s != KVS_G_WIPED)
			return false;
	}
	return true;
}

static bool churn_left(const struct kvs *k)
{
	/* In --requests mode churn replaces at most N guests, so the run ends. */
	return k->o.churn && !k->stopping && k->o.requests && k->ks.churn_added < k->o.vms;
}

void kvs_check_end(struct kvs *k)
{
	if (!k->started || churn_left(k))
		return;
	if (all_finished(k) && k->in_psp == 0)
		ev_break(k->loop, EVBREAK_ALL);
}

static int add_guest(struct kvs *k, double delay)
{
	struct kvs_guest *g;
	int r;

	if (k->n_guests == k->cap_guests) {
		size_t cap = k->cap_guests ? k->cap_guests * 2 : 64;
		struct kvs_guest **n = realloc(k->guests, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		k->guests = n;
		k->cap_guests = cap;
	}
	r = kvs_guest_new(k, ++k->next_vm_id, (unsigned)k->n_guests, &g);
	if (r < 0)
		return r;
	k->guests[k->n_guests++] = g;
	kvs_kernel_vm_add(k, g);
	kvs_guest_start(g, delay);
	return 0;
}

static void start_guests(struct kvs *k)
{
	if (k->started)
		return;
	k->started = true;
	ev_timer_stop(k->loop, &k->wait_timer);
	k->t_start = kvs_now();
	for (unsigned i = 0; i < k->o.vms; i++) {
		double iv = k->o.rate > 0 ? 1.0 / k->o.rate : 0.01;
		int r = add_guest(k, k->o.settle + kvs_rand01(&k->rng) * iv);
		if (r < 0) {
			fprintf(stderr, "snp-kvmsim: cannot start guest %u: %s\n", i,
				snp_strerror(r));
			k->exit_code = 1;
			ev_break(k->loop, EVBREAK_ALL);
			return;
		}
	}
	/* Adding 10,000 guests takes seconds and the loop's clock stood still meanwhile: without
	 * an update the run's end (and every timer below) would count from before the set-up, and
	 * a short run would end before its first request. */
	ev_now_update(k->loop);
	if (k->o.duration > 0) {
		ev_timer_set(&k->end_timer, k->o.settle + k->o.duration, 0.);
		ev_timer_start(k->loop, &k->end_timer);
	}
	if (k->o.total_rate > 0 && k->o.noisy < k->o.vms) {
		/* Short ticks (0.2 ms at most) so that requests do not leave in bursts; the
		 * window starts once every guest is added (10,000 VM_ADDs take a while). */
		double iv = 1.0 / k->o.total_rate;
		iv = iv < 0.0002 ? 0.0002 : iv;
		k->pace_t0 = kvs_now() + k->o.settle;
		ev_timer_set(&k->pace_timer, k->o.settle, iv);
		ev_timer_start(k->loop, &k->pace_timer);
	}
	if (k->o.churn) {
		ev_timer_set(&k->churn_timer, k->o.settle + KVS_CHURN_INTERVAL_S,
			     KVS_CHURN_INTERVAL_S);
		ev_timer_start(k->loop, &k->churn_timer);
	}
	if (k->o.malformed) {
		ev_timer_set(&k->malformed_timer, k->o.settle + KVS_MALFORMED_INTERVAL_S,
			     KVS_MALFORMED_INTERVAL_S);
		ev_timer_start(k->loop, &k->malformed_timer);
	}
	kvs_check_end(k);
}

/* --total-rate: issue every request due by now, each to the next idle quiet guest. When every
 * quiet guest has a request out, the rest wait for the next tick (a backlog, caught up later);
 * what is still due at the end is reported as pace_missed. */
static void on_pace(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, pace_timer);
	uint64_t due = (uint64_t)((kvs_now() - k->pace_t0) * k->o.total_rate) + 1;

	(void)loop;
	(void)revents;
	while (k->pace_issued < due && !k->stopping) {
		bool sent = false;
		for (size_t n = 0; n < k->n_guests && !sent; n++) {
			struct kvs_guest *g = k->guests[(k->pace_next + n) % k->n_guests];
			if (kvs_guest_paced(g) && kvs_guest_kick(g)) {
				k->pace_next = (k->pace_next + n + 1) % k->n_guests;
				sent = true;
			}
		}
		if (!sent)
			break;
		k->pace_issued++;
	}
	k->pace_missed = due - k->pace_issued;
}

static void on_wait(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, wait_timer);

	(void)loop;
	(void)revents;
	if (!kvs_kernel_registered(k) && !k->o.quiet)
		fprintf(stderr, "snp-kvmsim: no broker registered; starting anyway\n");
	start_guests(k);
}

static void on_end(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, end_timer);

	(void)loop;
	(void)revents;
	k->stopping = true;
	ev_timer_stop(k->loop, &k->churn_timer);
	ev_timer_stop(k->loop, &k->pace_timer);
	k->pace_t1 = kvs_now();
	for (size_t i = 0; i < k->n_guests; i++)
		kvs_guest_finish(k->guests[i]);
	kvs_check_end(k);
}

static void on_churn(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, churn_timer);
	struct kvs_guest *victim = NULL;
	size_t live = 0;

	(void)loop;
	(void)revents;
	if (!churn_left(k) && k->o.requests) {
		ev_timer_stop(k->loop, w);
		kvs_check_end(k);
		return;
	}
	/* A random live guest that is not on the PSP (a VM dies between requests or while
	 * its vCPU waits for a verdict; one on the PSP is removed when the call returns). */
	for (size_t i = 0; i < k->n_guests; i++) {
		struct kvs_guest *g = k->guests[i];
		if (!g->live || g->state == KVS_G_WIPED || g->remove_pending)
			continue;
		if (kvs_rand01(&k->rng) * (double)(++live) < 1.0)
			victim = g;
	}
	if (!victim)
		return;
	k->ks.churn_removed++;
	if (victim->state == KVS_G_IN_PSP) {
		victim->remove_pending = true;
	} else {
		if (victim->state == KVS_G_RETRY_WAIT)
			victim->st.abandoned++;
		kvs_kernel_vm_remove(k, victim);
		ev_timer_stop(k->loop, &victim->timer);
		victim->state = KVS_G_FINISHED;
		/* Release the PSP context and buffers; counters stay for the summary. */
		if (victim->pvm)
			victim->pvm = sim_psp_vm_free(victim->pvm);
	}
	k->ks.churn_added++;
	if (add_guest(k, 0.) < 0)
		k->exit_code = 1;
}

static void on_malformed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, malformed_timer);

	(void)loop;
	(void)revents;
	if (k->ks.malformed_sent >= k->o.malformed) {
		ev_timer_stop(k->loop, w);
		return;
	}
	kvs_kernel_send_malformed(k, (unsigned)k->ks.malformed_sent);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct kvs *k = w->data;

	(void)revents;
	if (k->stopping) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_feed_event(loop, &k->end_timer, EV_TIMER);
}

/* --- summary --- */

static void sum_stats(const struct kvs *k, struct kvs_vm_stats *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < k->n_guests; i++) {
		const struct kvs_vm_stats *s = &k->guests[i]->st;
		t->requests += s->requests;
		t->attempts += s->attempts;
		t->completed += s->completed;
		t->busy += s->busy;
		t->invalid_len += s->invalid_len;
		t->fw_errors += s->fw_errors;
		t->vmpck_wipes += s->vmpck_wipes;
		t->verify_failures += s->verify_failures;
		t->msg_failures += s->msg_failures;
		t->reports_verified += s->reports_verified;
		t->keys_ok += s->keys_ok;
		t->payload_errors += s->payload_errors;
		t->abandoned += s->abandoned;
		t->max_busy_streak_s = MAX(t->max_busy_streak_s, s->max_busy_streak_s);
		kvs_hist_merge(&t->lat, &s->lat);
	}
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static int print_json(const struct kvs *k, const struct kvs_vm_stats *t, double dur)
{
	json_t *root, *per_vm;
	char *s;

	per_vm = json_array();
	for (size_t i = 0; i < k->n_guests; i++) {
		const struct kvs_guest *g = k->guests[i];
		json_array_append_new(
			per_vm,
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:b,s:b,s:i}",
				  "vm", (json_int_t)g->vm_id, "requests",
				  (json_int_t)g->st.requests, "completed",
				  (json_int_t)g->st.completed, "busy", (json_int_t)g->st.busy,
				  "invalid_len", (json_int_t)g->st.invalid_len, "fw_errors",
				  (json_int_t)g->st.fw_errors, "vmpck_wipes",
				  (json_int_t)g->st.vmpck_wipes, "verify_failures",
				  (json_int_t)g->st.verify_failures, "reports_verified",
				  (json_int_t)g->st.reports_verified, "p50_ms",
				  ms(kvs_hist_quantile(&g->st.lat, 0.5)), "p99_ms",
				  ms(kvs_hist_quantile(&g->st.lat, 0.99)), "max_busy_streak_s",
				  g->st.max_busy_streak_s, "noisy", g->noisy, "wiped",
				  g->state == KVS_G_WIPED, "buf_pages", (int)g->buf_pages));
	}
	root = json_pack(
		"{s:i,s:f,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
		"s:{s:f,s:f,s:f},s:o}",
		"vms", (int)k->o.vms, "duration_s", dur, "mode",
		k->o.upstream	 ? "upstream"
		: k->o.no_broker ? "no-broker"
				 : "broker",
		"totals", "requests", (json_int_t)t->requests, "completed",
		(json_int_t)t->completed, "busy", (json_int_t)t->busy, "invalid_len",
		(json_int_t)t->invalid_len, "fw_errors", (json_int_t)t->fw_errors, "vmpck_wipes",
		(json_int_t)t->vmpck_wipes, "verify_failures", (json_int_t)t->verify_failures,
		"reports_verified", (json_int_t)t->reports_verified, "attempts",
		(json_int_t)t->attempts, "msg_failures", (json_int_t)t->msg_failures, "keys_ok",
		(json_int_t)t->keys_ok, "abandoned", (json_int_t)t->abandoned, "latency_ms", "p50",
		ms(kvs_hist_quantile(&t->lat, 0.5)), "p99", ms(kvs_hist_quantile(&t->lat, 0.99)),
		"max", ms(t->lat.max_us), "per_vm", per_vm);
	if (!root)
		return -ENOMEM;
	json_object_set_new(root, "total_rate", json_real(k->o.total_rate));
	json_object_set_new(root, "settle_s", json_real(k->o.settle));
	json_object_set_new(root, "pace_missed", json_integer((json_int_t)k->pace_missed));
	json_object_set_new(root, "paced_requests", json_integer((json_int_t)k->pace_issued));
	json_object_set_new(root, "pace_window_s",
			    json_real(k->pace_t1 > k->pace_t0 ? k->pace_t1 - k->pace_t0 : 0.));
	json_object_set_new(
		root, "kernel",
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			  "rx_msgs", (json_int_t)k->ks.rx_msgs, "rx_malformed",
			  (json_int_t)k->ks.rx_malformed, "rx_foreign",
			  (json_int_t)k->ks.rx_foreign, "tx_msgs", (json_int_t)k->ks.tx_msgs,
			  "tx_dropped", (json_int_t)k->ks.tx_dropped, "tx_errors",
			  (json_int_t)k->ks.tx_errors, "registrations",
			  (json_int_t)k->ks.registrations, "register_refused",
			  (json_int_t)k->ks.register_refused, "brokers_lost",
			  (json_int_t)k->ks.brokers_lost, "verdicts", (json_int_t)k->ks.verdicts,
			  "verdicts_unknown", (json_int_t)k->ks.verdicts_unknown,
			  "verdict_timeouts", (json_int_t)k->ks.verdict_timeouts, "dumps",
			  (json_int_t)k->ks.dumps, "broker_bugs", (json_int_t)k->ks.broker_bugs,
			  "malformed_sent", (json_int_t)k->ks.malformed_sent, "psp_errors",
			  (json_int_t)k->ks.psp_errors, "churn_removed",
			  (json_int_t)k->ks.churn_removed));
	if (!k->o.no_broker && !k->o.upstream)
		json_object_set_new(root, "failopen",
				    json_pack("{s:I,s:I,s:I,s:b}", "window_ms",
					      (json_int_t)k->o.failopen_ms, "serves",
					      (json_int_t)k->ks.failopen_serves, "periods",
					      (json_int_t)k->ks.failopen_periods, "broker_required",
					      k->o.broker_required));
	if (k->o.upstream) {
		const struct kvs_upstream_stats *u = kvs_upstream_stats(k);
		json_object_set_new(
			root, "upstream",
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "vmm_exits",
				  (json_int_t)u->exits, "direct_to_psp", (json_int_t)u->direct,
				  "ret_ok", (json_int_t)u->ret_ok, "ret_enospc",
				  (json_int_t)u->ret_enospc, "ret_busy", (json_int_t)u->ret_busy,
				  "admitted_by_daemon", (json_int_t)u->admitted, "from_file",
				  (json_int_t)u->from_file, "empty_table", (json_int_t)u->empty,
				  "daemon_busy", (json_int_t)u->daemon_busy, "daemon_enospc",
				  (json_int_t)u->daemon_enospc, "dropped", (json_int_t)u->dropped,
				  "vmm_bugs", (json_int_t)u->vmm_bugs));
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		return -ENOMEM;
	printf("%s\n", s);
	free(s);
	return 0;
}

static void print_human(const struct kvs *k, const struct kvs_vm_stats *t, double dur)
{
	printf("snp-kvmsim: %u VMs (%zu run), %.3f s, %s mode%s\n", k->o.vms, k->n_guests, dur,
	       k->o.upstream	? "upstream"
	       : k->o.no_broker ? "no-broker"
				: "broker",
	       k->o.load ? ", load" : "");
	printf("  requests %llu (attempts %llu), completed %llu, reports verified %llu, keys "
	       "%llu\n",
	       (unsigned long long)t->requests, (unsigned long long)t->attempts,
	       (unsigned long long)t->completed, (unsigned long long)t->reports_verified,
	       (unsigned long long)t->keys_ok);
	printf("  BUSY %llu, INVALID_LEN %llu, firmware errors %llu, abandoned %llu\n",
	       (unsigned long long)t->busy, (unsigned long long)t->invalid_len,
	       (unsigned long long)t->fw_errors, (unsigned long long)t->abandoned);
	printf("  VMPCK wipes %llu, verification failures %llu, bad responses %llu\n",
	       (unsigned long long)t->vmpck_wipes, (unsigned long long)t->verify_failures,
	       (unsigned long long)t->msg_failures);
	printf("  latency p50 %.3f ms, p99 %.3f ms, max %.3f ms; longest BUSY streak %.3f s\n",
	       ms(kvs_hist_quantile(&t->lat, 0.5)), ms(kvs_hist_quantile(&t->lat, 0.99)),
	       ms(t->lat.max_us), t->max_busy_streak_s);
	if (k->o.upstream) {
		const struct kvs_upstream_stats *u = kvs_upstream_stats(k);
		printf("  upstream: %llu VMM exits (ret 0: %llu, of which the daemon admitted "
		       "%llu, "
		       "file %llu, empty %llu; ENOSPC %llu; EAGAIN %llu), %llu straight to the "
		       "PSP\n",
		       (unsigned long long)u->exits, (unsigned long long)u->ret_ok,
		       (unsigned long long)u->admitted, (unsigned long long)u->from_file,
		       (unsigned long long)u->empty, (unsigned long long)u->ret_enospc,
		       (unsigned long long)u->ret_busy, (unsigned long long)u->direct);
	} else if (!k->o.no_broker)
		printf("  netlink: %llu verdicts (%llu unknown/late), %llu timeouts, %llu "
		       "malformed "
		       "received, %llu malformed sent, %llu broker bugs\n",
		       (unsigned long long)k->ks.verdicts,
		       (unsigned long long)k->ks.verdicts_unknown,
		       (unsigned long long)k->ks.verdict_timeouts,
		       (unsigned long long)k->ks.rx_malformed,
		       (unsigned long long)k->ks.malformed_sent,
		       (unsigned long long)k->ks.broker_bugs);
	if (!k->o.no_broker && !k->o.upstream && k->ks.failopen_serves > 0)
		printf("  fail-open: %llu requests served without a broker (window %u ms)\n",
		       (unsigned long long)k->ks.failopen_serves, k->o.failopen_ms);
}

enum {
	OPT_STATE = 256,
	OPT_PRODUCT,
	OPT_VMS,
	OPT_REQUESTS,
	OPT_DURATION,
	OPT_RATE,
	OPT_NOISY,
	OPT_NOISY_RATE,
	OPT_CHURN,
	OPT_TIME_SCALE,
	OPT_PSP_DELAY,
	OPT_NO_BROKER,
	OPT_JSON,
	OPT_DUMP,
	OPT_TRUST_ARK,
	OPT_LOAD,
	OPT_MALFORMED,
	OPT_SEED,
	OPT_WAIT_BROKER,
	OPT_PORT,
	OPT_QUIET,
	OPT_TOTAL_RATE,
	OPT_LINGER,
	OPT_SETTLE,
	OPT_KERNEL,
	OPT_VMM_SOCKET,
	OPT_VMM_CERTS_FILE,
	OPT_FAILOPEN_MS,
	OPT_BROKER_REQUIRED,
	OPT_HELP,
};

static int parse_args(int argc, char **argv, struct kvs_options *o)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, OPT_STATE},
		{"product", required_argument, NULL, OPT_PRODUCT},
		{"vms", required_argument, NULL, OPT_VMS},
		{"requests", required_argument, NULL, OPT_REQUESTS},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"rate", required_argument, NULL, OPT_RATE},
		{"noisy", required_argument, NULL, OPT_NOISY},
		{"noisy-rate", required_argument, NULL, OPT_NOISY_RATE},
		{"churn", no_argument, NULL, OPT_CHURN},
		{"time-scale", required_argument, NULL, OPT_TIME_SCALE},
		{"psp-delay-ms", required_argument, NULL, OPT_PSP_DELAY},
		{"no-broker", no_argument, NULL, OPT_NO_BROKER},
		{"json", no_argument, NULL, OPT_JSON},
		{"dump", required_argument, NULL, OPT_DUMP},
		{"trust-ark", required_argument, NULL, OPT_TRUST_ARK},
		{"load", no_argument, NULL, OPT_LOAD},
		{"malformed", required_argument, NULL, OPT_MALFORMED},
		{"seed", required_argument, NULL, OPT_SEED},
		{"wait-broker", required_argument, NULL, OPT_WAIT_BROKER},
		{"port", required_argument, NULL, OPT_PORT},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"total-rate", required_argument, NULL, OPT_TOTAL_RATE},
		{"linger", required_argument, NULL, OPT_LINGER},
		{"settle", required_argument, NULL, OPT_SETTLE},
		{"kernel", required_argument, NULL, OPT_KERNEL},
		{"vmm-socket", required_argument, NULL, OPT_VMM_SOCKET},
		{"vmm-certs-file", required_argument, NULL, OPT_VMM_CERTS_FILE},
		{"failopen-ms", required_argument, NULL, OPT_FAILOPEN_MS},
		{"broker-required", no_argument, NULL, OPT_BROKER_REQUIRED},
		{"help", no_argument, NULL, OPT_HELP},
		{0},
	};
	uint64_t u = 0;
	int c;

	*o = (struct kvs_options){.vms = 1,
				  .rate = 10,
				  .noisy_rate = 100,
				  .time_scale = 1,
				  .psp_delay_ms = 8,
				  .seed = 1,
				  .port = SNPA_USERSOCK_KERNEL_PORT,
				  .failopen_ms = KVS_FAILOPEN_MS_DEFAULT};
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case OPT_STATE:
			o->state_dir = optarg;
			break;
		case OPT_PRODUCT:
			r = snp_product_from_string(optarg, &o->product);
			break;
		case OPT_VMS:
			r = parse_uint(optarg, 100000, &u);
			o->vms = (unsigned)u;
			if (r >= 0 && u == 0)
				r = -EINVAL;
			break;
		case OPT_REQUESTS:
			r = parse_uint(optarg, UINT32_MAX, &o->requests);
			if (r >= 0 && o->requests == 0)
				r = -EINVAL;
			break;
		case OPT_DURATION:
			r = parse_double(optarg, 0.001, 1e7, &o->duration);
			break;
		case OPT_RATE:
			r = parse_double(optarg, 0, 1e6, &o->rate);
			break;
		case OPT_NOISY:
			r = parse_uint(optarg, 100000, &u);
			o->noisy = (unsigned)u;
			break;
		case OPT_NOISY_RATE:
			r = parse_double(optarg, 0, 1e6, &o->noisy_rate);
			break;
		case OPT_CHURN:
			o->churn = true;
			break;
		case OPT_TIME_SCALE:
			r = parse_double(optarg, 0.0001, 1000, &o->time_scale);
			break;
		case OPT_PSP_DELAY:
			r = parse_uint(optarg, 10000, &u);
			o->psp_delay_ms = (uint32_t)u;
			break;
		case OPT_NO_BROKER:
			o->no_broker = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_DUMP:
			o->dump_dir = optarg;
			break;
		case OPT_TRUST_ARK:
			o->trust_ark = optarg;
			break;
		case OPT_LOAD:
			o->load = true;
			break;
		case OPT_MALFORMED:
			r = parse_uint(optarg, 100000000, &u);
			o->malformed = (unsigned)u;
			break;
		case OPT_SEED:
			r = parse_uint(optarg, UINT64_MAX, &o->seed);
			break;
		case OPT_WAIT_BROKER:
			r = parse_double(optarg, 0, 1e6, &o->wait_broker);
			break;
		case OPT_PORT:
			r = parse_uint(optarg, UINT32_MAX, &u);
			o->port = (uint32_t)u;
			if (r >= 0 && u == 0)
				r = -EINVAL;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_TOTAL_RATE:
			r = parse_double(optarg, 0, 1e6, &o->total_rate);
			break;
		case OPT_LINGER:
			r = parse_double(optarg, 0, 3600, &o->linger);
			break;
		case OPT_SETTLE:
			r = parse_double(optarg, 0, 600, &o->settle);
			break;
		case OPT_KERNEL:
			if (!strcmp(optarg, "upstream"))
				o->upstream = true;
			else if (strcmp(optarg, "broker") != 0)
				r = -EINVAL;
			break;
		case OPT_VMM_SOCKET:
			o->vmm_socket = optarg;
			break;
		case OPT_VMM_CERTS_FILE:
			o->vmm_certs_file = optarg;
			break;
		case OPT_FAILOPEN_MS:
			r = parse_uint(optarg, 3600000, &u);
			o->failopen_ms = (uint32_t)u;
			break;
		case OPT_BROKER_REQUIRED:
			o->broker_required = true;
			break;
		case OPT_HELP:
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "snp-kvmsim: bad value '%s' for --%s\n", optarg,
				opts[c - OPT_STATE].name);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "snp-kvmsim: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->state_dir && !o->load) {
		fprintf(stderr, "snp-kvmsim: --state is required\n");
		return -EINVAL;
	}
	if (!!o->requests == (o->duration > 0)) {
		fprintf(stderr, "snp-kvmsim: give exactly one of --requests and --duration\n");
		return -EINVAL;
	}
	if (o->noisy > o->vms) {
		fprintf(stderr, "snp-kvmsim: --noisy is larger than --vms\n");
		return -EINVAL;
	}
	if (o->upstream && (o->no_broker || o->malformed || o->wait_broker > 0 || o->load)) {
		fprintf(stderr, "snp-kvmsim: --kernel upstream does not go with --no-broker, "
				"--malformed, --wait-broker or --load\n");
		return -EINVAL;
	}
	if (o->broker_required && (o->no_broker || o->upstream)) {
		fprintf(stderr, "snp-kvmsim: --broker-required needs the broker kernel\n");
		return -EINVAL;
	}
	if (o->no_broker && (o->malformed || o->wait_broker > 0)) {
		fprintf(stderr, "snp-kvmsim: --malformed and --wait-broker need a broker\n");
		return -EINVAL;
	}
	return 0;
}

static int setup_platform(struct kvs *k)
{
	struct sim_state_data d;
	int r;

	if (k->o.load)
		return 0;
	r = sim_state_open(k->o.state_dir, k->o.product, &k->state);
	if (r == -ENOENT) {
		fprintf(stderr, "snp-kvmsim: no simulation state in '%s'; pass --product\n",
			k->o.state_dir);
		return r;
	}
	if (r >= 0)
		r = sim_state_read(k->state, &d);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: state '%s': %s\n", k->o.state_dir,
			sim_state_strerror(r));
		return r;
	}
	r = sim_psp_new(k->state, &k->psp);
	if (r >= 0)
		r = sim_psp_set_delay(k->psp, SIM_PSP_OP_REPORT, k->o.psp_delay_ms * 1000u);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: software PSP: %s\n", snp_strerror(r));
		return r;
	}
	r = kvs_verifier_new(k->state, k->o.state_dir, d.product, k->o.trust_ark, &k->ver);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: verifier (KDS CA in %s/kds%s%s): %s\n", k->o.state_dir,
			k->o.trust_ark ? ", trusted ARK " : "",
			k->o.trust_ark ? k->o.trust_ark : "", snp_strerror(r));
		return r;
	}
	if (k->o.dump_dir && mkdir(k->o.dump_dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		fprintf(stderr, "snp-kvmsim: cannot create %s: %s\n", k->o.dump_dir,
			strerror(errno));
		return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct kvs k; /* large (netlink buffers): not on the stack */
	struct kvs_vm_stats t;
	ev_signal sigint, sigterm;
	double dur;
	int r;

	if (parse_args(argc, argv, &k.o) < 0) {
		fprintf(stderr, "Try 'snp-kvmsim --help'.\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	k.loop = ev_default_loop(EVFLAG_AUTO);
	k.rng = k.o.seed;
	k.fd = -1;
	if (setup_platform(&k) < 0) {
		r = 1;
		goto out;
	}
	r = kvs_kernel_open(&k);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: cannot bind netlink usersock port 0x%x: %s\n",
			k.o.port, strerror(-r));
		r = 1;
		goto out;
	}
	r = kvs_psp_worker_start(&k);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: cannot start the PSP worker: %s\n", strerror(-r));
		r = 1;
		goto out_kernel;
	}
	if (k.o.upstream && (r = kvs_upstream_start(&k)) < 0) {
		fprintf(stderr, "snp-kvmsim: cannot start the VMM threads: %s\n", strerror(-r));
		kvs_psp_worker_stop(&k);
		r = 1;
		goto out_kernel;
	}
	ev_timer_init(&k.end_timer, on_end, 0., 0.);
	ev_timer_init(&k.churn_timer, on_churn, 0., 0.);
	ev_timer_init(&k.malformed_timer, on_malformed, 0., 0.);
	ev_timer_init(&k.wait_timer, on_wait, 0., 0.);
	ev_timer_init(&k.pace_timer, on_pace, 0., 0.);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	sigint.data = sigterm.data = &k;
	ev_signal_start(k.loop, &sigint);
	ev_signal_start(k.loop, &sigterm);

	if (!k.o.no_broker && k.o.wait_broker > 0) {
		ev_timer_set(&k.wait_timer, k.o.wait_broker, 0.);
		ev_timer_start(k.loop, &k.wait_timer);
	} else {
		start_guests(&k);
	}
	ev_run(k.loop, 0);
	dur = k.started ? kvs_now() - k.t_start : 0;

	/* --linger: the VMs stay (idle) a while, so that the broker's per-VM metrics can be read
	 * with the whole run in them. The broker's messages wait in the socket meanwhile. */
	if (k.o.linger > 0) {
		struct timespec ts = {.tv_sec = (time_t)k.o.linger,
				      .tv_nsec = (long)((k.o.linger - floor(k.o.linger)) * 1e9)};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	/* The VMs stop: tell the broker, then wait for the PSP before freeing contexts. */
	for (size_t i = 0; i < k.n_guests; i++)
		kvs_kernel_vm_remove(&k, k.guests[i]);
	kvs_psp_worker_stop(&k);
	sum_stats(&k, &t);
	if (k.o.json)
		(void)print_json(&k, &t, dur);
	else
		print_human(&k, &t, dur);
	kvs_upstream_stop(&k);
	ev_timer_stop(k.loop, &k.end_timer);
	ev_timer_stop(k.loop, &k.churn_timer);
	ev_timer_stop(k.loop, &k.malformed_timer);
	ev_timer_stop(k.loop, &k.wait_timer);
	ev_timer_stop(k.loop, &k.pace_timer);
	ev_signal_stop(k.loop, &sigint);
	ev_signal_stop(k.loop, &sigterm);

	r = k.exit_code || t.vmpck_wipes || t.verify_failures || t.msg_failures ? 1 : 0;
	for (size_t i = 0; i < k.n_guests; i++)
		kvs_guest_free(k.guests[i]);
	free(k.guests);
out_kernel:
	kvs_kernel_close(&k);
out:
	kvs_verifier_free(k.ver);
	sim_psp_free(k.psp);
	sim_state_free(k.state);
	ev_loop_destroy(k.loop);
	return r;
}
