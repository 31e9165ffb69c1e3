/* SPDX-License-Identifier: Apache-2.0 */
/* kvmsim kernel side: plays KVM's half of the snp_attest ABI over NETLINK_USERSOCK
 * (docs/netlink-abi.md) and owns the serial PSP worker. Never trusts what the broker sends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include "certtable.h"
#include "exitinfo.h"
#include "kvmsim.h"
#include "util.h"

#define KVS_RCVBUF (8 * 1024 * 1024)

bool kvs_kernel_registered(const struct kvs *k)
{
	return k->broker_port != 0;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void broker_lost(struct kvs *k)
{
	if (!k->broker_port)
		return;
	k->broker_port = 0;
	k->ks.brokers_lost++;
	k->no_broker_since = kvs_now();
	k->failing_open = false;
	if (!k->o.quiet && k->o.broker_required)
		fprintf(stderr, "snp-kvmsim: broker gone; guests get BUSY until one registers\n");
	else if (!k->o.quiet)
		fprintf(stderr,
			"snp-kvmsim: broker gone; guests get BUSY for up to %u ms, then are served "
			"without one\n",
			k->o.failopen_ms);
}

/* Sends len bytes to port. A refused send means the peer socket is closed: if it was the
 * broker, the role is free again (the kernel learns this from the socket release). */
static int send_to(struct kvs *k, uint32_t port, const void *buf, size_t len)
{
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
	ssize_t n;

	do
		n = sendto(k->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to));
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		k->ks.tx_msgs++;
		return 0;
	}
	if (errno == ECONNREFUSED) {
		if (port == k->broker_port)
			broker_lost(k);
		return -ECONNREFUSED;
	}
	if (errno == EAGAIN || errno == ENOBUFS) {
		/* The broker's receive buffer is full: the message is lost, as in the kernel
		 * (the broker sees an overrun and asks for VM_DUMP). */
		k->ks.tx_dropped++;
		return -EAGAIN;
	}
	k->ks.tx_errors++;
	return -errno;
}

static int send_msg(struct kvs *k, const struct snpa_msg *m)
{
	int len;

	if (!k->broker_port)
		return -ENOTCONN;
	len = nl_build(k->tx, sizeof(k->tx), SNPA_USERSOCK_FAMILY, 0, 0, k->o.port, m);
	if (len < 0) {
		k->ks.tx_errors++;
		return len;
	}
	return send_to(k, k->broker_port, k->tx, (size_t)len);
}

/* --- the PSP worker: one thread, requests in admission order (the host driver's mutex) --- */

/* The GUEST_DONE for g's request with the given outcome (firmware fields added by the caller). */
static struct snpa_msg guest_done_msg(const struct kvs_guest *g, uint32_t outcome)
{
	struct snpa_msg d = {
		.cmd = SNPA_CMD_GUEST_DONE,
		.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VM_ID) | (1u << SNPA_A_OUTCOME),
		.req_id = g->req_id,
		.vm_id = g->vm_id,
		.outcome = outcome,
	};

	return d;
}

/* Appends g to a guest job list (the PSP worker's queue or its done list); the caller holds
 * k->mtx. */
static void job_append(struct kvs_guest **head, struct kvs_guest **tail, struct kvs_guest *g)
{
	g->job_next = NULL;
	if (*tail)
		(*tail)->job_next = g;
	else
		*head = g;
	*tail = g;
}

static void *worker_main(void *arg)
{
	struct kvs *k = arg;

	for (;;) {
		struct kvs_guest *g;
		struct timespec t0, t1;

		pthread_mutex_lock(&k->mtx);
		while (!k->worker_stop && !k->jobs_head)
			pthread_cond_wait(&k->cond, &k->mtx);
		if (!k->jobs_head) {
			pthread_mutex_unlock(&k->mtx);
			return NULL;
		}
		g = k->jobs_head;
		k->jobs_head = g->job_next;
		if (!k->jobs_head)
			k->jobs_tail = NULL;
		pthread_mutex_unlock(&k->mtx);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		g->fw_status = 0;
		g->psp_rc = sim_psp_guest_request(k->psp, g->pvm, g->req_page, MSG_PAGE_SIZE,
						  g->resp_page, MSG_PAGE_SIZE, &g->fw_status);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		g->fw_time_ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll +
					   (t1.tv_nsec - t0.tv_nsec));

		pthread_mutex_lock(&k->mtx);
		job_append(&k->done_head, &k->done_tail, g);
		pthread_mutex_unlock(&k->mtx);
		ev_async_send(k->loop, &k->async);
	}
}

static void psp_finished(struct kvs *k, struct kvs_guest *g)
{
	uint64_t exitinfo2;

	k->in_psp--;
	if (g->allowed) {
		struct snpa_msg d = guest_done_msg(g, g->psp_rc < 0 ? SNPA_OUTCOME_NO_FW
								    : SNPA_OUTCOME_FIRMWARE);
		if (g->psp_rc >= 0) {
			d.present |= (1u << SNPA_A_FW_STATUS) | (1u << SNPA_A_FW_TIME_NS);
			d.fw_status = g->fw_status;
			d.fw_time_ns = g->fw_time_ns;
		}
		g->allowed = false;
		(void)send_msg(k, &d);
	}
	if (g->psp_rc < 0) {
		/* No firmware status: real KVM fails KVM_RUN. The guest model sees the generic
		 * VMM error, which it treats as fatal for its VMPCK. */
		k->ks.psp_errors++;
		exitinfo2 = (uint64_t)EXITINFO_VMM_GENERIC << 32;
	} else {
		exitinfo2 = g->fw_status;
	}
	if (k->o.upstream)
		kvs_upstream_fw_done(k, g); /* before the guest runs again (upstream.c) */
	kvs_guest_on_answer(g, exitinfo2, 0);
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, async);
	struct kvs_guest *list;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&k->mtx);
	list = k->done_head;
	k->done_head = k->done_tail = NULL;
	pthread_mutex_unlock(&k->mtx);
	while (list) {
		struct kvs_guest *g = list;
		list = g->job_next;
		g->job_next = NULL;
		psp_finished(k, g);
	}
}

void kvs_kernel_run_psp(struct kvs *k, struct kvs_guest *g)
{
	g->state = KVS_G_IN_PSP;
	k->in_psp++;
	if (k->o.load) {
		/* Load mode: the PSP answers at once and nothing is encrypted. */
		g->psp_rc = 0;
		g->fw_status = 0;
		g->fw_time_ns = 0;
		psp_finished(k, g);
		return;
	}
	pthread_mutex_lock(&k->mtx);
	job_append(&k->jobs_head, &k->jobs_tail, g);
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->mtx);
}

int kvs_psp_worker_start(struct kvs *k)
{
	int r;

	pthread_mutex_init(&k->mtx, NULL);
	pthread_cond_init(&k->cond, NULL);
	ev_async_init(&k->async, on_async);
	ev_async_start(k->loop, &k->async);
	if (k->o.load)
		return 0;
	r = pthread_create(&k->worker, NULL, worker_main, k);
	if (r != 0)
		return -r;
	k->worker_running = true;
	return 0;
}

void kvs_psp_worker_stop(struct kvs *k)
{
	if (k->worker_running) {
		pthread_mutex_lock(&k->mtx);
		k->worker_stop = true;
		pthread_cond_signal(&k->cond);
		pthread_mutex_unlock(&k->mtx);
		pthread_join(k->worker, NULL);
		k->worker_running = false;
	}
	ev_async_stop(k->loop, &k->async);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->mtx);
}

/* --- guest requests --- */

void kvs_kernel_verdict_timeout(struct kvs *k, struct kvs_guest *g)
{
	struct snpa_msg d = guest_done_msg(g, SNPA_OUTCOME_EXPIRED);

	u64map_remove(&k->waiting, g->req_id);
	k->ks.verdict_timeouts++;
	(void)send_msg(k, &d);
	kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
}

/* The guest's certificate buffer is written only for an extended REPORT_REQ (facts §1.2:
 * other message types are handled as plain requests). */
static bool wants_table(const struct kvs_guest *g)
{
	return g->cur_ext && g->req_hdr.type == MSG_REPORT_REQ;
}

/* Upstream KVM today, and the broker kernel failing open: the request goes to the firmware
 * unadmitted; an extended request gets an empty certificate table (the zeroed buffer is one).
 * No GUEST_DONE follows (g->allowed stays false): no broker asked, none is told. */
static void serve_unbrokered(struct kvs *k, struct kvs_guest *g)
{
	g->table_written = wants_table(g) && g->cur_npages > 0;
	kvs_kernel_run_psp(k, g);
}

/* No broker is registered: true once the fail-open window has run out (the guest driver
 * wipes its VMPCK after 60 s of BUSY, so a dead broker must not answer BUSY for long). */
static bool failopen_due(struct kvs *k)
{
	if (k->o.broker_required)
		return false;
	if (!k->failing_open && kvs_now() - k->no_broker_since >= k->o.failopen_ms / 1000.0) {
		k->failing_open = true;
		k->ks.failopen_periods++;
		if (!k->o.quiet)
			fprintf(stderr,
				"snp-kvmsim: no broker for %u ms: serving guest requests without "
				"one (fail-open) until one registers\n",
				k->o.failopen_ms);
	}
	return k->failing_open;
}

void kvs_kernel_submit(struct kvs *k, struct kvs_guest *g)
{
	struct snpa_msg m = {
		.cmd = SNPA_CMD_GUEST_REQ,
		.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VM_ID) | (1u << SNPA_A_EXIT_CODE) |
			   (1u << SNPA_A_MSG_SEQNO) | (1u << SNPA_A_MSG_TYPE) |
			   (1u << SNPA_A_MSG_VERSION) | (1u << SNPA_A_MSG_VMPCK) |
			   (1u << SNPA_A_MSG_SIZE),
	};
	const uint8_t *p = g->req_page;
	int r;

	g->req_id = ++k->next_req_id;
	g->allowed = false;
	g->table_written = false;
	if (g->certbuf && g->cur_ext)
		memset(g->certbuf, 0, (size_t)g->cur_npages * CERTTABLE_PAGE_SIZE);

	if (k->o.upstream) {
		kvs_upstream_submit(k, g);
		return;
	}
	if (k->o.no_broker) {
		serve_unbrokered(k, g);
		return;
	}
	if (!k->broker_port) {
		if (failopen_due(k)) {
			k->ks.failopen_serves++;
			serve_unbrokered(k, g);
		} else {
			kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
		}
		return;
	}
	/* The plaintext header exactly as the guest wrote it. */
	m.req_id = g->req_id;
	m.vm_id = g->vm_id;
	m.exit_code = g->cur_ext ? SVM_VMGEXIT_EXT_GUEST_REQUEST : SVM_VMGEXIT_GUEST_REQUEST;
	m.msg_seqno = get_le64(p + MSG_OFF_SEQNO);
	m.msg_type = p[MSG_OFF_TYPE];
	m.msg_version = p[MSG_OFF_VERSION];
	m.msg_vmpck = p[MSG_OFF_VMPCK];
	m.msg_size = get_le16(p + MSG_OFF_SZ);
	if (g->cur_ext) {
		m.present |= 1u << SNPA_A_DATA_NPAGES;
		m.data_npages = g->cur_npages;
	}
	r = send_msg(k, &m);
	if (r < 0) {
		kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
		return;
	}
	r = u64map_put(&k->waiting, g->req_id, g);
	if (r < 0) {
		kvs_guest_on_answer(g, EXITINFO2_BUSY, 0);
		return;
	}
	g->state = KVS_G_WAIT_VERDICT;
	ev_timer_stop(k->loop, &g->timer);
	ev_timer_set(&g->timer, SNPA_VERDICT_TIMEOUT_MS / 1000.0, 0.);
	ev_timer_start(k->loop, &g->timer);
}

static void handle_verdict(struct kvs *k, const struct snpa_msg *m)
{
	struct kvs_guest *g = u64map_get(&k->waiting, m->req_id);

	k->ks.verdicts++;
	if (!g || g->state != KVS_G_WAIT_VERDICT) {
		/* Unknown, late (already answered BUSY and EXPIRED) or duplicate: dropped. */
		k->ks.verdicts_unknown++;
		return;
	}
	u64map_remove(&k->waiting, m->req_id);
	ev_timer_stop(k->loop, &g->timer);

	if (m->verdict == SNPA_VERDICT_ANSWER) {
		/* nl_parse guarantees BUSY, or INVALID_LEN with NPAGES 1..4. */
		kvs_guest_on_answer(g, m->exitinfo2, snpa_has(m, SNPA_A_NPAGES) ? m->npages : 0);
		return;
	}
	g->allowed = true;
	if (snpa_has(m, SNPA_A_CERT_TABLE) && wants_table(g)) {
		size_t room = (size_t)g->cur_npages * CERTTABLE_PAGE_SIZE;
		if (m->cert_table_len > room || !g->certbuf) {
			/* The broker must answer INVALID_LEN itself. Nothing reached the firmware
			 * yet, so the guest can safely get INVALID_LEN with the page count the
			 * table needs; the slot is freed with NO_FW. */
			struct snpa_msg d = guest_done_msg(g, SNPA_OUTCOME_NO_FW);
			k->ks.broker_bugs++;
			g->allowed = false;
			(void)send_msg(k, &d);
			kvs_guest_on_answer(g, EXITINFO2_INVALID_LEN,
					    (uint32_t)certtable_npages(m->cert_table_len));
			return;
		}
		memcpy(g->certbuf, m->cert_table, m->cert_table_len);
		g->table_written = true;
	} else if (snpa_has(m, SNPA_A_CERT_TABLE)) {
		k->ks.broker_bugs++; /* a table for a request that has no certificate buffer */
	}
	kvs_kernel_run_psp(k, g);
}

/* VM_DUMP from the broker: one VM_ADD (DUMP) per live VM, then the end marker. */
static void handle_dump(struct kvs *k)
{
	uint32_t count = 0;

	k->ks.dumps++;
	for (size_t i = 0; i < k->n_guests; i++) {
		struct kvs_guest *g = k->guests[i];
		struct snpa_msg a = {
			.cmd = SNPA_CMD_VM_ADD,
			.present = (1u << SNPA_A_VM_ID) | (1u << SNPA_A_VMM_PID) |
				   (1u << SNPA_A_ASID) | (1u << SNPA_A_POLICY) |
				   (1u << SNPA_A_DUMP),
			.vm_id = g->vm_id,
			.vmm_pid = (uint32_t)getpid(),
			.asid = g->asid,
			.policy = SIM_KVS_POLICY,
		};
		if (!g->live)
			continue;
		if (g->state == KVS_G_IN_PSP && g->allowed) {
			a.present |= 1u << SNPA_A_INFLIGHT_REQ;
			a.inflight_req = g->req_id;
		}
		if (send_msg(k, &a) == 0)
			count++;
	}
	struct snpa_msg end = {
		.cmd = SNPA_CMD_VM_DUMP,
		.present = 1u << SNPA_A_VM_COUNT,
		.vm_count = count,
	};
	(void)send_msg(k, &end);
}

/* --- who may REGISTER ---
 *
 * In the real kernel REGISTER is an admin command: the sender's socket must carry
 * CAP_NET_ADMIN. NETLINK_USERSOCK checks nothing, so the simulator applies the rule itself
 * from what the kernel tells it about each datagram: with SO_PASSCRED, netlink attaches the
 * sending process's pid, real uid and gid (SCM_CREDENTIALS), which an unprivileged sender
 * cannot forge (the kernel only accepts ids the sender holds). The rule:
 *  - uid 0 (root), or the simulator's own uid (that user can ptrace or kill the simulator
 *    anyway, so refusing it protects nothing; run as root, this is root again);
 *  - otherwise CAP_NET_ADMIN in the sender's effective set, read from /proc/PID/status, and
 *    only if all four of its uids equal the datagram's uid (so neither a set-uid program nor
 *    another user's process that reused the pid counts). A pidfd taken before the read and
 *    checked after it makes sure the status read belongs to that one process.
 * What remains: a process that sends REGISTER and then executes a program carrying the file
 * capability cap_net_admin (uids unchanged) could pass the check in that window; such a
 * program gives its user the capability anyway. The real kernel has no window: it checks
 * the credentials the socket was opened with. */
static struct {
	bool have;
	struct ucred c;
} rx_cred; /* of the datagram being handled (one loop thread) */
static unsigned register_denied_logged;

static bool pid_has_net_admin(pid_t pid, uid_t uid)
{
	char path[64], line[256];
	unsigned long long capeff = 0;
	bool uid_ok = false, cap_seen = false;
	int pidfd;
	FILE *f;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned a, b, c, d;
			if (sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &d) == 4)
				uid_ok = a == uid && b == uid && c == uid && d == uid;
			else if (sscanf(line, "CapEff: %llx", &capeff) == 1)
				cap_seen = true;
		}
		fclose(f);
	}
	/* Still the process the pidfd names: the status above was not a successor's. */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		uid_ok = false;
	close(pidfd);
	return uid_ok && cap_seen && (capeff & (1ull << 12 /* CAP_NET_ADMIN */));
}

static bool may_register(void)
{
	if (!rx_cred.have)
		return false;
	if (rx_cred.c.uid == 0 || rx_cred.c.uid == geteuid())
		return true;
	if (rx_cred.c.pid <= 0) /* a sender outside our pid namespace */
		return false;
	return pid_has_net_admin(rx_cred.c.pid, rx_cred.c.uid);
}

static void answer_register(struct kvs *k, const struct nlmsghdr *nlh, uint32_t port,
			    const struct snpa_msg *m)
{
	uint8_t buf[256] __attribute__((aligned(4)));
	int err = 0, len;

	if (!may_register()) {
		err = -EPERM;
		if (!k->o.quiet && register_denied_logged < 16) {
			register_denied_logged++;
			fprintf(stderr,
				"snp-kvmsim: REGISTER from port %u refused: pid %d uid %u is "
				"neither "
				"root nor holds CAP_NET_ADMIN\n",
				port, rx_cred.have ? (int)rx_cred.c.pid : -1,
				rx_cred.have ? (unsigned)rx_cred.c.uid : 0u);
		}
	} else if (m->abi_version != SNPA_ABI_VERSION) {
		err = -EPROTONOSUPPORT;
	} else if (k->broker_port && k->broker_port != port) {
		/* Is the registered broker still there? A NOOP costs it nothing; a refused send
		 * means its socket is closed and the role is free. */
		struct nlmsghdr probe = {.nlmsg_len = sizeof(probe),
					 .nlmsg_type = NLMSG_NOOP,
					 .nlmsg_pid = k->o.port};
		(void)send_to(k, k->broker_port, &probe, sizeof(probe));
		if (k->broker_port)
			err = -EBUSY;
	}
	if (err == 0) {
		if (k->broker_port != port) {
			k->ks.registrations++;
			if (!k->o.quiet)
				fprintf(stderr, "snp-kvmsim: broker registered (port %u)%s\n", port,
					k->failing_open ? "; fail-open ends" : "");
		}
		k->broker_port = port;
		k->failing_open = false;
	} else {
		k->ks.register_refused++;
	}
	len = nl_build_ack(buf, sizeof(buf), nlh, err);
	if (len > 0)
		(void)send_to(k, port, buf, (size_t)len);
	if (err == 0 && !k->started && k->o.wait_broker > 0)
		ev_feed_event(k->loop, &k->wait_timer, EV_TIMER);
}

static void handle_one(struct kvs *k, const struct nlmsghdr *nlh, size_t len, uint32_t port)
{
	struct snpa_msg m;
	int cls, r;

	cls = nl_msg_class(nlh, len, SNPA_USERSOCK_FAMILY);
	if (cls < 0) {
		k->ks.rx_malformed++;
		return;
	}
	if (cls == NL_MSG_NOOP && (nlh->nlmsg_flags & NLM_F_ACK)) {
		/* A broker's liveness probe: tell it whether it still holds the role, so a
		 * daemon that outlived an earlier simulator on this port registers again. */
		uint8_t buf[64] __attribute__((aligned(4)));
		int n = nl_build_ack(buf, sizeof(buf), nlh,
				     k->broker_port && port == k->broker_port ? 0 : -ENOTCONN);
		if (n > 0)
			(void)send_to(k, port, buf, (size_t)n);
		return;
	}
	if (cls != NL_MSG_SNPA) {
		k->ks.rx_ignored++; /* ACKs, NOOPs and others are not requests to us */
		return;
	}
	r = nl_parse(nlh, len, SNPA_USERSOCK_FAMILY, &m);
	if (r < 0) {
		k->ks.rx_malformed++;
		if (port == k->broker_port || !k->broker_port) {
			/* A malformed request that asked for an ACK gets the error, as netlink
			 * does; the guest requests it might concern time out to BUSY. */
			if (nlh->nlmsg_flags & NLM_F_ACK) {
				uint8_t buf[256] __attribute__((aligned(4)));
				int n = nl_build_ack(buf, sizeof(buf), nlh, -EINVAL);
				if (n > 0)
					(void)send_to(k, port, buf, (size_t)n);
			}
		}
		return;
	}
	if (m.cmd == SNPA_CMD_REGISTER) {
		k->ks.rx_msgs++;
		answer_register(k, nlh, port, &m);
		return;
	}
	if (!k->broker_port || port != k->broker_port) {
		k->ks.rx_foreign++;
		return;
	}
	k->ks.rx_msgs++;
	switch (m.cmd) {
	case SNPA_CMD_VERDICT:
		handle_verdict(k, &m);
		break;
	case SNPA_CMD_VM_DUMP:
		handle_dump(k);
		break;
	default:
		k->ks.rx_ignored++; /* kernel -> daemon commands are not ours to receive */
		break;
	}
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kvs *k = container_of(w, struct kvs, io);

	(void)loop;
	(void)revents;
	for (int round = 0; round < 256; round++) {
		struct sockaddr_nl from;
		struct iovec iov = {.iov_base = k->rx, .iov_len = sizeof(k->rx)};
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} ctl;
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		uint8_t *buf = k->rx;
		ssize_t n;
		size_t len;

		n = recvmsg(k->fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return;
		}
		if (mh.msg_namelen != sizeof(from) || (mh.msg_flags & MSG_TRUNC)) {
			k->ks.rx_malformed++;
			continue;
		}
		if (from.nl_pid == 0) {
			k->ks.rx_foreign++; /* not a user socket: nothing of ours */
			continue;
		}
		rx_cred.have = false;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
				memcpy(&rx_cred.c, CMSG_DATA(c), sizeof(rx_cred.c));
				rx_cred.have = true;
			}
		len = (size_t)n;
		while (len >= sizeof(struct nlmsghdr)) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
			size_t ml = nlh->nlmsg_len, step;

			if (ml < sizeof(*nlh) || ml > len) {
				k->ks.rx_malformed++;
				break;
			}
			handle_one(k, nlh, ml, from.nl_pid);
			step = NLMSG_ALIGN(ml);
			if (step >= len)
				break;
			buf += step;
			len -= step;
		}
	}
}

int kvs_kernel_open(struct kvs *k)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = k->o.port};
	int fd, v, r;

	u64map_init(&k->waiting, k->o.seed ^ 0x9e3779b97f4a7c15ull);
	k->fd = -1;
	k->no_broker_since = kvs_now(); /* as the kernel from module load */
	if (k->o.no_broker || k->o.upstream)
		return 0;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_USERSOCK);
	if (fd < 0)
		return -errno;
	v = KVS_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	/* The sender's credentials with every datagram: REGISTER is checked against them. */
	v = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	k->fd = fd;
	ev_io_init(&k->io, on_readable, fd, EV_READ);
	ev_io_start(k->loop, &k->io);
	return 0;
}

void kvs_kernel_close(struct kvs *k)
{
	if (k->fd >= 0) {
		ev_io_stop(k->loop, &k->io);
		close(k->fd);
		k->fd = -1;
	}
	u64map_done(&k->waiting);
}

void kvs_kernel_vm_add(struct kvs *k, struct kvs_guest *g)
{
	struct snpa_msg a = {
		.cmd = SNPA_CMD_VM_ADD,
		.present = (1u << SNPA_A_VM_ID) | (1u << SNPA_A_VMM_PID) | (1u << SNPA_A_ASID) |
			   (1u << SNPA_A_POLICY),
		.vm_id = g->vm_id,
		.vmm_pid = (uint32_t)getpid(),
		.asid = g->asid,
		.policy = SIM_KVS_POLICY,
	};

	g->live = true;
	if (k->o.upstream) {
		kvs_upstream_vm_add(k, g);
		return;
	}
	(void)send_msg(k, &a);
}

void kvs_kernel_vm_remove(struct kvs *k, struct kvs_guest *g)
{
	struct snpa_msg rm = {
		.cmd = SNPA_CMD_VM_REMOVE,
		.present = 1u << SNPA_A_VM_ID,
		.vm_id = g->vm_id,
	};

	if (!g->live)
		return;
	if (k->o.upstream) {
		kvs_upstream_vm_remove(k, g);
		return;
	}
	g->live = false;
	if (g->state == KVS_G_WAIT_VERDICT) {
		/* Pending requests of a VM that is gone are dropped without GUEST_DONE. */
		u64map_remove(&k->waiting, g->req_id);
		ev_timer_stop(k->loop, &g->timer);
		g->st.abandoned++;
		g->state = KVS_G_FINISHED;
	}
	(void)send_msg(k, &rm);
}

/* --- hostile traffic for the daemon's robustness tests --- */

static struct nlmsghdr *put_genl(uint8_t *buf, uint8_t cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *gh;

	nlh->nlmsg_type = SNPA_USERSOCK_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	gh->cmd = cmd;
	gh->version = SNPA_GENL_VERSION;
	return nlh;
}

/* A command that carries nothing but the request id. */
static struct nlmsghdr *put_req_id_cmd(uint8_t *buf, uint8_t cmd, uint64_t req_id)
{
	struct nlmsghdr *nlh = put_genl(buf, cmd);

	mnl_attr_put_u64(nlh, SNPA_A_REQ_ID, req_id);
	return nlh;
}

/* A complete GUEST_REQ for a report, with the request id optionally at the wrong width. */
static struct nlmsghdr *put_guest_req(uint8_t *buf, uint64_t req_id, bool req_id_u32)
{
	struct nlmsghdr *nlh = put_genl(buf, SNPA_CMD_GUEST_REQ);

	if (req_id_u32)
		mnl_attr_put_u32(nlh, SNPA_A_REQ_ID, (uint32_t)req_id);
	else
		mnl_attr_put_u64(nlh, SNPA_A_REQ_ID, req_id);
	mnl_attr_put_u64(nlh, SNPA_A_VM_ID, 0xdeadbeefull);
	mnl_attr_put_u32(nlh, SNPA_A_EXIT_CODE, SVM_VMGEXIT_GUEST_REQUEST);
	mnl_attr_put_u64(nlh, SNPA_A_MSG_SEQNO, 1);
	mnl_attr_put_u8(nlh, SNPA_A_MSG_TYPE, MSG_REPORT_REQ);
	mnl_attr_put_u8(nlh, SNPA_A_MSG_VERSION, 1);
	mnl_attr_put_u8(nlh, SNPA_A_MSG_VMPCK, 0);
	mnl_attr_put_u16(nlh, SNPA_A_MSG_SIZE, MSG_REPORT_REQ_SIZE);
	return nlh;
}

/* Kinds, in rotation: 0 truncated datagram, 1 nlmsg_len below the header, 2 attribute of
 * the wrong width, 3 duplicate attribute, 4 unknown command, 5 missing required attribute,
 * 6 wrong genl version, 7 a daemon-to-kernel command sent the wrong way. Request ids come
 * from the kernel's counter, so no guest request is ever confused with them. */
void kvs_kernel_send_malformed(struct kvs *k, unsigned kind)
{
	uint8_t buf[1024] __attribute__((aligned(4)));
	struct nlmsghdr *nlh;
	uint64_t req_id = ++k->next_req_id;
	size_t len = 0; /* 0: the datagram is exactly what the header says */

	if (!k->broker_port)
		return;
	memset(buf, 0, sizeof(buf));
	switch (kind % 8) {
	case 0:
		nlh = put_guest_req(buf, req_id, false);
		len = nlh->nlmsg_len - 6; /* the header claims more than the datagram holds */
		break;
	case 1:
		nlh = put_genl(buf, SNPA_CMD_GUEST_DONE);
		nlh->nlmsg_len = 8;
		len = 16;
		break;
	case 2:
		nlh = put_guest_req(buf, req_id, true);
		break;
	case 3:
		nlh = put_guest_req(buf, req_id, false);
		mnl_attr_put_u64(nlh, SNPA_A_VM_ID, 0xdeadbeefull);
		break;
	case 4:
		nlh = put_req_id_cmd(buf, 0x7f, req_id);
		break;
	case 5:
		nlh = put_req_id_cmd(buf, SNPA_CMD_GUEST_DONE, req_id);
		break;
	case 6: {
		struct genlmsghdr *gh;
		nlh = put_genl(buf, SNPA_CMD_VM_REMOVE);
		mnl_attr_put_u64(nlh, SNPA_A_VM_ID, 0xdeadbeefull);
		gh = mnl_nlmsg_get_payload(nlh);
		gh->version = 7;
		break;
	}
	default:
		nlh = put_req_id_cmd(buf, SNPA_CMD_VERDICT, req_id);
		mnl_attr_put_u32(nlh, SNPA_A_VERDICT, SNPA_VERDICT_ALLOW);
		break;
	}
	if (!len)
		len = nlh->nlmsg_len;
	if (send_to(k, k->broker_port, buf, len) == 0)
		k->ks.malformed_sent++;
}

double kvs_now(void)
{
	return mono_now();
}
