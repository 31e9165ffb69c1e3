/* SPDX-License-Identifier: Apache-2.0 */
/* sim-fault: fault rules of the KDS simulator. Pure: the caller holds any lock and does the
 * sleeping, sending and logging. */
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* splitmix64: small, seedable, and good enough to pick faults. */
static uint64_t next_u64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double next_unit(uint64_t *state)
{
	return (double)(next_u64(state) >> 11) / (double)(1ull << 53);
}

/* Strict unsigned decimal in [min, max]. */
static int parse_uint(const char *s, size_t len, unsigned min, unsigned max, unsigned *ret)
{
	unsigned long v = 0;

	if (len == 0 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < min || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* "0.3", "1", "0", ".5": a probability in [0, 1]. */
static int parse_prob(const char *s, double *ret)
{
	char *end;
	double v;

	if (!*s || strspn(s, "0123456789.") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v < 0.0 || v > 1.0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t *ret_plen)
{
	size_t n = strlen(prefix);

	if (len < n || strncmp(s, prefix, n) != 0)
		return false;
	*ret_plen = n;
	return true;
}

static int parse_kind(const char *s, size_t len, struct sim_fault_rule *r)
{
	size_t pl;

	if (len == 8 && strncmp(s, "truncate", len) == 0) {
		r->kind = SIM_FAULT_TRUNCATE;
		return 0;
	}
	if (len == 7 && strncmp(s, "garbage", len) == 0) {
		r->kind = SIM_FAULT_GARBAGE;
		return 0;
	}
	if (has_prefix(s, len, "429-retry-after=", &pl)) {
		r->kind = SIM_FAULT_RETRY_AFTER;
		return parse_uint(s + pl, len - pl, 0, 86400, &r->arg);
	}
	if (has_prefix(s, len, "delay=", &pl)) {
		unsigned mult = 1;
		s += pl;
		len -= pl;
		if (len > 2 && strncmp(s + len - 2, "ms", 2) == 0) {
			len -= 2;
		} else if (len > 1 && s[len - 1] == 's') {
			len -= 1;
			mult = 1000;
		}
		r->kind = SIM_FAULT_DELAY;
		if (parse_uint(s, len, 1, SIM_FAULT_MAX_DELAY_MS / mult, &r->arg) < 0)
			return -EINVAL;
		r->arg *= mult;
		return 0;
	}
	r->kind = SIM_FAULT_STATUS;
	return parse_uint(s, len, 400, 599, &r->arg);
}

int sim_fault_parse(const char *spec, struct sim_fault_rule *ret)
{
	struct sim_fault_rule r = {.p = 1.0};
	const char *colon;
	size_t klen;

	if (!spec)
		return -EINVAL;
	colon = strchr(spec, ':');
	klen = colon ? (size_t)(colon - spec) : strlen(spec);
	if (parse_kind(spec, klen, &r) < 0)
		return -EINVAL;
	if (colon) {
		const char *t = colon + 1;
		if (strncmp(t, "p=", 2) == 0) {
			if (parse_prob(t + 2, &r.p) < 0)
				return -EINVAL;
		} else if (strncmp(t, "next=", 5) == 0) {
			r.by_count = true;
			if (parse_uint(t + 5, strlen(t + 5), 1, 1000000, &r.remaining) < 0)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	*ret = r;
	return 0;
}

void sim_fault_init(struct sim_fault_set *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->rng = seed;
}

int sim_fault_add(struct sim_fault_set *s, const char *spec)
{
	struct sim_fault_rule r;
	int k;

	if (s->n >= SIM_FAULT_MAX_RULES)
		return -E2BIG;
	k = sim_fault_parse(spec, &r);
	if (k < 0)
		return k;
	s->rules[s->n++] = r;
	return 0;
}

/* Whether the rule fires for this request; uses up one count of a by-count rule. */
static bool fires(struct sim_fault_set *s, struct sim_fault_rule *r)
{
	if (r->by_count) {
		if (r->remaining == 0)
			return false;
		r->remaining--;
		return true;
	}
	if (r->p >= 1.0)
		return true;
	return next_unit(&s->rng) < r->p;
}

void sim_fault_decide_head(struct sim_fault_set *s, struct sim_fault_decision *d)
{
	for (size_t i = 0; i < s->n; i++) {
		struct sim_fault_rule *r = &s->rules[i];

		switch (r->kind) {
		case SIM_FAULT_DELAY:
			if (fires(s, r))
				d->delay_ms = MIN(d->delay_ms + r->arg, SIM_FAULT_MAX_DELAY_MS);
			break;
		case SIM_FAULT_STATUS:
		case SIM_FAULT_RETRY_AFTER:
			if (d->status == 0 && fires(s, r)) {
				d->status = r->kind == SIM_FAULT_STATUS ? r->arg : 429;
				d->retry_after = r->kind == SIM_FAULT_RETRY_AFTER ? r->arg : 0;
			}
			break;
		default:
			break;
		}
	}
}

void sim_fault_decide_body(struct sim_fault_set *s, struct sim_fault_decision *d)
{
	for (size_t i = 0; i < s->n; i++) {
		struct sim_fault_rule *r = &s->rules[i];

		if (d->truncate || d->garbage)
			return;
		if (r->kind == SIM_FAULT_TRUNCATE && fires(s, r))
			d->truncate = true;
		else if (r->kind == SIM_FAULT_GARBAGE && fires(s, r))
			d->garbage = true;
	}
}

const char *sim_fault_describe(const struct sim_fault_decision *d, char *buf, size_t size)
{
	size_t off = 0;
	int n;

	if (size == 0)
		return buf;
	buf[0] = '\0';
#define APPEND(...)                                                                                \
	do {                                                                                       \
		n = snprintf(buf + off, size - off, "%s", off ? "," : "");                         \
		if (n > 0 && (size_t)n < size - off)                                               \
			off += (size_t)n;                                                          \
		n = snprintf(buf + off, size - off, __VA_ARGS__);                                  \
		if (n > 0)                                                                         \
			off = MIN(off + (size_t)n, size - 1);                                      \
	} while (0)
	if (d->status)
		APPEND("%u", d->status);
	if (d->retry_after)
		APPEND("retry-after=%u", d->retry_after);
	if (d->delay_ms)
		APPEND("delay=%ums", d->delay_ms);
	if (d->truncate)
		APPEND("truncate");
	if (d->garbage)
		APPEND("garbage");
#undef APPEND
	if (off == 0)
		snprintf(buf, size, "-");
	return buf;
}

void sim_fault_fill(struct sim_fault_set *s, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = next_u64(&s->rng);
		for (size_t j = 0; j < 8 && i + j < len; j++)
			buf[i + j] = (uint8_t)(v >> (8 * j));
	}
}
