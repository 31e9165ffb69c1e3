/* SPDX-License-Identifier: Apache-2.0 */
/* The admission core (daemon/admission.h) with recording transports: the VM life cycle, the
 * verdict for each state a VM can be in, quotas, resynchronisation after a VM list, one
 * request in flight per VM, and one scheduler for two transports. No test waits on a clock:
 * every decision here is made at the call, or at a done the test sends. */
#include "testutil.h"

#include <errno.h>
#include <ev.h>
#include <unistd.h>

#include "admission.h"
#include "msg.h"

enum kind { V_ALLOW = 1, V_BUSY, V_INVALID_LEN };

struct verdict {
	enum kind kind;
	uint64_t vm_id, req_id;
	uint32_t npages;
	size_t table_len;
};

struct tport {
	struct adm_transport t; /* first */
	struct verdict v[64];
	size_t n;
	unsigned resyncs;
	unsigned unknown_peer; /* verdicts for a VM without its peer handle */
	int fail_sends;	       /* > 0: the next sends fail */
};

static int record(struct adm_transport *t, enum kind k, uint64_t vm, void *peer, uint64_t req,
		  uint32_t np, size_t tl)
{
	struct tport *p = (struct tport *)t;

	/* every known VM of these tests has its id as its peer handle */
	if (peer)
		ck_assert_uint_eq((uint64_t)(uintptr_t)peer, vm);
	else
		p->unknown_peer++;
	ck_assert_uint_lt(p->n, 64);
	if (p->fail_sends > 0) {
		p->fail_sends--;
		return -ENOBUFS;
	}
	p->v[p->n++] = (struct verdict){k, vm, req, np, tl};
	return 0;
}

static int t_allow(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req,
		   const uint8_t *table, size_t len)
{
	return record(t, V_ALLOW, vm, peer, req, 0, table ? len : 0);
}

static int t_busy(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req)
{
	return record(t, V_BUSY, vm, peer, req, 0, 0);
}

static int t_invalid_len(struct adm_transport *t, uint64_t vm, void *peer, uint64_t req,
			 uint32_t np)
{
	return record(t, V_INVALID_LEN, vm, peer, req, np, 0);
}

static int t_resync(struct adm_transport *t)
{
	((struct tport *)t)->resyncs++;
	return 0;
}

static const struct adm_transport_ops ops_a = {
	.name = "test-a",
	.allow = t_allow,
	.busy = t_busy,
	.invalid_len = t_invalid_len,
	.request_resync = t_resync,
};
static const struct adm_transport_ops ops_b = {
	.name = "test-b",
	.allow = t_allow,
	.busy = t_busy,
	.invalid_len = t_invalid_len,
};

static struct ev_loop *loop;
static struct adm *a;
static struct tport ta, tb;
static unsigned drained;

static void on_drained(void *userdata)
{
	(void)userdata;
	drained++;
}

static uint32_t setup_slots = 1;

/* psp_concurrency setup_slots (1 unless a fixture says otherwise), default quota burst `burst`
 * at 2/s. */
static void setup_with(uint32_t burst)
{
	struct adm_config c = {.guest_log_interval_usec = 1000000, .guest_log_burst = 5};
	struct adm_hooks h = {.drained = on_drained};
	const char *why = NULL;

	sched_config_defaults(&c.sched);
	c.sched.psp_concurrency = setup_slots;
	c.sched.quota.burst = burst;
	loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(adm_new(loop, &c, &h, &a, &why), 0);
	memset(&ta, 0, sizeof(ta));
	memset(&tb, 0, sizeof(tb));
	adm_transport_init(&ta.t, &ops_a);
	adm_transport_init(&tb.t, &ops_b);
	drained = 0;
}

static void setup(void)
{
	setup_with(4);
}

static void setup_burst1(void)
{
	setup_with(1);
}

/* Eight PSP slots, so that several VMs have a request in flight at once. */
static void setup_slots8(void)
{
	setup_slots = 8;
	setup_with(4);
	setup_slots = 1;
}

static void teardown(void)
{
	ck_assert_int_eq(adm_selfcheck(a), 0);
	adm_free(a);
	ev_loop_destroy(loop);
}

static struct adm_request report(uint64_t req_id, bool ext, uint32_t npages)
{
	return (struct adm_request){.req_id = req_id,
				    .msg = {.seqno = 1, .type = MSG_REPORT_REQ, .version = 1},
				    .has_msg = true,
				    .wants_table = ext,
				    .npages = npages};
}

static void req(struct tport *p, uint64_t vm, uint64_t req_id)
{
	struct adm_request r = report(req_id, false, 0);

	r.msg.seqno = 2 * req_id + 1;
	adm_request(a, &p->t, vm, &r);
}

static void add(struct tport *p, uint64_t vm)
{
	struct adm_vm_attrs at = {.vmm_pid = 100 + (uint32_t)vm, .asid = (uint32_t)vm};

	ck_assert_int_eq(adm_vm_add(a, &p->t, vm, &at, false, false, 0), 0);
	ck_assert_int_eq(adm_vm_set_peer(a, vm, (void *)(uintptr_t)vm), 0);
}

static const struct verdict *last(const struct tport *p)
{
	ck_assert_uint_gt(p->n, 0);
	return &p->v[p->n - 1];
}

static void expect(const struct tport *p, size_t n, enum kind k, uint64_t vm, uint64_t req_id)
{
	ck_assert_uint_eq(p->n, n);
	ck_assert_int_eq(last(p)->kind, k);
	ck_assert_uint_eq(last(p)->vm_id, vm);
	ck_assert_uint_eq(last(p)->req_id, req_id);
}

START_TEST(test_vm_lifecycle)
{
	struct adm_vm_attrs at = {.vmm_pid = 9, .asid = 3, .policy = 0x30000};
	struct adm_vm_info info;

	ck_assert_uint_eq(adm_vm_count(a), 0);
	ck_assert_int_eq(adm_vm_info(a, 5, &info), -ENOENT);
	add(&ta, 5);
	ck_assert_uint_eq(adm_vm_count(a), 1);
	ck_assert_int_eq(adm_vm_info(a, 5, &info), 0);
	ck_assert_uint_eq(info.vm_id, 5);
	ck_assert_uint_eq(info.vmm_pid, 105);
	ck_assert_str_eq(info.transport, "test-a");
	/* A second add refreshes the attributes of the one record. */
	ck_assert_int_eq(adm_vm_add(a, &ta.t, 5, &at, false, false, 0), 0);
	ck_assert_uint_eq(adm_vm_count(a), 1);
	ck_assert_int_eq(adm_vm_info(a, 5, &info), 0);
	ck_assert_uint_eq(info.vmm_pid, 9);
	ck_assert_uint_eq(info.policy, 0x30000);
	/* The id belongs to transport a: b cannot take it over. */
	ck_assert_int_eq(adm_vm_add(a, &tb.t, 5, &at, false, false, 0), -EEXIST);
	ck_assert_int_eq(adm_selfcheck(a), 0);
	ck_assert_int_eq(adm_vm_remove(a, 5, "test"), 0);
	ck_assert_uint_eq(adm_vm_count(a), 0);
	ck_assert_int_eq(adm_vm_remove(a, 5, "test"), -ENOENT);
	ck_assert_uint_eq(ta.n, 0); /* no verdict without a request */
}
END_TEST

START_TEST(test_unknown_vm)
{
	req(&ta, 77, 1);
	expect(&ta, 1, V_BUSY, 77, 1);
	ck_assert_uint_eq(ta.unknown_peer, 1);
	ck_assert_uint_eq(adm_get_stats(a)->busy_by_reason[SCHED_BUSY_NO_VM], 1);
	/* An unknown VM makes the core ask the peer for its VM list. */
	ck_assert_uint_eq(ta.resyncs, 1);
	ck_assert_uint_eq(adm_get_stats(a)->dumps_sent, 1);
}
END_TEST

START_TEST(test_allow_and_table)
{
	static const uint8_t table[3 * 4096];
	struct adm_request r;

	add(&ta, 1);
	req(&ta, 1, 10);
	expect(&ta, 1, V_ALLOW, 1, 10);
	ck_assert_uint_eq(last(&ta)->table_len, 0); /* no table asked for */
	ck_assert_uint_eq(adm_inflight(a), 1);
	adm_done(a, 1, 10, ADM_DONE_FIRMWARE, 0, 8000000);
	ck_assert_uint_eq(adm_inflight(a), 0);

	adm_set_table(a, table, sizeof(table), 3);
	r = report(11, true, 3);
	r.msg.seqno = 3;
	adm_request(a, &ta.t, 1, &r);
	expect(&ta, 2, V_ALLOW, 1, 11);
	ck_assert_uint_eq(last(&ta)->table_len, sizeof(table));
	adm_done(a, 1, 11, ADM_DONE_FIRMWARE, 0, 8000000);
	ck_assert_uint_eq(adm_get_stats(a)->verdicts_allow, 2);
	ck_assert_uint_eq(adm_get_stats(a)->fw_time_count, 2);
}
END_TEST

START_TEST(test_invalid_len_before_quota)
{
	static const uint8_t table[2 * 4096];
	struct adm_request r;
	struct adm_vm_info info;

	/* burst 1: if INVALID_LEN spent a token, the retry with the right size would be refused */
	adm_set_table(a, table, sizeof(table), 2);
	add(&ta, 1);
	r = report(20, true, 1);
	adm_request(a, &ta.t, 1, &r);
	expect(&ta, 1, V_INVALID_LEN, 1, 20);
	ck_assert_uint_eq(last(&ta)->npages, 2);
	r = report(21, true, 0); /* no buffer at all */
	adm_request(a, &ta.t, 1, &r);
	expect(&ta, 2, V_INVALID_LEN, 1, 21);
	r = report(22, true, 2);
	adm_request(a, &ta.t, 1, &r);
	expect(&ta, 3, V_ALLOW, 1, 22);
	ck_assert_int_eq(adm_vm_info(a, 1, &info), 0);
	ck_assert_uint_eq(info.invalid_len, 2);
	ck_assert_uint_eq(info.sched.requests, 1); /* only the ALLOWed one reached the scheduler */
}
END_TEST

START_TEST(test_busy_inflight)
{
	add(&ta, 1);
	req(&ta, 1, 1);
	expect(&ta, 1, V_ALLOW, 1, 1);
	req(&ta, 1, 2);
	expect(&ta, 2, V_BUSY, 1, 2);
	ck_assert_uint_eq(adm_get_stats(a)->busy_by_reason[SCHED_BUSY_INFLIGHT], 1);
	/* A done for a request that is not ours changes nothing. */
	adm_done(a, 1, 999, ADM_DONE_FIRMWARE, 0, 1);
	ck_assert_uint_eq(adm_inflight(a), 1);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	ck_assert_uint_eq(adm_inflight(a), 0);
	req(&ta, 1, 3);
	expect(&ta, 3, V_ALLOW, 1, 3);
}
END_TEST

START_TEST(test_busy_quota)
{
	/* burst 1 (setup_with(1)): the second request in a row finds the bucket empty */
	add(&ta, 1);
	req(&ta, 1, 1);
	expect(&ta, 1, V_ALLOW, 1, 1);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	req(&ta, 1, 2);
	expect(&ta, 2, V_BUSY, 1, 2);
	ck_assert_uint_eq(adm_get_stats(a)->busy_by_reason[SCHED_BUSY_QUOTA], 1);
}
END_TEST

START_TEST(test_paused)
{
	add(&ta, 1);
	add(&ta, 2);
	req(&ta, 1, 1);
	ck_assert_int_eq(adm_pause(a), 1); /* one in flight: drained follows */
	ck_assert(adm_paused(a));
	req(&ta, 2, 5);
	expect(&ta, 2, V_BUSY, 2, 5);
	ck_assert_uint_eq(adm_get_stats(a)->busy_by_reason[SCHED_BUSY_PAUSED], 1);
	ck_assert_uint_eq(drained, 0);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	ck_assert_uint_eq(drained, 1);
	adm_resume(a);
	ck_assert(!adm_paused(a));
	req(&ta, 2, 6);
	expect(&ta, 3, V_ALLOW, 2, 6);
}
END_TEST

START_TEST(test_queued_then_admitted)
{
	add(&ta, 1);
	add(&ta, 2);
	req(&ta, 1, 1);
	expect(&ta, 1, V_ALLOW, 1, 1);
	req(&ta, 2, 7); /* the only slot is taken: queued, no verdict yet */
	ck_assert_uint_eq(ta.n, 1);
	ck_assert_uint_eq(adm_queued(a), 1);
	/* one request per VM: a second one of the queued VM is refused at once */
	req(&ta, 2, 8);
	expect(&ta, 2, V_BUSY, 2, 8);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	expect(&ta, 3, V_ALLOW, 2, 7);
	ck_assert_uint_eq(adm_queued(a), 0);
	ck_assert_uint_eq(adm_get_stats(a)->handoffs, 1);
}
END_TEST

START_TEST(test_queued_table_grew)
{
	static const uint8_t table[4 * 4096];
	struct adm_request r;

	adm_set_table(a, table, 2 * 4096, 2);
	add(&ta, 1);
	add(&ta, 2);
	req(&ta, 1, 1);
	r = report(9, true, 2);
	adm_request(a, &ta.t, 2, &r); /* fits the table of now: queued */
	ck_assert_uint_eq(ta.n, 1);
	/* (a rotation would pause; the core must still never hand over a table too big) */
	adm_set_table(a, table, sizeof(table), 4);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	expect(&ta, 2, V_INVALID_LEN, 2, 9);
	ck_assert_uint_eq(last(&ta)->npages, 4);
	ck_assert_uint_eq(adm_inflight(a), 0);
}
END_TEST

START_TEST(test_queued_removed)
{
	add(&ta, 1);
	add(&ta, 2);
	req(&ta, 1, 1);
	req(&ta, 2, 7);
	ck_assert_int_eq(adm_vm_remove(a, 2, "test"), 0);
	expect(&ta, 2, V_BUSY, 2, 7);
	ck_assert_uint_eq(adm_get_stats(a)->busy_by_reason[SCHED_BUSY_REMOVED], 1);
	/* removing the VM in flight frees its slot */
	ck_assert_int_eq(adm_vm_remove(a, 1, "test"), 0);
	ck_assert_uint_eq(adm_inflight(a), 0);
}
END_TEST

START_TEST(test_send_failure)
{
	add(&ta, 1);
	ta.fail_sends = 1;
	req(&ta, 1, 1); /* the ALLOW never left: not in flight */
	ck_assert_uint_eq(ta.n, 0);
	ck_assert_uint_eq(adm_inflight(a), 0);
	ck_assert_uint_eq(adm_get_stats(a)->send_failures, 1);
	ck_assert_uint_eq(adm_get_stats(a)->verdicts_allow, 0);
}
END_TEST

START_TEST(test_quota_apply)
{
	struct sched_quota q = {.rate_milli = 5000, .burst = 9, .weight = 3}, got;
	struct sched_quota bad = {.rate_milli = 0, .burst = 1, .weight = 1};
	struct adm_vm_info info;
	const char *why = NULL;

	/* Set before the VM exists: remembered, applied when it comes. */
	ck_assert_int_eq(adm_quota_set(a, 3, &q, &why), 0);
	ck_assert(adm_quota_get(a, 3, &got));
	ck_assert_uint_eq(got.burst, 9);
	add(&ta, 3);
	ck_assert_int_eq(adm_vm_info(a, 3, &info), 0);
	ck_assert(info.sched.custom_quota);
	ck_assert_uint_eq(info.sched.quota.weight, 3);
	/* A live VM gets it at once. */
	add(&ta, 4);
	ck_assert_int_eq(adm_quota_set(a, 4, &q, &why), 0);
	ck_assert_int_eq(adm_vm_info(a, 4, &info), 0);
	ck_assert_uint_eq(info.sched.quota.burst, 9);
	ck_assert_uint_eq(adm_quota_count(a), 2);
	/* An invalid one changes nothing and says why. */
	why = NULL;
	ck_assert_int_eq(adm_quota_set(a, 4, &bad, &why), -EINVAL);
	ck_assert_ptr_nonnull(why);
	ck_assert_int_eq(adm_vm_info(a, 4, &info), 0);
	ck_assert_uint_eq(info.sched.quota.burst, 9);
	/* Reset: back to the default, forgotten. */
	ck_assert_int_eq(adm_quota_set(a, 4, NULL, &why), 0);
	ck_assert(!adm_quota_get(a, 4, &got));
	ck_assert_uint_eq(got.burst, 4);
	ck_assert_int_eq(adm_vm_info(a, 4, &info), 0);
	ck_assert(!info.sched.custom_quota);
	ck_assert_uint_eq(adm_quota_count(a), 1);
	/* 64-bit ids are keys like any other. */
	ck_assert_int_eq(adm_quota_set(a, UINT64_MAX, &q, &why), 0);
	ck_assert(adm_quota_get(a, UINT64_MAX, &got));
}
END_TEST

START_TEST(test_resync)
{
	struct adm_vm_attrs at = {0};

	add(&ta, 1);
	add(&ta, 2);
	add(&ta, 3);
	add(&tb, 50); /* another transport's VM: not its listing's business */
	adm_resync_begin(a, &ta.t);
	ck_assert_int_eq(adm_vm_add(a, &ta.t, 1, &at, true, false, 0), 0);
	/* VM 2 still has a request in the peer (e.g. after a restart of the daemon) */
	ck_assert_int_eq(adm_vm_add(a, &ta.t, 2, &at, true, true, 77), 0);
	ck_assert_uint_eq(adm_inflight(a), 1);
	adm_resync_end(a, &ta.t);
	ck_assert_uint_eq(adm_vm_count(a), 3); /* 3 was not listed: pruned; 50 stays */
	ck_assert_int_eq(adm_vm_remove(a, 3, "test"), -ENOENT);
	ck_assert_uint_eq(adm_get_stats(a)->vms_pruned, 1);
	/* the replayed request occupies the slot until its done */
	req(&ta, 1, 5);
	ck_assert_uint_eq(ta.n, 0); /* queued behind it */
	adm_done(a, 2, 77, ADM_DONE_FIRMWARE, 0, 1);
	expect(&ta, 1, V_ALLOW, 1, 5);
}
END_TEST

/* The records with a request in flight are kept in a list, oldest first, for housekeeping
 * (which frees only slots older than ADM_STALE_INFLIGHT_USEC and stops at the first younger
 * one). The list is checked by adm_selfcheck after every step: admissions, dones at its
 * head, middle and end, a VM removed while in flight, a request restored by a resync. */
START_TEST(test_inflight_list)
{
	struct adm_vm_attrs at = {0};

	for (uint64_t vm = 1; vm <= 6; vm++) {
		add(&ta, vm);
		req(&ta, vm, 10 + vm);
		expect(&ta, vm, V_ALLOW, vm, 10 + vm);
		ck_assert_int_eq(adm_selfcheck(a), 0);
	}
	ck_assert_uint_eq(adm_inflight(a), 6);
	/* Nothing is stale: housekeeping frees nothing. */
	adm_housekeeping(a);
	ck_assert_uint_eq(adm_get_stats(a)->stale_inflight_freed, 0);
	ck_assert_uint_eq(adm_inflight(a), 6);
	static const uint64_t done_order[] = {3, 1, 6}; /* middle, head, end */
	for (size_t i = 0; i < sizeof(done_order) / sizeof(done_order[0]); i++) {
		adm_done(a, done_order[i], 10 + done_order[i], ADM_DONE_FIRMWARE, 0, 1);
		ck_assert_int_eq(adm_selfcheck(a), 0);
	}
	ck_assert_uint_eq(adm_inflight(a), 3);
	ck_assert_int_eq(adm_vm_remove(a, 4, "test"), 0); /* in flight */
	ck_assert_int_eq(adm_selfcheck(a), 0);
	ck_assert_uint_eq(adm_inflight(a), 2);
	adm_resync_begin(a, &ta.t);
	ck_assert_int_eq(adm_vm_add(a, &ta.t, 7, &at, true, true, 99), 0);
	ck_assert_int_eq(adm_selfcheck(a), 0);
	ck_assert_uint_eq(adm_inflight(a), 3);
	req(&ta, 1, 21);
	expect(&ta, 7, V_ALLOW, 1, 21);
	ck_assert_int_eq(adm_selfcheck(a), 0);
	adm_done(a, 2, 12, ADM_DONE_FIRMWARE, 0, 1);
	adm_done(a, 5, 15, ADM_DONE_FIRMWARE, 0, 1);
	adm_done(a, 7, 99, ADM_DONE_FIRMWARE, 0, 1);
	adm_done(a, 1, 21, ADM_DONE_FIRMWARE, 0, 1);
	ck_assert_uint_eq(adm_inflight(a), 0);
	adm_housekeeping(a);
	ck_assert_uint_eq(adm_get_stats(a)->stale_inflight_freed, 0);
}
END_TEST

START_TEST(test_transport_lost)
{
	add(&ta, 1);
	add(&ta, 2);
	add(&tb, 60);
	req(&ta, 1, 1);
	req(&ta, 2, 2); /* queued */
	adm_transport_lost(a, &ta.t);
	ck_assert_uint_eq(ta.n, 1); /* nothing sent to a peer that is gone */
	ck_assert_uint_eq(adm_vm_count(a), 1);
	ck_assert_uint_eq(adm_inflight(a), 0);
	ck_assert_uint_eq(adm_queued(a), 0);
	req(&tb, 60, 3); /* the other transport is served as before */
	expect(&tb, 1, V_ALLOW, 60, 3);
}
END_TEST

START_TEST(test_two_transports_one_scheduler)
{
	uint64_t id = adm_vm_id_alloc(a);

	ck_assert_uint_ge(id, 1ull << 63);
	add(&ta, 1);
	ck_assert_int_eq(adm_vm_add(a, &tb.t, id, NULL, false, false, 0), 0);
	ck_assert_int_eq(adm_vm_set_peer(a, id, (void *)(uintptr_t)id), 0);
	ck_assert_uint_ne(adm_vm_id_alloc(a), id);
	req(&ta, 1, 1);
	expect(&ta, 1, V_ALLOW, 1, 1);
	/* The one slot is a's: b's VM waits in the same scheduler. */
	req(&tb, id, 2);
	ck_assert_uint_eq(tb.n, 0);
	ck_assert_uint_eq(adm_queued(a), 1);
	/* b cannot reach a's VM through its own id space */
	req(&tb, 1, 3);
	expect(&tb, 1, V_BUSY, 1, 3);
	ck_assert_uint_eq(adm_inflight(a), 1);
	adm_done(a, 1, 1, ADM_DONE_FIRMWARE, 0, 1);
	expect(&tb, 2, V_ALLOW, id, 2);
	ck_assert_uint_eq(ta.n, 1);
}
END_TEST

/* A burst of VM additions and removals (a host starting its VMs) is not logged line by line:
 * at most a burst's worth of lines pass, the rest are counted and summed up by housekeeping, and
 * the lines plus the summary account for every VM. */
START_TEST(test_lifecycle_log_burst)
{
	char path[] = "/tmp/test-admission-log.XXXXXX";
	unsigned long long added = 0, removed = 0, sum_added = 0, sum_removed = 0;
	int summaries = 0;
	int fd = mkstemp(path), saved = dup(2);
	char text[65536];
	const char *p;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	for (uint64_t vm = 1; vm <= 100; vm++)
		add(&ta, vm);
	for (uint64_t vm = 1; vm <= 30; vm++)
		ck_assert_int_eq(adm_vm_remove(a, vm, "test"), 0);
	adm_housekeeping(a);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	ck_assert_int_gt(n, 0);
	text[n] = 0;
	for (p = text; (p = strstr(p, ": VM added (")); p++)
		added++;
	for (p = text; (p = strstr(p, ": VM removed (")); p++)
		removed++;
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (sscanf(p, "<%*d>snp-attestd: %llu more VMs added and %llu removed", &sum_added,
			   &sum_removed) == 2)
			summaries++;
	ck_assert_msg(added < 100, "every one of 100 additions was logged on its own");
	ck_assert_msg(summaries == 1, "%d summary lines:\n%s", summaries, text);
	ck_assert_uint_eq(added + sum_added, 100);
	ck_assert_uint_eq(removed + sum_removed, 30);
	ck_assert_uint_eq(adm_vm_count(a), 70);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("admission");
	TCase *tc = tcase_create("core");
	TCase *tq = tcase_create("burst1");
	TCase *ts = tcase_create("slots8");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_vm_lifecycle);
	tcase_add_test(tc, test_unknown_vm);
	tcase_add_test(tc, test_allow_and_table);
	tcase_add_test(tc, test_busy_inflight);
	tcase_add_test(tc, test_paused);
	tcase_add_test(tc, test_queued_then_admitted);
	tcase_add_test(tc, test_queued_table_grew);
	tcase_add_test(tc, test_queued_removed);
	tcase_add_test(tc, test_send_failure);
	tcase_add_test(tc, test_quota_apply);
	tcase_add_test(tc, test_resync);
	tcase_add_test(tc, test_transport_lost);
	tcase_add_test(tc, test_two_transports_one_scheduler);
	tcase_add_test(tc, test_lifecycle_log_burst);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tq, setup_burst1, teardown);
	tcase_add_test(tq, test_busy_quota);
	tcase_add_test(tq, test_invalid_len_before_quota);
	suite_add_tcase(s, tq);
	tcase_add_checked_fixture(ts, setup_slots8, teardown);
	tcase_add_test(ts, test_inflight_list);
	suite_add_tcase(s, ts);
	return s;
}

int main(void)
{
	return test_run_suite(suite());
}
