/* SPDX-License-Identifier: Apache-2.0 */
/* nlsock: netlink socket, REGISTER/VM_DUMP handshake, batched receive, sender checks.
 * Every received byte is validated by proto/nl.c before anyone looks at it. */
#include "nlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include "exitinfo.h"
#include "log.h"
#include "manager.h"
#include "util.h"

#define NLSOCK_RCVBUF (8 * 1024 * 1024)
#define NLSOCK_SNDBUF (4 * 1024 * 1024)
#define NLSOCK_BATCH 32
#define NLSOCK_DGRAM_MAX 32768
/* Verdicts produced while one receive batch is handled are sent together, several netlink
 * messages in one datagram (the kernel's netlink_rcv_skb walks them all, as the simulator
 * does): one send per batch instead of one per verdict. Flushed after each batch, so a verdict
 * waits at most for the rest of its batch. A datagram never exceeds the largest single message
 * of the ABI, so a peer sized for one message of each kind takes it whole. */
#define NLSOCK_TXQ_MAX SNPA_MSG_MAX
#define NLSOCK_RETRY_SEC 1.0
/* The family lookup: the kernel answers within the request's sendmsg; these only bound it. */
#define NLSOCK_RESOLVE_TIMEOUT_MS 500
#define NLSOCK_RESOLVE_ROUNDS 4
/* A missing generic netlink family (a kernel without the broker interface, or kvm_amd not
 * loaded yet) is looked up again after 1 s, doubling up to this. */
#define NLSOCK_FAMILY_BACKOFF_MAX_SEC 30.0
/* NETLINK_USERSOCK has no notification when the peer (snp-kvmsim) exits: while registered we
 * send it a NOOP with NLM_F_ACK this often; a refused send says it is gone, an error ACK that
 * a new peer on the same port does not know us. */
#define NLSOCK_HEARTBEAT_SEC 1.0

struct nlsock {
	struct ev_loop *loop; /* borrowed */
	const struct nlsock_handler *h;
	void *userdata;
	enum conf_transport transport;
	uint32_t peer_port; /* 0 = kernel */
	uint16_t family;
	int fd;
	uint32_t seq;
	uint32_t register_seq;	     /* the latest REGISTER */
	uint32_t register_seq_first; /* the first REGISTER still unanswered (see on ACK) */
	uint32_t heartbeat_seq;
	bool registered;
	bool register_pending;
	bool peer_missing_logged;
	double family_backoff_sec; /* the next lookup of a missing family; 0 when found */
	int family_error;	   /* the last lookup's failure, to log a change of cause */
	ev_io io;
	ev_timer retry;
	ev_timer heartbeat;
	struct nlsock_stats stats;
	uint8_t (*rx)[NLSOCK_DGRAM_MAX]; /* owned: NLSOCK_BATCH buffers */
	uint8_t *txq;			 /* owned: NLSOCK_TXQ_MAX, verdicts of this batch */
	size_t txq_len;
	unsigned txq_n;
	bool coalesce;	  /* inside a receive batch: nlsock_send appends to txq */
	uint64_t rx_usec; /* receive time of the batch being handled, 0 outside one */
	uint8_t tx[SNPA_MSG_MAX] __attribute__((aligned(4)));
};

/* Resolves a generic netlink family name to its id with one CTRL_CMD_GETFAMILY on a socket
 * of its own. The kernel answers on the requester's port (nlmsg_pid = our port id, not 0), in
 * the same sendmsg call; the receives are still bounded (NLSOCK_RESOLVE_*) so the
 * event loop always gets control back, e.g. to act on SIGTERM. */
int nlsock_resolve_family(const char *name, uint16_t *ret_id)
{
	uint8_t buf[8192] __attribute__((aligned(4)));
	struct timeval tv = {.tv_usec = NLSOCK_RESOLVE_TIMEOUT_MS * 1000};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct nlattr *a;
	uint32_t seq = 1, port;
	uint16_t id = 0;
	bool have_id = false;
	int r;

	if (!name || !*name || strlen(name) >= GENL_NAMSIZ)
		return -EINVAL;
	nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	port = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	/* Until the ACK (or the error) that ends the answer to our request; a few datagrams at
	 * most (the answer, then the ACK). An interrupted wait gives up: the caller retries. */
	r = -ETIMEDOUT;
	for (int round = 0; round < NLSOCK_RESOLVE_ROUNDS; round++) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		int left;

		if (n < 0) {
			r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			goto out;
		}
		left = (int)n;
		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != port)
				continue; /* not the answer to this request */
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

				if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
					r = -EBADMSG;
				else if (e->error < 0)
					r = e->error; /* -ENOENT: no such family */
				else
					r = have_id ? 0 : -EBADMSG; /* ACK without an answer */
				goto done;
			}
			if (nlh->nlmsg_type != GENL_ID_CTRL ||
			    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
				continue;
			mnl_attr_for_each(a, nlh, sizeof(*g))
			{
				if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
				    mnl_attr_validate(a, MNL_TYPE_U16) == 0) {
					id = mnl_attr_get_u16(a);
					have_id = true;
				}
			}
		}
	}
	goto out;
done:
	if (r == 0)
		*ret_id = id;
out:
	mnl_socket_close(nl);
	return r;
}

static int open_socket(struct nlsock *s)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int proto = s->transport == CONF_TRANSPORT_GENL ? NETLINK_GENERIC : NETLINK_USERSOCK;
	int fd, v, r;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
	if (fd < 0)
		return -errno;
	v = NLSOCK_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	v = NLSOCK_SNDBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	v = 1;
	(void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, sizeof(v));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* One datagram carrying nmsgs netlink messages. */
static int send_datagram(struct nlsock *s, const void *buf, size_t len, unsigned nmsgs)
{
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = s->peer_port};
	ssize_t n;

	do
		n = sendto(s->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		s->stats.tx_errors += nmsgs;
		return -errno;
	}
	s->stats.tx_msgs += nmsgs;
	s->stats.tx_datagrams++;
	return 0;
}

static int send_raw(struct nlsock *s, const void *buf, size_t len)
{
	return send_datagram(s, buf, len, 1);
}

static void lose_role(struct nlsock *s, int reason)
{
	bool was = s->registered;

	s->registered = false;
	s->register_pending = false;
	if (!ev_is_active(&s->retry)) {
		ev_timer_set(&s->retry, NLSOCK_RETRY_SEC, NLSOCK_RETRY_SEC);
		ev_timer_start(s->loop, &s->retry);
	}
	if (was && s->h->on_unregistered)
		s->h->on_unregistered(s->userdata, reason);
}

/* A send found no peer (the kernel side or the broker role is gone): say so once, drop the
 * role and let the retry timer register again. True if r means that. */
static bool peer_gone(struct nlsock *s, int r)
{
	if (r != -ECONNREFUSED && r != -ENOENT)
		return false;
	if (!s->peer_missing_logged)
		log_warning("The %s peer is not there; retrying every %.0fs",
			    nlsock_transport_name(s), NLSOCK_RETRY_SEC);
	s->peer_missing_logged = true;
	lose_role(s, r);
	return true;
}

static int build_and_send(struct nlsock *s, const struct snpa_msg *m, uint16_t flags,
			  uint32_t *ret_seq)
{
	uint32_t seq = ++s->seq;
	int len, r;

	len = nl_build(s->tx, sizeof(s->tx), s->family, flags, seq, 0, m);
	if (len < 0) {
		s->stats.tx_errors++;
		return log_error_errno(len, "Cannot encode %s", nl_cmd_name(m->cmd));
	}
	r = send_raw(s, s->tx, (size_t)len);
	if (peer_gone(s, r))
		return r;
	if (r < 0)
		return log_warning_errno(r, "Failed to send %s", nl_cmd_name(m->cmd));
	if (ret_seq)
		*ret_seq = seq;
	return 0;
}

/* Sends the queued verdicts. A failure loses all of them, as separate sends would have: the
 * kernel answers BUSY on its own timeout and reports the expiry in GUEST_DONE. */
static void txq_flush(struct nlsock *s)
{
	unsigned n = s->txq_n;
	size_t len = s->txq_len;
	int r;

	if (n == 0)
		return;
	s->txq_len = 0;
	s->txq_n = 0;
	if (!s->registered) {
		s->stats.tx_errors += n;
		return;
	}
	r = send_datagram(s, s->txq, len, n);
	if (!peer_gone(s, r) && r < 0)
		log_warning_errno(r, "Failed to send %u verdicts", n);
}

/* The family lookup failed: say so clearly once (and again when the cause changes), count
 * it, and look again later with backoff. The retry timer keeps running; the daemon serves its
 * control socket and metrics meanwhile. */
static void family_missing(struct nlsock *s, int r)
{
	if (s->stats.family_missing++ == 0 || r != s->family_error) {
		if (r == -ENOENT)
			log_warning("Generic netlink family '%s' is missing: this kernel's KVM has "
				    "no SNP "
				    "guest request broker (the snp_attest patch series), or "
				    "kvm_amd is not "
				    "loaded. No guest request will reach this daemon; looking "
				    "again with "
				    "backoff (up to %.0fs)",
				    SNPA_GENL_NAME, NLSOCK_FAMILY_BACKOFF_MAX_SEC);
		else
			log_warning_errno(
				r,
				"Cannot look up generic netlink family '%s' (looking again "
				"with backoff, up to %.0fs)",
				SNPA_GENL_NAME, NLSOCK_FAMILY_BACKOFF_MAX_SEC);
	}
	s->family_error = r;
	s->family_backoff_sec = s->family_backoff_sec < NLSOCK_RETRY_SEC
					? NLSOCK_RETRY_SEC
					: s->family_backoff_sec * 2;
	if (s->family_backoff_sec > NLSOCK_FAMILY_BACKOFF_MAX_SEC)
		s->family_backoff_sec = NLSOCK_FAMILY_BACKOFF_MAX_SEC;
	ev_timer_stop(s->loop, &s->retry);
	ev_timer_set(&s->retry, s->family_backoff_sec, s->family_backoff_sec);
	ev_timer_start(s->loop, &s->retry);
}

static void send_register(struct nlsock *s)
{
	struct snpa_msg m = {
		.cmd = SNPA_CMD_REGISTER,
		.present = (1u << SNPA_A_ABI_VERSION) | (1u << SNPA_A_FEATURES),
		.abi_version = SNPA_ABI_VERSION,
		.features = SNPA_F_CERT_TABLE,
	};

	if (s->transport == CONF_TRANSPORT_GENL && s->family == 0) {
		uint16_t fam = 0;
		int r = nlsock_resolve_family(SNPA_GENL_NAME, &fam);
		if (r < 0) {
			family_missing(s, r);
			return;
		}
		if (s->stats.family_missing > 0)
			log_info("Generic netlink family '%s' found (id %u) after %" PRIu64
				 " failed lookups",
				 SNPA_GENL_NAME, fam, s->stats.family_missing);
		s->family = fam;
		if (s->family_backoff_sec > NLSOCK_RETRY_SEC) {
			ev_timer_stop(s->loop, &s->retry);
			ev_timer_set(&s->retry, NLSOCK_RETRY_SEC, NLSOCK_RETRY_SEC);
			ev_timer_start(s->loop, &s->retry);
		}
		s->family_backoff_sec = 0;
	}
	s->stats.register_attempts++;
	if (build_and_send(s, &m, NLM_F_REQUEST | NLM_F_ACK, &s->register_seq) == 0) {
		if (!s->register_pending)
			s->register_seq_first = s->register_seq;
		s->register_pending = true;
	}
}

/* An ACK answers one of the REGISTERs sent since the role was last lost or refused. The peer
 * may take a while to read them (a simulator starting up while our retries queue in its
 * socket): the first one it grants is the role, and requests can follow that ACK at once, so
 * waiting for the ACK of the latest retry would leave them unanswered. */
static bool register_seq_ours(const struct nlsock *s, uint32_t seq)
{
	return s->register_pending &&
	       seq - s->register_seq_first <= s->register_seq - s->register_seq_first;
}

static void send_dump(struct nlsock *s)
{
	struct snpa_msg m = {.cmd = SNPA_CMD_VM_DUMP};

	(void)build_and_send(s, &m, NLM_F_REQUEST, NULL);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nlsock *s = container_of(w, struct nlsock, retry);

	(void)loop;
	(void)revents;
	if (s->registered) {
		ev_timer_stop(s->loop, w);
		return;
	}
	send_register(s);
}

/* Best effort for a message nl_parse refused: if it is a GUEST_REQ whose REQ_ID can be read,
 * the vCPU is waiting on it, so answer BUSY (always safe for the guest) instead of letting it
 * wait for the kernel's timeout. */
static void answer_malformed(struct nlsock *s, const struct nlmsghdr *nlh)
{
	const struct genlmsghdr *g;
	const struct nlattr *a;
	uint64_t req_id = 0;
	int found = 0;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*g)))
		return;
	g = mnl_nlmsg_get_payload(nlh);
	if (g->cmd != SNPA_CMD_GUEST_REQ)
		return;
	mnl_attr_for_each(a, nlh, sizeof(*g))
	{
		if (!mnl_attr_ok(a, (int)((const char *)mnl_nlmsg_get_payload_tail(nlh) -
					  (const char *)a)))
			break;
		if (mnl_attr_get_type(a) == SNPA_A_REQ_ID &&
		    mnl_attr_get_payload_len(a) == sizeof(uint64_t)) {
			req_id = mnl_attr_get_u64(a);
			found++;
		}
	}
	if (found != 1 || !s->registered)
		return;
	struct snpa_msg v = nl_answer_msg(req_id, EXITINFO2_BUSY, 0);
	if (build_and_send(s, &v, NLM_F_REQUEST, NULL) == 0)
		s->stats.malformed_answered++;
}

static void handle_one(struct nlsock *s, const struct nlmsghdr *nlh, size_t len)
{
	struct snpa_msg m;
	const char *why = NULL;
	uint32_t seq;
	int cls, err, r;

	cls = nl_msg_class(nlh, len, s->family);
	if (cls < 0) {
		s->stats.malformed++;
		return;
	}
	switch (cls) {
	case NL_MSG_ACK:
		r = nl_parse_ack(nlh, len, &seq, &err);
		if (r < 0) {
			s->stats.malformed++;
			return;
		}
		if (register_seq_ours(s, seq) && (err == 0 || seq == s->register_seq)) {
			s->register_pending = false;
			if (err == 0) {
				s->registered = true;
				s->peer_missing_logged = false;
				s->stats.registrations++;
				ev_timer_stop(s->loop, &s->retry);
				log_info("Registered as the SNP attestation broker (%s)",
					 nlsock_transport_name(s));
				send_dump(s);
				if (s->h->on_registered)
					s->h->on_registered(s->userdata);
			} else {
				log_warning_errno(err, "Broker registration refused%s",
						  err == -EBUSY ? " (another broker is registered)"
								: "");
			}
		} else if (s->registered && seq == s->heartbeat_seq && err < 0) {
			/* The peer on this port does not know us (a restarted simulator). */
			log_warning("The %s peer no longer knows this broker; registering again",
				    nlsock_transport_name(s));
			lose_role(s, err);
			send_register(s);
		} else if (err < 0) {
			log_debug("The kernel refused message seq %u: %s", seq, strerror(-err));
		}
		return;
	case NL_MSG_OVERRUN:
		s->stats.enobufs++;
		if (s->registered) {
			send_dump(s);
			if (s->h->on_resync)
				s->h->on_resync(s->userdata);
		}
		return;
	case NL_MSG_SNPA:
		break;
	default:
		return;
	}
	r = nl_parse_reason(nlh, len, s->family, &m, &why);
	if (r < 0) {
		s->stats.malformed++;
		log_debug("Dropped malformed %s message: %s", SNPA_GENL_NAME, why ? why : "?");
		answer_malformed(s, nlh);
		return;
	}
	s->stats.rx_msgs++;
	if (s->h->on_message)
		s->h->on_message(s->userdata, &m);
}

static void handle_datagram(struct nlsock *s, uint8_t *buf, size_t len)
{
	while (len >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
		size_t msg_len = nlh->nlmsg_len, step;

		if (msg_len < sizeof(*nlh) || msg_len > len) {
			s->stats.malformed++;
			return;
		}
		handle_one(s, nlh, msg_len);
		step = NLMSG_ALIGN(msg_len);
		if (step >= len)
			return;
		buf += step;
		len -= step;
	}
	if (len > 0)
		s->stats.malformed++;
}

static void receive_batches(struct nlsock *s)
{
	struct mmsghdr msgs[NLSOCK_BATCH];
	struct iovec iov[NLSOCK_BATCH];
	struct sockaddr_nl from[NLSOCK_BATCH];
	int n;

	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < NLSOCK_BATCH; i++) {
			iov[i] = (struct iovec){.iov_base = s->rx[i], .iov_len = NLSOCK_DGRAM_MAX};
			msgs[i] = (struct mmsghdr){.msg_hdr = {
							   .msg_name = &from[i],
							   .msg_namelen = sizeof(from[i]),
							   .msg_iov = &iov[i],
							   .msg_iovlen = 1,
						   }};
		}
		n = recvmmsg(s->fd, msgs, NLSOCK_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* The kernel dropped messages for us: resynchronise. */
				s->stats.enobufs++;
				log_warning("Netlink receive buffer overrun; resynchronising with "
					    "VM_DUMP");
				if (s->registered) {
					send_dump(s);
					if (s->h->on_resync)
						s->h->on_resync(s->userdata);
				}
				continue;
			}
			if (errno != EAGAIN)
				log_warning_errno(-errno, "Netlink receive failed");
			return;
		}
		s->rx_usec = manager_now_usec();
		for (int i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_namelen != sizeof(struct sockaddr_nl) ||
			    from[i].nl_pid != s->peer_port ||
			    (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
				s->stats.foreign_sender += from[i].nl_pid != s->peer_port;
				s->stats.malformed += (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
				continue;
			}
			handle_datagram(s, s->rx[i], msgs[i].msg_len);
		}
		txq_flush(s);
		if (n < NLSOCK_BATCH)
			return;
	}
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct nlsock *s = container_of(w, struct nlsock, io);

	(void)loop;
	(void)revents;
	s->coalesce = s->txq != NULL;
	receive_batches(s);
	txq_flush(s);
	s->coalesce = false;
	s->rx_usec = 0;
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nlsock *s = container_of(w, struct nlsock, heartbeat);
	struct nlmsghdr nlh = {
		.nlmsg_len = sizeof(nlh),
		.nlmsg_type = NLMSG_NOOP,
		.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
	};
	int r;

	(void)loop;
	(void)revents;
	if (!s->registered)
		return;
	nlh.nlmsg_seq = s->heartbeat_seq = ++s->seq;
	r = send_raw(s, &nlh, sizeof(nlh));
	if (r == -ECONNREFUSED || r == -ENOENT) {
		log_warning("The %s peer went away; waiting for it to return",
			    nlsock_transport_name(s));
		s->peer_missing_logged = true;
		lose_role(s, r);
	}
}

int nlsock_new(struct ev_loop *loop, const struct conf *c, const struct nlsock_handler *h,
	       void *userdata, struct nlsock **ret)
{
	struct nlsock *s;
	int fd;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->rx = calloc(NLSOCK_BATCH, sizeof(*s->rx));
	s->txq = aligned_alloc(NLMSG_ALIGNTO, NLSOCK_TXQ_MAX);
	if (!s->rx || !s->txq) {
		free(s->rx);
		free(s->txq);
		free(s);
		return -ENOMEM;
	}
	s->loop = loop;
	s->h = h;
	s->userdata = userdata;
	s->transport = c->transport;
	if (c->transport == CONF_TRANSPORT_USERSOCK) {
		s->peer_port = c->usersock_port;
		s->family = SNPA_USERSOCK_FAMILY;
	}
	fd = open_socket(s);
	if (fd < 0) {
		free(s->rx);
		free(s->txq);
		free(s);
		return log_error_errno(fd, "Cannot open the netlink socket");
	}
	s->fd = fd;
	ev_io_init(&s->io, on_readable, fd, EV_READ);
	ev_timer_init(&s->retry, on_retry, 0., NLSOCK_RETRY_SEC);
	ev_timer_init(&s->heartbeat, on_heartbeat, NLSOCK_HEARTBEAT_SEC, NLSOCK_HEARTBEAT_SEC);
	*ret = s;
	return 0;
}

void nlsock_free(struct nlsock *s)
{
	if (!s)
		return;
	ev_io_stop(s->loop, &s->io);
	ev_timer_stop(s->loop, &s->retry);
	ev_timer_stop(s->loop, &s->heartbeat);
	if (s->fd >= 0)
		close(s->fd);
	free(s->rx);
	free(s->txq);
	free(s);
}

int nlsock_start(struct nlsock *s)
{
	ev_io_start(s->loop, &s->io);
	ev_timer_set(&s->retry, NLSOCK_RETRY_SEC, NLSOCK_RETRY_SEC);
	ev_timer_start(s->loop, &s->retry);
	send_register(s); /* after: a missing family sets the retry timer to its backoff */
	if (s->transport == CONF_TRANSPORT_USERSOCK)
		ev_timer_start(s->loop, &s->heartbeat);
	return 0;
}

int nlsock_send(struct nlsock *s, const struct snpa_msg *m)
{
	int len;

	if (!s->registered)
		return -ENOTCONN;
	if (!s->coalesce || m->cmd != SNPA_CMD_VERDICT)
		return build_and_send(s, m, NLM_F_REQUEST, NULL);
	for (int attempt = 0; attempt < 2; attempt++) {
		len = nl_build(s->txq + s->txq_len, NLSOCK_TXQ_MAX - s->txq_len, s->family,
			       NLM_F_REQUEST, s->seq + 1, 0, m);
		if (len != -ENOSPC || s->txq_n == 0)
			break;
		txq_flush(s); /* full: send what is queued, then this one into the empty queue */
	}
	if (len < 0) {
		s->stats.tx_errors++;
		return log_error_errno(len, "Cannot encode %s", nl_cmd_name(m->cmd));
	}
	s->seq++;
	s->txq_len += NLMSG_ALIGN((size_t)len);
	s->txq_n++;
	return 0;
}

bool nlsock_registered(const struct nlsock *s)
{
	return s->registered;
}

const struct nlsock_stats *nlsock_get_stats(const struct nlsock *s)
{
	return &s->stats;
}

uint64_t nlsock_rx_usec(const struct nlsock *s)
{
	return s ? s->rx_usec : 0;
}

int nlsock_fd(const struct nlsock *s)
{
	return s->fd;
}

const char *nlsock_transport_name(const struct nlsock *s)
{
	return s->transport == CONF_TRANSPORT_GENL ? "generic netlink" : "netlink usersock";
}
