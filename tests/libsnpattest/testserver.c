/* SPDX-License-Identifier: Apache-2.0 */
/* testserver: the VMM-socket test server (see testserver.h). One poll loop on one thread. */
#include "testserver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "certtable.h"

static void conn_close(struct ts *s, size_t i)
{
	close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->n_conns];
}

static int send_msg(int fd, const struct vmmproto_msg *m)
{
	static __thread uint8_t buf[VMMPROTO_MSG_MAX];
	size_t len;

	if (vmmproto_build(m, buf, sizeof(buf), &len) < 0)
		return -EINVAL;
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}

static void send_error(struct ts *s, int fd, uint64_t req, enum vmmproto_error code)
{
	struct vmmproto_msg m = {.type = VMMPROTO_ERROR};

	m.error.req_id = req;
	m.error.code = code;
	(void)send_msg(fd, &m);
	s->c.errors_sent++;
}

/* The daemon's decision for one CERTS, in the modes that answer at once. */
static void answer(struct ts *s, struct ts_conn *c, uint64_t req, uint32_t npages)
{
	struct vmmproto_msg m;

	memset(&m, 0, sizeof(m));
	if (s->mode == TS_BUSY || c->inflight ||
	    (s->mode == TS_BUSY_EVERY && s->busy_every && s->c.certs % s->busy_every == 0)) {
		m.type = VMMPROTO_BUSY;
		m.busy.req_id = req;
		s->c.busys++;
	} else if (s->table_len > (size_t)npages * CERTTABLE_PAGE_SIZE) {
		m.type = VMMPROTO_ENOSPC;
		m.enospc.req_id = req;
		m.enospc.npages = (uint32_t)certtable_npages(s->table_len);
		s->c.enospcs++;
	} else {
		m.type = VMMPROTO_ALLOW;
		m.allow.req_id = req;
		m.allow.table = s->table;
		m.allow.table_len = (uint32_t)s->table_len;
		c->inflight = req;
		s->c.allows++;
	}
	(void)send_msg(c->fd, &m);
}

/* Returns false when the connection must be closed. */
static bool on_msg(struct ts *s, struct ts_conn *c, const uint8_t *buf, size_t len)
{
	static const uint8_t garbage[] = "not a message";
	struct vmmproto_msg m;
	uint16_t ver;
	int r = vmmproto_parse(buf, len, &m, &ver);

	if (r < 0 || !vmmproto_from_vmm(m.type)) {
		s->c.malformed++;
		send_error(s, c->fd, 0,
			   r == -EPROTONOSUPPORT ? VMMPROTO_E_VERSION : VMMPROTO_E_MALFORMED);
		return false;
	}
	switch (m.type) {
	case VMMPROTO_HELLO: {
		struct vmmproto_msg ack = {.type = VMMPROTO_HELLO_ACK};
		if (c->hello) {
			send_error(s, c->fd, 0, VMMPROTO_E_STATE);
			return false;
		}
		s->c.hellos++;
		memcpy(s->last_uuid, m.hello.uuid, 16);
		memcpy(s->last_name, m.hello.name, sizeof(s->last_name));
		s->last_pid = m.hello.vmm_pid;
		if (s->mode == TS_DENY) {
			send_error(s, c->fd, 0, VMMPROTO_E_DENIED);
			return false;
		}
		c->hello = true;
		ack.hello_ack.vm_id = s->c.hellos;
		(void)send_msg(c->fd, &ack);
		return true;
	}
	case VMMPROTO_CERTS:
		if (!c->hello || c->held) {
			send_error(s, c->fd, m.certs.req_id, VMMPROTO_E_STATE);
			return false;
		}
		s->c.certs++;
		if (s->mode == TS_HOLD) {
			c->held = m.certs.req_id;
			c->held_npages = m.certs.npages;
		} else if (s->mode == TS_GARBAGE) {
			(void)send(c->fd, garbage, sizeof(garbage), MSG_NOSIGNAL);
		} else {
			answer(s, c, m.certs.req_id, m.certs.npages);
		}
		return true;
	case VMMPROTO_DONE:
		if (!c->hello || c->inflight != m.done.req_id) {
			send_error(s, c->fd, m.done.req_id, VMMPROTO_E_UNKNOWN_REQ);
			return false;
		}
		c->inflight = 0;
		if (m.done.outcome == VMMPROTO_DONE_FIRMWARE)
			s->c.done_fw++;
		else
			s->c.done_abandoned++;
		return true;
	default:
		return false; /* ERROR from the client: it is going away */
	}
}

static void release_held(struct ts *s)
{
	for (size_t i = 0; i < s->n_conns; i++) {
		struct ts_conn *c = &s->conns[i];
		if (!c->held)
			continue;
		answer(s, c, c->held, c->held_npages);
		c->held = 0;
		s->c.released++;
	}
}

static void *ts_thread(void *arg)
{
	struct ts *s = arg;
	static __thread uint8_t buf[VMMPROTO_MSG_MAX + 1];

	for (;;) {
		struct pollfd p[TS_MAX_CONNS + 2];
		size_t n;

		pthread_mutex_lock(&s->mtx);
		if (s->stop) {
			pthread_mutex_unlock(&s->mtx);
			return NULL;
		}
		if (s->release) {
			s->release = false;
			release_held(s);
			pthread_cond_broadcast(&s->changed);
		}
		p[0] = (struct pollfd){.fd = s->ctl[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		for (size_t i = 0; i < s->n_conns; i++)
			p[2 + i] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
		n = 2 + s->n_conns;
		pthread_mutex_unlock(&s->mtx);

		if (poll(p, n, -1) < 0)
			continue;
		pthread_mutex_lock(&s->mtx);
		if (p[0].revents & POLLIN) {
			char b[64];
			(void)!read(s->ctl[0], b, sizeof(b));
		}
		if (p[1].revents & POLLIN) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && s->n_conns < TS_MAX_CONNS) {
				s->conns[s->n_conns++] = (struct ts_conn){.fd = fd};
				s->c.conns++;
			} else if (fd >= 0) {
				close(fd);
			}
		}
		/* Walk backwards: conn_close moves the last connection into the hole. */
		for (size_t i = n - 2; i-- > 0;) {
			ssize_t len;
			if (!(p[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			len = recv(s->conns[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (len < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (len <= 0 || !on_msg(s, &s->conns[i], buf, (size_t)len))
				conn_close(s, i);
		}
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->mtx);
	}
}

static void wake(struct ts *s)
{
	(void)!write(s->ctl[1], "x", 1);
}

int ts_start(struct ts *s, const char *path, enum ts_mode mode, const uint8_t *table,
	     size_t table_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int r;

	memset(s, 0, sizeof(*s));
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(s->path, path);
	strcpy(sa.sun_path, path);
	s->mode = mode;
	if (table_len) {
		s->table = malloc(table_len);
		if (!s->table)
			return -ENOMEM;
		memcpy(s->table, table, table_len);
		s->table_len = table_len;
	}
	unlink(path);
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(s->lfd, 128) < 0 || pipe(s->ctl) < 0) {
		r = -errno;
		if (s->lfd >= 0)
			close(s->lfd);
		free(s->table);
		return r;
	}
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->changed, NULL);
	r = -pthread_create(&s->thread, NULL, ts_thread, s);
	if (r < 0)
		return r;
	s->running = true;
	return 0;
}

void ts_stop(struct ts *s)
{
	if (!s->running)
		return;
	pthread_mutex_lock(&s->mtx);
	s->stop = true;
	pthread_mutex_unlock(&s->mtx);
	wake(s);
	pthread_join(s->thread, NULL);
	while (s->n_conns)
		conn_close(s, s->n_conns - 1);
	close(s->lfd);
	close(s->ctl[0]);
	close(s->ctl[1]);
	unlink(s->path);
	free(s->table);
	s->table = NULL;
	s->running = false;
}

void ts_set_mode(struct ts *s, enum ts_mode mode)
{
	pthread_mutex_lock(&s->mtx);
	s->mode = mode;
	pthread_mutex_unlock(&s->mtx);
}

void ts_release(struct ts *s)
{
	pthread_mutex_lock(&s->mtx);
	s->release = true;
	pthread_mutex_unlock(&s->mtx);
	wake(s);
}

struct ts_counts ts_counts(struct ts *s)
{
	struct ts_counts c;

	pthread_mutex_lock(&s->mtx);
	c = s->c;
	pthread_mutex_unlock(&s->mtx);
	return c;
}

void ts_wait(struct ts *s, size_t off, uint64_t value)
{
	pthread_mutex_lock(&s->mtx);
	for (;;) {
		uint64_t v;
		memcpy(&v, (const uint8_t *)&s->c + off, sizeof(v));
		if (v >= value)
			break;
		pthread_cond_wait(&s->changed, &s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
}
