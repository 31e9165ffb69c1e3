/* SPDX-License-Identifier: Apache-2.0 */
/* bench-housekeeping: how long the admission core's once-a-second housekeeping holds the event
 * loop at several fleet sizes (daemon/admission.c, adm_housekeeping), in process, with the
 * caches evicted before each call as the loop's other work would. Every VM is known, a few have
 * a request in flight, none is stale. Prints one JSON object; measures, never asserts a speed.
 * Not run by bench/run.sh (bench/RESULTS.md, "Latency at 10,000 VMs", quotes it). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "admission.h"
#include "bench-util.h"
#include "msg.h"

#define BH_EVICT_BYTES (32u << 20)

static int bh_allow(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req,
		    const uint8_t *table, size_t len)
{
	return 0;
}

static int bh_busy(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req)
{
	return 0;
}

static int bh_invalid_len(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req,
			  uint32_t npages)
{
	return 0;
}

static const struct adm_transport_ops bh_ops = {
	.name = "bench",
	.allow = bh_allow,
	.busy = bh_busy,
	.invalid_len = bh_invalid_len,
};

static double bh_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mean and best time of one adm_housekeeping call (us) with n VMs, `inflight` of them with a
 * request in flight. */
static int bh_measure(unsigned n, unsigned inflight, unsigned calls, unsigned char *evict,
		      double *ret_mean_us, double *ret_best_us)
{
	struct adm_config c = {.guest_log_interval_usec = 1000000, .guest_log_burst = 5};
	struct adm_hooks h = {0};
	struct adm_transport t;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	const char *why = NULL;
	double sum = 0, best = 1e9;
	struct adm *a;
	int r;

	if (!loop)
		return -ENOMEM;
	sched_config_defaults(&c.sched);
	c.sched.psp_concurrency = inflight;
	r = adm_new(loop, &c, &h, &a, &why);
	if (r < 0) {
		ev_loop_destroy(loop);
		return r;
	}
	adm_transport_init(&t, &bh_ops);
	for (unsigned i = 1; i <= n && r >= 0; i++)
		r = adm_vm_add(a, &t, i, NULL, true, false, 0);
	for (unsigned i = 1; i <= inflight && r >= 0; i++) {
		struct adm_request q = {.req_id = i,
					.msg = {.seqno = 1, .type = MSG_REPORT_REQ, .version = 1},
					.has_msg = true};
		adm_request(a, &t, 1 + (uint64_t)(i - 1) * (n / inflight), &q);
	}
	if (r >= 0 && adm_inflight(a) != inflight)
		r = -EIO;
	for (unsigned k = 0; k < calls && r >= 0; k++) {
		double t0;

		for (size_t i = 0; i < BH_EVICT_BYTES; i += 64)
			evict[i]++;
		t0 = bh_now();
		adm_housekeeping(a);
		t0 = bh_now() - t0;
		sum += t0;
		best = t0 < best ? t0 : best;
	}
	adm_free(a);
	ev_loop_destroy(loop);
	if (r < 0)
		return r;
	*ret_mean_us = sum / calls * 1e6;
	*ret_best_us = best * 1e6;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		BENCH_FLEET_OPTIONS,
		{"calls", required_argument, NULL, 'c'},
		{0},
	};
	const unsigned inflight = 8;
	struct bench_fleet fleet = {
		.prog = "bench-housekeeping",
		.usage = "Usage: bench-housekeeping [--vms N,N...] [--calls K]\n"
			 "Times adm_housekeeping at each fleet size (8 requests in flight, caches\n"
			 "evicted before each of K calls); prints JSON.\n",
		.vms_min = inflight,
		.sizes = {10, 100, 1000, 10000},
		.n_sizes = 4,
	};
	unsigned calls = 20;
	unsigned char *evict;
	int c, status;

	/* --calls is this program's only option of its own. */
	while ((c = bench_fleet_getopt(&fleet, argc, argv, opts, &status)) > 0) {
		char *end;

		calls = (unsigned)strtoul(optarg, &end, 10);
		if (*end || calls < 1 || calls > 100000) {
			fprintf(stderr, "bench-housekeeping: bad --calls\n");
			return 2;
		}
	}
	if (c < 0)
		return status;
	evict = calloc(1, BH_EVICT_BYTES);
	if (!evict)
		return 1;
	printf("{\"calls\":%u,\"inflight\":%u,\"results\":[", calls, inflight);
	for (size_t k = 0; k < fleet.n_sizes; k++) {
		double mean, best;
		int r = bh_measure((unsigned)fleet.sizes[k], inflight, calls, evict, &mean, &best);

		if (r < 0) {
			printf("]}\n");
			fprintf(stderr, "bench-housekeeping: %u VMs: %s\n",
				(unsigned)fleet.sizes[k], strerror(-r));
			free(evict);
			return 1;
		}
		printf("%s{\"vms\":%u,\"mean_us\":%.1f,\"best_us\":%.1f}", k ? "," : "",
		       (unsigned)fleet.sizes[k], mean, best);
	}
	printf("]}\n");
	free(evict);
	return 0;
}
