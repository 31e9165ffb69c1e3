/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-client: one request, one reply over the control socket; bounded in size and time. */
#include "ctl-client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

const char *ctl_client_default_socket(void)
{
	static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct conf c = { 0 };

	if (!path[0]) {
		if (conf_init_defaults(&c) == 0 && c.control_socket &&
		    strlen(c.control_socket) < sizeof(path))
			snprintf(path, sizeof(path), "%s", c.control_socket);
		else
			snprintf(path, sizeof(path), "/run/snp-attestd/control.sock");
		conf_done(&c);
	}
	return path;
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, CTL_CLIENT_TIMEOUT_MSEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int connect_socket(const char *path, int *ret, char *err, size_t err_size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, err_size, "socket path too long: %s", path);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, err_size, "cannot create a socket: %s", strerror(-r));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR)
			snprintf(err, err_size, "snp-attestd is not running (no socket at %s)", path);
		else if (r == -EACCES || r == -EPERM)
			snprintf(err, err_size, "permission denied (cannot connect to %s)", path);
		else
			snprintf(err, err_size, "cannot connect to %s: %s", path, strerror(-r));
		return r;
	}
	*ret = fd;
	return 0;
}

int ctl_client_call(const char *path, const struct ctl_request *q, json_t **ret_body, char *err,
		    size_t err_size)
{
	_cleanup_(closep) int fd = -1;
	_cleanup_(freep) char *line = NULL;
	struct strbuf in = { 0 };
	size_t off = 0, len;
	json_t *body = NULL;
	char msg[512];
	int r;

	err[0] = '\0';
	r = connect_socket(path, &fd, err, err_size);
	if (r < 0)
		return r;
	line = ctl_request_build(q);
	if (!line) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	len = strlen(line);
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			r = -errno;
			snprintf(err, err_size, "cannot send the request: %s", strerror(-r));
			return r;
		}
		off += (size_t)n;
	}

	/* One reply line; the daemon closes after refusing, which shows up as EOF. */
	for (;;) {
		char buf[65536], *nl;
		ssize_t n;

		r = wait_fd(fd, POLLIN);
		if (r < 0) {
			snprintf(err, err_size, "no reply from snp-attestd: %s", strerror(-r));
			strbuf_done(&in);
			return r;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			snprintf(err, err_size, "snp-attestd closed the connection without a reply");
			strbuf_done(&in);
			return r;
		}
		nl = memchr(buf, '\n', (size_t)n);
		if (in.len + (size_t)n > CTL_REPLY_MAX) {
			snprintf(err, err_size, "reply from snp-attestd is too long");
			strbuf_done(&in);
			return -EMSGSIZE;
		}
		/* strbuf_append stops at a NUL byte: a reply with one fails to parse below. */
		{
			char *tmp = strndup(buf, nl ? (size_t)(nl - buf) : (size_t)n);
			if (!tmp) {
				strbuf_done(&in);
				return -ENOMEM;
			}
			strbuf_append(&in, tmp);
			free(tmp);
		}
		if (strbuf_failed(&in)) {
			strbuf_done(&in);
			return -ENOMEM;
		}
		if (nl)
			break;
	}
	r = ctl_reply_parse(in.buf ? in.buf : "", in.len, &body, msg, sizeof(msg));
	strbuf_done(&in);
	if (r == -EACCES || r == -EPERM) {
		snprintf(err, err_size, "permission denied (%s)", msg);
		return r;
	}
	if (r < 0) {
		snprintf(err, err_size, "%s", msg);
		return r;
	}
	*ret_body = body;
	return 0;
}
