/* SPDX-License-Identifier: Apache-2.0 */
/* upstream: snp-kvmsim --kernel upstream, the model of Linux 7.0 KVM with a VMM that uses
 * libsnpattest. An extended MSG_REPORT_REQ exits to the VMM (KVM_EXIT_SNP_REQ_CERTS) before
 * the firmware call; the VMM's answer (ret) is 0 (firmware call with the table it wrote),
 * ENOSPC (INVALID_LEN, npages) or EAGAIN (BUSY). Every other request goes straight to the
 * software PSP, unadmitted, as upstream KVM does.
 *
 * The VMM side runs on vCPU threads (a pool: a real VMM blocks the vCPU's thread in the exit
 * handler, up to libsnpattest's timeout), never on the simulator's loop. Ordering as in a VMM:
 * the table is copied into the guest buffer before the firmware call, and snpattest_done()
 * (which drops the daemon's in-flight slot or the certificate file's shared lock) runs after
 * the firmware call returns and before the guest sees the answer: the immediate_exit KVM_RUN. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "certtable.h"
#include "exitinfo.h"
#include "kvmsim.h"
#include "snpattest.h"
#include "util.h"

#define KVS_UP_MAX_THREADS 64

struct up_job {
	struct kvs_guest *g; /* borrowed */
	struct snpattest *h; /* borrowed from the guest's slot */
	uint64_t req_id;     /* the guest attempt this answers */
	uint64_t npages;     /* in: RBX; out: the VMM's npages */
	int ret;	     /* the VMM's kvm_run->snp_req_certs.ret */
	enum snpattest_source source;
	struct up_job *next;
};

struct kvs_upstream {
	struct kvs *k; /* borrowed */
	pthread_t threads[KVS_UP_MAX_THREADS];
	size_t n_threads;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	bool stop;
	struct up_job *jobs_head, *jobs_tail; /* guarded by mtx */
	struct up_job *done_head;	      /* guarded by mtx */
	ev_async async;
	struct snpattest **handles; /* owned, indexed like k->guests (grown on demand) */
	size_t n_handles;
	size_t in_vmm; /* jobs out on vCPU threads */
	struct kvs_upstream_stats st;
};

static void *vcpu_main(void *arg)
{
	struct kvs_upstream *u = arg;

	for (;;) {
		struct up_job *j;

		pthread_mutex_lock(&u->mtx);
		while (!u->stop && !u->jobs_head)
			pthread_cond_wait(&u->cond, &u->mtx);
		if (!u->jobs_head) {
			pthread_mutex_unlock(&u->mtx);
			return NULL;
		}
		j = u->jobs_head;
		u->jobs_head = j->next;
		if (!u->jobs_head)
			u->jobs_tail = NULL;
		pthread_mutex_unlock(&u->mtx);

		/* The VMM's exit handler, exactly: the table goes straight into the guest's
		 * certificate buffer (the guest is blocked in this exit meanwhile). */
		j->ret = snpattest_request_certs(j->h, j->g->certbuf, &j->npages, -1);
		j->source = snpattest_last_source(j->h);

		pthread_mutex_lock(&u->mtx);
		j->next = u->done_head;
		u->done_head = j;
		pthread_mutex_unlock(&u->mtx);
		ev_async_send(u->k->loop, &u->async);
	}
}

/* The exit's answer reaches KVM (on the loop). */
static void finish_exit(struct kvs_upstream *u, struct up_job *j)
{
	struct kvs *k = u->k;
	struct kvs_guest *g = j->g;

	u->in_vmm--;
	if (g->state != KVS_G_WAIT_VERDICT || g->req_id != j->req_id) {
		/* The VM went away while its vCPU was in the exit: nothing reaches the PSP. */
		if (j->ret == 0)
			snpattest_done(j->h);
		u->st.dropped++;
		return;
	}
	switch (j->ret) {
	case 0:
		u->st.ret_ok++;
		if (j->source == SNPATTEST_SOURCE_DAEMON)
			u->st.admitted++;
		else if (j->source == SNPATTEST_SOURCE_FILE)
			u->st.from_file++;
		else
			u->st.empty++;
		/* KVM then issues the firmware call (the VMM wrote the table already); the
		 * VMM set immediate_exit, so it calls done before the guest runs again. */
		g->table_written = g->cur_npages > 0;
		g->vmm_done_pending = true;
		kvs_kernel_run_psp(k, g);
		return;
	case ENOSPC:
		u->st.ret_enospc++;
		if (j->source == SNPATTEST_SOURCE_DAEMON)
			u->st.daemon_enospc++;
		if (j->npages == 0 || j->npages > UINT32_MAX) {
			/* Not an answer KVM could pass on (RBX must name the pages). */
			u->st.vmm_bugs++;
			kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
			return;
		}
		kvs_guest_on_answer(g, EXITINFO2_INVALID_LEN, (uint32_t)j->npages);
		return;
	case EAGAIN:
		u->st.ret_busy++;
		if (j->source == SNPATTEST_SOURCE_DAEMON)
			u->st.daemon_busy++;
		kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
		return;
	default:
		/* EIO (or anything else) would cost a Linux guest its VMPCK: count it loudly and
		 * answer as KVM would for EIO, so the guest model shows the damage. */
		u->st.vmm_bugs++;
		kvs_guest_on_answer(g, (uint64_t)EXITINFO_VMM_GENERIC << 32, 0);
		return;
	}
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	struct kvs_upstream *u = container_of(w, struct kvs_upstream, async);
	struct up_job *list, *rev = NULL;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&u->mtx);
	list = u->done_head;
	u->done_head = NULL;
	pthread_mutex_unlock(&u->mtx);
	while (list) { /* oldest first */
		struct up_job *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct up_job *j = rev;
		rev = j->next;
		finish_exit(u, j);
		free(j);
	}
	kvs_check_end(u->k);
}

static struct snpattest **slot(struct kvs_upstream *u, size_t index)
{
	if (index >= u->n_handles) {
		size_t n = MAX(index + 1, u->n_handles * 2);
		struct snpattest **h = realloc(u->handles, n * sizeof(*h));
		if (!h)
			return NULL;
		memset(h + u->n_handles, 0, (n - u->n_handles) * sizeof(*h));
		u->handles = h;
		u->n_handles = n;
	}
	return &u->handles[index];
}

static size_t guest_index(const struct kvs *k, const struct kvs_guest *g)
{
	for (size_t i = k->n_guests; i-- > 0;)
		if (k->guests[i] == g)
			return i;
	return SIZE_MAX;
}

int kvs_upstream_start(struct kvs *k)
{
	struct kvs_upstream *u;
	size_t n;
	int r;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->k = k;
	pthread_mutex_init(&u->mtx, NULL);
	pthread_cond_init(&u->cond, NULL);
	ev_async_init(&u->async, on_async);
	ev_async_start(k->loop, &u->async);
	n = MIN((size_t)k->o.vms, (size_t)KVS_UP_MAX_THREADS);
	for (size_t i = 0; i < n; i++) {
		r = pthread_create(&u->threads[i], NULL, vcpu_main, u);
		if (r != 0) {
			k->up = u;
			kvs_upstream_stop(k);
			return -r;
		}
		u->n_threads++;
	}
	k->up = u;
	return 0;
}

void kvs_upstream_stop(struct kvs *k)
{
	struct kvs_upstream *u = k->up;

	if (!u)
		return;
	pthread_mutex_lock(&u->mtx);
	u->stop = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->mtx);
	for (size_t i = 0; i < u->n_threads; i++)
		pthread_join(u->threads[i], NULL);
	ev_async_stop(k->loop, &u->async);
	while (u->jobs_head) {
		struct up_job *j = u->jobs_head;
		u->jobs_head = j->next;
		free(j);
	}
	while (u->done_head) {
		struct up_job *j = u->done_head;
		u->done_head = j->next;
		if (j->ret == 0)
			snpattest_done(j->h);
		free(j);
	}
	for (size_t i = 0; i < u->n_handles; i++)
		snpattest_close(u->handles[i]);
	free(u->handles);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->mtx);
	free(u);
	k->up = NULL;
}

void kvs_upstream_vm_add(struct kvs *k, struct kvs_guest *g)
{
	struct kvs_upstream *u = k->up;
	struct snpattest **h = slot(u, guest_index(k, g));
	uint8_t uuid[16] = {0};
	char name[32];
	int r;

	if (!h)
		return;
	/* A UUID per simulated VM: the VM id in the last 8 bytes, a fixed prefix. */
	memcpy(uuid, "kvmsim-v", 8);
	put_le64(uuid + 8, g->vm_id);
	snprintf(name, sizeof(name), "kvmsim-%llu", (unsigned long long)g->vm_id);
	r = snpattest_open(k->o.vmm_socket, uuid, name, h);
	if (r >= 0)
		r = snpattest_set_certs_file(*h, k->o.vmm_certs_file);
	if (r < 0) {
		fprintf(stderr, "snp-kvmsim: libsnpattest for VM %llu: %s\n",
			(unsigned long long)g->vm_id, strerror(-r));
		snpattest_close(*h);
		*h = NULL;
	}
}

void kvs_upstream_vm_remove(struct kvs *k, struct kvs_guest *g)
{
	struct kvs_upstream *u = k->up;
	size_t i = guest_index(k, g);

	/* A vCPU thread may still be in this VM's exit: the handle is closed at the end. */
	if (i < u->n_handles && g->state != KVS_G_WAIT_VERDICT && !g->vmm_done_pending) {
		snpattest_close(u->handles[i]);
		u->handles[i] = NULL;
	}
	if (g->state == KVS_G_WAIT_VERDICT) {
		g->st.abandoned++;
		g->state = KVS_G_FINISHED;
	}
	g->live = false;
}

void kvs_upstream_submit(struct kvs *k, struct kvs_guest *g)
{
	struct kvs_upstream *u = k->up;
	size_t i = guest_index(k, g);
	struct up_job *j;

	g->vmm_done_pending = false;
	if (!(g->cur_ext && g->req_hdr.type == MSG_REPORT_REQ)) {
		/* Plain requests, KEY/TSC requests, extended requests of other types and the plain
		 * re-send after INVALID_LEN never leave the kernel: straight to the PSP. */
		u->st.direct++;
		kvs_kernel_run_psp(k, g);
		return;
	}
	u->st.exits++;
	j = calloc(1, sizeof(*j));
	if (!j || i >= u->n_handles || !u->handles[i]) {
		/* A VMM without its handle answers as KVM does without certificates. */
		free(j);
		u->st.ret_ok++;
		u->st.empty++;
		g->table_written = g->cur_npages > 0;
		kvs_kernel_run_psp(k, g);
		return;
	}
	j->g = g;
	j->h = u->handles[i];
	j->req_id = g->req_id;
	j->npages = g->cur_npages;
	g->state = KVS_G_WAIT_VERDICT; /* the vCPU is in the exit */
	ev_timer_stop(k->loop, &g->timer);
	u->in_vmm++;
	pthread_mutex_lock(&u->mtx);
	if (u->jobs_tail)
		u->jobs_tail->next = j;
	else
		u->jobs_head = j;
	u->jobs_tail = j;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->mtx);
}

void kvs_upstream_fw_done(struct kvs *k, struct kvs_guest *g)
{
	struct kvs_upstream *u = k->up;
	size_t i = guest_index(k, g);

	if (!g->vmm_done_pending)
		return;
	g->vmm_done_pending = false;
	/* KVM_RUN with immediate_exit returned after the firmware call: the VMM reports done
	 * before the vCPU runs the guest again. */
	if (i < u->n_handles && u->handles[i]) {
		snpattest_done(u->handles[i]);
		if (!g->live) {
			snpattest_close(u->handles[i]);
			u->handles[i] = NULL;
		}
	}
}

const struct kvs_upstream_stats *kvs_upstream_stats(const struct kvs *k)
{
	return k->up ? &k->up->st : NULL;
}
