/* SPDX-License-Identifier: Apache-2.0 */
/* libsnpattest: one handle per VM; asks snp-attestd over the VMM socket (docs/vmm-protocol.md)
 * and falls back to the OFD-locked certificate file, then to an empty table. Whatever happens,
 * the caller gets 0, ENOSPC or EAGAIN within its timeout: never EIO, which costs a Linux guest
 * its VMPCK. Only libc: the codec (proto/vmmproto.c, proto/certtable.c) is compiled in. */
#include "snpattest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "certtable.h"
#include "vmmproto.h"

#define PAGE 4096u
/* After this long of consecutive timeouts (the daemon accepts but does not answer), the
 * handle stops waiting for it and serves from the fallbacks: the guest must never see BUSY
 * for 60 s. The same window as the kernel's fail-open (design §3). */
#define HUNG_WINDOW_MS 10000
/* After the daemon refused us (ERROR), do not ask again for this long. */
#define REFUSED_BACKOFF_MS 1000
/* How often to look again at a certificate file an exclusive writer holds. */
#define FILE_POLL_MS 1

struct snpattest {
	pthread_mutex_t lock; /* one request at a time per VM */
	char *socket_path;    /* owned */
	char *certs_file;     /* owned; NULL: no file fallback */
	uint8_t uuid[16];
	char name[VMMPROTO_NAME_MAX + 1];
	int timeout_ms;

	int fd;	    /* the connection; -1 when none */
	bool acked; /* HELLO_ACK received */
	uint64_t next_req;
	uint64_t pending_req; /* CERTS sent, no answer read yet (0: none) */
	int64_t refused_until_ms;
	int64_t timeouts_since_ms; /* first of a run of timeouts; 0: none */

	/* The request that got 0 and is not done yet. */
	uint64_t allowed_req; /* by the daemon */
	int file_fd;	      /* holding the file's shared OFD lock; -1 when none */
	enum snpattest_source last;

	uint8_t rx[VMMPROTO_MSG_MAX];
	uint8_t tx[VMMPROTO_HDR_SIZE + 64 + VMMPROTO_NAME_MAX];
};

enum ask {
	ASK_ANSWERED,	 /* the daemon decided: *ret is the value for KVM */
	ASK_TIMEOUT,	 /* the daemon is there but did not answer in time */
	ASK_UNREACHABLE, /* no daemon (or a faulty one): use the fallbacks */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void disconnect(struct snpattest *h)
{
	if (h->fd >= 0)
		close(h->fd); /* the daemon frees an in-flight slot when the connection goes */
	h->fd = -1;
	h->acked = false;
	h->pending_req = 0;
	h->allowed_req = 0;
}

static int send_msg(struct snpattest *h, const struct vmmproto_msg *m)
{
	size_t len;

	if (vmmproto_build(m, h->tx, sizeof(h->tx), &len) < 0)
		return -EINVAL;
	for (;;) {
		ssize_t n = send(h->fd, h->tx, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

static void send_done(struct snpattest *h, uint64_t req_id, enum vmmproto_done_outcome o)
{
	struct vmmproto_msg m = {.type = VMMPROTO_DONE};

	m.done.req_id = req_id;
	m.done.outcome = o;
	/* If even this fails the connection is useless; closing it frees the slot as well. */
	if (send_msg(h, &m) < 0)
		disconnect(h);
}

static void try_connect(struct snpattest *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vmmproto_msg m = {.type = VMMPROTO_HELLO};
	int fd;

	if (h->fd >= 0 || !h->socket_path || now_ms() < h->refused_until_ms)
		return;
	if (strlen(h->socket_path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, h->socket_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	/* A Unix socket connects at once or fails (EAGAIN: the backlog is full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	h->fd = fd;
	memcpy(m.hello.uuid, h->uuid, 16);
	m.hello.vmm_pid = (uint32_t)getpid();
	memcpy(m.hello.name, h->name, sizeof(m.hello.name));
	if (send_msg(h, &m) < 0)
		disconnect(h);
}

/* One record from the daemon, waiting until deadline. 1 with *m, 0 on timeout, -errno when
 * the connection is unusable (closed, reset, or the daemon broke the protocol). */
static int recv_msg(struct snpattest *h, int64_t deadline, struct vmmproto_msg *m)
{
	for (;;) {
		struct pollfd p = {.fd = h->fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;
		int r;

		n = recv(h->fd, h->rx, sizeof(h->rx), MSG_DONTWAIT | MSG_TRUNC);
		if (n > 0) {
			if ((size_t)n > sizeof(h->rx))
				return -EMSGSIZE;
			r = vmmproto_parse(h->rx, (size_t)n, m, NULL);
			if (r < 0)
				return r;
			if (vmmproto_from_vmm(m->type) && m->type != VMMPROTO_ERROR)
				return -EBADMSG; /* a VMM-side message from the daemon */
			return 1;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Reads what the daemon sent that nobody waited for: a late HELLO_ACK, answers to requests
 * that timed out (a late ALLOW is handed back at once), an ERROR. Returns at once when nothing
 * is queued, except that while a CERTS is unanswered it waits for that answer until deadline.
 * 0, or -errno when the connection must go. */
static int drain(struct snpattest *h, int64_t deadline)
{
	struct vmmproto_msg m;
	int r;

	while (h->fd >= 0) {
		r = recv_msg(h, h->pending_req ? deadline : 0, &m);
		if (r <= 0)
			return r;
		switch (m.type) {
		case VMMPROTO_HELLO_ACK:
			if (h->acked)
				return -EBADMSG;
			h->acked = true;
			break;
		case VMMPROTO_ALLOW:
			send_done(h, m.allow.req_id, VMMPROTO_DONE_ABANDONED);
			/* fall through */
		case VMMPROTO_BUSY:
		case VMMPROTO_ENOSPC:
			if (m.busy.req_id == h->pending_req) /* req_id: same offset in each */
				h->pending_req = 0;
			break;
		case VMMPROTO_ERROR:
			return -ECONNREFUSED;
		default:
			return -EBADMSG;
		}
	}
	return 0;
}

static void write_empty(void *buf, uint64_t npages)
{
	/* What KVM does without certificates: an empty table (the terminator alone). With no
	 * buffer pages there is nothing to write. */
	if (npages)
		memset(buf, 0, CERTTABLE_ENTRY_SIZE);
}

static bool table_ok(const uint8_t *t, size_t len)
{
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
	size_t n;

	return certtable_parse(t, len, e, CERTTABLE_MAX_ENTRIES, &n) == 0;
}

static enum ask ask_daemon(struct snpattest *h, void *buf, uint64_t *npages, int64_t deadline,
			   int *ret)
{
	struct vmmproto_msg m = {.type = VMMPROTO_CERTS};
	uint64_t id;
	int r;

	if (h->fd >= 0) {
		r = drain(h, deadline);
		if (r < 0) {
			/* Closed (a restarted daemon may be back already: reconnect now) or refused
			 * (ERROR: ask again only after a pause). */
			disconnect(h);
			if (r == -ECONNREFUSED)
				h->refused_until_ms = now_ms() + REFUSED_BACKOFF_MS;
		}
	}
	if (h->fd < 0)
		try_connect(h);
	if (h->fd < 0)
		return ASK_UNREACHABLE;
	if (h->pending_req)
		return ASK_TIMEOUT; /* the previous CERTS is still unanswered */

	id = ++h->next_req;
	m.certs.req_id = id;
	m.certs.npages = *npages > UINT32_MAX ? UINT32_MAX : (uint32_t)*npages;
	r = send_msg(h, &m);
	if (r == -EAGAIN)
		return ASK_TIMEOUT; /* the daemon does not read: its queue is full */
	if (r < 0) {
		/* The daemon went away since the last request (restart): one fresh try. */
		disconnect(h);
		try_connect(h);
		if (h->fd < 0 || send_msg(h, &m) < 0) {
			disconnect(h);
			return ASK_UNREACHABLE;
		}
	}
	h->pending_req = id;

	for (;;) {
		r = recv_msg(h, deadline, &m);
		if (r == 0)
			return ASK_TIMEOUT;
		if (r < 0)
			goto fault;
		if (m.type == VMMPROTO_HELLO_ACK) {
			if (h->acked)
				goto fault;
			h->acked = true;
			continue;
		}
		if (m.type == VMMPROTO_ERROR)
			goto fault;
		if (!h->acked)
			goto fault; /* an answer before the HELLO was acknowledged */
		if (m.busy.req_id != id) {
			/* A late answer to an earlier request. */
			if (m.type == VMMPROTO_ALLOW)
				send_done(h, m.allow.req_id, VMMPROTO_DONE_ABANDONED);
			if (h->fd < 0)
				return ASK_UNREACHABLE;
			continue;
		}
		h->pending_req = 0;
		switch (m.type) {
		case VMMPROTO_BUSY:
			*ret = EAGAIN;
			return ASK_ANSWERED;
		case VMMPROTO_ENOSPC:
			*npages = m.enospc.npages;
			*ret = ENOSPC;
			return ASK_ANSWERED;
		case VMMPROTO_ALLOW:
			if (m.allow.table_len == 0) {
				write_empty(buf, *npages);
			} else if ((uint64_t)m.allow.table_len > *npages * PAGE) {
				/* A daemon bug; the guest learns the real size, the slot is freed.
				 */
				send_done(h, id, VMMPROTO_DONE_ABANDONED);
				*npages = certtable_npages(m.allow.table_len);
				*ret = ENOSPC;
				return ASK_ANSWERED;
			} else if (!table_ok(m.allow.table, m.allow.table_len)) {
				send_done(h, id, VMMPROTO_DONE_ABANDONED);
				goto fault;
			} else {
				memcpy(buf, m.allow.table, m.allow.table_len);
			}
			h->allowed_req = id;
			*ret = 0;
			return ASK_ANSWERED;
		default:
			goto fault;
		}
	}
fault:
	/* The daemon refused us or broke the protocol: it has no say in this request, and is
	 * asked again only after a pause. */
	disconnect(h);
	h->refused_until_ms = now_ms() + REFUSED_BACKOFF_MS;
	return ASK_UNREACHABLE;
}

/* The file fallback: the certificate file under a shared OFD lock, held until done. Returns
 * the value for KVM, or -1 when the file is unusable (missing, empty, not a table). */
static int from_file(struct snpattest *h, void *buf, uint64_t *npages, int64_t deadline)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	struct stat st;
	size_t len = 0;
	uint8_t *t;
	int fd;

	if (!h->certs_file)
		return -1;
	fd = open(h->certs_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto unusable;
	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EACCES)
			goto unusable;
		/* A rotation holds the exclusive lock: wait for it, but not past the deadline. */
		if (now_ms() >= deadline) {
			close(fd);
			return EAGAIN;
		}
		nanosleep(&(struct timespec){.tv_nsec = FILE_POLL_MS * 1000000L}, NULL);
	}
	/* The size under the lock: the writer may have changed it while we waited. */
	if (fstat(fd, &st) < 0 || st.st_size < CERTTABLE_ENTRY_SIZE ||
	    st.st_size > CERTTABLE_MAX_SIZE)
		goto unusable;
	t = malloc((size_t)st.st_size);
	if (!t)
		goto unusable;
	while (len < (size_t)st.st_size) {
		ssize_t n = pread(fd, t + len, (size_t)st.st_size - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len != (size_t)st.st_size || !table_ok(t, len)) {
		free(t);
		goto unusable;
	}
	if (len > *npages * PAGE) {
		free(t);
		close(fd);
		*npages = certtable_npages(len);
		return ENOSPC;
	}
	memcpy(buf, t, len);
	free(t);
	h->file_fd = fd; /* the shared lock stays until snpattest_done() */
	return 0;
unusable:
	close(fd);
	return -1;
}

static void finish(struct snpattest *h, enum vmmproto_done_outcome o)
{
	if (h->allowed_req && h->fd >= 0)
		send_done(h, h->allowed_req, o);
	h->allowed_req = 0;
	if (h->file_fd >= 0)
		close(h->file_fd); /* drops the OFD lock */
	h->file_fd = -1;
}

int snpattest_request_certs(struct snpattest *h, void *buf, uint64_t *npages, int timeout_ms)
{
	int64_t start, deadline;
	enum ask a;
	int ret = EAGAIN;

	if (!h || !npages || (!buf && *npages))
		return EAGAIN;
	/* Another vCPU of this VM is being decided: one request at a time per VM, the rest BUSY. */
	if (pthread_mutex_trylock(&h->lock) != 0)
		return EAGAIN;
	/* A request that got 0 and was never reported done: its KVM_RUN has long happened. */
	finish(h, VMMPROTO_DONE_FIRMWARE);
	start = now_ms();
	deadline = start + (timeout_ms < 0 ? h->timeout_ms : timeout_ms);
	h->last = SNPATTEST_SOURCE_NONE;

	a = ask_daemon(h, buf, npages, deadline, &ret);
	if (a == ASK_ANSWERED) {
		h->timeouts_since_ms = 0;
		h->last = SNPATTEST_SOURCE_DAEMON;
		goto out;
	}
	if (a == ASK_TIMEOUT) {
		if (!h->timeouts_since_ms)
			h->timeouts_since_ms = start;
		if (start - h->timeouts_since_ms < HUNG_WINDOW_MS) {
			ret = EAGAIN;
			goto out;
		}
		/* The daemon has not answered for the whole window: serve without it. */
		disconnect(h);
		h->refused_until_ms = now_ms() + REFUSED_BACKOFF_MS;
	}
	h->timeouts_since_ms = 0;
	ret = from_file(h, buf, npages, deadline);
	if (ret >= 0) {
		h->last = ret == EAGAIN ? SNPATTEST_SOURCE_NONE : SNPATTEST_SOURCE_FILE;
		goto out;
	}
	write_empty(buf, *npages);
	h->last = SNPATTEST_SOURCE_EMPTY;
	ret = 0;
out:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

void snpattest_done(struct snpattest *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	finish(h, VMMPROTO_DONE_FIRMWARE);
	pthread_mutex_unlock(&h->lock);
}

enum snpattest_source snpattest_last_source(const struct snpattest *h)
{
	return h ? h->last : SNPATTEST_SOURCE_NONE;
}

int snpattest_set_certs_file(struct snpattest *h, const char *path)
{
	char *p = NULL;

	if (!h)
		return -EINVAL;
	if (path && !(p = strdup(path)))
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	free(h->certs_file);
	h->certs_file = p;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int snpattest_set_timeout(struct snpattest *h, int timeout_ms)
{
	if (!h || timeout_ms <= 0)
		return -EINVAL;
	h->timeout_ms = timeout_ms;
	return 0;
}

int snpattest_open(const char *socket_path, const uint8_t *uuid, const char *name,
		   struct snpattest **ret)
{
	struct vmmproto_msg probe = {.type = VMMPROTO_HELLO};
	struct snpattest *h;
	uint8_t tmp[VMMPROTO_HDR_SIZE + 24 + VMMPROTO_NAME_MAX];
	size_t len;

	if (!ret || !name || strlen(name) > VMMPROTO_NAME_MAX)
		return -EINVAL;
	strcpy(probe.hello.name, name);
	if (vmmproto_build(&probe, tmp, sizeof(tmp), &len) < 0)
		return -EINVAL; /* the codec's name rules */
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	h->file_fd = -1;
	h->timeout_ms = SNPATTEST_DEFAULT_TIMEOUT_MS;
	h->socket_path = strdup(socket_path ? socket_path : SNPATTEST_DEFAULT_SOCKET);
	h->certs_file = strdup(SNPATTEST_DEFAULT_CERTS_FILE);
	if (!h->socket_path || !h->certs_file) {
		free(h->socket_path);
		free(h->certs_file);
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_init(&h->lock, NULL);
	if (uuid)
		memcpy(h->uuid, uuid, 16);
	strcpy(h->name, name);
	try_connect(h); /* HELLO now, so that the first request finds the ACK waiting */
	*ret = h;
	return 0;
}

void snpattest_close(struct snpattest *h)
{
	if (!h)
		return;
	finish(h, VMMPROTO_DONE_FIRMWARE);
	disconnect(h);
	free(h->socket_path);
	free(h->certs_file);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
