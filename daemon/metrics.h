/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: the Prometheus endpoint (design §7, docs/metrics.md). Owns the HTTP listener
 * (libmicrohttpd in external epoll mode, driven by the manager's libev loop: no MHD thread, so
 * the broker's data is only read on the loop thread) and the latency histograms. */
#pragma once

#include <stdint.h>

#include "manager.h"

/* VMs with their own per-VM series; the rest are summed into vm="other" (docs/metrics.md). */
#define METRICS_MAX_VM_SERIES 64
/* Connections served at once, and from one peer address. Beyond either, the connection that has
 * waited longest for its request headers is closed to make room (a scraper sends its request
 * at once); if none is waiting, the newcomer is answered 503 and closed. */
#define METRICS_MAX_CONNECTIONS 32
#define METRICS_MAX_PER_PEER 8
/* A scrape within this interval of the last render is answered with the same text, so a
 * client hammering /metrics cannot make the loop render more than 10 times a second. */
#define METRICS_RENDER_MIN_INTERVAL_USEC 100000ull

extern const struct manager_module metrics_module;
