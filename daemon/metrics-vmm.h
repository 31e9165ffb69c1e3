/* SPDX-License-Identifier: Apache-2.0 */
/* metrics-vmm: the VMM socket's series (docs/metrics.md): its connections and answers, every
 * refusal by reason, and an info series naming (UUID, name) each VMM-socket VM that has its own
 * per-VM series, so an operator can tell those VMs apart. Rendering only: the numbers are the
 * transport's. */
#pragma once

#include "metrics.h"

struct broker;
struct metrics_writer;
struct metrics_vmset;

void metrics_vmm_render(struct metrics_writer *w, const struct broker *b,
			const struct metrics_vmset *set);
