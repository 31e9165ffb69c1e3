/* SPDX-License-Identifier: Apache-2.0 */
/* bench-util: what the benchmark programs share: the --vms list of fleet sizes and the
 * handling of the options every fleet-size benchmark takes (--vms, --help). */
#pragma once

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Parses "N,N,..." (decimal, each in [lo, hi], at most max of them) into sizes; *n is set to
 * how many. Returns 0, or -EINVAL for an empty list, a bad number or too many. */
static inline int bench_parse_sizes(const char *arg, uint64_t lo, uint64_t hi, uint64_t *sizes,
				    size_t max, size_t *n)
{
	const char *s = arg;

	*n = 0;
	while (*s) {
		char *end;
		unsigned long long v;

		if (*s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || v < lo || v > hi || *n == max || (*end && *end != ','))
			return -EINVAL;
		sizes[(*n)++] = v;
		s = *end ? end + 1 : end;
		if (*end && !*s)
			return -EINVAL; /* a trailing comma */
	}
	return *n ? 0 : -EINVAL;
}

/* How many sizes --vms may list, and the largest fleet it accepts. */
#define BENCH_SIZES_MAX 8
#define BENCH_VMS_MAX 1000000

/* The shared options; each program puts them at the head of its getopt_long table. */
/* clang-format off */
#define BENCH_FLEET_OPTIONS \
	{"vms", required_argument, NULL, 'v'}, {"help", no_argument, NULL, 'h'}
/* clang-format on */

/* One program's fleet sizes (its defaults until --vms replaces them) and what the shared
 * options print. */
struct bench_fleet {
	const char *prog;  /* prefix of error messages */
	const char *usage; /* the --help text */
	uint64_t vms_min;  /* the smallest fleet --vms accepts */
	uint64_t sizes[BENCH_SIZES_MAX];
	size_t n_sizes;
};

/* getopt_long over the program's table (BENCH_FLEET_OPTIONS first), answering the shared
 * options here. Returns the next of the program's own options, 0 once all are read, or -1 when
 * main should exit with *ret_status: 0 after printing the usage, 2 after a bad --vms (reported
 * here) or an option getopt_long refused (it reported that). */
static inline int bench_fleet_getopt(struct bench_fleet *f, int argc, char **argv,
				     const struct option *opts, int *ret_status)
{
	for (;;) {
		int c = getopt_long(argc, argv, "", opts, NULL);

		switch (c) {
		case -1:
			return 0;
		case 'v':
			if (bench_parse_sizes(optarg, f->vms_min, BENCH_VMS_MAX, f->sizes,
					      BENCH_SIZES_MAX, &f->n_sizes) < 0) {
				fprintf(stderr, "%s: bad --vms (%llu..%u, up to %u)\n", f->prog,
					(unsigned long long)f->vms_min, BENCH_VMS_MAX,
					BENCH_SIZES_MAX);
				*ret_status = 2;
				return -1;
			}
			break;
		case 'h':
			fputs(f->usage, stdout);
			*ret_status = 0;
			return -1;
		case '?':
			*ret_status = 2;
			return -1;
		default:
			return c;
		}
	}
}
