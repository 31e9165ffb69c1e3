/* SPDX-License-Identifier: Apache-2.0 */
/* ctl: control socket connections. The listening socket (its own or systemd's), accepting and
 * slotting peers, SO_PEERCRED roles, per-client line framing capped at CTL_REQUEST_MAX, reply
 * buffering and per-request deadlines. What a request does is ctl-cmds.c's (dispatch) and
 * ctl-views.c's (the JSON of the read commands). Every socket is non-blocking; a client that
 * stalls only stalls itself. Deadlines are per request, not per byte ([control]
 * request_timeout), and slots are kept for administrators, so no number of unprivileged or slow
 * peers keeps root or the admin group out. */
#include "ctl.h"
#include "ctl-int.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "peercred.h"
#include "ratelimit.h"
#include "unixsock.h"
#include "util.h"

int ctl_get_stats(struct manager *m, struct ctl_stats *ret)
{
	const struct ctl *c = m->ctl;

	if (!c)
		return -ENOENT;
	*ret = (struct ctl_stats){.requests = c->requests,
				  .errors = c->errors,
				  .refused = c->refused,
				  .dropped = c->dropped,
				  .clients = c->n_clients};
	return 0;
}

/* --- authorisation --- */

static bool group_gid(const char *name, gid_t *ret)
{
	struct group *g;

	if (!name || !*name)
		return false;
	g = getgrnam(name);
	if (!g)
		return false;
	*ret = g->gr_gid;
	return true;
}

static bool in_groups(gid_t want, gid_t gid, const gid_t *groups, size_t n)
{
	if (gid == want)
		return true;
	for (size_t i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

enum ctl_role ctl_role_for(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
			   const char *admin_group, const char *readonly_group)
{
	gid_t g;

	if (uid == 0 || uid == geteuid())
		return CTL_ROLE_ADMIN;
	if (group_gid(admin_group, &g) && in_groups(g, gid, groups, n_groups))
		return CTL_ROLE_ADMIN;
	if (group_gid(readonly_group, &g) && in_groups(g, gid, groups, n_groups))
		return CTL_ROLE_READER;
	return CTL_ROLE_NONE;
}

/* The peer's credentials and role, from its groups at connect time (peercred.h). */
static enum ctl_role peer_role(struct ctl *c, int fd, uid_t *ret_uid, gid_t *ret_gid,
			       pid_t *ret_pid)
{
	struct peercred pc;
	gid_t *groups;
	enum ctl_role role;
	int n;

	if (peercred_get(fd, &pc) < 0)
		return CTL_ROLE_NONE;
	*ret_uid = pc.uid;
	*ret_gid = pc.gid;
	*ret_pid = pc.pid;
	groups = calloc(CTL_PEER_GROUPS_MAX, sizeof(gid_t));
	if (!groups)
		return CTL_ROLE_NONE;
	n = peercred_groups(fd, &pc, groups, CTL_PEER_GROUPS_MAX);
	role = ctl_role_for(pc.uid, pc.gid, groups, (size_t)n, c->m->conf.admin_group,
			    c->m->conf.readonly_group);
	free(groups);
	return role;
}

/* --- clients --- */

static void client_free(struct ctl_client *cl)
{
	struct ctl *c;

	if (!cl)
		return;
	c = cl->ctl;
	if (cl->op_pending && c->m->broker)
		broker_op_forget(c->m->broker, cl);
	json_decref(cl->op_id);
	ev_io_stop(c->m->loop, &cl->io);
	ev_timer_stop(c->m->loop, &cl->deadline);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;
	if (cl->role != CTL_ROLE_ADMIN)
		c->n_unprivileged--;
	if (cl->role == CTL_ROLE_NONE)
		c->n_norole--;
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	strbuf_done(&cl->out);
	free(cl);
}

static bool out_pending(const struct ctl_client *cl)
{
	return cl->out_off < cl->out.len;
}

void client_queue(struct ctl_client *cl, char *line)
{
	if (!out_pending(cl))
		cl->out_since = ev_now(cl->ctl->m->loop);
	if (!line) {
		/* Out of memory building a reply: the client cannot get a coherent answer. */
		cl->closing = true;
		return;
	}
	strbuf_append(&cl->out, line);
	free(line);
	if (strbuf_failed(&cl->out))
		cl->closing = true;
}

void client_error(struct ctl_client *cl, const json_t *id, int r, const char *msg)
{
	cl->ctl->errors++;
	client_queue(cl, ctl_reply_error(id, r, msg));
}

static void handle_line(struct ctl_client *cl, const char *line, size_t len)
{
	struct ctl_request q;
	struct ctl_parse_error err;
	int r;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return; /* blank lines are ignored (they restart no deadline) */
	cl->ctl->requests++;
	r = ctl_request_parse(line, len, &q, &err);
	if (r < 0) {
		log_debug("Control: bad request from uid %u: %s", (unsigned)cl->uid, err.msg);
		client_error(cl, err.id, r, err.msg);
		json_decref(err.id);
		if (cl->role == CTL_ROLE_NONE)
			cl->closing = true;
		return;
	}
	dispatch(cl, &q);
	ctl_request_done(&q);
}

/* Writes what it can; 0, or -errno when the client is gone. */
static int client_flush(struct ctl_client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.buf + cl->out_off, cl->out.len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -errno;
		}
		cl->out_off += (size_t)n;
	}
	strbuf_done(&cl->out);
	cl->out_off = 0;
	return 0;
}

static bool out_below_high_water(const struct ctl_client *cl)
{
	return cl->out.len - cl->out_off < CTL_OUT_HIGH_WATER;
}

/* Answers the complete lines of the input buffer, in order, while nothing holds them back (an
 * operation waiting for its reply, replies over the high water, a closing connection). After
 * the peer's half-close the rest of the buffer is one last request, answered in its turn like
 * any other: never before the requests in front of it. */
static void client_process(struct ctl_client *cl)
{
	size_t start = 0;

	while (!cl->closing && !cl->op_pending && out_below_high_water(cl) && start < cl->in_len) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		size_t end = nl ? (size_t)(nl - cl->in) : cl->in_len;

		if (!nl && !cl->eof)
			break;
		handle_line(cl, cl->in + start, end - start);
		start = nl ? end + 1 : end;
	}
	if (start > 0) {
		memmove(cl->in, cl->in + start, cl->in_len - start);
		cl->in_len -= start;
		/* What is left is a request begun no earlier than now. */
		cl->in_since = ev_now(cl->ctl->m->loop);
	}
	if (cl->closing)
		cl->in_len = 0; /* nothing after the last answer is read */
	if (!cl->closing && cl->in_len >= CTL_REQUEST_MAX && !memchr(cl->in, '\n', cl->in_len)) {
		client_error(cl, NULL, -EMSGSIZE, "request line longer than 65536 bytes");
		cl->closing = true;
		cl->in_len = 0;
	}
}

/* Is there a request that client_process would answer now? */
static bool client_can_process(const struct ctl_client *cl)
{
	return !cl->closing && !cl->op_pending && out_below_high_water(cl) && cl->in_len > 0 &&
	       (cl->eof || memchr(cl->in, '\n', cl->in_len));
}

static bool client_wants_read(const struct ctl_client *cl)
{
	return !cl->eof && !cl->closing && !cl->op_pending && out_below_high_water(cl) &&
	       cl->in_len < CTL_REQUEST_MAX;
}

/* Has the client nothing left to be answered? Then it is closed. */
static bool client_finished(const struct ctl_client *cl)
{
	if (cl->op_pending || out_pending(cl))
		return false;
	return cl->closing || (cl->eof && cl->in_len == 0);
}

/* When the client is dropped unless it makes progress: the unfinished request must complete
 * within request_timeout of its first byte, the queued replies must be taken within
 * request_timeout of being queued, and a client with nothing in flight is closed after
 * CTL_IDLE_TIMEOUT_SEC. A peer with no role gets request_timeout from connect for everything:
 * it has one question to ask. Partial progress restarts nothing. */
static ev_tstamp client_deadline(const struct ctl_client *cl)
{
	ev_tstamp req = (ev_tstamp)cl->ctl->m->conf.control_request_timeout_usec / 1e6;
	ev_tstamp d;

	if (cl->role == CTL_ROLE_NONE)
		return cl->accepted + req;
	d = cl->idle_since + MAX(CTL_IDLE_TIMEOUT_SEC, req);
	if (cl->in_len > 0 || out_pending(cl))
		d = INFINITY;
	if (cl->in_len > 0)
		d = MIN(d, cl->in_since + req);
	if (out_pending(cl))
		d = MIN(d, cl->out_since + req);
	return d;
}

static void client_arm(struct ctl_client *cl)
{
	struct ev_loop *loop = cl->ctl->m->loop;
	ev_tstamp now = ev_now(loop);

	ev_timer_stop(loop, &cl->deadline);
	if (cl->op_pending)
		return; /* the broker bounds the operation; the deadline starts again after it */
	ev_timer_set(&cl->deadline, MAX(client_deadline(cl) - now, 0.), 0.);
	ev_timer_start(loop, &cl->deadline);
}

/* Processes what can be, writes what can be written, sets the watchers to what the client needs
 * next, and frees it when it is done or gone. cl must not be used after this. */
void client_step(struct ctl_client *cl)
{
	struct ev_loop *loop = cl->ctl->m->loop;
	int events = 0;

	for (;;) {
		client_process(cl);
		if (client_flush(cl) < 0) {
			client_free(cl);
			return;
		}
		/* Lines held back by the high water go on once the flush brought it down. */
		if (!client_can_process(cl))
			break;
	}
	if (!cl->op_pending && !cl->in_len && !out_pending(cl))
		cl->idle_since = ev_now(loop);
	if (client_finished(cl)) {
		client_free(cl);
		return;
	}
	if (out_pending(cl))
		events |= EV_WRITE;
	if (client_wants_read(cl))
		events |= EV_READ;
	if (events != (cl->io.events & (EV_READ | EV_WRITE)) || !ev_is_active(&cl->io)) {
		ev_io_stop(loop, &cl->io);
		ev_io_set(&cl->io, cl->fd, events);
		if (events)
			ev_io_start(loop, &cl->io);
	}
	client_arm(cl);
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = container_of(w, struct ctl_client, io);

	(void)loop;
	if ((revents & EV_READ) && client_wants_read(cl)) {
		ssize_t n = recv(cl->fd, cl->in + cl->in_len, CTL_REQUEST_MAX - cl->in_len,
				 MSG_DONTWAIT);
		if (n == 0) {
			cl->eof = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_free(cl);
			return;
		} else if (n > 0) {
			if (cl->in_len == 0)
				cl->in_since = ev_now(loop);
			cl->in_len += (size_t)n;
		}
	}
	client_step(cl);
}

static void on_client_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *cl = container_of(w, struct ctl_client, deadline);

	(void)revents;
	if (cl->op_pending)
		return;
	if (client_deadline(cl) > ev_now(loop)) {
		client_arm(cl); /* progress was made since the timer was set */
		return;
	}
	log_debug("Control: dropping client uid %u (pid %d): %s", (unsigned)cl->uid, (int)cl->pid,
		  cl->in_len	    ? "request not completed in time"
		  : out_pending(cl) ? "replies not taken in time"
				    : "idle");
	cl->ctl->dropped++;
	client_free(cl);
}

static void refuse_busy(int fd, const char *why)
{
	char *line = ctl_reply_error(NULL, -EBUSY, why);

	if (line)
		(void)send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
	close(fd);
}

/* Whether a new peer with this role and uid gets a slot. Administrators may use every slot;
 * everyone else leaves CTL_CLIENTS_RESERVED of them free, no uid holds more than
 * CTL_CLIENTS_PER_UID, and peers with no role (they can only be told no) share
 * CTL_CLIENTS_NOROLE_MAX. NULL if admitted, else why not. */
static const char *admission_refusal(const struct ctl *c, enum ctl_role role, uid_t uid)
{
	size_t same_uid = 0;

	if (c->n_clients >= CTL_CLIENTS_MAX)
		return "too many control connections";
	if (role == CTL_ROLE_ADMIN)
		return NULL;
	if (c->n_unprivileged >= CTL_CLIENTS_MAX - CTL_CLIENTS_RESERVED)
		return "too many control connections (the rest are kept for administrators)";
	if (role == CTL_ROLE_NONE && c->n_norole >= CTL_CLIENTS_NOROLE_MAX)
		return "too many control connections from peers without a role";
	for (const struct ctl_client *cl = c->clients; cl; cl = cl->next)
		if (cl->uid == uid && cl->role != CTL_ROLE_ADMIN)
			same_uid++;
	if (same_uid >= CTL_CLIENTS_PER_UID)
		return "too many control connections from this user";
	return NULL;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl *c = container_of(w, struct ctl, accept_io);

	(void)revents;
	/* A bounded batch per wake-up: a connect storm cannot starve the rest of the loop. */
	for (int i = 0; i < 32; i++) {
		struct ctl_client *cl;
		const char *why;
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(-errno, "Control: accept failed");
			return;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl)
			cl->in = malloc(CTL_REQUEST_MAX);
		if (!cl || !cl->in) {
			if (cl)
				free(cl);
			refuse_busy(fd, "out of memory");
			continue;
		}
		cl->ctl = c;
		cl->fd = fd;
		cl->uid = (uid_t)-1;
		cl->gid = (gid_t)-1;
		cl->role = peer_role(c, fd, &cl->uid, &cl->gid, &cl->pid);
		why = admission_refusal(c, cl->role, cl->uid);
		if (why) {
			c->dropped++;
			if (ratelimit_pass(&c->refuse_log, manager_now_usec(), NULL))
				log_notice("Control: connection of uid %u (pid %d, role %s) "
					   "refused: %s",
					   (unsigned)cl->uid, (int)cl->pid, ctl_role_name(cl->role),
					   why);
			free(cl->in);
			free(cl);
			refuse_busy(fd, why);
			continue;
		}
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->n_clients++;
		if (cl->role != CTL_ROLE_ADMIN)
			c->n_unprivileged++;
		if (cl->role == CTL_ROLE_NONE)
			c->n_norole++;
		cl->accepted = cl->idle_since = ev_now(loop);
		ev_io_init(&cl->io, on_client_io, fd, EV_READ);
		ev_io_start(loop, &cl->io);
		ev_init(&cl->deadline, on_client_deadline);
		client_arm(cl);
		log_debug("Control: client uid %u pid %d role %s", (unsigned)cl->uid, (int)cl->pid,
			  ctl_role_name(cl->role));
	}
}

/* --- the listening socket --- */

static int activated_fd(void)
{
	int n = sd_listen_fds(0);

	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0)
			return fd;
	}
	return -ENOENT;
}

static int listen_on(struct ctl *c, const char *path)
{
	const char *what;
	int fd = unixsock_listen(path, SOCK_STREAM, 128, &what);

	if (fd == -EADDRINUSE)
		return log_error_errno(fd, "Another daemon is listening on %s", path);
	if (fd < 0)
		return log_error_errno(fd, "Cannot %s %s for the control socket", what, path);
	c->path = strdup(path);
	if (!c->path) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	c->fd = fd;
	return 0;
}

static void warn_groups(const struct conf *conf)
{
	gid_t g;

	if (conf->admin_group[0] && !group_gid(conf->admin_group, &g))
		log_warning("Control: admin group '%s' does not exist; only root may change things",
			    conf->admin_group);
	if (conf->readonly_group[0] && !group_gid(conf->readonly_group, &g))
		log_warning("Control: read-only group '%s' does not exist", conf->readonly_group);
}

static void ctl_stop(struct manager *m);

static int ctl_start(struct manager *m)
{
	struct ctl *c;
	int fd, r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->fd = -1;
	m->ctl = c;
	ratelimit_init(&c->refuse_log, 10 * 1000000ull, 10);
	fd = activated_fd();
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			r = log_error_errno(-errno, "Cannot use the socket passed by systemd");
			ctl_stop(m);
			return r;
		}
		c->fd = fd;
		c->activated = true;
		log_info("Control socket passed by systemd (fd %d)", fd);
	} else {
		r = listen_on(c, m->conf.control_socket);
		if (r < 0) {
			ctl_stop(m);
			return r;
		}
		log_info("Control socket listening on %s", c->path);
	}
	warn_groups(&m->conf);
	ev_io_init(&c->accept_io, on_accept, c->fd, EV_READ);
	ev_io_start(m->loop, &c->accept_io);
	return 0;
}

static void ctl_stop(struct manager *m)
{
	struct ctl *c = m->ctl;

	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	if (c->fd >= 0) {
		ev_io_stop(m->loop, &c->accept_io);
		close(c->fd);
	}
	if (c->path)
		unlink(c->path);
	free(c->path);
	free(c);
	m->ctl = NULL;
}

static int ctl_reload(struct manager *m, const struct conf *old)
{
	struct ctl *c = m->ctl;

	if (!c->activated && strcmp(old->control_socket, m->conf.control_socket) != 0)
		log_notice("Control socket stays at %s until restart (configured: %s)", c->path,
			   m->conf.control_socket);
	/* Roles are computed per connection from the current groups: nothing else to do. */
	warn_groups(&m->conf);
	return 0;
}

const struct manager_module ctl_module = {
	.name = "control",
	.start = ctl_start,
	.stop = ctl_stop,
	.reload = ctl_reload,
};
