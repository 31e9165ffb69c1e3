/* SPDX-License-Identifier: Apache-2.0 */
/* top-model: rates and ordering for 'snpctl top' from two samples; pure (no I/O, no clock).
 * The samples are daemon replies, so every field is read defensively. */
#include "top-model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"
#include "util.h"

static uint64_t num(const json_t *o, const char *k)
{
	uint64_t v = 0;

	(void)ctl_json_get_u64(json_object_get(o, k), &v);
	return v;
}

static int id_key(const json_t *vm, char *buf, size_t size, uint64_t *ret_id)
{
	uint64_t id;

	if (ctl_json_get_u64(json_object_get(vm, "vm"), &id) < 0)
		return -EINVAL;
	snprintf(buf, size, "%llu", (unsigned long long)id);
	if (ret_id)
		*ret_id = id;
	return 0;
}

int top_sample_add_list(json_t *sample, const json_t *vms)
{
	const json_t *vm;
	char key[24];
	size_t i;

	json_array_foreach(vms, i, vm)
	{
		if (!json_is_object(vm) || id_key(vm, key, sizeof(key), NULL) < 0)
			continue;
		if (json_object_get(sample, key))
			continue;
		if (json_object_set_new(sample, key, json_deep_copy(vm)) < 0)
			return -ENOMEM;
	}
	return 0;
}

int top_sample_add_detail(json_t *sample, const json_t *vm_info)
{
	const json_t *reasons = json_object_get(vm_info, "busy_by_reason");
	json_t *entry;
	char key[24];

	if (!json_is_object(vm_info) || !json_is_object(reasons) ||
	    id_key(vm_info, key, sizeof(key), NULL) < 0)
		return -EINVAL;
	entry = json_object_get(sample, key);
	if (!entry)
		return -ENOENT;
	if (json_object_set_new(entry, "busy_by_reason", json_deep_copy(reasons)) < 0)
		return -ENOMEM;
	return 0;
}

/* Growth of a cumulative counter; a counter that went backwards was reset and counts from 0. */
static uint64_t delta(uint64_t before, uint64_t now)
{
	return now >= before ? now - before : now;
}

void top_reason_rates(const json_t *prev, const json_t *cur, double interval_s, char *buf,
		      size_t size)
{
	const char *k;
	json_t *v;
	size_t len = 0;

	buf[0] = '\0';
	if (!json_is_object(cur) || interval_s <= 0)
		return;
	json_object_foreach((json_t *)cur, k, v)
	{
		uint64_t d = delta(num(prev, k), num(cur, k));
		int n;

		if (d == 0)
			continue;
		n = snprintf(buf + len, size - len, "%s%s %.1f", len ? " " : "", k,
			     (double)d / interval_s);
		if (n < 0 || (size_t)n >= size - len) {
			/* Cut at the last whole entry rather than mid-word. */
			buf[len] = '\0';
			return;
		}
		len += (size_t)n;
	}
}

static const char *state_of(const json_t *vm)
{
	if (json_is_true(json_object_get(vm, "inflight")))
		return "in-flight";
	if (json_is_true(json_object_get(vm, "queued")))
		return "queued";
	return "idle";
}

static void quota_short(const json_t *vm, char *buf, size_t size)
{
	const json_t *q = json_object_get(vm, "quota");
	const char *rate = json_string_value(json_object_get(q, "rate"));

	snprintf(buf, size, "%s/s b%llu w%llu%s", rate ? rate : "?",
		 (unsigned long long)num(q, "burst"), (unsigned long long)num(q, "weight"),
		 json_is_true(json_object_get(vm, "custom_quota")) ? "*" : "");
}

static int cmp_rows(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;

	if (x->req_s != y->req_s)
		return x->req_s > y->req_s ? -1 : 1;
	if (x->busy_s != y->busy_s)
		return x->busy_s > y->busy_s ? -1 : 1;
	if (x->requests != y->requests)
		return x->requests > y->requests ? -1 : 1;
	return x->vm < y->vm ? -1 : x->vm > y->vm;
}

int top_rows(const json_t *prev, const json_t *cur, double interval_s, struct top_row **ret_rows,
	     size_t *ret_n)
{
	_cleanup_(freep) struct top_row *rows = NULL;
	const char *key;
	json_t *vm;
	size_t n = 0;

	if (!json_is_object(cur) || interval_s <= 0)
		return -EINVAL;
	if (json_object_size(cur) > 0) {
		rows = calloc(json_object_size(cur), sizeof(*rows));
		if (!rows)
			return -ENOMEM;
	}
	json_object_foreach((json_t *)cur, key, vm)
	{
		const json_t *old = json_object_get(prev, key);
		struct top_row *r = &rows[n];

		if (id_key(vm, (char[24]){0}, 24, &r->vm) < 0)
			continue;
		r->requests = num(vm, "requests");
		r->req_s = (double)delta(num(old, "requests"), r->requests) / interval_s;
		r->adm_s = (double)delta(num(old, "admitted"), num(vm, "admitted")) / interval_s;
		r->busy_s = (double)delta(num(old, "busy"), num(vm, "busy")) / interval_s;
		r->fw_errors = num(vm, "fw_errors");
		r->state = state_of(vm);
		quota_short(vm, r->quota, sizeof(r->quota));
		/* Reasons only where both samples have them: a rate needs two points. */
		if (json_object_get(vm, "busy_by_reason") &&
		    (!old || json_object_get(old, "busy_by_reason")))
			top_reason_rates(json_object_get(old, "busy_by_reason"),
					 json_object_get(vm, "busy_by_reason"), interval_s,
					 r->reasons, sizeof(r->reasons));
		n++;
	}
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_rows);
	*ret_rows = n ? TAKE_PTR(rows) : NULL;
	*ret_n = n;
	return 0;
}
