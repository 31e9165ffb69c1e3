/* SPDX-License-Identifier: Apache-2.0 */
/* sched-policy: admission policy (design §4 rules 3-5, §5): slots, per-VM token buckets,
 * deficit round robin, bounded BUSY, sequence tracking. Pure: time is a parameter. (Not named
 * sched.h: that would shadow the system <sched.h>.) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_USEC_PER_SEC 1000000ull

/* Defaults (design §5). The guest retry interval is Linux's SNP_REQ_RETRY_DELAY (facts §1.5). */
#define SCHED_DEFAULT_PSP_CONCURRENCY 1
#define SCHED_DEFAULT_BUSY_BUDGET_USEC (20 * SCHED_USEC_PER_SEC)
#define SCHED_DEFAULT_MAX_QUEUE_WAIT_USEC 50000ull
#define SCHED_DEFAULT_RETRY_INTERVAL_USEC (2 * SCHED_USEC_PER_SEC)
#define SCHED_DEFAULT_RATE_MILLI 2000 /* 2 requests per second */
#define SCHED_DEFAULT_BURST 4	      /* = the [quota] burst default (proto/conf.c) */
#define SCHED_DEFAULT_WEIGHT 1

/* Limits enforced by sched_config_check / sched_quota_check. */
#define SCHED_SLOTS_MAX 64
#define SCHED_GUEST_BUSY_LIMIT_USEC                                                                \
	(60 * SCHED_USEC_PER_SEC)	      /* the guest wipes its key past it                   \
					       */
#define SCHED_QUEUE_WAIT_LIMIT_USEC 100000ull /* kernel verdict timeout (nl.h) */
#define SCHED_RATE_MILLI_MAX 1000000000ull    /* 1,000,000 requests per second */
#define SCHED_BURST_MAX 1000000u
#define SCHED_WEIGHT_MAX 1000u
/* need_dump is raised at most once per this interval, however many unknown-VM requests come. */
#define SCHED_DUMP_INTERVAL_USEC SCHED_USEC_PER_SEC

struct sched_quota {
	uint64_t rate_milli; /* token refill, in thousandths of a request per second (>= 1) */
	uint32_t burst;	     /* bucket size, requests (>= 1) */
	uint32_t weight;     /* deficit round robin weight (1..SCHED_WEIGHT_MAX) */
};

enum sched_verdict {
	SCHED_ADMIT = 1, /* send ALLOW now */
	SCHED_QUEUED,	 /* decision comes later, as a SCHED_EV_ADMIT or SCHED_EV_BUSY event */
	SCHED_BUSY,	 /* answer the guest BUSY now */
};

enum sched_busy_reason {
	SCHED_BUSY_NONE = 0,
	SCHED_BUSY_INFLIGHT, /* the VM already has a request admitted or queued (rule 3) */
	SCHED_BUSY_QUOTA,    /* the VM's token bucket is empty */
	SCHED_BUSY_OVERLOAD, /* no slot within max_queue_wait, or not admissible (see below) */
	SCHED_BUSY_NO_VM,    /* unknown VM */
	SCHED_BUSY_PAUSED,   /* admission paused (certificate rotation) */
	SCHED_BUSY_REMOVED,  /* the VM was removed while its request was queued */
	_SCHED_BUSY_MAX,
};

/* Sequence anomalies (rule 5), as bits (1u << kind). Informational only: they never change
 * the admission decision; the firmware is the judge. */
enum sched_anomaly {
	SCHED_ANOM_REPLAY = 0, /* seqno older than expected (or zero) */
	SCHED_ANOM_GAP,	       /* seqno beyond the expected next one */
	SCHED_ANOM_TYPE,       /* not a known request message type */
	SCHED_ANOM_VMPCK,      /* VMPCK index above 3 (no sequence tracking possible) */
	_SCHED_ANOM_MAX,
};

/* What the daemon read from the plaintext message header (facts §2.1). */
struct sched_msg {
	uint64_t seqno;
	uint8_t type;
	uint8_t version;
	uint8_t vmpck;
	uint16_t size;
};

struct sched_decision {
	enum sched_verdict verdict;
	enum sched_busy_reason reason; /* SCHED_BUSY only */
	bool need_dump;		       /* unknown VM: ask the kernel for VM_DUMP */
	bool forced;		       /* admitted/queued by the BUSY budget rule (over quota) */
	unsigned anomalies;	       /* bitmask of 1u << enum sched_anomaly */
};

/* How a request admitted earlier ended (GUEST_DONE). */
enum sched_outcome {
	SCHED_OUTCOME_SUCCESS = 1, /* firmware ran and returned status 0: seqno consumed (+2) */
	SCHED_OUTCOME_FW_ERROR,	   /* firmware returned an error status: seqno not consumed */
	SCHED_OUTCOME_NOT_RUN,	   /* the firmware never answered (kernel timeout, no status) */
};

enum sched_event_type {
	SCHED_EV_ADMIT = 1, /* a queued request is admitted: send ALLOW */
	SCHED_EV_BUSY,	    /* a queued request is refused: answer BUSY (reason) */
	SCHED_EV_DRAINED,   /* paused and the last in-flight request is done (vm_id/req_id 0) */
};

/* A deferred decision. Every request gets exactly one decision: either the verdict returned by
 * sched_request (ADMIT or BUSY), or, after SCHED_QUEUED, exactly one ADMIT or BUSY event. */
struct sched_event {
	enum sched_event_type type;
	enum sched_busy_reason reason; /* SCHED_EV_BUSY only */
	bool forced;		       /* SCHED_EV_ADMIT made by the BUSY budget rule */
	uint64_t vm_id;
	void *owner; /* the VM's owner pointer (sched_vm_set_owner), NULL if none */
	uint64_t req_id;
	uint64_t waited_usec; /* time spent queued */
};

/* Admission order and admissibility (rule 4 under overload; the reasons are in sched-policy.c).
 * A VM is "owed" from its first BUSY for capacity (OVERLOAD or PAUSED, not QUOTA or INFLIGHT)
 * until its next admission. Queued requests are served: urgent first (the BUSY streak is within
 * retry_interval + max_queue_wait of busy_budget; earliest streak start first; admitted over
 * quota), then owed (earliest first refusal first), then the rest by weighted deficit round
 * robin. A request is admissible unless the fair-share gate refuses it, which happens only when
 * the VM is neither urgent nor owed, has been admitted before, and some other owed VM that still
 * retries was first refused before that admission and more than retry_interval +
 * max_queue_wait ago. An admissible request with tokens is queued or admitted, and the PSP never
 * idles while one is queued. Under contention a queued request may also be refused before its
 * max_queue_wait: when more are queued than the slots can start before the newest deadline (by
 * a running mean of the ALLOW -> DONE time), the surplus is refused a share at each admission,
 * earliest arrivals first, never an urgent one or the next to be served. Both refusals are
 * OVERLOAD and exist to spread the guests' retry phases. */

/* Called synchronously from the calls that take `now`. It must not call back into sched. */
typedef void (*sched_emit_fn)(void *userdata, const struct sched_event *ev);

struct sched_config {
	uint32_t psp_concurrency;     /* slots: admitted and not done, at most (>= 1) */
	uint64_t busy_budget_usec;    /* rule 4: longest continuous BUSY for a VM (< 60 s) */
	uint64_t max_queue_wait_usec; /* a queued request is refused BUSY after this (< 100 ms) */
	uint64_t retry_interval_usec; /* the guest's BUSY retry delay ([scheduler]
				       * guest_retry_interval): rule 4 margin, gate, staleness */
	struct sched_quota quota;     /* default per-VM quota */
	uint64_t hash_seed;	      /* mixes VM ids in the lookup table (any value) */
};

/* Fills c with the defaults above. */
void sched_config_defaults(struct sched_config *c);
/* 0 if c is usable; otherwise -EINVAL and *reason (if not NULL) points to a static message.
 * Refuses: zero or too many slots, busy_budget 0 or >= 60 s, max_queue_wait 0 or >= 100 ms,
 * retry_interval 0, busy_budget <= retry_interval + max_queue_wait, and a bad default quota. */
int sched_config_check(const struct sched_config *c, const char **reason);
/* Same for a quota under config c: rate 0, burst 0, weight 0, values over the limits, and a
 * rate slower than one request per busy_budget (rate * busy_budget < 1 request). */
int sched_quota_check(const struct sched_config *c, const struct sched_quota *q,
		      const char **reason);

struct sched;

/* -EINVAL if the config does not pass sched_config_check, -ENOMEM. emit may be NULL (events
 * are then dropped: only for tests that do not need them). */
int sched_new(const struct sched_config *c, sched_emit_fn emit, void *userdata, struct sched **ret);
/* Frees everything, NULL accepted. Queued requests are dropped without events. */
void sched_free(struct sched *s);

/* Per-VM state lives from add to remove. -EEXIST if known (harmless during a VM_DUMP
 * replay), -ENOMEM. The VM starts with a full bucket of the default quota. */
int sched_vm_add(struct sched *s, uint64_t vm_id, uint64_t now);
/* -ENOENT if unknown. A queued request gets a SCHED_EV_BUSY (REMOVED) event; an in-flight one
 * is forgotten and its slot freed (which may admit another request and raise DRAINED). */
int sched_vm_remove(struct sched *s, uint64_t vm_id, uint64_t now);
/* The caller's record of a VM, kept with the scheduler's per-VM state so that the caller needs
 * no VM table of its own (the daemon's admission core keeps its records here). Events carry
 * it. set: -ENOENT if unknown; owner: NULL if unknown (or none set). */
int sched_vm_set_owner(struct sched *s, uint64_t vm_id, void *owner);
void *sched_vm_owner(const struct sched *s, uint64_t vm_id);
/* Calls fn for every VM with its owner (unspecified order); fn must not change s. */
size_t sched_vm_foreach_owner(const struct sched *s,
			      void (*fn)(void *userdata, uint64_t vm_id, void *owner),
			      void *userdata);
/* VM_DUMP replay after a restart: req_id was admitted before and is not done yet. Takes a slot
 * even when all are taken (accounting must be exact). -ENOENT unknown VM, -EBUSY if the VM
 * already has a request in flight or queued. */
int sched_vm_restore_inflight(struct sched *s, uint64_t vm_id, uint64_t req_id, uint64_t now);

/* A guest request. Writes *ret (always on return 0): ADMIT, QUEUED or BUSY(reason). msg may be
 * NULL when the header is unknown (no sequence tracking). -EINVAL only for NULL s/ret.
 * Call it only for requests the daemon would forward (INVALID_LEN is answered before). */
int sched_request(struct sched *s, uint64_t vm_id, uint64_t req_id, const struct sched_msg *msg,
		  uint64_t now, struct sched_decision *ret);
/* GUEST_DONE: frees the slot of the VM's in-flight req_id and admits the next queued request
 * (events). If req_id is the VM's queued request (the kernel gave up waiting and answered BUSY
 * itself), it is dropped without an event. -ENOENT if req_id is neither. */
int sched_done(struct sched *s, uint64_t vm_id, uint64_t req_id, uint64_t now,
	       enum sched_outcome outcome);
/* Refuses queued requests whose wait has reached max_queue_wait and admits into free slots.
 * Returns the number of events emitted. */
int sched_tick(struct sched *s, uint64_t now);
/* 0 and *ret_usec = when sched_tick must run next (the oldest queued request's deadline);
 * -ENOENT if nothing is queued. */
int sched_next_deadline(const struct sched *s, uint64_t *ret_usec);

/* New requests are answered BUSY (PAUSED); in-flight ones finish; queued ones wait (and expire).
 * Returns the number in flight: 0 means drained now, otherwise SCHED_EV_DRAINED follows. */
int sched_pause(struct sched *s, uint64_t now);
/* Admits queued requests into free slots (events). Returns the number of events. */
int sched_resume(struct sched *s, uint64_t now);
bool sched_paused(const struct sched *s);
unsigned sched_inflight(const struct sched *s);
unsigned sched_queued(const struct sched *s);
size_t sched_vm_count(const struct sched *s);
/* BUSY(NO_VM) answers, which have no per-VM state to count them in. */
uint64_t sched_busy_no_vm(const struct sched *s);
/* Forced admissions (rule 4) made while every slot was taken: an urgent VM whose queue wait
 * ended with no slot free is admitted over psp_concurrency rather than refused, up to
 * sched_inflight_max in flight (psp_concurrency plus what the PSP serves in one busy_budget
 * by the running service estimate, at most SCHED_MAX_OVERCOMMIT); they wait for the PSP in the
 * kernel. */
#define SCHED_MAX_OVERCOMMIT 4096
uint64_t sched_overcommitted(const struct sched *s);
unsigned sched_inflight_max(const struct sched *s);

/* Runtime quota changes, immediate effect (tokens are refilled at the old rate up to now, then
 * capped at the new burst). q == NULL resets the VM to the default. -EINVAL if the quota fails
 * sched_quota_check (reason as there), -ENOENT unknown VM. */
int sched_vm_set_quota(struct sched *s, uint64_t vm_id, const struct sched_quota *q, uint64_t now,
		       const char **reason);
/* Changes the default, applied to every VM without its own quota. */
int sched_set_default_quota(struct sched *s, const struct sched_quota *q, uint64_t now,
			    const char **reason);

struct sched_vm_stats {
	uint64_t vm_id;
	uint64_t requests; /* sched_request calls for this VM */
	uint64_t admitted; /* ADMIT verdicts and events */
	uint64_t forced;   /* admissions made by the BUSY budget rule */
	uint64_t done;
	uint64_t busy[_SCHED_BUSY_MAX];
	uint64_t anomalies[_SCHED_ANOM_MAX];
	uint64_t busy_streak_usec;     /* current continuous BUSY span; 0 if none */
	uint64_t max_busy_streak_usec; /* longest streak seen at a BUSY answer */
	int64_t tokens_milli;	       /* bucket level (negative: debt) at `now` */
	struct sched_quota quota;      /* effective quota */
	bool custom_quota;	       /* set with sched_vm_set_quota */
	bool inflight, queued;
};

/* -ENOENT if unknown. now is used for the bucket level and the current streak (no state
 * change). */
int sched_vm_stats(const struct sched *s, uint64_t vm_id, uint64_t now, struct sched_vm_stats *ret);
/* Calls fn for every VM (unspecified order); fn must not change s. Returns the count. */
size_t sched_vm_foreach(const struct sched *s, uint64_t now,
			void (*fn)(void *userdata, const struct sched_vm_stats *st),
			void *userdata);

/* Consistency check of the internal structures (lists, counters, hash table), O(n): for tests
 * and fuzzing. 0 or -EUCLEAN. */
int sched_selfcheck(const struct sched *s);

const char *sched_busy_reason_name(enum sched_busy_reason r);
const char *sched_anomaly_name(enum sched_anomaly a);
