/* SPDX-License-Identifier: Apache-2.0 */
/* sched-policy: admission policy (design §4, §5). Pure: time is a parameter.
 * (Named sched-policy.h, not sched.h, so it does not shadow the system <sched.h>.) */
#pragma once

#include <stdint.h>
