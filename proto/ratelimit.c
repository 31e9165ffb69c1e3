/* SPDX-License-Identifier: Apache-2.0 */
/* ratelimit: fixed-window limiter. Pure. */
#include "ratelimit.h"

#include <stddef.h>

bool ratelimit_pass(struct ratelimit *rl, uint64_t now_usec, uint64_t *ret_suppressed)
{
	if (rl->used == 0 && rl->window_start == 0)
		rl->window_start = now_usec;
	if (now_usec < rl->window_start || now_usec - rl->window_start >= rl->interval_usec) {
		if (ret_suppressed)
			*ret_suppressed = rl->suppressed;
		rl->window_start = now_usec;
		rl->used = 0;
		rl->suppressed = 0;
	} else if (ret_suppressed) {
		*ret_suppressed = 0;
	}
	if (rl->used < rl->burst) {
		rl->used++;
		return true;
	}
	rl->suppressed++;
	return false;
}
