/* SPDX-License-Identifier: Apache-2.0 */
/* bench-util: what the benchmark programs share: the --vms list of fleet sizes. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
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
