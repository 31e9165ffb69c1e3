/* SPDX-License-Identifier: Apache-2.0 */
/* sched-policy: admission policy (design §4, §5). Owns per-VM buckets, queues and sequence
 * state; never reads a clock, does no I/O and allocates only on VM add.
 *
 * Why the queue has three classes (rule 4 under overload). Guests retry BUSY after a fixed
 * interval R with nothing else to go on, so a VM refused at t comes back at t + R, and a request
 * can only be served within max_queue_wait W of its arrival. Guests that are refused together
 * come back together: if every unserved request of a burst is refused at the same instant, the
 * group stays in lockstep for ever and only about W / service of it is served per retry, however
 * idle the PSP is in between (the old failure: 8.7 s streaks against a 3 s budget). Therefore:
 *  - urgent (the streak nears busy_budget): earliest streak start first, over quota if need be;
 *  - owed (refused for capacity since the last admission): oldest refusal first, ahead of any
 *    VM that has not been refused; a VM served just now never overtakes one that is owed;
 *  - normal: deficit round robin with weights among the rest; within a round, a VM that asks
 *    within its sustained rate (its bucket was full when the request came and it has not been
 *    refused for quota in the last 10 s) goes before the others. Without that, a quiet VM that
 *    arrives while two flooders take turns through their bursts waits for the running request
 *    and the other flooder's queued one: two PSP slots (design §5: one).
 * Two more rules act under contention only:
 *  - fair-share gate: once some owed VM has missed a retry, a VM that was admitted after that
 *    VM's first refusal and is not owed itself is refused at once (it was served since the other
 *    started waiting); its retry then comes at a new phase of the cycle;
 *  - spreading: when more requests are queued than the PSP can start before the newest
 *    deadline (from a running estimate of the service time), the surplus is refused a little at
 *    each admission, earliest arrivals first, instead of all at the deadlines: the earliest
 *    keep their phase, the latest move W later, so a lockstep group widens by up to W on every
 *    retry until it covers the retry interval and every slot of the cycle serves someone owed.
 * What cannot be helped: a group refused at one instant can only widen by W per retry, so from a
 * cold lockstep start only about (k + 1) * W / service of it is served on its k-th retry. */
#include "sched-policy.h"

#include <assert.h>

#include "msg.h"
#include "util.h"

/* Tokens are kept in nano-requests: with the rate in milli-requests per second, one usec adds
 * exactly rate_milli nano-requests, so refills never lose fractions however often they run. */
#define TOKEN_UNIT 1000000000ll
#define HASH_MIN_BUCKETS 64u
#define NVMPCK (MSG_VMPCK_MAX + 1)

struct sched_link {
	struct sched_link *prev, *next;
};

struct sched_seq {
	uint64_t expected; /* next seqno the firmware should accept */
	uint64_t last;	   /* seqno of the last request seen */
	bool known;	   /* expected/last are meaningful */
	bool last_open;	   /* last was not consumed: a re-send of it is normal */
};

struct sched_vm {
	uint64_t id;
	void *owner;		 /* the caller's record of the VM (sched_vm_set_owner), borrowed */
	struct sched_vm *hnext;	 /* hash chain */
	struct sched_link qlink; /* the DRR list given by `round` (normal class only) */
	struct sched_link tlink; /* queued requests in arrival (= deadline) order */

	struct sched_quota own_quota;
	bool custom_quota;
	int64_t tokens; /* nano-requests; negative is debt */
	uint64_t refilled_at;
	uint64_t quota_busy_at; /* last refusal for quota, if quota_refused */
	bool quota_refused;

	uint64_t deficit; /* DRR credit, in requests, valid for `round` (1 .. 2 * weight) */
	uint64_t round;

	/* The one request the VM may have: queued or in flight, never both. */
	bool queued, urgent, inflight;
	bool timed; /* admitted into a free slot: its ALLOW -> DONE time is a service time */
	uint64_t req_id, queued_at, admitted_at;
	uint64_t enq_seq; /* enqueue order: ties in the priority heap go first come first */
	size_t hidx[2];	  /* position in s->heap[0/1]; HEAP_NONE if not in the heaps */
	bool req_tracked; /* req_seqno/req_vmpck valid for sequence tracking */
	uint8_t req_vmpck;
	uint64_t req_seqno;

	bool in_streak;
	uint64_t streak_start;
	bool owed;	     /* refused for capacity (overload, pause) since the last admission */
	uint64_t owed_since; /* the first such refusal */
	uint64_t last_busy;  /* the latest BUSY answer */
	bool ever_admitted;
	struct sched_link olink; /* s->owed while owed and still retrying */

	struct sched_seq seq[NVMPCK];

	uint64_t n_requests, n_admitted, n_forced, n_done, max_streak;
	uint64_t n_busy[_SCHED_BUSY_MAX];
	uint64_t n_anom[_SCHED_ANOM_MAX];
};

struct sched {
	struct sched_config cfg;
	sched_emit_fn emit;
	void *userdata;

	struct sched_vm **buckets; /* owned */
	size_t nbuckets, nvms;

	/* Queued urgent and owed VMs, in two binary heaps over the same elements: heap[0] puts
	 * the next to serve on top, heap[1] the first to refuse early. Capacity >= nvms. */
	struct sched_vm **heap[2]; /* owned */
	size_t nheap, heap_cap;
	uint64_t enq_seq;
	uint64_t svc_est; /* running mean of ALLOW -> DONE time of requests admitted into a free
			   * slot, usec; 0 until the first such DONE */
	/* Owed VMs by owed_since (time only moves forward, so appending keeps the order). VMs that
	 * stopped retrying are dropped from it lazily, from the head. */
	struct sched_link owed;
	struct sched_link fresh;   /* DRR: this round's VMs asking within their rate */
	struct sched_link current; /* DRR: VMs served in this round (vm->round == round) */
	struct sched_link next;	   /* DRR: VMs waiting for the next round (round + 1) */
	struct sched_link bytime;  /* every queued request, oldest first */
	uint64_t round;
	unsigned nqueued, ninflight;

	bool paused;
	uint64_t now; /* latest time seen: time never runs backwards here */
	bool dump_requested;
	uint64_t dump_at;
	uint64_t busy_no_vm;
	uint64_t overcommitted; /* forced admissions made while every slot was taken */
};

/* --- lists --- */

static void link_init(struct sched_link *l)
{
	l->prev = l->next = l;
}

static bool link_empty(const struct sched_link *head)
{
	return head->next == head;
}

static void link_append(struct sched_link *head, struct sched_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static void link_remove(struct sched_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	link_init(l);
}

/* Moves every element of from to the tail of to. */
static void link_splice(struct sched_link *to, struct sched_link *from)
{
	if (link_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	link_init(from);
}

/* --- priority heaps (urgent and owed requests) --- */

#define HEAP_NONE SIZE_MAX

/* Serve a before b: urgent before owed; urgent by streak start (earliest deadline first), owed by
 * the first refusal; then first come first served. */
static bool prio_before(const struct sched_vm *a, const struct sched_vm *b)
{
	uint64_t ka = a->urgent ? a->streak_start : a->owed_since;
	uint64_t kb = b->urgent ? b->streak_start : b->owed_since;

	if (a->urgent != b->urgent)
		return a->urgent;
	if (ka != kb)
		return ka < kb;
	return a->enq_seq < b->enq_seq;
}

/* heap[0]: the best on top; heap[1]: the worst on top. */
static bool heap_above(int h, const struct sched_vm *a, const struct sched_vm *b)
{
	return h == 0 ? prio_before(a, b) : prio_before(b, a);
}

static void heap_set(struct sched *s, int h, size_t i, struct sched_vm *vm)
{
	s->heap[h][i] = vm;
	vm->hidx[h] = i;
}

static void heap_sift(struct sched *s, int h, size_t i)
{
	struct sched_vm **a = s->heap[h], *vm = a[i];

	while (i > 0 && heap_above(h, vm, a[(i - 1) / 2])) {
		heap_set(s, h, i, a[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && heap_above(h, a[c + 1], a[c]))
			c++;
		if (!heap_above(h, a[c], vm))
			break;
		heap_set(s, h, i, a[c]);
		i = c;
	}
	heap_set(s, h, i, vm);
}

/* Room is reserved on VM add (heap_cap >= nvms), so this cannot fail. */
static void heap_push(struct sched *s, struct sched_vm *vm)
{
	size_t i = s->nheap++;

	assert(s->nheap <= s->heap_cap);
	for (int h = 0; h < 2; h++) {
		heap_set(s, h, i, vm);
		heap_sift(s, h, i);
	}
}

static void heap_remove(struct sched *s, struct sched_vm *vm)
{
	size_t last = --s->nheap;

	for (int h = 0; h < 2; h++) {
		size_t i = vm->hidx[h];
		struct sched_vm *moved = s->heap[h][last];

		vm->hidx[h] = HEAP_NONE;
		if (i == last)
			continue;
		heap_set(s, h, i, moved);
		heap_sift(s, h, i);
	}
}

static struct sched_vm *heap_top(const struct sched *s, int h)
{
	return s->nheap > 0 ? s->heap[h][0] : NULL;
}

/* --- config --- */

void sched_config_defaults(struct sched_config *c)
{
	*c = (struct sched_config){
		.psp_concurrency = SCHED_DEFAULT_PSP_CONCURRENCY,
		.busy_budget_usec = SCHED_DEFAULT_BUSY_BUDGET_USEC,
		.max_queue_wait_usec = SCHED_DEFAULT_MAX_QUEUE_WAIT_USEC,
		.retry_interval_usec = SCHED_DEFAULT_RETRY_INTERVAL_USEC,
		.quota = {.rate_milli = SCHED_DEFAULT_RATE_MILLI,
			  .burst = SCHED_DEFAULT_BURST,
			  .weight = SCHED_DEFAULT_WEIGHT},
	};
}

static int refuse(const char **reason, const char *msg)
{
	if (reason)
		*reason = msg;
	return -EINVAL;
}

int sched_quota_check(const struct sched_config *c, const struct sched_quota *q,
		      const char **reason)
{
	if (!c || !q)
		return refuse(reason, "missing quota");
	if (q->rate_milli == 0)
		return refuse(reason, "quota rate must be positive");
	if (q->rate_milli > SCHED_RATE_MILLI_MAX)
		return refuse(reason, "quota rate above 1000000 requests per second");
	if (q->burst == 0)
		return refuse(reason, "quota burst must be at least 1");
	if (q->burst > SCHED_BURST_MAX)
		return refuse(reason, "quota burst above 1000000");
	if (q->weight == 0 || q->weight > SCHED_WEIGHT_MAX)
		return refuse(reason, "weight must be between 1 and 1000");
	/* rate * busy_budget >= 1 request; rate <= 1e9 and budget < 6e7 usec: no overflow. */
	if (c->busy_budget_usec < SCHED_GUEST_BUSY_LIMIT_USEC &&
	    q->rate_milli * c->busy_budget_usec < 1000 * SCHED_USEC_PER_SEC)
		return refuse(reason, "quota allows less than one request per busy_budget; "
				      "guests would lose their keys");
	return 0;
}

int sched_config_check(const struct sched_config *c, const char **reason)
{
	if (!c)
		return refuse(reason, "missing config");
	if (c->psp_concurrency == 0)
		return refuse(reason, "psp_concurrency must be at least 1");
	if (c->psp_concurrency > SCHED_SLOTS_MAX)
		return refuse(reason, "psp_concurrency above 64");
	if (c->busy_budget_usec == 0)
		return refuse(reason, "busy_budget must be positive");
	if (c->busy_budget_usec >= SCHED_GUEST_BUSY_LIMIT_USEC)
		return refuse(reason, "busy_budget must be below 60 s (the guest wipes its key)");
	if (c->max_queue_wait_usec == 0)
		return refuse(reason, "max_queue_wait must be positive");
	if (c->max_queue_wait_usec >= SCHED_QUEUE_WAIT_LIMIT_USEC)
		return refuse(reason, "max_queue_wait must be below the kernel's 100 ms");
	if (c->retry_interval_usec == 0)
		return refuse(reason, "retry_interval must be positive");
	if (c->retry_interval_usec >= c->busy_budget_usec ||
	    c->busy_budget_usec - c->retry_interval_usec <= c->max_queue_wait_usec)
		return refuse(reason, "busy_budget must exceed retry_interval + max_queue_wait");
	return sched_quota_check(c, &c->quota, reason);
}

const char *sched_busy_reason_name(enum sched_busy_reason r)
{
	static const char *const names[_SCHED_BUSY_MAX] = {
		[SCHED_BUSY_NONE] = "none",	  [SCHED_BUSY_INFLIGHT] = "in-flight",
		[SCHED_BUSY_QUOTA] = "quota",	  [SCHED_BUSY_OVERLOAD] = "overload",
		[SCHED_BUSY_NO_VM] = "no-vm",	  [SCHED_BUSY_PAUSED] = "paused",
		[SCHED_BUSY_REMOVED] = "removed",
	};
	return (unsigned)r < _SCHED_BUSY_MAX ? names[r] : "unknown";
}

const char *sched_anomaly_name(enum sched_anomaly a)
{
	static const char *const names[_SCHED_ANOM_MAX] = {
		[SCHED_ANOM_REPLAY] = "replay",
		[SCHED_ANOM_GAP] = "gap",
		[SCHED_ANOM_TYPE] = "unknown-type",
		[SCHED_ANOM_VMPCK] = "bad-vmpck",
	};
	return (unsigned)a < _SCHED_ANOM_MAX ? names[a] : "unknown";
}

/* --- hash table (chained, power-of-two buckets, grown at load 1) --- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static size_t bucket_of(const struct sched *s, uint64_t id, size_t nbuckets)
{
	return (size_t)(mix64(id ^ s->cfg.hash_seed) & (nbuckets - 1));
}

static struct sched_vm *vm_find(const struct sched *s, uint64_t id)
{
	for (struct sched_vm *v = s->buckets[bucket_of(s, id, s->nbuckets)]; v; v = v->hnext)
		if (v->id == id)
			return v;
	return NULL;
}

static void hash_grow(struct sched *s)
{
	size_t nb = s->nbuckets * 2;
	struct sched_vm **b;

	if (nb < s->nbuckets)
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the old table: slower, still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct sched_vm *v = s->buckets[i], *n;
		for (; v; v = n) {
			size_t k = bucket_of(s, v->id, nb);
			n = v->hnext;
			v->hnext = b[k];
			b[k] = v;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

static void hash_unlink(struct sched *s, struct sched_vm *vm)
{
	struct sched_vm **p = &s->buckets[bucket_of(s, vm->id, s->nbuckets)];

	for (; *p; p = &(*p)->hnext)
		if (*p == vm) {
			*p = vm->hnext;
			return;
		}
}

/* --- token bucket --- */

static const struct sched_quota *vm_quota(const struct sched *s, const struct sched_vm *vm)
{
	return vm->custom_quota ? &vm->own_quota : &s->cfg.quota;
}

static void bucket_refill(const struct sched_quota *q, int64_t *tokens, uint64_t *at, uint64_t now)
{
	int64_t cap = (int64_t)q->burst * TOKEN_UNIT;
	uint64_t elapsed = now > *at ? now - *at : 0;

	*at = MAX(*at, now);
	if (*tokens >= cap || elapsed == 0)
		return;
	/* Time to fill up; bounded (cap + debt <= ~2e15) so the product below cannot overflow. */
	uint64_t deficit = (uint64_t)(cap - *tokens);
	uint64_t need = DIV_ROUND_UP(deficit, q->rate_milli);
	if (elapsed >= need)
		*tokens = cap;
	else
		*tokens += (int64_t)(elapsed * q->rate_milli);
}

static void vm_refill(const struct sched *s, struct sched_vm *vm, uint64_t now)
{
	bucket_refill(vm_quota(s, vm), &vm->tokens, &vm->refilled_at, now);
}

/* How long a refusal for quota marks a VM as one that asks beyond its rate (a guest refused
 * BUSY comes back after 2 s; its bucket may well be full again by then). */
#define SCHED_FLOOD_MEMORY_USEC (10 * SCHED_USEC_PER_SEC)

/* The VM asks within its sustained rate: it has drawn nothing of its burst and has not been
 * refused for quota lately. */
static bool vm_within_rate(const struct sched *s, const struct sched_vm *vm, uint64_t now)
{
	if (vm->quota_refused && now - vm->quota_busy_at < SCHED_FLOOD_MEMORY_USEC)
		return false;
	return vm->tokens >= (int64_t)vm_quota(s, vm)->burst * TOKEN_UNIT;
}

static void vm_take_token(const struct sched *s, struct sched_vm *vm)
{
	/* Debt is bounded to one bucket's worth: older debt is forgiven. */
	int64_t floor = -(int64_t)vm_quota(s, vm)->burst * TOKEN_UNIT;

	vm->tokens = MAX(vm->tokens - TOKEN_UNIT, floor);
}

/* --- events and accounting --- */

static void emit(struct sched *s, enum sched_event_type type, const struct sched_vm *vm,
		 uint64_t req_id, enum sched_busy_reason reason, bool forced, uint64_t waited)
{
	struct sched_event ev = {
		.type = type,
		.reason = reason,
		.forced = forced,
		.vm_id = vm ? vm->id : 0,
		.owner = vm ? vm->owner : NULL,
		.req_id = req_id,
		.waited_usec = waited,
	};
	if (s->emit)
		s->emit(s->userdata, &ev);
}

/* A BUSY answer for vm at now: counts it and extends the VM's BUSY streak. */
static void vm_note_busy(struct sched *s, struct sched_vm *vm, enum sched_busy_reason reason,
			 uint64_t now)
{
	vm->n_busy[reason]++;
	if (!vm->owed && (reason == SCHED_BUSY_OVERLOAD || reason == SCHED_BUSY_PAUSED)) {
		/* Refused for lack of capacity, not for its own quota or a second request. */
		vm->owed = true;
		vm->owed_since = now;
		link_append(&s->owed, &vm->olink);
	}
	vm->last_busy = now;
	if (!vm->in_streak) {
		vm->in_streak = true;
		vm->streak_start = now;
	}
	vm->max_streak = MAX(vm->max_streak, now - vm->streak_start);
}

/* Rule 4 with a margin: if the next answer were BUSY, the guest's retry (after
 * retry_interval, plus a queue wait) could land past busy_budget. */
static bool vm_urgent(const struct sched *s, const struct sched_vm *vm, uint64_t now)
{
	uint64_t margin = s->cfg.retry_interval_usec + s->cfg.max_queue_wait_usec;

	return vm->in_streak && now - vm->streak_start + margin >= s->cfg.busy_budget_usec;
}

/* The VM holds a slot from now: admitted here, or found in flight by a restore. */
static void vm_set_inflight(struct sched *s, struct sched_vm *vm, uint64_t now)
{
	vm->inflight = true;
	vm->admitted_at = now;
	vm->ever_admitted = true;
	vm->in_streak = false;
	vm->owed = false;
	link_remove(&vm->olink);
	s->ninflight++;
}

static void vm_admit(struct sched *s, struct sched_vm *vm, bool forced, uint64_t now)
{
	vm_take_token(s, vm);
	/* Over the slots it first waits in the kernel: that wait is not the PSP's service time. */
	vm->timed = s->ninflight < s->cfg.psp_concurrency;
	vm_set_inflight(s, vm, now);
	vm->n_admitted++;
	if (forced)
		vm->n_forced++;
}

/* Deficit round robin with depth-1 queues. A VM's credit is `deficit` services in round
 * `round`; the queued VMs of the current round are served before those of the next. The credit
 * survives while the request is in flight, so a weight-w VM that is always backlogged gets w
 * services per round although it leaves the lists after each. Idle VMs do not bank credit. */
/* Returns true if the VM carries credit over from the round just ended. */
static bool drr_catch_up(struct sched *s, struct sched_vm *vm)
{
	uint64_t w = vm_quota(s, vm)->weight;
	bool carry;

	if (vm->round >= s->round)
		return false;
	/* A round can end while a backlogged VM's request is in flight (it is in no list then);
	 * credit left from the round just ended carries over, at most one round's worth. */
	carry = vm->round + 1 == s->round;
	vm->deficit = carry ? MIN(vm->deficit, w) + w : w;
	vm->round = s->round;
	return carry;
}

static void drr_charge(struct sched *s, struct sched_vm *vm)
{
	drr_catch_up(s, vm);
	if (--vm->deficit == 0) {
		vm->round++;
		vm->deficit = vm_quota(s, vm)->weight;
	}
}

static void vm_enqueue(struct sched *s, struct sched_vm *vm, uint64_t req_id, bool urgent,
		       uint64_t now)
{
	vm->queued = true;
	vm->urgent = urgent;
	vm->req_id = req_id;
	vm->queued_at = now;
	vm->enq_seq = s->enq_seq++;
	link_append(&s->bytime, &vm->tlink);
	s->nqueued++;
	if (urgent || vm->owed) {
		heap_push(s, vm);
		return;
	}
	if (drr_catch_up(s, vm))
		/* It was owed service in the round that ended: it goes first in this one. */
		link_append(s->current.next, &vm->qlink);
	else if (vm->round == s->round && vm_within_rate(s, vm, now))
		link_append(&s->fresh, &vm->qlink);
	else
		link_append(vm->round == s->round ? &s->current : &s->next, &vm->qlink);
}

static void vm_dequeue(struct sched *s, struct sched_vm *vm)
{
	if (vm->hidx[0] != HEAP_NONE)
		heap_remove(s, vm);
	else
		link_remove(&vm->qlink);
	link_remove(&vm->tlink);
	vm->queued = false;
	s->nqueued--;
}

/* Urgent requests first, then owed ones, then deficit round robin (in a round, the VMs asking
 * within their rate first). */
static struct sched_vm *pick_next(struct sched *s)
{
	if (s->nheap > 0)
		return heap_top(s, 0);
	if (!link_empty(&s->fresh))
		return container_of(s->fresh.next, struct sched_vm, qlink);
	if (link_empty(&s->current)) {
		if (link_empty(&s->next))
			return NULL;
		link_splice(&s->current, &s->next);
		s->round++;
	}
	return container_of(s->current.next, struct sched_vm, qlink);
}

/* The request to refuse early: the longest queued one that is neither urgent nor the next to be
 * served (looking at a few at most). Refusing the earliest arrivals early and letting the later
 * ones run to their deadline is what widens a group's arrival window on each retry: refused on
 * arrival, a guest keeps its phase; refused at the deadline, it moves max_queue_wait later. */
#define VICTIM_SCAN 8

static struct sched_vm *pick_victim(struct sched *s)
{
	const struct sched_vm *top = pick_next(s);
	unsigned n = 0;

	for (struct sched_link *l = s->bytime.next; l != &s->bytime && n < VICTIM_SCAN;
	     l = l->next, n++) {
		struct sched_vm *vm = container_of(l, struct sched_vm, tlink);

		if (vm != top && !vm->urgent)
			return vm;
	}
	return NULL;
}

/* Called after each admission. `fit` is how many queued requests the slots can still start
 * before the newest queued request's deadline (one per svc_est / slots). The surplus cannot all
 * be served in time; this admission's share of it is refused now, so the refusals are spread
 * over the admissions left instead of all falling on the deadlines (see the top of the file).
 * Nothing happens without a surplus, so an uncontended queue never sees it; no estimate yet (no
 * DONE seen), nothing either. */
static int spread(struct sched *s, uint64_t now)
{
	const struct sched_vm *newest;
	uint64_t deadline, left, fit, surplus, share;
	int n = 0;

	if (s->svc_est == 0 || link_empty(&s->bytime))
		return 0;
	newest = container_of(s->bytime.prev, struct sched_vm, tlink);
	deadline = newest->queued_at + s->cfg.max_queue_wait_usec;
	left = deadline > now ? deadline - now : 0;
	/* svc_est <= max DONE delay seen, left < 100 ms, slots <= 64: no overflow. */
	fit = left * s->cfg.psp_concurrency / s->svc_est;
	if (s->nqueued <= fit + s->cfg.psp_concurrency)
		return 0;
	surplus = s->nqueued - fit - s->cfg.psp_concurrency; /* a slot's worth of slack */
	share = DIV_ROUND_UP(surplus, fit + 1);		     /* fit admissions remain */
	for (; share > 0; share--) {
		struct sched_vm *vm = pick_victim(s);

		if (!vm)
			break;
		vm_dequeue(s, vm);
		vm_note_busy(s, vm, SCHED_BUSY_OVERLOAD, now);
		emit(s, SCHED_EV_BUSY, vm, vm->req_id, SCHED_BUSY_OVERLOAD, false,
		     now - vm->queued_at);
		n++;
	}
	return n;
}

/* How many forced admissions may be in flight over the slots: as many as the PSP can serve in
 * one busy_budget (by the running service estimate), so that no forced request waits in the
 * kernel for longer than the budget it was admitted to respect; one per max_queue_wait of the
 * retry interval while there is no estimate yet. */
static unsigned overcommit_max(const struct sched *s)
{
	uint64_t n = s->svc_est ? s->cfg.busy_budget_usec / s->svc_est * s->cfg.psp_concurrency
				: s->cfg.retry_interval_usec / MAX(s->cfg.max_queue_wait_usec, 1u);

	return (unsigned)MIN(MAX(n, 1u), (uint64_t)SCHED_MAX_OVERCOMMIT);
}

/* Work conservation: fills free slots from the queues. Rule 4 goes further: an urgent VM (its
 * retry would land past busy_budget) is admitted even when every slot is taken, and then waits
 * for the PSP in the kernel. A group of guests refused together widens its arrival window by
 * only max_queue_wait per retry (top of the file), so a boot storm of 1,000 guests still brings
 * hundreds of urgent VMs in one window; this is what keeps their keys. Over the slots, urgent VMs
 * go in deadline order (the heap) and the backlog is bounded by overcommit_max. */
static int dispatch(struct sched *s, uint64_t now)
{
	int n = 0;

	while (!s->paused) {
		struct sched_vm *vm;
		bool forced;

		if (s->ninflight < s->cfg.psp_concurrency) {
			vm = pick_next(s);
		} else {
			/* Urgent VMs are on top of the heap when there are any (pick_next would
			 * start a new DRR round as a side effect: not here). */
			vm = s->nheap > 0 ? heap_top(s, 0) : NULL;
			if (!vm || !vm->urgent ||
			    s->ninflight >= s->cfg.psp_concurrency + overcommit_max(s))
				break;
			s->overcommitted++;
		}
		if (!vm)
			break;
		forced = vm->urgent;
		/* Only DRR picks spend DRR credit: urgent and owed VMs are served ahead of the
		 * rounds (charging them could move a VM two rounds ahead). */
		if (vm->hidx[0] == HEAP_NONE)
			drr_charge(s, vm);
		vm_dequeue(s, vm);
		vm_refill(s, vm, now);
		vm_admit(s, vm, forced, now);
		emit(s, SCHED_EV_ADMIT, vm, vm->req_id, SCHED_BUSY_NONE, forced,
		     now - vm->queued_at);
		n++;
		n += spread(s, now);
	}
	return n;
}

/* Refuses every queued request whose wait reached max_queue_wait. */
static int expire(struct sched *s, uint64_t now)
{
	int n = 0;

	while (!link_empty(&s->bytime)) {
		struct sched_vm *vm = container_of(s->bytime.next, struct sched_vm, tlink);
		enum sched_busy_reason reason = s->paused ? SCHED_BUSY_PAUSED : SCHED_BUSY_OVERLOAD;

		if (now - vm->queued_at < s->cfg.max_queue_wait_usec)
			break;
		vm_dequeue(s, vm);
		vm_note_busy(s, vm, reason, now);
		emit(s, SCHED_EV_BUSY, vm, vm->req_id, reason, false, now - vm->queued_at);
		n++;
	}
	return n;
}

/* Time never runs backwards inside sched: a stale `now` is treated as the latest seen. */
static uint64_t clock_in(struct sched *s, uint64_t now)
{
	s->now = MAX(s->now, now);
	return s->now;
}

/* The start of a call about one known VM: s must be given; advances the clock to
 * *now (writing back the clock's time), runs the queue expiry when run_expiry, and
 * finds the VM (-ENOENT when it is not registered). */
static int vm_enter(struct sched *s, uint64_t vm_id, bool run_expiry, uint64_t *now,
		    struct sched_vm **ret)
{
	if (!s)
		return -EINVAL;
	*now = clock_in(s, *now);
	if (run_expiry)
		expire(s, *now);
	*ret = vm_find(s, vm_id);
	return *ret ? 0 : -ENOENT;
}

static void slot_freed(struct sched *s, uint64_t now)
{
	dispatch(s, now);
	if (s->paused && s->ninflight == 0)
		emit(s, SCHED_EV_DRAINED, NULL, 0, SCHED_BUSY_NONE, false, 0);
}

/* --- lifecycle --- */

int sched_new(const struct sched_config *c, sched_emit_fn emit_fn, void *userdata,
	      struct sched **ret)
{
	struct sched *s;

	if (!ret || sched_config_check(c, NULL) < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->buckets = calloc(HASH_MIN_BUCKETS, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return -ENOMEM;
	}
	s->nbuckets = HASH_MIN_BUCKETS;
	s->cfg = *c;
	s->emit = emit_fn;
	s->userdata = userdata;
	link_init(&s->owed);
	link_init(&s->fresh);
	link_init(&s->current);
	link_init(&s->next);
	link_init(&s->bytime);
	*ret = s;
	return 0;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct sched_vm *v = s->buckets[i], *n;
		for (; v; v = n) {
			n = v->hnext;
			free(v);
		}
	}
	free(s->buckets);
	free(s->heap[0]);
	free(s->heap[1]);
	free(s);
}

int sched_vm_add(struct sched *s, uint64_t vm_id, uint64_t now)
{
	struct sched_vm *vm;
	size_t k;

	if (!s)
		return -EINVAL;
	now = clock_in(s, now);
	if (vm_find(s, vm_id))
		return -EEXIST;
	if (s->heap_cap <= s->nvms) {
		/* Every VM may be in the heaps at once: reserve room now, so enqueueing (which
		 * must not fail) never allocates. */
		size_t cap = MAX(2 * s->heap_cap, (size_t)HASH_MIN_BUCKETS);

		for (int h = 0; h < 2; h++) {
			struct sched_vm **a = reallocarray(s->heap[h], cap, sizeof(*a));
			if (!a)
				return -ENOMEM;
			s->heap[h] = a;
		}
		s->heap_cap = cap;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->id = vm_id;
	link_init(&vm->qlink);
	link_init(&vm->tlink);
	link_init(&vm->olink);
	vm->hidx[0] = vm->hidx[1] = HEAP_NONE;
	vm->tokens = (int64_t)s->cfg.quota.burst * TOKEN_UNIT;
	vm->refilled_at = now;
	vm->round = s->round;
	vm->deficit = s->cfg.quota.weight;
	if (s->nvms >= s->nbuckets)
		hash_grow(s);
	k = bucket_of(s, vm_id, s->nbuckets);
	vm->hnext = s->buckets[k];
	s->buckets[k] = vm;
	s->nvms++;
	return 0;
}

int sched_vm_remove(struct sched *s, uint64_t vm_id, uint64_t now)
{
	struct sched_vm *vm;
	bool had_slot;
	int r;

	r = vm_enter(s, vm_id, true, &now, &vm);
	if (r < 0)
		return r;
	hash_unlink(s, vm);
	s->nvms--;
	if (vm->queued) {
		vm_dequeue(s, vm);
		emit(s, SCHED_EV_BUSY, vm, vm->req_id, SCHED_BUSY_REMOVED, false,
		     now - vm->queued_at);
	}
	link_remove(&vm->olink);
	had_slot = vm->inflight;
	if (had_slot)
		s->ninflight--;
	free(vm);
	if (had_slot)
		slot_freed(s, now);
	return 0;
}

int sched_vm_restore_inflight(struct sched *s, uint64_t vm_id, uint64_t req_id, uint64_t now)
{
	struct sched_vm *vm;
	int r;

	r = vm_enter(s, vm_id, false, &now, &vm);
	if (r < 0)
		return r;
	if (vm->inflight || vm->queued)
		return -EBUSY;
	vm->req_id = req_id;
	vm->req_tracked = false;
	vm_set_inflight(s, vm, now);
	return 0;
}

/* --- sequence tracking (rule 5) --- */

static bool type_is_request(uint8_t type)
{
	return type >= MSG_CPUID_REQ && type <= MSG_TSC_INFO_REQ && (type & 1);
}

static unsigned seq_classify(struct sched_vm *vm, const struct sched_msg *m)
{
	unsigned anom = 0;
	struct sched_seq *q;

	vm->req_tracked = false;
	if (!m)
		return 0;
	if (!type_is_request(m->type))
		anom |= 1u << SCHED_ANOM_TYPE;
	if (m->vmpck > MSG_VMPCK_MAX)
		return anom | 1u << SCHED_ANOM_VMPCK;

	q = &vm->seq[m->vmpck];
	vm->req_tracked = true;
	vm->req_vmpck = m->vmpck;
	vm->req_seqno = m->seqno;
	if (m->seqno == 0) {
		anom |= 1u << SCHED_ANOM_REPLAY; /* never valid (facts §2.3) */
	} else if (!q->known) {
		/* First sight (or after a restart): nothing to compare against yet. */
		q->known = true;
		q->expected = m->seqno;
	} else if (m->seqno == q->last && q->last_open) {
		/* re-send after BUSY / INVALID_LEN / a failed attempt: normal */
	} else if (m->seqno < q->expected || (m->seqno == q->last && !q->last_open)) {
		anom |= 1u << SCHED_ANOM_REPLAY;
	} else if (m->seqno > q->expected) {
		anom |= 1u << SCHED_ANOM_GAP;
	}
	if (m->seqno != 0) {
		q->last = m->seqno;
		q->last_open = true;
	}
	return anom;
}

static void seq_done(struct sched_vm *vm, enum sched_outcome outcome)
{
	struct sched_seq *q;

	if (!vm->req_tracked || vm->req_seqno == 0)
		return;
	q = &vm->seq[vm->req_vmpck];
	if (outcome == SCHED_OUTCOME_SUCCESS && vm->req_seqno <= UINT64_MAX - 2) {
		/* The firmware consumed request and response numbers (facts §2.3). */
		q->known = true;
		q->expected = vm->req_seqno + 2;
		q->last = vm->req_seqno;
		q->last_open = false;
	}
	/* Otherwise the firmware did not advance: the same seqno stays valid. */
}

/* --- requests --- */

/* The oldest owed VM that still retries, or NULL. A VM whose last BUSY is older than two retry
 * intervals and a queue wait has stopped asking (or its guest is gone): it no longer holds
 * others back, though it keeps its place in the queue order if it comes back. */
static const struct sched_vm *oldest_owed(struct sched *s, uint64_t now)
{
	uint64_t stale = 2 * s->cfg.retry_interval_usec + s->cfg.max_queue_wait_usec;

	while (!link_empty(&s->owed)) {
		struct sched_vm *vm = container_of(s->owed.next, struct sched_vm, olink);

		if (vm->queued || now - vm->last_busy <= stale)
			return vm;
		link_remove(&vm->olink);
	}
	return NULL;
}

/* Fair-share gate: a VM that has not been refused, asking again after an admission that came
 * later than the oldest owed VM's first refusal, is refused too: it was served since that VM
 * started waiting, so it must not take a slot that VM's retry needs. Its own retry then lands at
 * a fresh phase of the retry cycle, which is what breaks up lockstep groups. */
static bool fair_share_gate(struct sched *s, const struct sched_vm *vm, uint64_t now)
{
	const struct sched_vm *o;

	if (vm->owed || !vm->ever_admitted)
		return false;
	o = oldest_owed(s, now);
	return o && o != vm && vm->admitted_at > o->owed_since &&
	       now - o->owed_since > s->cfg.retry_interval_usec + s->cfg.max_queue_wait_usec;
}

int sched_request(struct sched *s, uint64_t vm_id, uint64_t req_id, const struct sched_msg *msg,
		  uint64_t now, struct sched_decision *ret)
{
	struct sched_decision d = {.verdict = SCHED_BUSY};
	struct sched_vm *vm;
	bool urgent;

	if (!s || !ret)
		return -EINVAL;
	now = clock_in(s, now);
	expire(s, now);

	vm = vm_find(s, vm_id);
	if (!vm) {
		s->busy_no_vm++;
		d.reason = SCHED_BUSY_NO_VM;
		if (!s->dump_requested || now - s->dump_at >= SCHED_DUMP_INTERVAL_USEC) {
			d.need_dump = true;
			s->dump_requested = true;
			s->dump_at = now;
		}
		*ret = d;
		return 0;
	}

	vm->n_requests++;
	if (vm->queued || vm->inflight) {
		/* The tracked request belongs to the admitted/queued one: classify without
		 * disturbing it. */
		bool tracked = vm->req_tracked;
		uint8_t vmpck = vm->req_vmpck;
		uint64_t seqno = vm->req_seqno;

		d.anomalies = seq_classify(vm, msg);
		vm->req_tracked = tracked;
		vm->req_vmpck = vmpck;
		vm->req_seqno = seqno;
		d.reason = SCHED_BUSY_INFLIGHT;
		goto busy;
	}
	d.anomalies = seq_classify(vm, msg);
	if (s->paused) {
		d.reason = SCHED_BUSY_PAUSED;
		goto busy;
	}
	vm_refill(s, vm, now);
	urgent = vm_urgent(s, vm, now);
	if (vm->tokens < TOKEN_UNIT && !urgent) {
		d.reason = SCHED_BUSY_QUOTA;
		vm->quota_busy_at = now;
		vm->quota_refused = true;
		goto busy;
	}
	if (!urgent && fair_share_gate(s, vm, now)) {
		d.reason = SCHED_BUSY_OVERLOAD;
		goto busy;
	}
	d.forced = urgent;
	if (s->ninflight < s->cfg.psp_concurrency && s->nqueued == 0) {
		vm->req_id = req_id;
		/* Nothing is queued, so the round may move up to this VM's: keeps every VM's
		 * round within {round, round + 1}. */
		s->round = MAX(s->round, vm->round);
		if (!urgent)
			drr_charge(s, vm);
		vm_admit(s, vm, urgent, now);
		d.verdict = SCHED_ADMIT;
	} else {
		vm_enqueue(s, vm, req_id, urgent, now);
		d.verdict = SCHED_QUEUED;
		dispatch(s, now);
	}
	goto out;

busy:
	vm_note_busy(s, vm, d.reason, now);
out:
	for (unsigned i = 0; i < _SCHED_ANOM_MAX; i++)
		if (d.anomalies & (1u << i))
			vm->n_anom[i]++;
	*ret = d;
	return 0;
}

int sched_done(struct sched *s, uint64_t vm_id, uint64_t req_id, uint64_t now,
	       enum sched_outcome outcome)
{
	struct sched_vm *vm;
	int r;

	r = vm_enter(s, vm_id, true, &now, &vm);
	if (r < 0)
		return r;
	if (vm->inflight && vm->req_id == req_id) {
		/* Service time estimate for spread(): a mean over about the last 8 requests. */
		uint64_t took = MAX(now - MIN(vm->admitted_at, now), 1u);

		if (vm->timed) {
			s->svc_est = s->svc_est ? s->svc_est - s->svc_est / 8 + took / 8 : took;
			s->svc_est = MAX(s->svc_est, 1u);
		}
		vm->inflight = false;
		vm->n_done++;
		seq_done(vm, outcome);
		s->ninflight--;
		slot_freed(s, now);
		return 0;
	}
	if (vm->queued && vm->req_id == req_id) {
		/* The kernel stopped waiting and answered BUSY itself. */
		vm_dequeue(s, vm);
		vm_note_busy(s, vm, SCHED_BUSY_OVERLOAD, now);
		dispatch(s, now);
		return 0;
	}
	return -ENOENT;
}

int sched_tick(struct sched *s, uint64_t now)
{
	int n;

	if (!s)
		return -EINVAL;
	now = clock_in(s, now);
	n = expire(s, now);
	return n + dispatch(s, now);
}

int sched_next_deadline(const struct sched *s, uint64_t *ret_usec)
{
	const struct sched_vm *vm;

	if (!s || !ret_usec)
		return -EINVAL;
	if (link_empty(&s->bytime))
		return -ENOENT;
	vm = container_of(s->bytime.next, struct sched_vm, tlink);
	*ret_usec = vm->queued_at + s->cfg.max_queue_wait_usec;
	return 0;
}

int sched_pause(struct sched *s, uint64_t now)
{
	if (!s)
		return -EINVAL;
	now = clock_in(s, now);
	expire(s, now);
	s->paused = true;
	return (int)s->ninflight;
}

int sched_resume(struct sched *s, uint64_t now)
{
	if (!s)
		return -EINVAL;
	now = clock_in(s, now);
	s->paused = false;
	return expire(s, now) + dispatch(s, now);
}

bool sched_paused(const struct sched *s)
{
	return s && s->paused;
}

unsigned sched_inflight(const struct sched *s)
{
	return s ? s->ninflight : 0;
}

unsigned sched_queued(const struct sched *s)
{
	return s ? s->nqueued : 0;
}

int sched_vm_set_owner(struct sched *s, uint64_t vm_id, void *owner)
{
	struct sched_vm *vm = s ? vm_find(s, vm_id) : NULL;

	if (!vm)
		return -ENOENT;
	vm->owner = owner;
	return 0;
}

void *sched_vm_owner(const struct sched *s, uint64_t vm_id)
{
	const struct sched_vm *vm = s ? vm_find(s, vm_id) : NULL;

	return vm ? vm->owner : NULL;
}

size_t sched_vm_foreach_owner(const struct sched *s,
			      void (*fn)(void *userdata, uint64_t vm_id, void *owner),
			      void *userdata)
{
	size_t n = 0;

	if (!s || !fn)
		return 0;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (const struct sched_vm *v = s->buckets[i]; v; v = v->hnext) {
			fn(userdata, v->id, v->owner);
			n++;
		}
	return n;
}

size_t sched_vm_count(const struct sched *s)
{
	return s ? s->nvms : 0;
}

uint64_t sched_busy_no_vm(const struct sched *s)
{
	return s ? s->busy_no_vm : 0;
}

uint64_t sched_overcommitted(const struct sched *s)
{
	return s ? s->overcommitted : 0;
}

unsigned sched_inflight_max(const struct sched *s)
{
	return s ? s->cfg.psp_concurrency + overcommit_max(s) : 0;
}

/* --- quotas --- */

static void vm_apply_quota(struct sched *s, struct sched_vm *vm, const struct sched_quota *q,
			   uint64_t now)
{
	int64_t cap;

	vm_refill(s, vm, now); /* at the old rate up to now */
	if (q) {
		vm->own_quota = *q;
		vm->custom_quota = true;
	} else {
		vm->custom_quota = false;
	}
	q = vm_quota(s, vm);
	cap = (int64_t)q->burst * TOKEN_UNIT;
	vm->tokens = MIN(vm->tokens, cap);
	vm->tokens = MAX(vm->tokens, -cap);
	vm->deficit = MAX(MIN(vm->deficit, 2 * (uint64_t)q->weight), 1u);
}

int sched_vm_set_quota(struct sched *s, uint64_t vm_id, const struct sched_quota *q, uint64_t now,
		       const char **reason)
{
	struct sched_vm *vm;
	int r;

	if (!s)
		return -EINVAL;
	if (q) {
		r = sched_quota_check(&s->cfg, q, reason);
		if (r < 0)
			return r;
	}
	r = vm_enter(s, vm_id, false, &now, &vm);
	if (r < 0)
		return r;
	vm_apply_quota(s, vm, q, now);
	return 0;
}

int sched_set_default_quota(struct sched *s, const struct sched_quota *q, uint64_t now,
			    const char **reason)
{
	int r;

	if (!s)
		return -EINVAL;
	r = sched_quota_check(&s->cfg, q, reason);
	if (r < 0)
		return r;
	now = clock_in(s, now);
	/* Refill everyone at the old default first; admin action, O(n) is fine. */
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct sched_vm *v = s->buckets[i]; v; v = v->hnext)
			if (!v->custom_quota)
				vm_refill(s, v, now);
	s->cfg.quota = *q;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct sched_vm *v = s->buckets[i]; v; v = v->hnext)
			if (!v->custom_quota)
				vm_apply_quota(s, v, NULL, now);
	return 0;
}

/* --- introspection --- */

static void vm_fill_stats(const struct sched *s, const struct sched_vm *vm, uint64_t now,
			  struct sched_vm_stats *st)
{
	int64_t tokens = vm->tokens;
	uint64_t at = vm->refilled_at;

	now = MAX(now, s->now);
	bucket_refill(vm_quota(s, vm), &tokens, &at, now);
	*st = (struct sched_vm_stats){
		.vm_id = vm->id,
		.requests = vm->n_requests,
		.admitted = vm->n_admitted,
		.forced = vm->n_forced,
		.done = vm->n_done,
		.busy_streak_usec = vm->in_streak ? now - vm->streak_start : 0,
		.max_busy_streak_usec = vm->max_streak,
		.tokens_milli = tokens / (TOKEN_UNIT / 1000),
		.quota = *vm_quota(s, vm),
		.custom_quota = vm->custom_quota,
		.inflight = vm->inflight,
		.queued = vm->queued,
	};
	memcpy(st->busy, vm->n_busy, sizeof(st->busy));
	memcpy(st->anomalies, vm->n_anom, sizeof(st->anomalies));
}

int sched_vm_stats(const struct sched *s, uint64_t vm_id, uint64_t now, struct sched_vm_stats *ret)
{
	const struct sched_vm *vm;

	if (!s || !ret)
		return -EINVAL;
	vm = vm_find(s, vm_id);
	if (!vm)
		return -ENOENT;
	vm_fill_stats(s, vm, now, ret);
	return 0;
}

size_t sched_vm_foreach(const struct sched *s, uint64_t now,
			void (*fn)(void *userdata, const struct sched_vm_stats *st), void *userdata)
{
	size_t n = 0;

	if (!s || !fn)
		return 0;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (const struct sched_vm *v = s->buckets[i]; v; v = v->hnext) {
			struct sched_vm_stats st;
			vm_fill_stats(s, v, now, &st);
			fn(userdata, &st);
			n++;
		}
	return n;
}

static bool list_ok(const struct sched *s, const struct sched_link *head, int kind, unsigned *count)
{
	for (const struct sched_link *l = head->next; l != head; l = l->next) {
		const struct sched_vm *vm = container_of(l, struct sched_vm, qlink);

		if (l->next->prev != l || !vm->queued || vm->inflight || vm_find(s, vm->id) != vm)
			return false;
		if (vm->hidx[0] != HEAP_NONE || vm->owed)
			return false; /* owed and urgent requests live in the heaps */
		if (kind == 1 && (vm->urgent || vm->round != s->round))
			return false;
		if (kind == 2 && (vm->urgent || vm->round != s->round + 1))
			return false;
		if (++*count > s->nvms)
			return false;
	}
	return true;
}

int sched_selfcheck(const struct sched *s)
{
	unsigned inq = 0, bytime = 0, inflight = 0, queued = 0;
	size_t nvms = 0;
	uint64_t prev = 0;

	if (!s)
		return -EINVAL;
	if (!list_ok(s, &s->fresh, 1, &inq) || !list_ok(s, &s->current, 1, &inq) ||
	    !list_ok(s, &s->next, 2, &inq))
		return -EUCLEAN;
	if (s->nheap > s->heap_cap || s->heap_cap < s->nvms)
		return -EUCLEAN;
	for (int h = 0; h < 2; h++)
		for (size_t i = 0; i < s->nheap; i++) {
			const struct sched_vm *vm = s->heap[h][i];

			if (vm->hidx[h] != i || !vm->queued || !(vm->urgent || vm->owed) ||
			    vm_find(s, vm->id) != vm)
				return -EUCLEAN;
			if (i > 0 && heap_above(h, vm, s->heap[h][(i - 1) / 2]))
				return -EUCLEAN;
		}
	inq += (unsigned)s->nheap;
	for (const struct sched_link *l = s->bytime.next; l != &s->bytime; l = l->next) {
		const struct sched_vm *vm = container_of(l, struct sched_vm, tlink);
		if (!vm->queued || vm->queued_at < prev || ++bytime > s->nvms)
			return -EUCLEAN;
		prev = vm->queued_at;
	}
	for (size_t i = 0; i < s->nbuckets; i++)
		for (const struct sched_vm *v = s->buckets[i]; v; v = v->hnext) {
			if (bucket_of(s, v->id, s->nbuckets) != i || ++nvms > s->nvms)
				return -EUCLEAN;
			if ((v->inflight && v->queued) || v->round > s->round + 1 ||
			    v->deficit == 0)
				return -EUCLEAN;
			inflight += v->inflight;
			queued += v->queued;
			if (v->tokens > (int64_t)vm_quota(s, v)->burst * TOKEN_UNIT)
				return -EUCLEAN;
		}
	if (nvms != s->nvms || inq != s->nqueued || bytime != s->nqueued || queued != s->nqueued ||
	    inflight != s->ninflight)
		return -EUCLEAN;
	/* Work conservation: nothing waits while a slot is free, unless paused. */
	if (!s->paused && s->ninflight < s->cfg.psp_concurrency && s->nqueued > 0)
		return -EUCLEAN;
	return 0;
}
