/* SPDX-License-Identifier: Apache-2.0 */
/* test-sched-policy: admission policy with injected time (design §4 rules 3-5, §5). */
#include "testutil.h"

#include <inttypes.h>

#include "sched-policy.h"
#include "util.h"

#define MS 1000ull
#define SEC 1000000ull
#define MAX_EVENTS 4096

struct recorder {
	struct sched_event ev[MAX_EVENTS];
	size_t n;
};

static void record(void *userdata, const struct sched_event *ev)
{
	struct recorder *r = userdata;

	ck_assert_uint_lt(r->n, MAX_EVENTS);
	r->ev[r->n++] = *ev;
}

static struct sched *new_sched(const struct sched_config *c, struct recorder *rec)
{
	struct sched *s = NULL;

	ck_assert_int_eq(sched_new(c, rec ? record : NULL, rec, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static struct sched_config generous(uint32_t slots)
{
	struct sched_config c;

	sched_config_defaults(&c);
	c.psp_concurrency = slots;
	c.quota = (struct sched_quota){.rate_milli = 1000000, .burst = 1000, .weight = 1};
	return c;
}

static enum sched_verdict req(struct sched *s, uint64_t vm, uint64_t id, uint64_t now,
			      enum sched_busy_reason *reason)
{
	struct sched_decision d;

	ck_assert_int_eq(sched_request(s, vm, id, NULL, now, &d), 0);
	if (reason)
		*reason = d.reason;
	return d.verdict;
}

/* --- config --- */

START_TEST(test_config_check)
{
	static const struct {
		const char *what;
		uint32_t slots;
		uint64_t budget, wait, retry, rate_milli;
		uint32_t burst, weight;
		int ret;
	} cases[] = {
		{"defaults", 1, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, 0},
		{"zero slots", 0, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"65 slots", 65, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"64 slots", 64, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, 0},
		{"budget 60 s", 1, 60 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"budget 59.9 s", 1, 59900 * MS, 50 * MS, 2 * SEC, 2000, 8, 1, 0},
		{"budget 0", 1, 0, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"budget below retry", 1, 2 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"budget = retry + wait", 1, 2050 * MS, 50 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"wait 0", 1, 20 * SEC, 0, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"wait 100 ms", 1, 20 * SEC, 100 * MS, 2 * SEC, 2000, 8, 1, -EINVAL},
		{"retry 0", 1, 20 * SEC, 50 * MS, 0, 2000, 8, 1, -EINVAL},
		{"rate 0", 1, 20 * SEC, 50 * MS, 2 * SEC, 0, 8, 1, -EINVAL},
		{"rate 1 per 20 s", 1, 20 * SEC, 50 * MS, 2 * SEC, 50, 1, 1, 0},
		{"rate below 1 per budget", 1, 20 * SEC, 50 * MS, 2 * SEC, 49, 1, 1, -EINVAL},
		{"rate too high", 1, 20 * SEC, 50 * MS, 2 * SEC, 1000000001, 1, 1, -EINVAL},
		{"burst 0", 1, 20 * SEC, 50 * MS, 2 * SEC, 2000, 0, 1, -EINVAL},
		{"burst too high", 1, 20 * SEC, 50 * MS, 2 * SEC, 2000, 1000001, 1, -EINVAL},
		{"weight 0", 1, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 0, -EINVAL},
		{"weight 1001", 1, 20 * SEC, 50 * MS, 2 * SEC, 2000, 8, 1001, -EINVAL},
	};
	struct sched_config def;

	sched_config_defaults(&def);
	ck_assert_int_eq(sched_config_check(&def, NULL), 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct sched_config c = {
			.psp_concurrency = cases[i].slots,
			.busy_budget_usec = cases[i].budget,
			.max_queue_wait_usec = cases[i].wait,
			.retry_interval_usec = cases[i].retry,
			.quota = {cases[i].rate_milli, cases[i].burst, cases[i].weight},
		};
		const char *why = NULL;
		struct sched *s = NULL;
		int r = sched_config_check(&c, &why);

		ck_assert_msg(r == cases[i].ret, "%s: %d", cases[i].what, r);
		if (r < 0) {
			ck_assert_msg(why && *why, "%s: no message", cases[i].what);
			ck_assert_int_eq(sched_new(&c, NULL, NULL, &s), -EINVAL);
			ck_assert_ptr_null(s);
		} else {
			ck_assert_int_eq(sched_new(&c, NULL, NULL, &s), 0);
			sched_free(s);
		}
	}
	ck_assert_int_eq(sched_config_check(NULL, NULL), -EINVAL);
}
END_TEST

/* --- token bucket --- */

START_TEST(test_bucket_refill)
{
	/* 2 per second, burst 2; every admitted request is done at once. */
	static const struct {
		uint64_t at;
		enum sched_verdict v;
	} steps[] = {
		{0, SCHED_ADMIT},
		{1, SCHED_ADMIT},
		{2, SCHED_BUSY},       /* bucket empty */
		{499999, SCHED_BUSY},  /* 0.999998 tokens */
		{500001, SCHED_ADMIT}, /* one token per 0.5 s */
		{500002, SCHED_BUSY},
		{10 * SEC, SCHED_ADMIT},
		{10 * SEC + 1, SCHED_ADMIT}, /* refilled up to burst, not beyond */
		{10 * SEC + 2, SCHED_BUSY},
	};
	struct sched_config c;
	struct sched *s;

	sched_config_defaults(&c);
	c.quota = (struct sched_quota){.rate_milli = 2000, .burst = 2, .weight = 1};
	s = new_sched(&c, NULL);
	ck_assert_int_eq(sched_vm_add(s, 7, 0), 0);
	for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
		enum sched_busy_reason why;
		enum sched_verdict v = req(s, 7, i, steps[i].at, &why);

		ck_assert_msg(v == steps[i].v, "step %zu: %d", i, v);
		if (v == SCHED_BUSY)
			ck_assert_int_eq(why, SCHED_BUSY_QUOTA);
		else
			ck_assert_int_eq(sched_done(s, 7, i, steps[i].at, SCHED_OUTCOME_SUCCESS),
					 0);
	}
	sched_free(s);
}
END_TEST

START_TEST(test_bucket_debt_under_budget_rule)
{
	/* Slowest allowed quota (1 per 20 s): a guest retrying every 2 s is admitted over quota
	 * when its BUSY streak nears the budget; the bucket goes into debt and is repaid. */
	struct sched_config c;
	struct sched_vm_stats st;
	struct sched *s;
	uint64_t streak_start = 0, max_streak = 0, forced = 0;
	bool in_streak = false, saw_debt = false;

	sched_config_defaults(&c);
	c.quota = (struct sched_quota){.rate_milli = 50, .burst = 1, .weight = 1};
	/* A conservative (longer) retry margin makes the rule fire 18 s after the last admission,
	 * before the 20 s refill: the admission goes into debt. */
	c.retry_interval_usec = 4 * SEC;
	s = new_sched(&c, NULL);
	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	for (uint64_t i = 0, t = 0; t < 300 * SEC; i++, t += 2 * SEC) {
		struct sched_decision d;

		ck_assert_int_eq(sched_request(s, 1, i, NULL, t, &d), 0);
		if (d.verdict == SCHED_BUSY) {
			ck_assert_int_eq(d.reason, SCHED_BUSY_QUOTA);
			if (!in_streak)
				streak_start = t;
			in_streak = true;
			max_streak = MAX(max_streak, t - streak_start);
			continue;
		}
		ck_assert_int_eq(d.verdict, SCHED_ADMIT);
		in_streak = false;
		forced += d.forced;
		ck_assert_int_eq(sched_vm_stats(s, 1, t, &st), 0);
		if (st.tokens_milli < 0)
			saw_debt = true;
		ck_assert_int_eq(sched_done(s, 1, i, t + 8 * MS, SCHED_OUTCOME_SUCCESS), 0);
	}
	ck_assert_uint_le(max_streak, c.busy_budget_usec);
	ck_assert_uint_gt(forced, 0);
	ck_assert(saw_debt);
	ck_assert_int_eq(sched_vm_stats(s, 1, 300 * SEC, &st), 0);
	ck_assert_uint_le(st.max_busy_streak_usec, c.busy_budget_usec);
	ck_assert_uint_eq(st.forced, forced);
	/* Debt is bounded: admissions stay near the quota (300 s / 20 s = 15, +1 burst). */
	ck_assert_uint_le(st.admitted, 300 / 18 + 2);
	sched_free(s);
}
END_TEST

/* --- rule 3 and queue depth --- */

START_TEST(test_one_inflight_and_queue_depth)
{
	struct recorder rec = {.n = 0};
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, &rec);
	enum sched_busy_reason why;

	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	ck_assert_int_eq(sched_vm_add(s, 2, 0), 0);
	ck_assert_int_eq(sched_vm_add(s, 1, 0), -EEXIST);
	ck_assert_int_eq(req(s, 1, 10, 0, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 1, 11, 1, &why), SCHED_BUSY); /* second while in flight */
	ck_assert_int_eq(why, SCHED_BUSY_INFLIGHT);
	ck_assert_int_eq(req(s, 2, 20, 2, NULL), SCHED_QUEUED);
	ck_assert_int_eq(req(s, 2, 21, 3, &why), SCHED_BUSY); /* second while queued */
	ck_assert_int_eq(why, SCHED_BUSY_INFLIGHT);
	ck_assert_uint_eq(sched_inflight(s), 1);
	ck_assert_uint_eq(sched_queued(s), 1);
	ck_assert_int_eq(sched_done(s, 1, 11, 4, SCHED_OUTCOME_SUCCESS), -ENOENT);
	ck_assert_int_eq(sched_done(s, 1, 10, 4, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(rec.ev[0].type, SCHED_EV_ADMIT);
	ck_assert_uint_eq(rec.ev[0].vm_id, 2);
	ck_assert_uint_eq(rec.ev[0].req_id, 20);
	ck_assert_uint_eq(rec.ev[0].waited_usec, 2);
	ck_assert_int_eq(sched_done(s, 1, 10, 5, SCHED_OUTCOME_SUCCESS), -ENOENT); /* twice */
	ck_assert_int_eq(sched_selfcheck(s), 0);
	sched_free(s);
}
END_TEST

/* --- fairness --- */

START_TEST(test_drr_weights)
{
	/* Always-backlogged VMs (each re-requests right after its DONE), one slot. */
	static const struct {
		unsigned n;
		uint32_t w[5];
	} sets[] = {
		{3, {3, 1, 2}}, {4, {2, 1, 1, 1}},    {5, {1, 1, 1, 1, 1}},
		{2, {1, 1}},	{5, {4, 3, 1, 1, 1}},
	};

	for (size_t k = 0; k < ELEMENTSOF(sets); k++) {
		struct recorder rec = {.n = 0};
		struct sched_config c = generous(1);
		struct sched *s = new_sched(&c, &rec);
		uint64_t admitted[5] = {0}, next_id = 1, t = 0, inflight_vm = 0, inflight_req = 0;
		unsigned total = 6000, wsum = 0;

		for (uint64_t v = 0; v < sets[k].n; v++) {
			struct sched_quota q = c.quota;
			q.weight = sets[k].w[v];
			wsum += q.weight;
			ck_assert_int_eq(sched_vm_add(s, v, 0), 0);
			ck_assert_int_eq(sched_vm_set_quota(s, v, &q, 0, NULL), 0);
		}
		for (uint64_t v = 0; v < sets[k].n; v++) {
			enum sched_verdict r = req(s, v, next_id, t, NULL);
			if (r == SCHED_ADMIT) {
				inflight_vm = v;
				inflight_req = next_id;
			} else {
				ck_assert_int_eq(r, SCHED_QUEUED);
			}
			next_id++;
		}
		for (unsigned i = 0; i < total; i++) {
			uint64_t done_vm = inflight_vm;

			admitted[inflight_vm]++;
			t += 1 * MS;
			rec.n = 0;
			ck_assert_int_eq(
				sched_done(s, inflight_vm, inflight_req, t, SCHED_OUTCOME_SUCCESS),
				0);
			ck_assert_uint_eq(rec.n,
					  1); /* work conserving: the next one goes at once */
			ck_assert_int_eq(rec.ev[0].type, SCHED_EV_ADMIT);
			inflight_vm = rec.ev[0].vm_id;
			inflight_req = rec.ev[0].req_id;
			ck_assert_int_eq(req(s, done_vm, next_id++, t, NULL), SCHED_QUEUED);
		}
		/* Shares in proportion to the weights, within 1%. */
		for (unsigned v = 0; v < sets[k].n; v++) {
			uint64_t expect = (uint64_t)total * sets[k].w[v] / wsum;
			ck_assert_msg(admitted[v] * 100 >= expect * 99 &&
					      admitted[v] * 100 <= expect * 101,
				      "set %zu vm %u: %" PRIu64 " vs %" PRIu64, k, v, admitted[v],
				      expect);
		}
		ck_assert_int_eq(sched_selfcheck(s), 0);
		sched_free(s);
	}
}
END_TEST

struct flood {
	uint64_t inflight_vm, inflight_req, busy_until, now;
	uint64_t max_quiet_wait, quiet_admitted, quiet_sent;
	uint64_t pending_at[5];
	bool pending[5];
};

static void flood_admit(struct flood *f, uint64_t v, uint64_t id)
{
	ck_assert_uint_eq(f->inflight_vm, UINT64_MAX); /* one slot */
	f->inflight_vm = v;
	f->inflight_req = id;
	f->busy_until = f->now + 10 * MS;
	if (v != 0) {
		f->quiet_admitted++;
		f->max_quiet_wait = MAX(f->max_quiet_wait, f->now - f->pending_at[v]);
	}
}

static void flood_event(void *userdata, const struct sched_event *ev)
{
	struct flood *f = userdata;

	ck_assert_msg(ev->type == SCHED_EV_ADMIT || ev->vm_id == 0,
		      "quiet VM %" PRIu64 " refused (%d)", ev->vm_id, ev->reason);
	if (ev->type == SCHED_EV_ADMIT)
		flood_admit(f, ev->vm_id, ev->req_id);
	else
		f->pending[ev->vm_id] = false;
}

START_TEST(test_flooder_held_to_quota)
{
	/* VM 0 floods (a new request every ms it has none outstanding; quota 10/s, burst 5);
	 * VMs 1..4 send one request every 500 ms at distinct phases. Service takes 10 ms, one
	 * slot. */
	struct flood f = {.inflight_vm = UINT64_MAX};
	struct sched_config c;
	struct sched *s;
	uint64_t id = 1;
	struct sched_vm_stats st;
	const uint64_t dur = 20 * SEC;

	sched_config_defaults(&c);
	c.quota = (struct sched_quota){.rate_milli = 10000, .burst = 5, .weight = 1};
	ck_assert_int_eq(sched_new(&c, flood_event, &f, &s), 0);
	for (uint64_t v = 0; v < 5; v++)
		ck_assert_int_eq(sched_vm_add(s, v, 0), 0);
	for (f.now = 0; f.now < dur; f.now += 1 * MS) {
		if (f.inflight_vm != UINT64_MAX && f.now >= f.busy_until) {
			uint64_t v = f.inflight_vm;
			f.inflight_vm = UINT64_MAX;
			f.pending[v] = false;
			ck_assert_int_eq(
				sched_done(s, v, f.inflight_req, f.now, SCHED_OUTCOME_SUCCESS), 0);
		}
		for (uint64_t v = 0; v < 5; v++) {
			bool due = v == 0 || (f.now % (500 * MS)) == v * 97 * MS;
			struct sched_decision d;

			if (!due || f.pending[v])
				continue;
			f.pending[v] = true;
			f.pending_at[v] = f.now;
			f.quiet_sent += v != 0;
			ck_assert_int_eq(sched_request(s, v, id, NULL, f.now, &d), 0);
			if (d.verdict == SCHED_ADMIT) {
				flood_admit(&f, v, id);
			} else if (d.verdict == SCHED_BUSY) {
				ck_assert_msg(v == 0, "quiet VM %" PRIu64 " refused (%d)", v,
					      d.reason);
				f.pending[v] = false;
			}
			id++;
		}
		ck_assert_int_ge(sched_tick(s, f.now), 0);
	}
	/* Quiet VMs: every request admitted, none waited more than one PSP slot. */
	ck_assert_uint_ge(f.quiet_admitted + 4, f.quiet_sent); /* the last ones may be pending */
	ck_assert_uint_gt(f.quiet_sent, 150);
	ck_assert_uint_le(f.max_quiet_wait, 10 * MS);
	ck_assert_int_eq(sched_vm_stats(s, 0, dur, &st), 0);
	/* Flooder: held to burst + rate * duration, and it does get its quota. */
	ck_assert_uint_le(st.admitted, 5 + 10 * dur / SEC + 1);
	ck_assert_uint_ge(st.admitted, 10 * dur / SEC - 1);
	ck_assert_uint_gt(st.busy[SCHED_BUSY_QUOTA], 1000);
	sched_free(s);
}
END_TEST

/* The benchmark's fairness scene (bench/run.sh) in the pure policy: VMs 0 and 1 flood (a new
 * request as soon as the last one is done, the guest's 2 s pause after a BUSY; quota 5/s,
 * burst 5, so they take turns through their bursts), VMs 2..16 are quiet: together one
 * request every 25 ms, in turn (each VM every 375 ms, within its rate). Service 7.5 ms, one
 * slot. A quiet request waits at most for the request running when it came: one PSP slot,
 * once the flooders have shown themselves (a quota refusal each). Before that, a flooder's first
 * request is as well-behaved as anyone's and may be queued ahead. */
#define BURSTS_N 17
struct bursts {
	uint64_t now, inflight_vm, inflight_req, free_at;
	uint64_t pending_at[BURSTS_N], next_at[BURSTS_N];
	bool pending[BURSTS_N];
	uint64_t max_quiet_wait, quiet_waited, quiet_admitted, quiet_sent, flood_admitted;
	unsigned refused_mask; /* flooders refused at least once */
	uint64_t known_at;     /* when both had been */
};

static void bursts_refused(struct bursts *b, uint64_t v)
{
	b->pending[v] = false;
	b->next_at[v] = b->now + 2 * SEC;
	b->refused_mask |= 1u << v;
	if (b->refused_mask == 3 && !b->known_at)
		b->known_at = b->now;
}

static void bursts_admit(struct bursts *b, uint64_t v, uint64_t id)
{
	ck_assert_uint_eq(b->inflight_vm, UINT64_MAX); /* one slot, nothing over it here */
	b->inflight_vm = v;
	b->inflight_req = id;
	b->free_at = b->now + 7500;
	if (v >= 2) {
		b->quiet_admitted++;
		if (b->known_at && b->pending_at[v] >= b->known_at) {
			b->quiet_waited += b->now > b->pending_at[v];
			b->max_quiet_wait = MAX(b->max_quiet_wait, b->now - b->pending_at[v]);
		}
	} else {
		b->flood_admitted++;
	}
}

static void bursts_event(void *userdata, const struct sched_event *ev)
{
	struct bursts *b = userdata;

	ck_assert_msg(ev->type == SCHED_EV_ADMIT || ev->vm_id < 2,
		      "quiet VM %" PRIu64 " refused (%d)", ev->vm_id, ev->reason);
	if (ev->type == SCHED_EV_ADMIT)
		bursts_admit(b, ev->vm_id, ev->req_id);
	else
		bursts_refused(b, ev->vm_id);
}

START_TEST(test_quiet_wait_one_slot_under_two_flooders)
{
	struct bursts b = {.inflight_vm = UINT64_MAX};
	struct sched_config c;
	struct sched *s;
	uint64_t id = 1;
	const uint64_t dur = 20 * SEC;

	sched_config_defaults(&c);
	c.quota = (struct sched_quota){.rate_milli = 5000, .burst = 5, .weight = 1};
	ck_assert_int_eq(sched_new(&c, bursts_event, &b, &s), 0);
	for (uint64_t v = 0; v < BURSTS_N; v++) {
		ck_assert_int_eq(sched_vm_add(s, v, 0), 0);
		b.next_at[v] = v < 2 ? 0 : (v - 2) * 25 * MS + 3 * MS;
	}
	for (b.now = 0; b.now < dur; b.now += 100) {
		if (b.inflight_vm != UINT64_MAX && b.now >= b.free_at) {
			uint64_t v = b.inflight_vm;

			b.inflight_vm = UINT64_MAX;
			b.pending[v] = false;
			if (v < 2)
				b.next_at[v] = b.now; /* a flooder asks again at once */
			ck_assert_int_eq(
				sched_done(s, v, b.inflight_req, b.now, SCHED_OUTCOME_SUCCESS), 0);
		}
		for (uint64_t v = 0; v < BURSTS_N; v++) {
			struct sched_decision d;

			if (b.pending[v] || b.now < b.next_at[v])
				continue;
			b.pending[v] = true;
			b.pending_at[v] = b.now;
			if (v >= 2) {
				b.quiet_sent++;
				b.next_at[v] += 375 * MS;
			}
			ck_assert_int_eq(sched_request(s, v, id, NULL, b.now, &d), 0);
			if (d.verdict == SCHED_ADMIT) {
				bursts_admit(&b, v, id);
			} else if (d.verdict == SCHED_BUSY) {
				ck_assert_msg(v < 2, "quiet VM %" PRIu64 " refused (%d)", v,
					      d.reason);
				bursts_refused(&b, v);
			}
			id++;
		}
		ck_assert_int_ge(sched_tick(s, b.now), 0);
	}
	ck_assert_int_eq(sched_selfcheck(s), 0);
	ck_assert_uint_gt(b.quiet_sent, 750);
	ck_assert_uint_ge(b.quiet_admitted + 15, b.quiet_sent);
	/* The flooders do run (within their quota) and quiet requests do meet them... */
	ck_assert_uint_gt(b.flood_admitted, 80);
	ck_assert_uint_gt(b.known_at, 0);
	ck_assert_uint_lt(b.known_at, 3 * SEC);
	ck_assert_uint_gt(b.quiet_waited, 10);
	/* ...yet none waits longer than the one request already running. */
	ck_assert_msg(b.max_quiet_wait <= 7500, "quiet VM waited %" PRIu64 " us", b.max_quiet_wait);
	sched_free(s);
}
END_TEST

/* --- queue wait --- */

START_TEST(test_queue_expiry)
{
	struct recorder rec = {.n = 0};
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, &rec);
	struct sched_vm_stats st;
	uint64_t deadline = 0;

	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	ck_assert_int_eq(sched_vm_add(s, 2, 0), 0);
	ck_assert_int_eq(sched_next_deadline(s, &deadline), -ENOENT);
	ck_assert_int_eq(req(s, 1, 1, 0, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 2, 2, 1000, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_next_deadline(s, &deadline), 0);
	ck_assert_uint_eq(deadline, 1000 + 50 * MS);
	ck_assert_int_eq(sched_tick(s, deadline - 1), 0);
	ck_assert_uint_eq(rec.n, 0);
	ck_assert_int_eq(sched_tick(s, deadline), 1);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(rec.ev[0].type, SCHED_EV_BUSY);
	ck_assert_int_eq(rec.ev[0].reason, SCHED_BUSY_OVERLOAD);
	ck_assert_uint_eq(rec.ev[0].req_id, 2);
	ck_assert_uint_eq(rec.ev[0].waited_usec, 50 * MS);
	ck_assert_int_eq(sched_next_deadline(s, &deadline), -ENOENT);
	/* An expired request is never admitted afterwards, even if DONE comes late. */
	ck_assert_int_eq(sched_done(s, 1, 1, deadline + 5 * MS, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(sched_vm_stats(s, 2, deadline, &st), 0);
	ck_assert_uint_eq(st.busy[SCHED_BUSY_OVERLOAD], 1);
	ck_assert(!st.queued);
	/* A stale queued request is expired before a DONE could admit it. */
	ck_assert_int_eq(req(s, 1, 3, 100 * MS, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 2, 4, 100 * MS, NULL), SCHED_QUEUED);
	rec.n = 0;
	ck_assert_int_eq(sched_done(s, 1, 3, 200 * MS, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(rec.ev[0].type, SCHED_EV_BUSY);
	ck_assert_uint_eq(sched_inflight(s), 0);
	sched_free(s);
}
END_TEST

/* --- bounded BUSY under overload --- */

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* A fleet of guests driving one sched the way the daemon does: each guest has at most one
 * request out; after BUSY it sends the same request again retry later (the Linux driver's fixed
 * SNP_REQ_RETRY_DELAY, scaled in some scenarios as tests/integration/overload.sh does); after
 * its DONE it sends the next one `think` later. Each admitted request occupies a slot for `svc`.
 * Time moves in 1 ms steps; due guests sit on a timing wheel, so 1,000 guests over minutes of
 * simulated time stay cheap. Everything measured is a count or simulated time. */
#define FLEET_WHEEL 4096u /* ms, more than the longest retry or think time */
#define FLEET_SLOTS_MAX 8

struct fleet_params {
	const char *what;
	uint32_t nvms, slots;
	uint64_t svc, retry, budget, think, dur;
	bool lockstep;	     /* all guests start at 0; else at random phases within retry */
	uint64_t rate_milli; /* per-VM quota (burst 2); 0: generous */
	bool feasible;	     /* demand within capacity: rule 4 must hold */
	unsigned min_util_pct;
};

struct fleet_guest {
	uint64_t req; /* outstanding request id, 0 if none */
	uint64_t streak_start, last_admit, served;
	bool streak;
	uint32_t next; /* wheel chain: guest index + 1, 0 ends */
};

struct fleet {
	const struct fleet_params *p;
	struct sched *s;
	struct fleet_guest *g;
	uint32_t wheel[FLEET_WHEEL];
	uint64_t now, next_id;
	uint64_t slot_vm[FLEET_SLOTS_MAX], slot_req[FLEET_SLOTS_MAX], slot_end[FLEET_SLOTS_MAX];
	/* Admitted while every slot was taken (a forced admission over the slots): they wait for
	 * the PSP in arrival order, as on the host driver's mutex. */
	uint64_t *fifo_vm, *fifo_req;
	size_t fifo_head, fifo_len;
	/* results */
	uint64_t admits, busy, forced, served_usec, max_streak, max_gap, never_served;
	size_t max_fifo;
};

static void fleet_wake(struct fleet *f, uint64_t v, uint64_t at)
{
	uint32_t k = (uint32_t)(at / MS % FLEET_WHEEL);

	f->g[v].next = f->wheel[k];
	f->wheel[k] = (uint32_t)v + 1;
}

static void fleet_admit(struct fleet *f, uint64_t v, uint64_t id, bool forced)
{
	struct fleet_guest *g = &f->g[v];
	uint32_t i = 0;

	ck_assert_uint_eq(g->req, id);
	while (i < f->p->slots && f->slot_vm[i] != UINT64_MAX)
		i++;
	if (i < f->p->slots && f->fifo_len == 0) {
		f->slot_vm[i] = v;
		f->slot_req[i] = id;
		f->slot_end[i] = f->now + f->p->svc;
	} else {
		/* Only the bounded-BUSY rule may admit over the slots; what is admitted while
		 * others wait for the PSP queues behind them. */
		ck_assert_msg(forced || i < f->p->slots, "%s: more admitted than slots, not forced",
			      f->p->what);
		ck_assert_uint_lt(f->fifo_len, f->p->nvms);
		f->fifo_vm[(f->fifo_head + f->fifo_len) % f->p->nvms] = v;
		f->fifo_req[(f->fifo_head + f->fifo_len) % f->p->nvms] = id;
		f->fifo_len++;
		f->max_fifo = MAX(f->max_fifo, f->fifo_len);
	}
	if (g->streak)
		f->max_streak = MAX(f->max_streak, f->now - g->streak_start);
	f->max_gap = MAX(f->max_gap, f->now - g->last_admit);
	g->streak = false;
	g->last_admit = f->now;
	g->served++;
	f->admits++;
	f->forced += forced;
}

static void fleet_busy(struct fleet *f, uint64_t v)
{
	struct fleet_guest *g = &f->g[v];

	if (!g->streak) {
		g->streak = true;
		g->streak_start = f->now;
	}
	f->max_streak = MAX(f->max_streak, f->now - g->streak_start);
	if (f->p->feasible)
		ck_assert_msg(f->now - g->streak_start <= f->p->budget,
			      "%s: vm %" PRIu64 " BUSY for %" PRIu64 " us at %" PRIu64, f->p->what,
			      v, f->now - g->streak_start, f->now);
	g->req = 0;
	f->busy++;
	fleet_wake(f, v, f->now + f->p->retry);
}

static void fleet_event(void *userdata, const struct sched_event *ev)
{
	struct fleet *f = userdata;

	if (ev->type == SCHED_EV_ADMIT)
		fleet_admit(f, ev->vm_id, ev->req_id, ev->forced);
	else if (ev->type == SCHED_EV_BUSY)
		fleet_busy(f, ev->vm_id);
}

static void fleet_step(struct fleet *f)
{
	uint32_t k = (uint32_t)(f->now / MS % FLEET_WHEEL), v;
	uint64_t deadline;

	for (uint32_t i = 0; i < f->p->slots; i++) {
		uint64_t dv = f->slot_vm[i];

		if (dv == UINT64_MAX || f->now < f->slot_end[i])
			continue;
		f->slot_vm[i] = UINT64_MAX;
		f->served_usec += f->p->svc;
		f->g[dv].req = 0;
		fleet_wake(f, dv, f->now + f->p->think);
		ck_assert_int_eq(
			sched_done(f->s, dv, f->slot_req[i], f->now, SCHED_OUTCOME_SUCCESS), 0);
		if (f->slot_vm[i] == UINT64_MAX && f->fifo_len > 0) {
			f->slot_vm[i] = f->fifo_vm[f->fifo_head];
			f->slot_req[i] = f->fifo_req[f->fifo_head];
			f->slot_end[i] = f->now + f->p->svc;
			f->fifo_head = (f->fifo_head + 1) % f->p->nvms;
			f->fifo_len--;
		}
	}
	v = f->wheel[k];
	f->wheel[k] = 0;
	while (v) {
		struct sched_decision d;
		uint32_t gi = v - 1;
		uint64_t id = f->next_id++;

		v = f->g[gi].next;
		ck_assert_uint_eq(f->g[gi].req, 0);
		f->g[gi].req = id;
		ck_assert_int_eq(sched_request(f->s, gi, id, NULL, f->now, &d), 0);
		if (d.verdict == SCHED_ADMIT)
			fleet_admit(f, gi, id, d.forced);
		else if (d.verdict == SCHED_BUSY)
			fleet_busy(f, gi);
	}
	/* The daemon's timer: sched_tick at the next deadline. */
	if (sched_next_deadline(f->s, &deadline) == 0 && deadline <= f->now)
		ck_assert_int_ge(sched_tick(f->s, f->now), 0);
}

static void fleet_run(const struct fleet_params *p, struct fleet *f)
{
	struct sched_config c;
	uint32_t seed = 0x5eed0000u + p->nvms;

	memset(f, 0, sizeof(*f));
	f->p = p;
	f->next_id = 1;
	sched_config_defaults(&c);
	c.psp_concurrency = p->slots;
	c.busy_budget_usec = p->budget;
	c.retry_interval_usec = p->retry;
	c.quota =
		p->rate_milli
			? (struct sched_quota){.rate_milli = p->rate_milli, .burst = 2, .weight = 1}
			: (struct sched_quota){.rate_milli = 1000000, .burst = 1000, .weight = 1};
	ck_assert_int_eq(sched_new(&c, fleet_event, f, &f->s), 0);
	f->g = calloc(p->nvms, sizeof(*f->g));
	f->fifo_vm = calloc(p->nvms, sizeof(*f->fifo_vm));
	f->fifo_req = calloc(p->nvms, sizeof(*f->fifo_req));
	ck_assert_ptr_nonnull(f->g);
	ck_assert_ptr_nonnull(f->fifo_vm);
	ck_assert_ptr_nonnull(f->fifo_req);
	for (uint32_t i = 0; i < FLEET_SLOTS_MAX; i++)
		f->slot_vm[i] = UINT64_MAX;
	for (uint64_t v = 0; v < p->nvms; v++) {
		ck_assert_int_eq(sched_vm_add(f->s, v, 0), 0);
		fleet_wake(f, v, p->lockstep ? 0 : rnd(&seed) % (p->retry / MS) * MS);
	}
	for (f->now = 0; f->now < p->dur; f->now += MS) {
		fleet_step(f);
		if (f->now % (10 * SEC) == 0)
			ck_assert_int_eq(sched_selfcheck(f->s), 0);
	}
	for (uint64_t v = 0; v < p->nvms; v++) {
		struct fleet_guest *g = &f->g[v];
		struct sched_vm_stats st;

		if (g->streak)
			f->max_streak = MAX(f->max_streak, f->now - g->streak_start);
		f->max_gap = MAX(f->max_gap, f->now - g->last_admit);
		f->never_served += g->served == 0;
		/* sched's own account of the streaks agrees with the guests'. */
		ck_assert_int_eq(sched_vm_stats(f->s, v, f->now, &st), 0);
		ck_assert_uint_le(st.max_busy_streak_usec, f->max_streak);
		ck_assert_uint_eq(st.admitted, g->served);
	}
	ck_assert_int_eq(sched_selfcheck(f->s), 0);
	sched_free(f->s);
	free(f->g);
	free(f->fifo_vm);
	free(f->fifo_req);
}

/* Rule 4 under overload (design §4, §5), driven like the daemon. Feasible: the streaking VMs'
 * demand (one admission each per busy_budget) fits the PSP, so no streak may exceed the budget,
 * and the PSP must stay busy (util: served time / (slots * duration), in simulated time). The
 * lockstep rows are the hard case: every guest refused at the same instant retries at the same
 * instant, and a group can widen only by max_queue_wait per retry (sched-policy.c). */
static const struct fleet_params overload_cases[] = {
	/* tests/integration/overload.sh: time scale 0.1, guests retry every 0.2 s, budget 3 s */
	{"lockstep 200, retry 0.2 s", 200, 1, 8 * MS, 200 * MS, 3 * SEC, 0, 30 * SEC, true, 0, true,
	 95},
	{"random 300, retry 0.2 s", 300, 1, 8 * MS, 200 * MS, 3 * SEC, 0, 30 * SEC, false, 0, true,
	 95},
	/* the real-world numbers: retry 2 s, budget 20 s, over minutes */
	{"random 200, retry 2 s", 200, 1, 8 * MS, 2 * SEC, 20 * SEC, 0, 150 * SEC, false, 0, true,
	 95},
	{"random 1000, retry 2 s", 1000, 1, 8 * MS, 2 * SEC, 20 * SEC, 0, 150 * SEC, false, 0, true,
	 95},
	{"random 1000, retry 2 s, 2 slots of 16 ms", 1000, 2, 16 * MS, 2 * SEC, 20 * SEC, 0,
	 150 * SEC, false, 0, true, 95},
	{"random 500, retry 2 s, think 100 ms", 500, 1, 8 * MS, 2 * SEC, 20 * SEC, 100 * MS,
	 150 * SEC, false, 0, true, 95},
	{"lockstep 100, retry 2 s", 100, 1, 8 * MS, 2 * SEC, 20 * SEC, 0, 150 * SEC, true, 0, true,
	 75},
	/* A whole host's guests asking at once (boot storm, tests/faults/overload.sh): a group
	 * refused together widens by max_queue_wait per retry only, too slowly for 1,000, so the
	 * budget rule must admit over the slots (time scale 0.5 as in the short fault campaign). */
	{"lockstep 1000, retry 2 s", 1000, 1, 8 * MS, 2 * SEC, 20 * SEC, 0, 150 * SEC, true, 0,
	 true, 90},
	{"lockstep 1000, retry 1 s, budget 15 s", 1000, 1, 8 * MS, SEC, 15 * SEC, 0, 100 * SEC,
	 true, 0, true, 90},
	/* slowest quota allowed (1 per 20 s): streaks come from the quota, bounded by debt */
	{"random 200, quota 1 per 20 s", 200, 1, 8 * MS, 2 * SEC, 20 * SEC, 0, 150 * SEC, false, 50,
	 true, 0},
	/* infeasible: 8 s of work per 3 s budget */
	{"lockstep 1000, retry 0.2 s (infeasible)", 1000, 1, 8 * MS, 200 * MS, 3 * SEC, 0, 60 * SEC,
	 true, 0, false, 95},
};

START_TEST(test_busy_budget_overload)
{
	const struct fleet_params *p = &overload_cases[_i];
	static struct fleet f;
	uint64_t util_pct;

	fleet_run(p, &f);
	util_pct = f.served_usec * 100 / (p->dur * p->slots);
	/* It really was contended: many BUSY answers. */
	ck_assert_msg(f.busy > 5 * (uint64_t)p->nvms, "%s: %" PRIu64 " BUSY", p->what, f.busy);
	ck_assert_msg(util_pct >= p->min_util_pct, "%s: PSP busy %" PRIu64 "%%", p->what, util_pct);
	ck_assert_msg(f.never_served == 0, "%s: %" PRIu64 " VMs never served", p->what,
		      f.never_served);
	/* Forced admissions over the slots wait for the PSP in the kernel: never more of them than
	 * the PSP serves in one busy_budget (plus, for an instant, the admission into a slot just
	 * freed, which queues behind them). */
	ck_assert_msg(f.max_fifo <= (p->budget / p->svc + 1) * p->slots,
		      "%s: %zu waiting for the PSP", p->what, f.max_fifo);
	if (p->feasible) {
		ck_assert_msg(f.max_streak <= p->budget, "%s: streak %" PRIu64, p->what,
			      f.max_streak);
	} else {
		/* Graceful: every VM is still served about once per round of the whole fleet
		 * (nvms * svc / slots), well within twice that, and nobody starves. */
		uint64_t round = p->nvms * p->svc / p->slots;

		ck_assert_msg(f.max_gap <= 2 * round, "%s: gap %" PRIu64, p->what, f.max_gap);
		ck_assert_msg(f.max_streak > p->budget, "%s: was feasible after all", p->what);
	}
	if (p->rate_milli) {
		/* Quota-bound: admissions near the quota, the budget rule forcing some. */
		ck_assert_uint_gt(f.forced, 0);
		ck_assert_uint_le(f.admits, p->nvms * (2 + p->dur / (p->budget - p->retry) + 1));
	}
}
END_TEST

/* --- unknown VM, pause, remove --- */

START_TEST(test_unknown_vm)
{
	static const struct {
		uint64_t at;
		bool dump;
	} steps[] = {{0, true}, {1, false}, {SEC - 1, false}, {SEC, true}, {SEC, false}};
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, NULL);

	for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
		struct sched_decision d;

		ck_assert_int_eq(sched_request(s, 99, i, NULL, steps[i].at, &d), 0);
		ck_assert_int_eq(d.verdict, SCHED_BUSY);
		ck_assert_int_eq(d.reason, SCHED_BUSY_NO_VM);
		ck_assert_msg(d.need_dump == steps[i].dump, "step %zu", i);
	}
	ck_assert_uint_eq(sched_busy_no_vm(s), ELEMENTSOF(steps));
	ck_assert_int_eq(sched_done(s, 99, 0, 2 * SEC, SCHED_OUTCOME_SUCCESS), -ENOENT);
	ck_assert_int_eq(sched_vm_remove(s, 99, 2 * SEC), -ENOENT);
	sched_free(s);
}
END_TEST

START_TEST(test_pause_resume)
{
	struct recorder rec = {.n = 0};
	struct sched_config c = generous(2);
	struct sched *s = new_sched(&c, &rec);
	enum sched_busy_reason why;

	for (uint64_t v = 1; v <= 4; v++)
		ck_assert_int_eq(sched_vm_add(s, v, 0), 0);
	ck_assert_int_eq(sched_pause(s, 0), 0); /* nothing in flight: drained at once */
	ck_assert(sched_paused(s));
	ck_assert_int_eq(req(s, 1, 1, 1, &why), SCHED_BUSY);
	ck_assert_int_eq(why, SCHED_BUSY_PAUSED);
	ck_assert_int_eq(sched_resume(s, 2), 0);
	ck_assert_int_eq(req(s, 1, 2, 3, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 2, 3, 3, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 3, 4, 3, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_pause(s, 4), 2);
	ck_assert_int_eq(req(s, 4, 5, 5, &why), SCHED_BUSY);
	ck_assert_int_eq(why, SCHED_BUSY_PAUSED);
	ck_assert_int_eq(sched_done(s, 1, 2, 6, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(rec.n, 0); /* no admission while paused, not drained yet */
	ck_assert_int_eq(sched_done(s, 2, 3, 7, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(rec.ev[0].type, SCHED_EV_DRAINED);
	ck_assert_uint_eq(sched_inflight(s), 0);
	ck_assert_int_eq(sched_resume(s, 8), 1);
	ck_assert_uint_eq(rec.n, 2);
	ck_assert_int_eq(rec.ev[1].type, SCHED_EV_ADMIT);
	ck_assert_uint_eq(rec.ev[1].req_id, 4);
	/* A queued request that outlives the pause is refused with reason paused. */
	ck_assert_int_eq(req(s, 1, 6, 9, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 2, 7, 9, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_pause(s, 10), 2);
	ck_assert_int_eq(sched_tick(s, 9 + 50 * MS), 1);
	ck_assert_int_eq(rec.ev[2].type, SCHED_EV_BUSY);
	ck_assert_int_eq(rec.ev[2].reason, SCHED_BUSY_PAUSED);
	ck_assert_int_eq(sched_selfcheck(s), 0);
	sched_free(s);
}
END_TEST

START_TEST(test_vm_remove)
{
	struct recorder rec = {.n = 0};
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, &rec);

	for (uint64_t v = 1; v <= 3; v++)
		ck_assert_int_eq(sched_vm_add(s, v, 0), 0);
	ck_assert_int_eq(req(s, 1, 1, 0, NULL), SCHED_ADMIT);
	ck_assert_int_eq(req(s, 2, 2, 1, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_vm_remove(s, 2, 2), 0);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_int_eq(rec.ev[0].type, SCHED_EV_BUSY);
	ck_assert_int_eq(rec.ev[0].reason, SCHED_BUSY_REMOVED);
	ck_assert_uint_eq(rec.ev[0].req_id, 2);
	ck_assert_uint_eq(sched_queued(s), 0);
	ck_assert_int_eq(req(s, 3, 3, 3, NULL), SCHED_QUEUED);
	/* Removing the VM in flight frees its slot: the queued request goes next. */
	ck_assert_int_eq(sched_vm_remove(s, 1, 4), 0);
	ck_assert_uint_eq(rec.n, 2);
	ck_assert_int_eq(rec.ev[1].type, SCHED_EV_ADMIT);
	ck_assert_uint_eq(rec.ev[1].req_id, 3);
	ck_assert_int_eq(sched_done(s, 1, 1, 5, SCHED_OUTCOME_SUCCESS), -ENOENT);
	ck_assert_uint_eq(sched_vm_count(s), 1);
	ck_assert_uint_eq(sched_inflight(s), 1);
	/* A re-added VM starts fresh. */
	ck_assert_int_eq(sched_vm_add(s, 1, 6), 0);
	ck_assert_int_eq(req(s, 1, 7, 7, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_selfcheck(s), 0);
	sched_free(s); /* frees the queued request too (ASan checks) */
}
END_TEST

START_TEST(test_restore_inflight)
{
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, NULL);

	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	ck_assert_int_eq(sched_vm_add(s, 2, 0), 0);
	ck_assert_int_eq(sched_vm_restore_inflight(s, 1, 100, 0), 0);
	ck_assert_int_eq(sched_vm_restore_inflight(s, 2, 200, 0), 0); /* exceeds slots: exact */
	ck_assert_int_eq(sched_vm_restore_inflight(s, 2, 201, 0), -EBUSY);
	ck_assert_int_eq(sched_vm_restore_inflight(s, 3, 300, 0), -ENOENT);
	ck_assert_uint_eq(sched_inflight(s), 2);
	ck_assert_int_eq(sched_vm_add(s, 3, 0), 0);
	ck_assert_int_eq(req(s, 3, 1, 1, NULL), SCHED_QUEUED);
	ck_assert_int_eq(sched_done(s, 1, 100, 2, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(sched_queued(s), 1); /* still one in flight: slot count is 1 */
	ck_assert_int_eq(sched_done(s, 2, 200, 3, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_uint_eq(sched_queued(s), 0);
	ck_assert_uint_eq(sched_inflight(s), 1);
	sched_free(s);
}
END_TEST

/* --- quotas at run time --- */

START_TEST(test_set_quota)
{
	struct sched_config c;
	struct sched *s;
	struct sched_vm_stats st;
	struct sched_quota bad = {.rate_milli = 10, .burst = 1, .weight = 1};
	struct sched_quota one = {.rate_milli = 1000, .burst = 1, .weight = 2};
	const char *why = NULL;

	sched_config_defaults(&c);
	c.psp_concurrency = 8;
	s = new_sched(&c, NULL);
	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	ck_assert_int_eq(sched_vm_set_quota(s, 1, &bad, 0, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	ck_assert_int_eq(sched_vm_set_quota(s, 2, &one, 0, NULL), -ENOENT);
	ck_assert_int_eq(sched_vm_set_quota(s, 1, &one, 0, NULL), 0);
	ck_assert_int_eq(sched_vm_stats(s, 1, 0, &st), 0);
	ck_assert(st.custom_quota);
	ck_assert_int_eq(st.tokens_milli, 1000); /* capped to the new burst at once */
	ck_assert_uint_eq(st.quota.weight, 2);
	ck_assert_int_eq(req(s, 1, 1, 0, NULL), SCHED_ADMIT);
	ck_assert_int_eq(sched_done(s, 1, 1, 1, SCHED_OUTCOME_SUCCESS), 0);
	ck_assert_int_eq(req(s, 1, 2, 2, NULL), SCHED_BUSY);
	/* Reset to the default (2/s, burst 8): refilled at the old rate, then the new cap. */
	ck_assert_int_eq(sched_vm_set_quota(s, 1, NULL, 500 * MS, NULL), 0);
	ck_assert_int_eq(sched_vm_stats(s, 1, 500 * MS, &st), 0);
	ck_assert(!st.custom_quota);
	ck_assert_int_eq(st.tokens_milli, 500);
	ck_assert_int_eq(sched_vm_stats(s, 1, 1 * SEC, &st), 0);
	ck_assert_int_eq(st.tokens_milli, 1500);
	/* Default change reaches VMs without their own quota. */
	ck_assert_int_eq(sched_set_default_quota(s, &bad, SEC, &why), -EINVAL);
	ck_assert_int_eq(sched_set_default_quota(s, &one, SEC, NULL), 0);
	ck_assert_int_eq(sched_vm_stats(s, 1, SEC, &st), 0);
	ck_assert_int_eq(st.tokens_milli, 1000);
	ck_assert_uint_eq(st.quota.rate_milli, 1000);
	sched_free(s);
}
END_TEST

/* --- sequence tracking (rule 5) --- */

START_TEST(test_seq_anomalies)
{
	enum step_end { END_OK, END_FW_ERR, END_BUSY /* left to another VM's slot */ };
	static const struct {
		uint64_t seqno;
		uint8_t type, vmpck;
		enum step_end end;
		unsigned anomalies;
	} steps[] = {
		{1, 5, 0, END_OK, 0},				/* first sight */
		{3, 5, 0, END_OK, 0},				/* +2 after success */
		{5, 5, 0, END_BUSY, 0},				/* answered BUSY */
		{5, 5, 0, END_OK, 0},				/* re-send: normal */
		{5, 5, 0, END_FW_ERR, 1u << SCHED_ANOM_REPLAY}, /* consumed: replay */
		{3, 5, 0, END_FW_ERR, 1u << SCHED_ANOM_REPLAY}, /* older */
		{9, 3, 0, END_FW_ERR, 1u << SCHED_ANOM_GAP},	/* expected 7 */
		{7, 3, 0, END_OK, 0},				/* the firmware did not move */
		{9, 17, 0, END_OK, 0},				/* TSC_INFO_REQ */
		{11, 6, 0, END_OK, 1u << SCHED_ANOM_TYPE},	/* a response type */
		{13, 0, 0, END_OK, 1u << SCHED_ANOM_TYPE},	/* INVALID */
		{15, 19, 0, END_OK, 1u << SCHED_ANOM_TYPE},	/* beyond the table */
		{1, 5, 4, END_OK, 1u << SCHED_ANOM_VMPCK},	/* VMPCK 4 */
		{1, 5, 255, END_OK, 1u << SCHED_ANOM_VMPCK},
		{1, 5, 1, END_OK, 0},			    /* VMPCK 1: own counter */
		{17, 5, 0, END_OK, 0},			    /* VMPCK 0 unaffected */
		{0, 5, 0, END_OK, 1u << SCHED_ANOM_REPLAY}, /* seqno 0 never valid */
		{23, 8, 0, END_OK, (1u << SCHED_ANOM_GAP) | (1u << SCHED_ANOM_TYPE)}, /* exp. 19 */
	};
	struct sched_config c = generous(1);
	struct sched *s = new_sched(&c, NULL);
	uint64_t counts[_SCHED_ANOM_MAX] = {0};
	struct sched_vm_stats st;

	ck_assert_int_eq(sched_vm_add(s, 1, 0), 0);
	ck_assert_int_eq(sched_vm_add(s, 2, 0), 0);
	for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
		struct sched_msg m = {.seqno = steps[i].seqno,
				      .type = steps[i].type,
				      .version = 1,
				      .vmpck = steps[i].vmpck,
				      .size = 96};
		struct sched_decision d;
		uint64_t t = i * 10;

		if (steps[i].end == END_BUSY)
			ck_assert_int_eq(req(s, 2, 1000 + i, t, NULL), SCHED_ADMIT);
		ck_assert_int_eq(sched_request(s, 1, i, &m, t, &d), 0);
		ck_assert_msg(d.anomalies == steps[i].anomalies, "step %zu: %#x", i, d.anomalies);
		for (unsigned k = 0; k < _SCHED_ANOM_MAX; k++)
			counts[k] += !!(d.anomalies & (1u << k));
		if (steps[i].end == END_BUSY) {
			/* Never a different admission decision because of an anomaly. */
			ck_assert_int_eq(d.verdict, SCHED_QUEUED);
			ck_assert_int_eq(sched_tick(s, t + 50 * MS), 1);
			ck_assert_int_eq(sched_done(s, 2, 1000 + i, t, SCHED_OUTCOME_SUCCESS), 0);
			continue;
		}
		ck_assert_int_eq(d.verdict, SCHED_ADMIT);
		ck_assert_int_eq(sched_done(s, 1, i, t + 1,
					    steps[i].end == END_OK ? SCHED_OUTCOME_SUCCESS
								   : SCHED_OUTCOME_FW_ERROR),
				 0);
	}
	ck_assert_int_eq(sched_vm_stats(s, 1, 1000, &st), 0);
	for (unsigned k = 0; k < _SCHED_ANOM_MAX; k++) {
		ck_assert_uint_eq(st.anomalies[k], counts[k]);
		ck_assert_uint_gt(counts[k], 0);
		ck_assert_str_ne(sched_anomaly_name(k), "unknown");
	}
	sched_free(s);
}
END_TEST

/* --- exactly one decision (property over random event sequences) --- */

#define P_VMS 12
#define P_REQS 4000

struct prop {
	uint8_t decided[P_REQS]; /* decisions per request id */
	uint64_t vm_of[P_REQS];
	uint64_t infl[P_VMS]; /* request id + 1 in flight per VM, 0 if none */
	unsigned drained;
};

static void prop_decide(struct prop *p, uint64_t vm, uint64_t req, bool admit)
{
	ck_assert_uint_lt(req, P_REQS);
	ck_assert_uint_eq(p->vm_of[req], vm);
	ck_assert_msg(p->decided[req] == 0, "req %" PRIu64 " decided twice", req);
	p->decided[req]++;
	if (admit) {
		ck_assert_uint_eq(p->infl[vm], 0); /* rule 3 */
		p->infl[vm] = req + 1;
	}
}

static void prop_event(void *userdata, const struct sched_event *ev)
{
	struct prop *p = userdata;

	if (ev->type == SCHED_EV_DRAINED)
		p->drained++;
	else
		prop_decide(p, ev->vm_id, ev->req_id, ev->type == SCHED_EV_ADMIT);
}

START_TEST(test_exactly_one_decision)
{
	for (uint32_t seed = 1; seed <= 20; seed++) {
		static struct prop p;
		struct sched_config c = generous(1 + seed % 3);
		struct sched *s;
		uint32_t x = seed * 2654435761u;
		uint64_t t = 0, nreq = 0;
		bool present[P_VMS] = {false};

		memset(&p, 0, sizeof(p));
		c.quota.rate_milli = 3000;
		c.quota.burst = 3;
		ck_assert_int_eq(sched_new(&c, prop_event, &p, &s), 0);
		while (nreq < P_REQS) {
			uint32_t op = rnd(&x) % 100, v = rnd(&x) % P_VMS;

			t += rnd(&x) % (20 * MS);
			if (op < 5) {
				ck_assert_int_eq(sched_vm_add(s, v, t), present[v] ? -EEXIST : 0);
				present[v] = true;
			} else if (op < 8) {
				ck_assert_int_eq(sched_vm_remove(s, v, t),
						 present[v] ? 0 : -ENOENT);
				p.infl[v] = 0; /* forgotten */
				present[v] = false;
			} else if (op < 60) {
				struct sched_decision d;
				uint64_t id = nreq++;

				p.vm_of[id] = v;
				ck_assert_int_eq(sched_request(s, v, id, NULL, t, &d), 0);
				if (d.verdict != SCHED_QUEUED)
					prop_decide(&p, v, id, d.verdict == SCHED_ADMIT);
				ck_assert(present[v] || d.reason == SCHED_BUSY_NO_VM);
			} else if (op < 90) {
				if (p.infl[v]) {
					uint64_t id = p.infl[v] - 1;
					p.infl[v] = 0;
					ck_assert_int_eq(
						sched_done(s, v, id, t, SCHED_OUTCOME_SUCCESS), 0);
				} else {
					ck_assert_int_eq(
						sched_done(s, v, nreq, t, SCHED_OUTCOME_SUCCESS),
						-ENOENT);
				}
			} else if (op < 95) {
				ck_assert_int_ge(sched_tick(s, t), 0);
			} else if (op < 97) {
				ck_assert_int_ge(sched_pause(s, t), 0);
			} else {
				ck_assert_int_ge(sched_resume(s, t), 0);
			}
			ck_assert_int_eq(sched_selfcheck(s), 0);
			ck_assert_uint_le(sched_inflight(s), c.psp_concurrency);
		}
		/* Drain: after resume and max_queue_wait everything queued is decided. */
		ck_assert_int_ge(sched_resume(s, t), 0);
		ck_assert_int_ge(sched_tick(s, t + 50 * MS), 0);
		ck_assert_uint_eq(sched_queued(s), 0);
		for (size_t i = 0; i < nreq; i++)
			ck_assert_msg(p.decided[i] == 1, "seed %u req %zu: %u decisions", seed, i,
				      p.decided[i]);
		sched_free(s);
	}
}
END_TEST

/* --- scale --- */

static void count_vm(void *userdata, const struct sched_vm_stats *st)
{
	uint64_t *sum = userdata;
	*sum += st->vm_id;
}

START_TEST(test_scale_10000_vms)
{
	struct sched_config c = generous(4);
	struct sched *s = new_sched(&c, NULL);
	uint64_t sum = 0, expect = 0;
	const uint64_t n = 10000;

	for (uint64_t v = 0; v < n; v++) {
		uint64_t id = v * 0x9e3779b97f4a7c15ull; /* spread-out ids */
		ck_assert_int_eq(sched_vm_add(s, id, 0), 0);
		expect += id;
	}
	ck_assert_uint_eq(sched_vm_count(s), n);
	ck_assert_uint_eq(sched_vm_foreach(s, 0, count_vm, &sum), n);
	ck_assert_uint_eq(sum, expect);
	for (uint64_t v = 0; v < n; v++) {
		struct sched_decision d;
		ck_assert_int_eq(sched_request(s, v * 0x9e3779b97f4a7c15ull, v, NULL, 1, &d), 0);
		ck_assert_int_eq(d.verdict, v < 4 ? SCHED_ADMIT : SCHED_QUEUED);
	}
	ck_assert_uint_eq(sched_queued(s), n - 4);
	ck_assert_int_eq(sched_selfcheck(s), 0);
	for (uint64_t v = 0; v < n; v += 2)
		ck_assert_int_eq(sched_vm_remove(s, v * 0x9e3779b97f4a7c15ull, 2), 0);
	ck_assert_uint_eq(sched_vm_count(s), n / 2);
	ck_assert_int_eq(sched_selfcheck(s), 0);
	sched_free(s);
}
END_TEST

START_TEST(test_time_never_backwards)
{
	struct sched_config c;
	struct sched *s;

	sched_config_defaults(&c);
	c.quota = (struct sched_quota){.rate_milli = 1000, .burst = 1, .weight = 1};
	s = new_sched(&c, NULL);
	ck_assert_int_eq(sched_vm_add(s, 1, 10 * SEC), 0);
	ck_assert_int_eq(req(s, 1, 1, 10 * SEC, NULL), SCHED_ADMIT);
	ck_assert_int_eq(sched_done(s, 1, 1, 10 * SEC, SCHED_OUTCOME_SUCCESS), 0);
	/* A stale timestamp neither refills the bucket nor underflows anything. */
	ck_assert_int_eq(req(s, 1, 2, 0, NULL), SCHED_BUSY);
	ck_assert_int_eq(req(s, 1, 3, 11 * SEC, NULL), SCHED_ADMIT);
	ck_assert_int_eq(sched_selfcheck(s), 0);
	ck_assert_str_eq(sched_busy_reason_name(SCHED_BUSY_QUOTA), "quota");
	ck_assert_str_eq(sched_busy_reason_name(_SCHED_BUSY_MAX), "unknown");
	sched_free(s);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched-policy");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_config_check);
	tcase_add_test(tc, test_bucket_refill);
	tcase_add_test(tc, test_bucket_debt_under_budget_rule);
	tcase_add_test(tc, test_one_inflight_and_queue_depth);
	tcase_add_test(tc, test_drr_weights);
	tcase_add_test(tc, test_flooder_held_to_quota);
	tcase_add_test(tc, test_quiet_wait_one_slot_under_two_flooders);
	tcase_add_test(tc, test_queue_expiry);
	tcase_add_loop_test(tc, test_busy_budget_overload, 0, ELEMENTSOF(overload_cases));
	tcase_add_test(tc, test_unknown_vm);
	tcase_add_test(tc, test_pause_resume);
	tcase_add_test(tc, test_vm_remove);
	tcase_add_test(tc, test_restore_inflight);
	tcase_add_test(tc, test_set_quota);
	tcase_add_test(tc, test_seq_anomalies);
	tcase_add_test(tc, test_exactly_one_decision);
	tcase_add_test(tc, test_scale_10000_vms);
	tcase_add_test(tc, test_time_never_backwards);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(sched_suite());
}
