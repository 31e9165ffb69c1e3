/* SPDX-License-Identifier: Apache-2.0 */
/* metrics: the HTTP endpoint of GET /metrics over libmicrohttpd, driven from the libev loop
 * (MHD's epoll fd is watched with an ev_io, its timeout with an ev_timer), and the module's
 * start, stop and reload. The text comes from metrics-render.c, built in memory and sent without
 * blocking; a render is reused for METRICS_RENDER_MIN_INTERVAL_USEC.
 * The listening socket is ours, not MHD's: we accept, apply the connection limits (total, per
 * peer address, evicting the oldest connection still waiting for its request headers) and the
 * per-request deadline, and hand the connection to MHD. (MHD in external epoll mode takes its
 * listening socket out of its epoll set at its connection limit and only puts it back inside a
 * later MHD_run; nothing woke the loop for that run once those connections had closed, so the
 * endpoint stopped accepting for good.) */
#include "metrics.h"
#include "metrics-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "listenfd.h"
#include "log.h"
/* The Prometheus text writer (proto/promtext.h). */
#include "../proto/promtext.h"
#include "util.h"

/* --- HTTP --- */

static enum MHD_Result reply(struct metrics *x, struct MHD_Connection *c, enum http_code_idx hc,
			     const char *body, size_t len, const char *type)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (hc == HC_405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	x->http[hc]++;
	r = MHD_queue_response(c, http_codes[hc], resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	static const char index_text[] = "snp-attestd: metrics at /metrics\n";
	static const char not_found[] = "not found\n";
	struct metrics *x = cls;
	const union MHD_ConnectionInfo *ci;
	uint64_t now;

	(void)version;
	(void)upload_data;
	/* The headers are complete: this connection is being answered, not waiting. */
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context)
		((struct metrics_conn *)ci->socket_context)->answering = true;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(x, c, HC_405, "method not allowed\n", 19, "text/plain");
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* a body on GET is ignored */
		return MHD_YES;
	}
	(void)con_cls;
	if (strcmp(url, "/") == 0)
		return reply(x, c, HC_200, index_text, sizeof(index_text) - 1, "text/plain");
	if (strcmp(url, "/metrics") != 0)
		return reply(x, c, HC_404, not_found, sizeof(not_found) - 1, "text/plain");

	now = manager_now_usec();
	if (!x->cache || now - x->cache_at >= METRICS_RENDER_MIN_INTERVAL_USEC) {
		char *text = NULL;
		size_t len = 0;
		if (render(x, &text, &len) < 0)
			return reply(x, c, HC_500, "render failed\n", 14, "text/plain");
		free(x->cache);
		x->cache = text;
		x->cache_len = len;
		x->cache_at = now;
	}
	return reply(x, c, HC_200, x->cache, x->cache_len, METRICS_CONTENT_TYPE);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	(void)cls;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(buf, sizeof(buf), fmt, ap);
#pragma GCC diagnostic pop
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("metrics http: %s", buf);
}

static void mhd_arm(struct metrics *x)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	ev_timer_stop(x->m->loop, &x->timer);
	if (MHD_get_timeout(x->mhd, &ms) == MHD_YES) {
		ev_timer_set(&x->timer, (double)ms / 1000.0, 0.);
		ev_timer_start(x->m->loop, &x->timer);
	}
}

/* Lets MHD do what it can now, and sets the timer to its next timeout. */
static void mhd_kick(struct metrics *x)
{
	if (!x->mhd)
		return;
	MHD_run(x->mhd);
	mhd_arm(x);
}

static void on_mhd_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics *x = container_of(w, struct metrics, io);

	(void)loop;
	(void)revents;
	mhd_kick(x);
}

static void on_mhd_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct metrics *x = container_of(w, struct metrics, timer);

	(void)loop;
	(void)revents;
	mhd_kick(x);
}

/* --- connections: limits and deadlines --- */

static ev_tstamp request_timeout(const struct metrics *x)
{
	return (ev_tstamp)x->m->conf.metrics_request_timeout_usec / 1e6;
}

/* Shuts the connection down under MHD: MHD sees the end of it and closes it (and tells us).
 * Its slot counts as free from now on. */
static void conn_doom(struct metrics_conn *k)
{
	if (k->doomed)
		return;
	k->doomed = true;
	k->x->n_conns--;
	ev_timer_stop(k->x->m->loop, &k->deadline);
	(void)shutdown(k->fd, SHUT_RDWR);
}

static void conn_arm(struct metrics_conn *k)
{
	struct ev_loop *loop = k->x->m->loop;

	ev_timer_stop(loop, &k->deadline);
	if (k->doomed)
		return;
	ev_timer_set(&k->deadline, MAX(k->since + request_timeout(k->x) - ev_now(loop), 0.), 0.);
	ev_timer_start(loop, &k->deadline);
}

/* The request (headers from the start, then the answer) did not complete in time. */
static void on_conn_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct metrics_conn *k = container_of(w, struct metrics_conn, deadline);
	struct metrics *x = k->x;

	(void)loop;
	(void)revents;
	x->conn_deadline++;
	log_debug("metrics http: closing a connection that did not complete its request in time");
	conn_doom(k);
	mhd_kick(x);
}

static void conn_free(struct metrics_conn *k)
{
	struct metrics *x = k->x;

	ev_timer_stop(x->m->loop, &k->deadline);
	if (!k->doomed)
		x->n_conns--;
	if (k->prev)
		k->prev->next = k->next;
	else
		x->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
}

static bool same_peer(const struct metrics_conn *a, const struct metrics_conn *b)
{
	if (a->peer.sa.sa_family != b->peer.sa.sa_family)
		return false;
	if (a->peer.sa.sa_family == AF_INET)
		return a->peer.in.sin_addr.s_addr == b->peer.in.sin_addr.s_addr;
	if (a->peer.sa.sa_family == AF_INET6)
		return memcmp(&a->peer.in6.sin6_addr, &b->peer.in6.sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return true; /* AF_UNIX (socket activation): one peer */
}

/* MHD tells when a connection starts and ends; ours is found by its socket. */
static void on_mhd_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct metrics *x = cls;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		for (struct metrics_conn *k = x->conns; ci && k; k = k->next)
			if (!k->mc && k->fd == ci->connect_fd) {
				k->mc = c;
				*socket_context = k;
				break;
			}
		return;
	}
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		conn_free(*socket_context);
		*socket_context = NULL;
	}
}

/* An answer went out (or failed): the connection waits for its next request, with a new
 * deadline. */
static void on_mhd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			     enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	struct metrics_conn *k;

	(void)cls;
	(void)con_cls;
	(void)toe;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	k = ci ? ci->socket_context : NULL;
	if (!k)
		return;
	k->answering = false;
	k->since = ev_now(k->x->m->loop);
	conn_arm(k);
}

/* Room for a connection from the peer of n: at most METRICS_MAX_CONNECTIONS in all and
 * METRICS_MAX_PER_PEER per peer address. When full, the connection that has waited longest for
 * its request headers (of that peer, or of anyone when the total is reached) makes room. Every
 * connection is offered to MHD as soon as it is accepted, and a scraper sends its request at
 * once, so slow, silent or dead connections are the ones that go. false: no room. */
static bool make_room(struct metrics *x, const struct metrics_conn *n)
{
	struct metrics_conn *victim = NULL;
	size_t same = 0;
	bool per_peer;

	for (struct metrics_conn *k = x->conns; k; k = k->next)
		if (!k->doomed && same_peer(k, n))
			same++;
	per_peer = same >= METRICS_MAX_PER_PEER;
	if (!per_peer && x->n_conns < METRICS_MAX_CONNECTIONS)
		return true;
	for (struct metrics_conn *k = x->conns; k; k = k->next) {
		if (k->doomed || k->answering)
			continue;
		if (per_peer && !same_peer(k, n))
			continue;
		if (!victim || k->since < victim->since)
			victim = k;
	}
	if (!victim)
		return false;
	x->conn_evicted++;
	log_debug("metrics http: closing the connection that waited longest for its request "
		  "to make room");
	conn_doom(victim);
	return true;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	struct metrics *x = container_of(w, struct metrics, accept_io);

	(void)revents;
	/* A bounded batch per wake-up: a connect storm cannot starve the loop. */
	for (int i = 0; i < 32 && x->mhd; i++) {
		struct metrics_conn *k = calloc(1, sizeof(*k));
		socklen_t len;
		int fd;

		if (!k)
			break;
		len = sizeof(k->peer);
		fd = accept4(x->listen_fd, &k->peer.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			free(k);
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(-errno, "metrics http: accept failed");
			break;
		}
		k->x = x;
		k->fd = fd;
		k->since = ev_now(loop);
		if (!make_room(x, k)) {
			x->conn_refused++;
			(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			free(k);
			continue;
		}
		ev_init(&k->deadline, on_conn_deadline);
		k->next = x->conns;
		if (x->conns)
			x->conns->prev = k;
		x->conns = k;
		x->n_conns++;
		conn_arm(k);
		/* MHD closes fd whatever the outcome; on failure our record was never claimed. */
		if (MHD_add_connection(x->mhd, fd, &k->peer.sa, len) != MHD_YES && !k->mc)
			conn_free(k);
		/* Reads the request if it is there (the connection is then no longer waiting) and
		 * closes connections whose peers left, before the next accept weighs them. */
		mhd_kick(x);
	}
}

/* The listening socket systemd passed with FileDescriptorName=metrics, or -ENOENT. */
static int activated_fd(void)
{
	int fd = listenfd_by_name("metrics");

	if (fd >= 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		log_error("The socket named \"metrics\" from systemd is not a listening stream "
			  "socket");
		return -ENOTSOCK;
	}
	return fd;
}

static int listen_on(const char *addr)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa = {0};
	socklen_t salen;
	int fd, one = 1;

	if (metrics_listen_split(addr, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
		sa.in.sin_family = AF_INET;
		sa.in.sin_port = htons(port);
		salen = sizeof(sa.in);
	} else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		sa.in6.sin6_port = htons(port);
		salen = sizeof(sa.in6);
	} else {
		return -EINVAL;
	}
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa.sa.sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &sa.sa, salen) < 0 || listen(fd, 16) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static void http_stop(struct metrics *x)
{
	if (!x->mhd)
		return;
	ev_io_stop(x->m->loop, &x->io);
	ev_io_stop(x->m->loop, &x->accept_io);
	ev_timer_stop(x->m->loop, &x->timer);
	MHD_stop_daemon(x->mhd); /* closes every connection, telling us */
	x->mhd = NULL;
	while (x->conns)
		conn_free(x->conns); /* any MHD did not report (none expected) */
	close(x->listen_fd);
	x->listen_fd = -1;
	free(x->listen);
	x->listen = NULL;
	x->activated = false;
}

/* Starts serving on the listening socket fd (taken over, closed on failure). MHD gets no
 * listening socket: on_accept hands it each connection. Its connection limit is above ours so
 * that it never refuses one we admitted (a doomed connection still holds an MHD slot briefly);
 * its idle timeout is a backstop to our per-request deadline. */
static int http_start(struct metrics *x, int fd)
{
	const union MHD_DaemonInfo *info;
	unsigned idle = (unsigned)((x->m->conf.metrics_request_timeout_usec + 999999) / 1000000);
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	x->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET, 0,
				  NULL, NULL, on_request, x, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
				  x, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)(2 * METRICS_MAX_CONNECTIONS),
				  MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_NOTIFY_CONNECTION,
				  on_mhd_connection, x, MHD_OPTION_NOTIFY_COMPLETED,
				  on_mhd_completed, x, MHD_OPTION_END);
	if (!x->mhd) {
		close(fd);
		return -EIO;
	}
	info = MHD_get_daemon_info(x->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		MHD_stop_daemon(x->mhd);
		x->mhd = NULL;
		close(fd);
		return -EIO;
	}
	x->listen_fd = fd;
	ev_io_init(&x->io, on_mhd_io, info->epoll_fd, EV_READ);
	ev_io_start(x->m->loop, &x->io);
	ev_io_init(&x->accept_io, on_accept, fd, EV_READ);
	ev_io_start(x->m->loop, &x->accept_io);
	ev_timer_init(&x->timer, on_mhd_timer, 0., 0.);
	mhd_arm(x);
	return 0;
}

/* Listens as configured: systemd's socket first, else conf metrics_listen ("" = off). A bind
 * failure is logged and the daemon runs without metrics (guests matter more); a malformed
 * address is a configuration error. */
static int http_configure(struct metrics *x)
{
	const char *addr = x->m->conf.metrics_listen ? x->m->conf.metrics_listen : "";
	int fd, r;

	fd = activated_fd();
	if (fd == -ENOTSOCK)
		return fd;
	if (fd >= 0) {
		r = http_start(x, fd);
		if (r < 0)
			return log_error_errno(r, "Cannot serve metrics on the systemd socket");
		x->activated = true;
		log_info("Metrics on the socket passed by systemd");
		return 0;
	}
	if (!*addr) {
		log_info("Metrics endpoint off ([metrics] listen is empty)");
		return 0;
	}
	fd = listen_on(addr);
	if (fd == -EINVAL)
		return log_error_errno(fd,
				       "Invalid [metrics] listen '%s': expected ADDRESS:PORT or "
				       "[IPV6]:PORT with a numeric address",
				       addr);
	if (fd < 0) {
		log_error_errno(fd, "Cannot listen for metrics on %s; running without metrics",
				addr);
		return 0;
	}
	r = http_start(x, fd);
	if (r < 0) {
		log_error_errno(r, "Cannot start the metrics HTTP server; running without metrics");
		return 0;
	}
	x->listen = strdup(addr);
	if (!x->listen) {
		http_stop(x);
		return -ENOMEM;
	}
	log_info("Metrics on http://%s/metrics", addr);
	return 0;
}

/* --- module --- */

static void metrics_stop(struct manager *m)
{
	struct metrics *x = m->metrics;

	if (!x)
		return;
	http_stop(x);
	metrics_vmset_done(&x->vmset);
	free(x->cache);
	free(x);
	m->metrics = NULL;
}

static int metrics_start(struct manager *m)
{
	struct metrics *x;
	int r;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->m = m;
	x->listen_fd = -1;
	m->metrics = x;
	r = metrics_vmset_init(&x->vmset, _VC_MAX, METRICS_MAX_VM_SERIES,
			       (uint64_t)time(NULL) ^ 0x6d657472u);
	if (r < 0) {
		metrics_stop(m);
		return r;
	}
	r = http_configure(x);
	if (r < 0) {
		metrics_stop(m);
		return r;
	}
	return 0;
}

static int metrics_reload(struct manager *m, const struct conf *old)
{
	struct metrics *x = m->metrics;
	const char *now_addr = m->conf.metrics_listen ? m->conf.metrics_listen : "";

	(void)old;
	if (!x || x->activated)
		return 0; /* systemd's socket is kept whatever the file says */
	if (x->listen && strcmp(x->listen, now_addr) == 0)
		return 0;
	if (*now_addr) {
		char host[INET6_ADDRSTRLEN];
		uint16_t port;
		if (metrics_listen_split(now_addr, host, sizeof(host), &port) < 0)
			return log_error_errno(
				-EINVAL,
				"Invalid [metrics] listen '%s'; keeping the current endpoint",
				now_addr);
	}
	http_stop(x);
	return http_configure(x);
}

const struct manager_module metrics_module = {
	.name = "metrics",
	.start = metrics_start,
	.stop = metrics_stop,
	.reload = metrics_reload,
};
