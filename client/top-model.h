/* SPDX-License-Identifier: Apache-2.0 */
/* top-model: the numbers of 'snpctl top' from two samples of the daemon's VM counters. No I/O
 * and no clock (the interval is an argument), so the rates are unit-tested. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A sample: a JSON object keyed by the VM id in decimal, each value the VM's object from
 * vm.list, optionally with "busy_by_reason" from vm.show merged in. */

/* Adds the vms array of a vm.list reply to sample (new keys; a VM listed twice keeps its first
 * entry). Entries without a readable "vm" id are skipped. -ENOMEM. */
int top_sample_add_list(json_t *sample, const json_t *vms);
/* Merges busy_by_reason of a vm.show reply's vm_info into the sample's entry for that VM;
 * -ENOENT if the sample has no such VM, -EINVAL for a malformed vm_info. */
int top_sample_add_detail(json_t *sample, const json_t *vm_info);

#define TOP_REASONS_MAX 160
#define TOP_QUOTA_MAX 96

struct top_row {
	uint64_t vm;
	double req_s, adm_s, busy_s;   /* per second over the interval */
	char reasons[TOP_REASONS_MAX]; /* "rate 2.0 fairness 1.0"; "" if unknown or none */
	const char *state;	       /* "in-flight", "queued", "idle" (static) */
	uint64_t requests;	       /* cumulative */
	uint64_t fw_errors;
	char quota[TOP_QUOTA_MAX]; /* "2/s b4 w1", "*" appended for a custom quota */
};

/* One row per VM of cur, rates against prev (VMs new in cur count from zero; a counter that
 * went backwards, e.g. after a daemon restart, counts from zero too), sorted by activity:
 * requests/s, then BUSY/s, then cumulative requests, then id. interval_s must be > 0.
 * 0 with *ret_rows (malloc'd, may be NULL when *ret_n is 0); -EINVAL, -ENOMEM. */
int top_rows(const json_t *prev, const json_t *cur, double interval_s, struct top_row **ret_rows,
	     size_t *ret_n);

/* Per-second rates of the counters in a {"reason": count} object between two samples, as
 * "reason R.R ..." for the reasons that moved; "" when none did. */
void top_reason_rates(const json_t *prev, const json_t *cur, double interval_s, char *buf,
		      size_t size);
