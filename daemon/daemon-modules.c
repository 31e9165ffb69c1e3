/* SPDX-License-Identifier: Apache-2.0 */
/* daemon-modules: start order. Each module is added here as it is written. */
#include "daemon-modules.h"

#include <stddef.h>

#include "broker.h"
#include "ctl.h"
#include "metrics.h"

const struct manager_module *const daemon_modules[] = {
	&broker_module,
	&metrics_module,
	&ctl_module,
	NULL,
};
