/* SPDX-License-Identifier: Apache-2.0 */
/* sched: admission policy (design §5). Pure: time is a parameter. */
#pragma once

#include <stdint.h>
