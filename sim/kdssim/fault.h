/* SPDX-License-Identifier: Apache-2.0 */
/* sim-fault: the KDS simulator's fault-injection rules: parsing "--fault" specs and deciding,
 * from a seeded generator, which faults hit a request. Pure: no I/O, no clock, not locked. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sim_fault_kind {
	SIM_FAULT_STATUS,      /* answer with an HTTP error status (arg = 400..599) */
	SIM_FAULT_RETRY_AFTER, /* 429 with "Retry-After: arg" (seconds) */
	SIM_FAULT_DELAY,       /* wait arg milliseconds before answering */
	SIM_FAULT_TRUNCATE,    /* announce the full length, send half the body, close */
	SIM_FAULT_GARBAGE,     /* 200 with random bytes instead of the body */
	_SIM_FAULT_KIND_MAX,
};

#define SIM_FAULT_MAX_RULES 16
#define SIM_FAULT_MAX_DELAY_MS 600000u

struct sim_fault_rule {
	enum sim_fault_kind kind;
	unsigned arg;
	bool by_count;	    /* "next=N": the next N eligible requests */
	unsigned remaining; /* by_count: how many are left */
	double p;	    /* otherwise: probability per eligible request, 0..1 */
};

struct sim_fault_set {
	struct sim_fault_rule rules[SIM_FAULT_MAX_RULES];
	size_t n;
	uint64_t rng;
};

/* The faults chosen for one request. */
struct sim_fault_decision {
	unsigned delay_ms;    /* 0: none */
	unsigned status;      /* 0: none, else the status to send instead of the real answer */
	unsigned retry_after; /* with status 429: Retry-After seconds, 0: no header */
	bool truncate, garbage;
};

/* Syntax: KIND[:p=P | :next=N]; without a trigger the fault hits every request.
 * KIND is a status 400..599 ("429", "404", "500"), "429-retry-after=SECONDS",
 * "delay=MS[ms]" or "delay=S s", "truncate" or "garbage". -EINVAL for anything else. */
int sim_fault_parse(const char *spec, struct sim_fault_rule *ret);
void sim_fault_init(struct sim_fault_set *s, uint64_t seed);
/* Parses spec and appends it; -E2BIG if the set is full. */
int sim_fault_add(struct sim_fault_set *s, const char *spec);

/* Decides the header-phase faults (status, Retry-After, delay) for one request. Rules are
 * tried in order; the first status rule that fires wins, delays add up. A by-count rule is
 * only used up when it fires. */
void sim_fault_decide_head(struct sim_fault_set *s, struct sim_fault_decision *d);
/* Decides the body faults (truncate, garbage) for a response that would be sent with 200. */
void sim_fault_decide_body(struct sim_fault_set *s, struct sim_fault_decision *d);
/* "429", "429+retry-after=5", "delay=200ms,truncate", or "-" if none: for the request log. */
const char *sim_fault_describe(const struct sim_fault_decision *d, char *buf, size_t size);
/* Deterministic pseudo-random bytes from the set's generator (for garbage bodies). */
void sim_fault_fill(struct sim_fault_set *s, uint8_t *buf, size_t len);
