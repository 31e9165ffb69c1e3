/* SPDX-License-Identifier: Apache-2.0 */
/* bench-sched: CPU cost of the pure admission policy (sched_request + sched_done) at several
 * fleet sizes, in process; prints one JSON object. Measures, never asserts a speed. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-util.h"
#include "msg.h"
#include "sched-policy.h"
#include "util.h"

struct bs_ctx {
	uint64_t admits, busies;
	uint64_t last_admit_vm, last_admit_req;
};

static void on_event(void *userdata, const struct sched_event *ev)
{
	struct bs_ctx *c = userdata;

	if (ev->type == SCHED_EV_ADMIT) {
		c->admits++;
		c->last_admit_vm = ev->vm_id;
		c->last_admit_req = ev->req_id;
	} else if (ev->type == SCHED_EV_BUSY) {
		c->busies++;
	}
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One fleet of n VMs with unlimited quota. The order of VMs is a fixed stride through the
 * fleet, so consecutive requests touch unrelated table entries (as real guests do). */
struct bs_fleet {
	struct sched *s;
	struct bs_ctx ctx;
	uint64_t *seq; /* per VM: the next expected seqno */
	size_t n, pos, stride;
	uint64_t now, req;
};

static void fleet_free(struct bs_fleet *f)
{
	sched_free(f->s);
	free(f->seq);
}

static int fleet_init(struct bs_fleet *f, size_t n)
{
	struct sched_config c;
	int r;

	*f = (struct bs_fleet){.n = n, .now = 1000000};
	sched_config_defaults(&c);
	c.quota.rate_milli = SCHED_RATE_MILLI_MAX;
	c.quota.burst = SCHED_BURST_MAX;
	r = sched_new(&c, on_event, &f->ctx, &f->s);
	if (r < 0)
		return r;
	f->seq = calloc(n, sizeof(*f->seq));
	if (!f->seq) {
		fleet_free(f);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		f->seq[i] = 1;
		r = sched_vm_add(f->s, 1000 + i, f->now);
		if (r < 0) {
			fleet_free(f);
			return r;
		}
	}
	/* An odd stride near the golden ratio of n: coprime with n when n is a power of 2 and
	 * in practice for the sizes used; the loop below also handles a short cycle. */
	f->stride = n > 2 ? (size_t)((double)n * 0.618) | 1 : 1;
	return 0;
}

static size_t fleet_next(struct bs_fleet *f)
{
	f->pos = (f->pos + f->stride) % f->n;
	return f->pos;
}

static int fleet_request(struct bs_fleet *f, size_t i, struct sched_decision *d)
{
	struct sched_msg m = {
		.seqno = f->seq[i],
		.type = MSG_REPORT_REQ,
		.version = 1,
		.vmpck = 0,
		.size = 96,
	};

	return sched_request(f->s, 1000 + i, ++f->req, &m, f->now, d);
}

/* Pattern "direct": the slot is free, each request is admitted at once and done. */
static int run_direct(struct bs_fleet *f, uint64_t iters)
{
	for (uint64_t k = 0; k < iters; k++) {
		struct sched_decision d;
		size_t i = fleet_next(f);
		int r;

		f->now += 10;
		r = fleet_request(f, i, &d);
		if (r < 0)
			return r;
		if (d.verdict != SCHED_ADMIT)
			return -EPROTO;
		r = sched_done(f->s, 1000 + i, f->req, f->now + 5, SCHED_OUTCOME_SUCCESS);
		if (r < 0)
			return r;
		f->seq[i] += 2;
	}
	return 0;
}

/* Pattern "queued": one request always waits behind the one in flight, so every request goes
 * through the queue and is admitted by the previous one's sched_done. */
static int run_queued(struct bs_fleet *f, uint64_t iters)
{
	struct sched_decision d;
	size_t cur = fleet_next(f);
	uint64_t cur_req;
	int r;

	r = fleet_request(f, cur, &d);
	if (r < 0)
		return r;
	if (d.verdict != SCHED_ADMIT)
		return -EPROTO;
	cur_req = f->req;
	for (uint64_t k = 0; k < iters; k++) {
		size_t nxt = fleet_next(f);
		uint64_t admits = f->ctx.admits;

		if (nxt == cur)
			nxt = fleet_next(f);
		f->now += 10;
		r = fleet_request(f, nxt, &d);
		if (r < 0)
			return r;
		if (d.verdict != SCHED_QUEUED)
			return -EPROTO;
		r = sched_done(f->s, 1000 + cur, cur_req, f->now + 5, SCHED_OUTCOME_SUCCESS);
		if (r < 0)
			return r;
		if (f->ctx.admits != admits + 1 || f->ctx.last_admit_req != f->req)
			return -EPROTO;
		f->seq[cur] += 2;
		cur = nxt;
		cur_req = f->req;
	}
	r = sched_done(f->s, 1000 + cur, cur_req, f->now + 5, SCHED_OUTCOME_SUCCESS);
	if (r < 0)
		return r;
	f->seq[cur] += 2;
	return 0;
}

/* Best (lowest) ns per request over `rounds` rounds of `iters` requests: the minimum is the
 * figure least disturbed by other load on the machine. */
static int measure(size_t n, bool queued, uint64_t iters, unsigned rounds, double *ret_ns)
{
	struct bs_fleet f;
	double best = 0;
	int r;

	r = fleet_init(&f, n);
	if (r < 0)
		return r;
	/* Warm-up: touches every VM once. */
	r = queued ? run_queued(&f, n) : run_direct(&f, n);
	for (unsigned k = 0; r >= 0 && k < rounds; k++) {
		uint64_t t0 = cpu_ns();
		double ns;

		r = queued ? run_queued(&f, iters) : run_direct(&f, iters);
		ns = (double)(cpu_ns() - t0) / (double)iters;
		if (k == 0 || ns < best)
			best = ns;
	}
	if (r >= 0 && f.ctx.busies)
		r = -EPROTO;
	if (r >= 0)
		r = sched_selfcheck(f.s);
	fleet_free(&f);
	if (r < 0)
		return r;
	*ret_ns = best;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		BENCH_FLEET_OPTIONS,
		{"iterations", required_argument, NULL, 'i'},
		{"rounds", required_argument, NULL, 'r'},
		{0},
	};
	struct bench_fleet fleet = {
		.prog = "bench-sched",
		.usage = "Usage: bench-sched [--vms N,N...] [--iterations K] [--rounds R]\n"
			 "CPU time per sched_request+sched_done pair (best of R rounds of K),\n"
			 "for a free slot (direct) and through the queue (queued). JSON out.\n",
		.vms_min = 2,
		.sizes = {10, 10000},
		.n_sizes = 2,
	};
	uint64_t iters = 200000, v;
	unsigned rounds = 7;
	int c, status;

	while ((c = bench_fleet_getopt(&fleet, argc, argv, opts, &status)) > 0) {
		if (c == 'i') {
			if (parse_u64(optarg, &iters) < 0 || iters == 0 || iters > 1000000000) {
				fprintf(stderr, "bench-sched: bad --iterations\n");
				return 2;
			}
		} else { /* 'r' */
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > 1000) {
				fprintf(stderr, "bench-sched: bad --rounds\n");
				return 2;
			}
			rounds = (unsigned)v;
		}
	}
	if (c < 0)
		return status;
	printf("{\"iterations\":%llu,\"rounds\":%u,\"results\":[", (unsigned long long)iters,
	       rounds);
	for (size_t k = 0; k < fleet.n_sizes; k++) {
		double direct, queued;
		int r = measure(fleet.sizes[k], false, iters, rounds, &direct);

		if (r >= 0)
			r = measure(fleet.sizes[k], true, iters, rounds, &queued);
		if (r < 0) {
			printf("]}\n");
			fprintf(stderr, "bench-sched: %llu VMs: %s\n",
				(unsigned long long)fleet.sizes[k], snp_strerror(r));
			return 1;
		}
		printf("%s{\"vms\":%llu,\"direct_ns\":%.1f,\"queued_ns\":%.1f}", k ? "," : "",
		       (unsigned long long)fleet.sizes[k], direct, queued);
	}
	printf("]}\n");
	return 0;
}
