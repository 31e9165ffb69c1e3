/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit: fixed-window rate limiter for log lines a guest can trigger. Pure: the caller
 * passes the current time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	uint64_t interval_usec;
	uint32_t burst;
	uint64_t window_start;
	uint32_t used;
	uint64_t suppressed; /* events dropped in the current window (reported on the next pass) */
};

static inline void ratelimit_init(struct ratelimit *rl, uint64_t interval_usec, uint32_t burst)
{
	*rl = (struct ratelimit){.interval_usec = interval_usec, .burst = burst};
}

/* True if the event may pass at now. When a new window opens, *ret_suppressed (if not NULL)
 * receives the number of events dropped in the previous one so the caller can say so. */
bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t *ret_suppressed);
