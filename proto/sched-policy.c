/* SPDX-License-Identifier: Apache-2.0 */
#include "sched-policy.h"
