/* SPDX-License-Identifier: Apache-2.0 */
/* vmmtransport: the VMM socket (vmmtransport.h). Knows the vmmproto message format and the
 * connection rules (authorisation, HELLO first, one CERTS unanswered, DONE after ALLOW);
 * nothing of policy. A connection whose peer breaks a rule gets ERROR and is closed, which
 * removes its VM from the core: the guest behind it only ever sees what libsnpattest makes of
 * a missing daemon (the certificate file, or an empty table), never an error. */
#include "vmmtransport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "listenfd.h"
#include "log.h"
#include "manager.h"
#include "peercred.h"
#include "ratelimit.h"
#include "u64map.h"
#include "unixsock.h"
#include "util.h"

#define VMMT_BACKLOG 256
/* A peer that does not take its answers (socket buffer full) is dropped rather than waited
 * for: the verdict is then counted never sent, and the VM removed. */

struct vmm_conn {
	struct vmmtransport *v; /* borrowed */
	struct vmm_conn *prev, *next;
	int fd;
	ev_io io;
	ev_timer timer; /* HELLO deadline; then (zero delay) a deferred close */
	struct peercred cred;
	bool hello;   /* HELLO_ACK sent: the VM is in the core */
	bool closing; /* close on the next loop iteration (not from inside a core callback) */
	uint8_t uuid[16];
	char name[VMMPROTO_NAME_MAX + 1];
	uint64_t vm_id;
	uint64_t last_req;    /* highest req_id seen: ids only grow on a connection */
	uint64_t pending_req; /* CERTS waiting for the core's verdict (0: none) */
	uint64_t allowed_req; /* ALLOW sent, DONE not yet (0: none) */
	uint64_t allowed_usec;
};

struct vmmtransport {
	struct adm_transport t; /* first: the ops get it back */
	struct ev_loop *loop;	/* borrowed */
	struct adm *adm;	/* borrowed */
	int fd;
	ev_io io;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool bound;  /* we created path: unlink it when we go */
	char *group; /* owned */
	uint32_t max_clients;
	uint64_t hello_timeout_usec;
	struct vmm_conn *conns; /* owned list */
	struct u64map by_id;	/* vm_id -> connection past HELLO (borrowed from conns) */
	uint64_t rx_usec;	/* receipt of the message being handled */
	struct ratelimit log_rl;
	struct vmmtransport_stats stats;
	uint8_t rx[VMMPROTO_MSG_MAX + 1]; /* one byte more: a longer record shows as truncated */
	uint8_t tx[VMMPROTO_MSG_MAX];
};

static const char *const refusal_names[_VMMT_REFUSE_MAX] = {
	[VMMT_REFUSE_DENIED] = "denied",
	[VMMT_REFUSE_LIMIT] = "limit",
	[VMMT_REFUSE_MALFORMED] = "malformed",
	[VMMT_REFUSE_VERSION] = "version",
	[VMMT_REFUSE_STATE] = "state",
	[VMMT_REFUSE_DUPLICATE] = "duplicate",
	[VMMT_REFUSE_UNKNOWN_REQ] = "unknown_request",
	[VMMT_REFUSE_HELLO_TIMEOUT] = "hello_timeout",
	[VMMT_REFUSE_PEER_ERROR] = "peer_error",
	[VMMT_REFUSE_SEND] = "send_failed",
};

const char *vmmtransport_refusal_name(enum vmmt_refusal r)
{
	return (unsigned)r < _VMMT_REFUSE_MAX ? refusal_names[r] : "unknown";
}

static struct vmmtransport *of(struct adm_transport *t)
{
	return container_of(t, struct vmmtransport, t);
}

/* --- connections --- */

static void conn_free(struct vmm_conn *cn, const char *why)
{
	struct vmmtransport *v = cn->v;

	ev_io_stop(v->loop, &cn->io);
	ev_timer_stop(v->loop, &cn->timer);
	if (cn->hello) {
		/* The VM goes with its connection: a queued request gets BUSY (not sent: the
		 * connection is gone), an in-flight slot is freed. */
		cn->closing = true;
		(void)u64map_remove(&v->by_id, cn->vm_id);
		(void)adm_vm_remove(v->adm, cn->vm_id, why);
		v->stats.vms--;
	}
	close(cn->fd);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		v->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	v->stats.connections--;
	v->stats.closed++;
	free(cn);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents);

/* Closes the connection once control is back in the loop: the core may be calling us. */
static void conn_close_later(struct vmm_conn *cn)
{
	if (cn->closing)
		return;
	cn->closing = true;
	ev_io_stop(cn->v->loop, &cn->io);
	ev_timer_stop(cn->v->loop, &cn->timer);
	ev_timer_set(&cn->timer, 0., 0.);
	ev_timer_start(cn->v->loop, &cn->timer);
}

static int conn_send(struct vmm_conn *cn, const struct vmmproto_msg *m)
{
	struct vmmtransport *v = cn->v;
	size_t len;
	ssize_t n;
	int r;

	if (cn->closing)
		return -ECONNRESET;
	r = vmmproto_build(m, v->tx, sizeof(v->tx), &len);
	if (r < 0)
		return r;
	n = send(cn->fd, v->tx, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return 0;
	r = n < 0 ? -errno : -EIO;
	v->stats.refused[VMMT_REFUSE_SEND]++;
	if (ratelimit_pass(&v->log_rl, manager_now_usec(), NULL))
		log_warning("VMM socket: cannot send %s to VM '%s' (pid %d): %s; dropping the "
			    "connection",
			    vmmproto_type_name(m->type), cn->hello ? cn->name : "?",
			    (int)cn->cred.pid, snp_strerror(r));
	conn_close_later(cn);
	return r;
}

/* Ends a connection for a protocol error: counted, logged (rate-limited), ERROR sent. */
static void conn_refuse(struct vmm_conn *cn, enum vmmt_refusal why, enum vmmproto_error code,
			uint64_t req_id, const char *detail)
{
	struct vmmtransport *v = cn->v;
	struct vmmproto_msg e = {.type = VMMPROTO_ERROR, .error = {.req_id = req_id, .code = code}};

	v->stats.refused[why]++;
	if (ratelimit_pass(&v->log_rl, manager_now_usec(), NULL))
		log_notice("VMM socket: %s from uid %u pid %d%s%s: %s; connection closed",
			   refusal_names[why], (unsigned)cn->cred.uid, (int)cn->cred.pid,
			   cn->hello ? ", VM " : "", cn->hello ? cn->name : "", detail);
	(void)conn_send(cn, &e);
	conn_close_later(cn);
}

static struct vmm_conn *conn_by_id(const struct vmmtransport *v, uint64_t vm_id)
{
	return u64map_get(&v->by_id, vm_id);
}

/* --- verdicts out (the core's ops) --- */

/* The connection a verdict is for: 0 and *ret when it waits for exactly that request; 1 when
 * the connection is going (nobody left to tell: the VM is being removed); -ESTALE otherwise. */
static int verdict_conn(void *peer, uint64_t req_id, struct vmm_conn **ret)
{
	struct vmm_conn *cn = peer;

	if (!cn || cn->closing)
		return 1;
	if (cn->pending_req != req_id)
		return -ESTALE;
	cn->pending_req = 0;
	*ret = cn;
	return 0;
}

static int op_allow(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
		    const uint8_t *table, size_t table_len)
{
	struct vmm_conn *cn = NULL;
	struct vmmproto_msg m = {.type = VMMPROTO_ALLOW,
				 .allow = {.req_id = req_id,
					   .table = table,
					   .table_len = table ? (uint32_t)table_len : 0}};
	int r;

	(void)vm_id;
	r = verdict_conn(peer, req_id, &cn);
	if (r != 0)
		return -ESTALE; /* never count an ALLOW nobody received as admitted */
	r = conn_send(cn, &m);
	if (r < 0)
		return r;
	of(t)->stats.allow++;
	cn->allowed_req = req_id;
	cn->allowed_usec = manager_now_usec();
	return 0;
}

/* BUSY or ENOSPC (m) for the request of peer, counted in *sent once sent. */
static int send_answer(void *peer, uint64_t req_id, const struct vmmproto_msg *m, uint64_t *sent)
{
	struct vmm_conn *cn = NULL;
	int r = verdict_conn(peer, req_id, &cn);

	if (r != 0)
		return r < 0 ? r : 0;
	r = conn_send(cn, m);
	if (r == 0)
		(*sent)++;
	return r;
}

static int op_busy(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id)
{
	struct vmmproto_msg m = {.type = VMMPROTO_BUSY, .busy = {.req_id = req_id}};

	(void)vm_id;
	return send_answer(peer, req_id, &m, &of(t)->stats.busy);
}

static int op_invalid_len(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
			  uint32_t npages)
{
	struct vmmproto_msg m = {.type = VMMPROTO_ENOSPC,
				 .enospc = {.req_id = req_id, .npages = npages ? npages : 1}};

	(void)vm_id;
	return send_answer(peer, req_id, &m, &of(t)->stats.enospc);
}

static uint64_t op_rx_usec(struct adm_transport *t)
{
	return of(t)->rx_usec;
}

static const struct adm_transport_ops vmm_ops = {
	.name = "vmm",
	.allow = op_allow,
	.busy = op_busy,
	.invalid_len = op_invalid_len,
	.request_resync = NULL, /* every VM announces itself on its own connection */
	.rx_usec = op_rx_usec,
};

/* --- messages in --- */

/* A live connection for the same VM id. Its peer may have gone without our noticing yet (a
 * VMM that reconnects after a timeout): then it is closed now and the newcomer takes over. */
static bool duplicate_live(struct vmm_conn *cn)
{
	struct vmm_conn *old = conn_by_id(cn->v, cn->vm_id);
	char b;

	if (!old || old == cn)
		return false;
	if (recv(old->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
		conn_free(old, "VMM reconnected");
		return false;
	}
	return true;
}

static void on_hello(struct vmm_conn *cn, const struct vmmproto_msg *m)
{
	struct vmmtransport *v = cn->v;
	struct adm_vm_attrs at = {.vmm_pid = (uint32_t)cn->cred.pid};
	struct vmmproto_msg ack = {.type = VMMPROTO_HELLO_ACK};
	char uuid[VMMPROTO_UUID_STR];
	int r;

	if (cn->hello) {
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, 0, "a second HELLO");
		return;
	}
	memcpy(cn->uuid, m->hello.uuid, sizeof(cn->uuid));
	snprintf(cn->name, sizeof(cn->name), "%s", m->hello.name);
	cn->vm_id = vmmproto_vm_key(cn->uuid, cn->name);
	vmmproto_uuid_format(cn->uuid, uuid);
	if (duplicate_live(cn)) {
		conn_refuse(cn, VMMT_REFUSE_DUPLICATE, VMMPROTO_E_DUPLICATE, 0,
			    "another connection speaks for this VM");
		return;
	}
	r = u64map_put(&v->by_id, cn->vm_id, cn);
	if (r == 0) {
		r = adm_vm_add(v->adm, &v->t, cn->vm_id, &at, false, false, 0);
		if (r == 0) {
			r = adm_vm_set_peer(v->adm, cn->vm_id, cn);
			if (r < 0)
				(void)adm_vm_remove(v->adm, cn->vm_id, "VMM HELLO failed");
		}
		if (r < 0)
			(void)u64map_remove(&v->by_id, cn->vm_id);
	}
	if (r < 0) {
		/* -EEXIST: a netlink VM with this id, which cannot be (kernel ids are < 2^63). */
		conn_refuse(cn, VMMT_REFUSE_DUPLICATE,
			    r == -EEXIST ? VMMPROTO_E_DUPLICATE : VMMPROTO_E_INTERNAL, 0,
			    snp_strerror(r));
		return;
	}
	cn->hello = true;
	v->stats.vms++;
	v->stats.hellos++;
	ev_timer_stop(v->loop, &cn->timer);
	ack.hello_ack.vm_id = cn->vm_id;
	if (conn_send(cn, &ack) < 0)
		return;
	log_info("VMM socket: VM '%s' (uuid %s, id %llu) connected from pid %d uid %u%s", cn->name,
		 uuid, (unsigned long long)cn->vm_id, (int)cn->cred.pid, (unsigned)cn->cred.uid,
		 m->hello.vmm_pid != (uint32_t)cn->cred.pid ? " (HELLO names another pid)" : "");
}

static void on_certs(struct vmm_conn *cn, const struct vmmproto_msg *m)
{
	struct vmmtransport *v = cn->v;
	struct adm_request rq = {
		.req_id = m->certs.req_id,
		.has_msg = false, /* KVM does not show the VMM the guest's message header */
		.wants_table = true,
		.npages = m->certs.npages,
	};

	if (!cn->hello) {
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, m->certs.req_id,
			    "CERTS before HELLO");
		return;
	}
	if (cn->pending_req) {
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, m->certs.req_id,
			    "CERTS while another is unanswered");
		return;
	}
	if (m->certs.req_id <= cn->last_req) {
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, m->certs.req_id,
			    "request id reused or going backwards");
		return;
	}
	cn->last_req = m->certs.req_id;
	cn->pending_req = m->certs.req_id;
	v->stats.certs++;
	/* Exactly one verdict follows, now or later, through the ops above. */
	adm_request(v->adm, &v->t, cn->vm_id, &rq);
}

static void on_done(struct vmm_conn *cn, const struct vmmproto_msg *m)
{
	struct vmmtransport *v = cn->v;
	bool fw = m->done.outcome == VMMPROTO_DONE_FIRMWARE;
	uint64_t now = manager_now_usec();

	if (!cn->hello) {
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, m->done.req_id,
			    "DONE before HELLO");
		return;
	}
	if (!cn->allowed_req || m->done.req_id != cn->allowed_req) {
		conn_refuse(cn, VMMT_REFUSE_UNKNOWN_REQ, VMMPROTO_E_UNKNOWN_REQ, m->done.req_id,
			    "DONE for a request that was not allowed");
		return;
	}
	cn->allowed_req = 0;
	if (fw)
		v->stats.done_firmware++;
	else
		v->stats.done_abandoned++;
	/* The VMM never sees the firmware status: a firmware outcome is counted as status 0,
	 * its time as ALLOW to DONE (an upper bound). */
	adm_done(v->adm, cn->vm_id, m->done.req_id, fw ? ADM_DONE_FIRMWARE : ADM_DONE_NOT_RUN, 0,
		 fw && now > cn->allowed_usec ? (now - cn->allowed_usec) * 1000 : 0);
}

/* Returns true when the record was a request (CERTS), answered or not. */
static bool on_message(struct vmm_conn *cn, size_t len)
{
	struct vmmtransport *v = cn->v;
	struct vmmproto_msg m;
	uint16_t version = 0;
	char detail[96];
	int r;

	r = vmmproto_parse(v->rx, len, &m, &version);
	if (r == -EPROTONOSUPPORT) {
		snprintf(detail, sizeof(detail), "protocol version %u (this daemon speaks %u)",
			 (unsigned)version, VMMPROTO_VERSION);
		conn_refuse(cn, VMMT_REFUSE_VERSION, VMMPROTO_E_VERSION, 0, detail);
		return false;
	}
	if (r < 0) {
		snprintf(detail, sizeof(detail), "unparsable message of %zu bytes (%s)", len,
			 snp_strerror(r));
		conn_refuse(cn, VMMT_REFUSE_MALFORMED, VMMPROTO_E_MALFORMED, 0, detail);
		return false;
	}
	switch (m.type) {
	case VMMPROTO_HELLO:
		on_hello(cn, &m);
		break;
	case VMMPROTO_CERTS:
		on_certs(cn, &m);
		return true;
	case VMMPROTO_DONE:
		on_done(cn, &m);
		break;
	case VMMPROTO_ERROR:
		v->stats.refused[VMMT_REFUSE_PEER_ERROR]++;
		if (ratelimit_pass(&v->log_rl, manager_now_usec(), NULL))
			log_notice("VMM socket: VM '%s' (pid %d) sent ERROR %s; connection closed",
				   cn->hello ? cn->name : "?", (int)cn->cred.pid,
				   vmmproto_error_name(m.error.code));
		conn_close_later(cn);
		break;
	default:
		snprintf(detail, sizeof(detail), "%s is not a VMM's message",
			 vmmproto_type_name(m.type));
		conn_refuse(cn, VMMT_REFUSE_STATE, VMMPROTO_E_STATE, 0, detail);
		break;
	}
	return false;
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vmm_conn *cn = container_of(w, struct vmm_conn, io);
	struct vmmtransport *v = cn->v;

	(void)loop;
	(void)revents;
	/* One request per VM per wake-up (the DONE of the last one usually comes just before it,
	 * so a few records are read): a VMM that answers quickly, on the other CPU, would otherwise
	 * be served again and again within one pass of the loop while the others wait, and the
	 * tail of their latency would grow with it. */
	for (unsigned i = 0; i < 8 && !cn->closing; i++) {
		ssize_t n = recv(cn->fd, v->rx, sizeof(v->rx), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_free(cn, n == 0 ? "VMM connection closed" : "VMM connection failed");
			return;
		}
		v->rx_usec = manager_now_usec();
		if ((size_t)n > VMMPROTO_MSG_MAX) {
			conn_refuse(cn, VMMT_REFUSE_MALFORMED, VMMPROTO_E_MALFORMED, 0,
				    "record longer than any message");
			return;
		}
		if (on_message(cn, (size_t)n))
			return;
	}
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct vmm_conn *cn = container_of(w, struct vmm_conn, timer);

	(void)loop;
	(void)revents;
	if (cn->closing) {
		conn_free(cn, "VMM connection dropped");
		return;
	}
	if (!cn->hello)
		conn_refuse(cn, VMMT_REFUSE_HELLO_TIMEOUT, VMMPROTO_E_STATE, 0, "no HELLO in time");
}

/* --- the listening socket --- */

static void refuse_now(struct vmmtransport *v, int fd, enum vmmt_refusal why,
		       enum vmmproto_error code, const struct peercred *pc)
{
	struct vmmproto_msg e = {.type = VMMPROTO_ERROR, .error = {.code = code}};
	size_t len;

	v->stats.refused[why]++;
	if (vmmproto_build(&e, v->tx, sizeof(v->tx), &len) == 0)
		(void)send(fd, v->tx, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (ratelimit_pass(&v->log_rl, manager_now_usec(), NULL))
		log_notice("VMM socket: refused uid %u pid %d: %s", (unsigned)pc->uid, (int)pc->pid,
			   why == VMMT_REFUSE_DENIED ? "neither root nor in the [vmm] group"
						     : "too many connections ([vmm] max_clients)");
	close(fd);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vmmtransport *v = container_of(w, struct vmmtransport, io);

	(void)revents;
	for (unsigned i = 0; i < 64; i++) {
		struct peercred pc = {.uid = (uid_t)-1, .pid = 0};
		struct vmm_conn *cn;
		int fd = accept4(v->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
			    ratelimit_pass(&v->log_rl, manager_now_usec(), NULL))
				log_warning("VMM socket: accept failed: %s", strerror(errno));
			return;
		}
		v->stats.accepted++;
		if (peercred_get(fd, &pc) < 0 || !peercred_allowed(fd, &pc, v->group)) {
			refuse_now(v, fd, VMMT_REFUSE_DENIED, VMMPROTO_E_DENIED, &pc);
			continue;
		}
		if (v->stats.connections >= v->max_clients) {
			refuse_now(v, fd, VMMT_REFUSE_LIMIT, VMMPROTO_E_LIMIT, &pc);
			continue;
		}
		cn = calloc(1, sizeof(*cn));
		if (!cn) {
			close(fd);
			continue;
		}
		cn->v = v;
		cn->fd = fd;
		cn->cred = pc;
		cn->next = v->conns;
		if (v->conns)
			v->conns->prev = cn;
		v->conns = cn;
		v->stats.connections++;
		ev_io_init(&cn->io, on_conn_io, fd, EV_READ);
		ev_io_start(loop, &cn->io);
		ev_timer_init(&cn->timer, on_conn_timer, (double)v->hello_timeout_usec / 1e6, 0.);
		ev_timer_start(loop, &cn->timer);
	}
}

/* The SOCK_SEQPACKET socket systemd passed with FileDescriptorName=vmm, or -ENOENT. */
static int activated_fd(char *err, size_t err_size)
{
	int fd = listenfd_by_name("vmm");

	if (fd >= 0 && sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
		snprintf(err, err_size,
			 "the socket named \"vmm\" from systemd is not a listening "
			 "AF_UNIX SOCK_SEQPACKET socket");
		return -ENOTSOCK;
	}
	return fd;
}

static int listen_on(struct vmmtransport *v, const char *path, char *err, size_t err_size)
{
	const char *what;
	int fd = unixsock_listen(path, SOCK_SEQPACKET, VMMT_BACKLOG, &what);

	if (fd == -EADDRINUSE || fd == -EEXIST)
		snprintf(err, err_size, "%s: %s", path,
			 fd == -EADDRINUSE ? "another daemon listens there"
					   : "exists and is not a socket");
	else if (fd < 0)
		snprintf(err, err_size, "cannot %s %s: %s", what, path, strerror(-fd));
	if (fd < 0)
		return fd;
	v->bound = true;
	snprintf(v->path, sizeof(v->path), "%s", path);
	return fd;
}

static int set_group(struct vmmtransport *v, const char *group)
{
	char *g = strdup(group);

	if (!g)
		return -ENOMEM;
	free(v->group);
	v->group = g;
	return 0;
}

int vmmtransport_new(struct ev_loop *loop, const struct conf *c, struct adm *adm,
		     struct vmmtransport **ret, char *err, size_t err_size)
{
	struct vmmtransport *v = calloc(1, sizeof(*v));
	int fd, r;

	if (!v) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	adm_transport_init(&v->t, &vmm_ops);
	v->loop = loop;
	v->adm = adm;
	v->fd = -1;
	v->max_clients = c->vmm_max_clients;
	v->hello_timeout_usec = c->vmm_hello_timeout_usec;
	u64map_init(&v->by_id, (uint64_t)(uintptr_t)v);
	ratelimit_init(&v->log_rl, 10 * 1000000ull, 10);
	r = set_group(v, c->vmm_group);
	if (r < 0) {
		snprintf(err, err_size, "out of memory");
		free(v);
		return r;
	}
	fd = activated_fd(err, err_size);
	if (fd == -ENOENT && strcmp(c->vmm_socket, "none") != 0 &&
	    strcmp(c->vmm_socket, "auto") != 0)
		fd = listen_on(v, c->vmm_socket, err, err_size);
	else if (fd >= 0 && strcmp(c->vmm_socket, "none") == 0) {
		/* Configured off: the passed socket is closed so VMMs fail over at once. */
		close(fd);
		fd = -ENOENT;
	} else if (fd >= 0) {
		struct sockaddr_un sa;
		socklen_t len = sizeof(sa);
		v->stats.activated = true;
		if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
		    len > offsetof(struct sockaddr_un, sun_path))
			snprintf(v->path, sizeof(v->path), "%.*s",
				 (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path);
		r = fcntl(fd, F_GETFL);
		if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
			r = -errno;
			snprintf(err, err_size, "cannot use the socket from systemd: %s",
				 strerror(-r));
			close(fd);
			fd = r;
		}
	}
	if (fd < 0 && fd != -ENOENT) {
		u64map_done(&v->by_id);
		free(v->group);
		free(v);
		return fd;
	}
	v->fd = fd;
	if (fd >= 0) {
		ev_io_init(&v->io, on_accept, fd, EV_READ);
		ev_io_start(loop, &v->io);
		v->stats.listening = true;
		log_info("VMM socket: listening on %s%s", v->path[0] ? v->path : "(unnamed)",
			 v->stats.activated ? " (from systemd)" : "");
	}
	*ret = v;
	return 0;
}

void vmmtransport_free(struct vmmtransport *v)
{
	if (!v)
		return;
	/* The core forgets every VM of this transport at once (no verdict is sent); then each
	 * VMM hears why, so that it falls back without waiting for its timeout. */
	adm_transport_lost(v->adm, &v->t);
	while (v->conns) {
		struct vmm_conn *cn = v->conns;
		struct vmmproto_msg e = {.type = VMMPROTO_ERROR,
					 .error = {.code = VMMPROTO_E_SHUTDOWN}};
		if (cn->hello)
			(void)u64map_remove(&v->by_id, cn->vm_id);
		if (cn->hello)
			v->stats.vms--;
		cn->hello = false; /* already gone from the core */
		cn->closing = false;
		(void)conn_send(cn, &e);
		conn_free(cn, "shutdown");
	}
	if (v->fd >= 0) {
		ev_io_stop(v->loop, &v->io);
		close(v->fd);
	}
	if (v->bound)
		(void)unlink(v->path);
	u64map_done(&v->by_id);
	free(v->group);
	free(v);
}

void vmmtransport_reconfigure(struct vmmtransport *v, const struct conf *old, const struct conf *c,
			      void (*skipped)(void *userdata, const char *key), void *userdata)
{
	if (strcmp(old->vmm_socket, c->vmm_socket) != 0 && skipped)
		skipped(userdata, "[vmm] socket");
	if (set_group(v, c->vmm_group) < 0 && skipped)
		skipped(userdata, "[vmm] group (out of memory)");
	/* Connections above a lowered limit stay; new ones wait until the count is below. */
	v->max_clients = c->vmm_max_clients;
	v->hello_timeout_usec = c->vmm_hello_timeout_usec;
}

const struct vmmtransport_stats *vmmtransport_stats(const struct vmmtransport *v)
{
	return &v->stats;
}

const char *vmmtransport_path(const struct vmmtransport *v)
{
	return v->fd >= 0 ? v->path : "";
}

static void fill_vm(const struct vmm_conn *cn, struct vmmt_vm *ret)
{
	*ret = (struct vmmt_vm){.vm_id = cn->vm_id,
				.name = cn->name,
				.peer_uid = (uint32_t)cn->cred.uid,
				.peer_pid = (uint32_t)cn->cred.pid};
	memcpy(ret->uuid, cn->uuid, sizeof(ret->uuid));
}

int vmmtransport_vm(const struct vmmtransport *v, uint64_t vm_id, struct vmmt_vm *ret)
{
	const struct vmm_conn *cn = conn_by_id(v, vm_id);

	if (!cn)
		return -ENOENT;
	fill_vm(cn, ret);
	return 0;
}

int vmmtransport_vm_by_name(const struct vmmtransport *v, const char *name, struct vmmt_vm *ret)
{
	for (const struct vmm_conn *cn = v->conns; cn; cn = cn->next)
		if (cn->hello && !cn->closing && strcmp(cn->name, name) == 0) {
			fill_vm(cn, ret);
			return 0;
		}
	return -ENOENT;
}
