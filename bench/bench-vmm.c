/* SPDX-License-Identifier: Apache-2.0 */
/* bench-vmm: load on a VMM socket as VMMs make it. One thread per VM, each with its own
 * libsnpattest handle, asks for certificates back to back (snpattest_request_certs, then
 * snpattest_done after a 0) for --duration seconds; prints one JSON object: calls, calls/s,
 * latency quantiles of snpattest_request_certs, and the answers by value and source. The same
 * program runs against the daemon and against a do-nothing peer on the same socket type, so
 * the difference is the daemon's. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snpattest.h"

#define HIST_US 100000 /* 1 µs buckets up to 100 ms; slower calls share the last one */

struct vm {
	pthread_t th;
	int idx;
	uint64_t calls, ok, enospc, again, daemon, other_source;
	uint32_t *hist; /* owned */
};

static const char *sock_path;
static double duration = 3.0;
static int timeout_ms = 1000;
static pthread_barrier_t start;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *vm_main(void *arg)
{
	static __thread unsigned char buf[SNPATTEST_MAX_PAGES * 4096];
	struct vm *v = arg;
	struct snpattest *h;
	uint8_t uuid[16] = {0xbe, 0x0c, 0x4a, 0x11, 0, 0, 0x40, 0, 0x80};
	char name[32];
	double end;

	uuid[12] = (uint8_t)(v->idx >> 8);
	uuid[13] = (uint8_t)v->idx;
	snprintf(name, sizeof(name), "bench-%d", v->idx);
	if (snpattest_open(sock_path, uuid, name, &h) < 0) {
		pthread_barrier_wait(&start);
		return NULL;
	}
	snpattest_set_certs_file(h, NULL);
	pthread_barrier_wait(&start);
	end = now_s() + duration;
	while (now_s() < end) {
		uint64_t npages = SNPATTEST_MAX_PAGES;
		double t0 = now_s();
		int ret = snpattest_request_certs(h, buf, &npages, timeout_ms);
		double us = (now_s() - t0) * 1e6;
		unsigned b = us < HIST_US ? (unsigned)us : HIST_US;

		v->hist[b]++;
		v->calls++;
		if (snpattest_last_source(h) == SNPATTEST_SOURCE_DAEMON)
			v->daemon++;
		else
			v->other_source++;
		if (ret == 0) {
			v->ok++;
			snpattest_done(h);
		} else if (ret == ENOSPC) {
			v->enospc++;
		} else {
			v->again++;
		}
	}
	snpattest_close(h);
	return NULL;
}

static double quantile(const uint64_t *hist, uint64_t n, double q)
{
	uint64_t want = (uint64_t)(q * (double)n), seen = 0;

	for (unsigned i = 0; i <= HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i + 0.5;
	}
	return HIST_US;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"vms", required_argument, NULL, 'n'},
					     {"duration", required_argument, NULL, 'd'},
					     {"timeout-ms", required_argument, NULL, 't'},
					     {0}};
	uint64_t *hist, tot[6] = {0};
	struct vm *vms;
	int n = 16, c;
	double t0, t1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench-vmm --socket PATH [--vms N] [--duration S] "
					"[--timeout-ms MS]\n");
			return 2;
		}
	}
	if (!sock_path || n < 1 || n > 4096 || duration <= 0) {
		fprintf(stderr, "bench-vmm: --socket is required; --vms 1..4096; --duration > 0\n");
		return 2;
	}
	vms = calloc((size_t)n, sizeof(*vms));
	hist = calloc(HIST_US + 1, sizeof(*hist));
	if (!vms || !hist || pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0)
		return 1;
	for (int i = 0; i < n; i++) {
		vms[i].idx = i;
		vms[i].hist = calloc(HIST_US + 1, sizeof(uint32_t));
		if (!vms[i].hist || pthread_create(&vms[i].th, NULL, vm_main, &vms[i]) != 0)
			return 1;
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	for (int i = 0; i < n; i++)
		pthread_join(vms[i].th, NULL);
	t1 = now_s();
	for (int i = 0; i < n; i++) {
		tot[0] += vms[i].calls;
		tot[1] += vms[i].ok;
		tot[2] += vms[i].enospc;
		tot[3] += vms[i].again;
		tot[4] += vms[i].daemon;
		tot[5] += vms[i].other_source;
		for (unsigned b = 0; b <= HIST_US; b++)
			hist[b] += vms[i].hist[b];
		free(vms[i].hist);
	}
	printf("{\"vms\":%d,\"seconds\":%.3f,\"calls\":%llu,\"calls_per_s\":%.1f,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"ok\":%llu,\"enospc\":%llu,"
	       "\"again\":%llu,\"from_daemon\":%llu,\"other_source\":%llu,\"per_vm\":[",
	       n, t1 - t0, (unsigned long long)tot[0], (double)tot[0] / (t1 - t0),
	       quantile(hist, tot[0], 0.5), quantile(hist, tot[0], 0.99),
	       quantile(hist, tot[0], 0.999), (unsigned long long)tot[1],
	       (unsigned long long)tot[2], (unsigned long long)tot[3], (unsigned long long)tot[4],
	       (unsigned long long)tot[5]);
	for (int i = 0; i < n; i++)
		printf("%s%llu", i ? "," : "", (unsigned long long)vms[i].ok);
	printf("]}\n");
	free(hist);
	free(vms);
	return 0;
}
