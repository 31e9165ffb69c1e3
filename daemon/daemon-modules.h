/* SPDX-License-Identifier: Apache-2.0 */
/* daemon-modules: the ordered list of modules the manager starts (daemon-modules.c). */
#pragma once

#include "manager.h"

extern const struct manager_module *const daemon_modules[];
