/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-sched-policy: decodes the input as a sequence of scheduler events with injected time and
 * checks the policy's invariants after every step (exactly one decision per request, rule 3,
 * slot count, internal consistency). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sched-policy.h"

#define NVMS 8
#define NREQS 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model {
	uint8_t decided[NREQS];
	uint8_t vm_of[NREQS];
	uint64_t infl[NVMS]; /* request id + 1 in flight, 0 if none */
	bool present[NVMS];
};

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static void decide(struct model *m, uint64_t vm, uint64_t req, bool admit)
{
	CHECK(req < NREQS && vm < NVMS);
	CHECK(m->vm_of[req] == vm);
	CHECK(m->decided[req] == 0);
	m->decided[req] = 1;
	if (admit) {
		CHECK(m->present[vm] && m->infl[vm] == 0); /* one in flight per VM */
		m->infl[vm] = req + 1;
	}
}

static void on_event(void *userdata, const struct sched_event *ev)
{
	struct model *m = userdata;

	if (ev->type == SCHED_EV_DRAINED)
		return;
	CHECK(ev->type == SCHED_EV_ADMIT || ev->type == SCHED_EV_BUSY);
	CHECK(ev->type == SCHED_EV_ADMIT || ev->reason != SCHED_BUSY_NONE);
	decide(m, ev->vm_id, ev->req_id, ev->type == SCHED_EV_ADMIT);
}

static uint8_t next(const uint8_t *data, size_t size, size_t *pos)
{
	return *pos < size ? data[(*pos)++] : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;
	struct sched_config c;
	struct sched *s = NULL;
	size_t pos = 0;
	uint64_t now = 0, nreq = 0;
	bool restored = false;
	uint8_t k;

	memset(&m, 0, sizeof(m));
	sched_config_defaults(&c);
	c.psp_concurrency = 1 + next(data, size, &pos) % 4;
	c.quota.rate_milli = 50 + 100ull * next(data, size, &pos);
	k = next(data, size, &pos);
	c.quota.burst = 1 + k % 8;
	/* Short guest retry intervals (8..256 ms) bring the fair-share gate, the staleness of owed
	 * VMs and the urgent class within the time the input can cover. */
	c.retry_interval_usec = 8000ull * (1 + (k >> 3));
	if (sched_new(&c, on_event, &m, &s) < 0)
		return 0;

	while (pos < size && nreq < NREQS) {
		uint8_t op = next(data, size, &pos), vm = next(data, size, &pos) % NVMS;
		struct sched_decision d;
		struct sched_msg msg;
		struct sched_quota q;
		int r;

		switch (op % 11) {
		case 0:
			r = sched_vm_add(s, vm, now);
			CHECK(r == (m.present[vm] ? -EEXIST : 0));
			m.present[vm] = true;
			break;
		case 1:
			r = sched_vm_remove(s, vm, now);
			CHECK(r == (m.present[vm] ? 0 : -ENOENT));
			m.present[vm] = false;
			m.infl[vm] = 0;
			break;
		case 2:
			msg = (struct sched_msg){.seqno = next(data, size, &pos),
						 .type = next(data, size, &pos),
						 .vmpck = next(data, size, &pos) % 6,
						 .version = 1};
			m.vm_of[nreq] = vm;
			CHECK(sched_request(s, vm, nreq, op & 0x80 ? NULL : &msg, now, &d) == 0);
			CHECK(m.present[vm] ||
			      (d.verdict == SCHED_BUSY && d.reason == SCHED_BUSY_NO_VM));
			if (d.verdict == SCHED_BUSY)
				CHECK(d.reason != SCHED_BUSY_NONE);
			if (d.verdict != SCHED_QUEUED)
				decide(&m, vm, nreq, d.verdict == SCHED_ADMIT);
			nreq++;
			break;
		case 3:
			if (m.infl[vm]) {
				uint64_t id = m.infl[vm] - 1;
				m.infl[vm] = 0;
				r = sched_done(s, vm, id, now, 1 + next(data, size, &pos) % 3);
				CHECK(r == 0);
			} else {
				CHECK(sched_done(s, vm, nreq + 7, now, SCHED_OUTCOME_SUCCESS) ==
				      -ENOENT);
			}
			break;
		case 4:
			CHECK(sched_tick(s, now) >= 0);
			break;
		case 5:
			now += 100ull *
			       ((uint64_t)next(data, size, &pos) << 8 | next(data, size, &pos));
			break;
		case 6:
			CHECK(sched_pause(s, now) >= 0);
			break;
		case 7:
			CHECK(sched_resume(s, now) >= 0);
			break;
		case 8:
			q = (struct sched_quota){.rate_milli = 10ull * next(data, size, &pos),
						 .burst = next(data, size, &pos) % 16,
						 .weight = next(data, size, &pos) % 8};
			r = sched_vm_set_quota(s, vm, op & 0x80 ? NULL : &q, now, NULL);
			CHECK(r == 0 || r == -EINVAL || r == -ENOENT);
			break;
		case 9:
			/* a stale timestamp: must be harmless */
			CHECK(sched_tick(s, now / 2) >= 0);
			break;
		case 10:
			m.vm_of[nreq] = vm;
			r = sched_vm_restore_inflight(s, vm, nreq, now);
			CHECK(r == 0 || r == -EBUSY || r == -ENOENT);
			if (r == 0) {
				decide(&m, vm, nreq, true);
				restored = true;
				nreq++;
			}
			break;
		}
		CHECK(sched_selfcheck(s) == 0);
		CHECK(restored || sched_inflight(s) <= sched_inflight_max(s));
	}

	/* Every request still pending is decided once the pause ends and the queue wait runs out.
	 */
	CHECK(sched_resume(s, now) >= 0);
	CHECK(sched_tick(s, now + c.max_queue_wait_usec) >= 0);
	CHECK(sched_queued(s) == 0);
	for (uint64_t i = 0; i < nreq; i++)
		CHECK(m.decided[i] == 1);
	sched_free(s);
	return 0;
}
