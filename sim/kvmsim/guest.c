/* SPDX-License-Identifier: Apache-2.0 */
/* kvmsim guest: a state machine per VM that behaves like the Linux sev-guest driver (facts
 * §1.5): one request at a time, BUSY retry, INVALID_LEN resize, VMPCK wipe. No threads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "certtable.h"
#include "exitinfo.h"
#include "kvmsim.h"
#include "util.h"

/* The driver's timings (SNP_REQ_RETRY_DELAY, SNP_REQ_MAX_RETRY_DURATION), before scaling. */
#define KVS_RETRY_DELAY_S 2.0
#define KVS_MAX_RETRY_S 60.0
#define KVS_DEFAULT_PAGES 4u

uint64_t kvs_rand(uint64_t *s)
{
	/* splitmix64: good enough for workload choices, reproducible with --seed. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double kvs_rand01(uint64_t *s)
{
	return (double)(kvs_rand(s) >> 11) / (double)(1ull << 53);
}

/* --- latency histogram --- */

static unsigned hist_bucket(uint64_t us)
{
	unsigned msb;

	if (us < 16)
		return (unsigned)us;
	msb = 63u - (unsigned)__builtin_clzll(us);
	if (msb > 42)
		return KVS_HIST_BUCKETS - 1;
	return (msb - 3) * 16 + (unsigned)((us >> (msb - 4)) & 15);
}

static uint64_t bucket_upper(unsigned b)
{
	unsigned msb, sub;

	if (b < 16)
		return b;
	msb = b / 16 + 3;
	sub = b % 16;
	return (((uint64_t)(16 + sub + 1)) << (msb - 4)) - 1;
}

void kvs_hist_add(struct kvs_hist *h, uint64_t us)
{
	h->b[hist_bucket(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

void kvs_hist_merge(struct kvs_hist *into, const struct kvs_hist *h)
{
	for (unsigned i = 0; i < KVS_HIST_BUCKETS; i++)
		into->b[i] += h->b[i];
	into->n += h->n;
	into->max_us = MAX(into->max_us, h->max_us);
}

uint64_t kvs_hist_quantile(const struct kvs_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < KVS_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return MIN(bucket_upper(i), h->max_us);
	}
	return h->max_us;
}

/* --- the guest --- */

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

int kvs_guest_new(struct kvs *k, uint64_t vm_id, unsigned index, struct kvs_guest **ret)
{
	struct kvs_guest *g;
	int r;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->k = k;
	g->vm_id = vm_id;
	g->asid = (uint32_t)(vm_id & 0xffffffffu);
	g->rng = k->o.seed * 1000003ull + vm_id;
	g->noisy = index < k->o.noisy;
	g->target = k->o.requests;
	/* Most guests offer the 16 KiB the configfs-tsm path uses; some offer one page or none
	 * so that INVALID_LEN and the resize are exercised. */
	switch (index % 8) {
	case 5:
		g->buf_pages = 1;
		break;
	case 7:
		g->buf_pages = 0;
		break;
	default:
		g->buf_pages = KVS_DEFAULT_PAGES;
		break;
	}
	g->req_page = calloc(1, MSG_PAGE_SIZE);
	g->resp_page = calloc(1, MSG_PAGE_SIZE);
	g->certbuf = calloc(SNPA_NPAGES_MAX, CERTTABLE_PAGE_SIZE);
	if (!g->req_page || !g->resp_page || !g->certbuf) {
		kvs_guest_free(g);
		return -ENOMEM;
	}
	if (!k->o.load) {
		struct sim_vm_config cfg = {.vm_id = vm_id, .policy = SIM_KVS_POLICY};
		put_le64(cfg.measurement, vm_id);
		r = sim_psp_vm_new(k->psp, &cfg, &g->pvm);
		if (r >= 0)
			r = sim_psp_vm_vmpck(g->pvm, 0, g->vmpck);
		if (r < 0) {
			kvs_guest_free(g);
			return r;
		}
	}
	ev_timer_init(&g->timer, on_timer, 0., 0.);
	g->timer.data = g;
	g->state = KVS_G_IDLE;
	*ret = g;
	return 0;
}

/* Releases what a removed guest no longer needs; its counters stay for the summary. */
static void guest_release(struct kvs_guest *g)
{
	ev_timer_stop(g->k->loop, &g->timer);
	if (g->pvm)
		g->pvm = sim_psp_vm_free(g->pvm);
	free(g->req_page);
	free(g->resp_page);
	free(g->certbuf);
	g->req_page = g->resp_page = g->certbuf = NULL;
	memset(g->vmpck, 0, sizeof(g->vmpck));
}

void kvs_guest_free(struct kvs_guest *g)
{
	if (!g)
		return;
	guest_release(g);
	free(g);
}

static double interval(const struct kvs_guest *g)
{
	double rate = g->noisy ? g->k->o.noisy_rate : g->k->o.rate;

	return rate > 0 ? 1.0 / rate : 0.0;
}

static void arm(struct kvs_guest *g, double delay)
{
	ev_timer_stop(g->k->loop, &g->timer);
	/* The kernel side borrows this timer for its verdict timeout (on_wait_timer): take it
	 * back, or the next request would never start. */
	ev_set_cb(&g->timer, on_timer);
	ev_timer_set(&g->timer, delay > 0 ? delay : 0., 0.);
	ev_timer_start(g->k->loop, &g->timer);
}

static void finish(struct kvs_guest *g, enum kvs_gstate s)
{
	ev_timer_stop(g->k->loop, &g->timer);
	g->state = s;
	kvs_check_end(g->k);
}

static void wipe(struct kvs_guest *g, const char *why)
{
	struct kvs *k = g->k;

	memset(g->vmpck, 0, sizeof(g->vmpck)); /* snp_disable_vmpck */
	g->st.vmpck_wipes++;
	if (!k->o.quiet)
		fprintf(stderr, "snp-kvmsim: VM %llu: VMPCK wiped (%s)\n",
			(unsigned long long)g->vm_id, why);
	finish(g, KVS_G_WIPED);
}

static void schedule_next(struct kvs_guest *g)
{
	double iv = interval(g);

	if (g->k->stopping || (g->target && g->st.requests >= g->target)) {
		finish(g, KVS_G_FINISHED);
		return;
	}
	g->state = KVS_G_IDLE;
	if (kvs_guest_paced(g)) {
		/* The run's pacer starts its next request (kvs_guest_kick). */
		ev_timer_stop(g->k->loop, &g->timer);
		return;
	}
	/* Jitter keeps the fleet from marching in lockstep. */
	arm(g, iv > 0 ? iv * (0.5 + kvs_rand01(&g->rng)) : 0.);
}

static void attempt(struct kvs_guest *g)
{
	g->st.attempts++;
	kvs_kernel_submit(g->k, g);
}

/* Builds and seals the next request (a new sequence number) and sends it. */
static void start_request(struct kvs_guest *g)
{
	struct kvs *k = g->k;
	uint8_t pt[MSG_KEY_REQ_SIZE_V2 > MSG_REPORT_REQ_SIZE ? MSG_KEY_REQ_SIZE_V2
							     : MSG_REPORT_REQ_SIZE];
	double x = kvs_rand01(&g->rng);
	size_t len;
	int r;

	if (msg_seqno_exhausted(g->counter)) {
		finish(g, KVS_G_FINISHED);
		return;
	}
	g->kind = x < 0.5 ? KVS_KIND_EXT_REPORT : x < 0.8 ? KVS_KIND_REPORT : KVS_KIND_KEY;
	g->req_hdr = (struct msg_hdr){
		.seqno = msg_seqno_request(g->counter),
		.algo = MSG_ALGO_AES_256_GCM,
		.hdr_version = MSG_HDR_VERSION,
		.hdr_sz = MSG_HDR_SIZE,
		.type = g->kind == KVS_KIND_KEY ? MSG_KEY_REQ : MSG_REPORT_REQ,
		.version = 1,
		.vmpck = 0,
	};
	for (size_t i = 0; i < sizeof(g->nonce); i += 8) {
		uint64_t v = kvs_rand(&g->rng);
		memcpy(g->nonce + i, &v, 8);
	}
	if (g->kind == KVS_KIND_KEY) {
		struct msg_key_req kr = {0};
		r = msg_key_req_build(&kr, 1, pt, sizeof(pt));
		len = r > 0 ? (size_t)r : 0;
	} else {
		struct msg_report_req rr = {.vmpl = 0};
		memcpy(rr.report_data, g->nonce, sizeof(rr.report_data));
		msg_report_req_build(&rr, pt);
		len = MSG_REPORT_REQ_SIZE;
	}
	memset(g->req_page, 0, MSG_PAGE_SIZE);
	if (k->o.load) {
		/* Load mode: a pre-built message; the header is all the host ever reads. */
		g->req_hdr.sz = (uint16_t)len;
		msg_hdr_build(&g->req_hdr, g->req_page);
		r = 0;
	} else {
		r = msg_seal(g->vmpck, &g->req_hdr, pt, len, g->req_page, MSG_PAGE_SIZE);
		g->req_hdr.sz = (uint16_t)len;
	}
	if (r < 0) {
		wipe(g, "cannot seal the request");
		return;
	}
	g->st.requests++;
	g->cur_ext = g->kind == KVS_KIND_EXT_REPORT;
	g->cur_npages = g->buf_pages;
	g->override_invalid_len = false;
	g->had_busy = false;
	g->started = kvs_now();
	attempt(g);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kvs_guest *g = w->data;

	(void)loop;
	(void)revents;
	switch (g->state) {
	case KVS_G_IDLE:
		if (g->k->stopping || !g->live)
			finish(g, KVS_G_FINISHED);
		else
			start_request(g);
		break;
	case KVS_G_RETRY_WAIT:
		/* The identical message again: same sequence number, same exit code. */
		if (g->k->stopping || !g->live) {
			g->st.abandoned++;
			finish(g, KVS_G_FINISHED);
		} else {
			attempt(g);
		}
		break;
	case KVS_G_WAIT_VERDICT:
		kvs_kernel_verdict_timeout(g->k, g);
		break;
	default:
		break;
	}
}

bool kvs_guest_paced(const struct kvs_guest *g)
{
	return g->k->o.total_rate > 0 && !g->noisy;
}

void kvs_guest_start(struct kvs_guest *g, double delay)
{
	g->state = KVS_G_IDLE;
	if (!kvs_guest_paced(g))
		arm(g, delay);
}

bool kvs_guest_kick(struct kvs_guest *g)
{
	if (g->state != KVS_G_IDLE || !g->live || g->k->stopping || !g->req_page)
		return false;
	start_request(g);
	return true;
}

void kvs_guest_finish(struct kvs_guest *g)
{
	if (g->state == KVS_G_RETRY_WAIT)
		g->st.abandoned++;
	if (g->state == KVS_G_IDLE || g->state == KVS_G_RETRY_WAIT)
		finish(g, KVS_G_FINISHED);
}

static void dump_file(struct kvs_guest *g, const char *what, const uint8_t *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/vm%llu-%llu.%s", g->k->o.dump_dir,
		 (unsigned long long)g->vm_id, (unsigned long long)g->st.requests, what);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, data, len) != (ssize_t)len)
		fprintf(stderr, "snp-kvmsim: short write to %s\n", path);
	close(fd);
}

/* The table's extent: up to the end of its furthest certificate (the rest is padding). */
static size_t table_extent(const uint8_t *buf, size_t len)
{
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
	size_t n = 0, end = CERTTABLE_ENTRY_SIZE;

	if (certtable_parse(buf, len, e, ELEMENTSOF(e), &n) < 0)
		return len;
	for (size_t i = 0; i < n; i++)
		end = MAX(end, (size_t)e[i].offset + e[i].length);
	end = MAX(end, CERTTABLE_ENTRY_SIZE * (n + 1));
	return MIN(end, len);
}

/* Response of a successful attempt: what verify_and_dec_payload and the caller check. */
static void on_success(struct kvs_guest *g)
{
	struct kvs *k = g->k;
	uint8_t pt[MSG_PAYLOAD_MAX];
	struct msg_hdr rh;
	size_t len = 0;
	int r;

	if (k->o.load) {
		g->st.completed++;
		return;
	}
	r = msg_open(g->vmpck, g->resp_page, MSG_PAGE_SIZE, &rh, pt, sizeof(pt), &len);
	if (r >= 0)
		r = msg_hdr_check_response(&g->req_hdr, &rh);
	if (r < 0) {
		g->st.msg_failures++;
		wipe(g, "response does not verify");
		return;
	}
	g->st.completed++;
	if (g->kind == KVS_KIND_KEY) {
		struct msg_key_rsp kr;
		if (msg_key_rsp_parse(pt, len, &kr) < 0 || kr.status != 0)
			g->st.payload_errors++;
		else
			g->st.keys_ok++;
		return;
	}
	struct msg_report_rsp rr;
	if (msg_report_rsp_parse(pt, len, &rr) < 0) {
		g->st.verify_failures++;
		fprintf(stderr, "snp-kvmsim: VM %llu: malformed REPORT_RSP\n",
			(unsigned long long)g->vm_id);
		return;
	}
	if (rr.status != 0) {
		g->st.payload_errors++;
		return;
	}
	const uint8_t *table = g->table_written ? g->certbuf : NULL;
	size_t tlen = g->table_written ? (size_t)g->cur_npages * CERTTABLE_PAGE_SIZE : 0;
	const char *why = NULL;
	if (k->o.dump_dir) {
		dump_file(g, "report", rr.report, rr.report_size);
		if (table)
			dump_file(g, "certs", table, table_extent(table, tlen));
	}
	r = kvs_verify_report(k->ver, rr.report, rr.report_size, table, tlen, g->nonce, &why);
	if (r < 0) {
		g->st.verify_failures++;
		fprintf(stderr, "snp-kvmsim: VM %llu: report verification failed: %s: %s\n",
			(unsigned long long)g->vm_id, why ? why : "?", snp_strerror(r));
		return;
	}
	g->st.reports_verified++;
}

static void request_done(struct kvs_guest *g)
{
	double now = kvs_now();

	g->counter = (uint32_t)msg_seqno_next_counter(g->counter);
	kvs_hist_add(&g->st.lat, (uint64_t)((now - g->started) * 1e6));
	if (g->had_busy && now - g->first_busy > g->st.max_busy_streak_s)
		g->st.max_busy_streak_s = now - g->first_busy;
}

void kvs_guest_on_answer(struct kvs_guest *g, uint64_t exitinfo2, uint32_t rbx)
{
	struct kvs *k = g->k;
	double now = kvs_now();

	if (!g->req_page) {
		/* Removed while its request was on the PSP: the VM is gone. */
		g->state = KVS_G_FINISHED;
		return;
	}
	if (g->remove_pending) {
		g->remove_pending = false;
		g->state = KVS_G_FINISHED;
		g->st.abandoned++;
		kvs_kernel_vm_remove(k, g);
		guest_release(g);
		kvs_check_end(k);
		return;
	}
	if (exitinfo2 == 0) {
		request_done(g);
		if (g->override_invalid_len) {
			/* The plain re-send succeeded: the caller gets -EIO with INVALID_LEN and
			 * the VMPCK is kept; the response is not decrypted (facts §1.5). */
			g->st.completed++;
		} else {
			on_success(g);
			if (g->state == KVS_G_WIPED)
				return;
		}
		schedule_next(g);
		return;
	}
	if (exitinfo2 == EXITINFO2_BUSY) {
		g->st.busy++;
		if (!g->had_busy) {
			g->had_busy = true;
			g->first_busy = now;
		}
		if (now - g->started >= KVS_MAX_RETRY_S * k->o.time_scale) {
			if (now - g->first_busy > g->st.max_busy_streak_s)
				g->st.max_busy_streak_s = now - g->first_busy;
			wipe(g, "BUSY for longer than the retry budget");
			return;
		}
		g->state = KVS_G_RETRY_WAIT;
		arm(g, KVS_RETRY_DELAY_S * k->o.time_scale);
		return;
	}
	if (exitinfo2 == EXITINFO2_INVALID_LEN && g->cur_ext) {
		/* Record the page count, re-send the same message as a plain request at once;
		 * the next extended request offers the larger buffer (at most 16 KiB). */
		g->st.invalid_len++;
		g->buf_pages = MIN(rbx, SNPA_NPAGES_MAX);
		g->cur_ext = false;
		g->override_invalid_len = true;
		attempt(g);
		return;
	}
	if (g->override_invalid_len) {
		/* The plain re-send after INVALID_LEN failed (a firmware status, INVALID_LEN on a
		 * plain request, the generic VMM error: all -EIO in snp_issue_guest_request).
		 * __handle_guest_request still adds 2 to the sequence number and replaces
		 * exitinfo2 with its INVALID_LEN override, so snp_send_guest_request sees -EIO
		 * with INVALID_LEN and returns without wiping. The firmware did not advance,
		 * though: the next request carries a sequence number it refuses, and that
		 * failure wipes (facts §9.4). Only -ETIMEDOUT (BUSY past the budget, above) wipes
		 * at once. */
		if (exitinfo2 == EXITINFO2_INVALID_LEN)
			g->st.invalid_len++;
		else if ((exitinfo2 >> 32) == 0)
			g->st.fw_errors++;
		request_done(g);
		g->st.completed++; /* ended without a wipe: the caller got -EIO */
		schedule_next(g);
		return;
	}
	if ((exitinfo2 >> 32) == 0)
		g->st.fw_errors++;
	{
		char why[64];
		snprintf(why, sizeof(why), "host answered 0x%016llx",
			 (unsigned long long)exitinfo2);
		wipe(g, why);
	}
}
