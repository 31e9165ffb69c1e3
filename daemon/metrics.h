/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: the Prometheus endpoint (design §7, docs/metrics.md). Owns the HTTP listener
 * (libmicrohttpd in external epoll mode, driven by the manager's libev loop: no MHD thread, so
 * the broker's data is only read on the loop thread) and the latency histograms. */
#pragma once

#include <stdint.h>

#include "manager.h"

/* VMs with their own per-VM series; the rest are summed into vm="other" (docs/metrics.md). */
#define METRICS_MAX_VM_SERIES 64
/* Connections served at once; more wait in the listen backlog. */
#define METRICS_MAX_CONNECTIONS 8
/* A scrape within this interval of the last render is answered with the same text, so a
 * client hammering /metrics cannot make the loop render more than 10 times a second. */
#define METRICS_RENDER_MIN_INTERVAL_USEC 100000ull

extern const struct manager_module metrics_module;

/* Observations the broker makes (no-ops when the metrics module is not running):
 * the time a request waited from GUEST_REQ to its ALLOW, and the firmware time the kernel
 * reported in GUEST_DONE. Cheap: one bucket increment each. */
void metrics_observe_admission_wait(struct manager *m, uint64_t usec);
void metrics_observe_fw_time(struct manager *m, uint64_t vm_id, uint64_t ns);

