/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-client: one request, one reply over the control socket; bounded in size and time. */
#include "ctl-client.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "conf.h"
#include "snpctl.h"
#include "util.h"

/* The daemon's configuration file (daemon/confload.h reads the same path and its drop-ins). */
#define CLIENT_CONF_PATH SYSCONFDIR "/snp-attestd.conf"

static struct {
	bool loaded;
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char admin_group[64];
	char readonly_group[64];
} settings;

/* Applies one file on top of c; a missing, unreadable or invalid file changes nothing: snpctl
 * only wants hints here, the daemon reports configuration errors. */
static void apply_file(struct conf *c, const char *path)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	_cleanup_(freep) char *text = NULL;
	char err[256];
	size_t len;

	if (snpctl_read_file(path, SNPCTL_MAX_FILE, &buf, &len) < 0 || memchr(buf, 0, len))
		return;
	text = strndup((const char *)buf, len);
	if (text)
		(void)conf_apply_string(c, text, path, err, sizeof(err));
}

static int conf_name_filter(const struct dirent *de)
{
	size_t l = strlen(de->d_name);

	return de->d_name[0] != '.' && l > 5 && strcmp(de->d_name + l - 5, ".conf") == 0;
}

static void load_settings(void)
{
	const char *path = getenv("SNPCTL_CONFIG"), *env_sock = getenv("SNPCTL_SOCKET");
	struct dirent **names = NULL;
	struct conf c = {0};
	char dir[PATH_MAX];
	int n;

	if (settings.loaded)
		return;
	settings.loaded = true;
	if (!path || !path[0])
		path = CLIENT_CONF_PATH;
	snprintf(settings.socket, sizeof(settings.socket), "/run/snp-attestd/control.sock");
	snprintf(settings.admin_group, sizeof(settings.admin_group), "snp-admin");
	snprintf(settings.readonly_group, sizeof(settings.readonly_group), "snp-monitor");
	if (conf_init_defaults(&c) == 0) {
		apply_file(&c, path);
		/* Drop-ins in lexical order, as the daemon reads them. */
		if (snprintf(dir, sizeof(dir), "%s.d", path) < (int)sizeof(dir)) {
			n = scandir(dir, &names, conf_name_filter, alphasort);
			for (int i = 0; i < n; i++) {
				char f[PATH_MAX];
				if (snprintf(f, sizeof(f), "%s/%s", dir, names[i]->d_name) <
				    (int)sizeof(f))
					apply_file(&c, f);
				free(names[i]);
			}
			free(names);
		}
		if (c.control_socket && strlen(c.control_socket) < sizeof(settings.socket))
			snprintf(settings.socket, sizeof(settings.socket), "%s", c.control_socket);
		if (c.admin_group && strlen(c.admin_group) < sizeof(settings.admin_group))
			snprintf(settings.admin_group, sizeof(settings.admin_group), "%s",
				 c.admin_group);
		if (c.readonly_group && strlen(c.readonly_group) < sizeof(settings.readonly_group))
			snprintf(settings.readonly_group, sizeof(settings.readonly_group), "%s",
				 c.readonly_group);
	}
	conf_done(&c);
	if (env_sock && env_sock[0] && strlen(env_sock) < sizeof(settings.socket))
		snprintf(settings.socket, sizeof(settings.socket), "%s", env_sock);
}

const char *ctl_client_default_socket(void)
{
	load_settings();
	return settings.socket;
}

const char *ctl_client_admin_group(void)
{
	load_settings();
	return settings.admin_group;
}

const char *ctl_client_readonly_group(void)
{
	load_settings();
	return settings.readonly_group;
}

/* "root or group snp-admin", "root or group snp-admin or snp-monitor", "root only". */
static void who_may(enum ctl_role need, char *buf, size_t size)
{
	const char *a = ctl_client_admin_group(), *ro = ctl_client_readonly_group();

	if (need == CTL_ROLE_ADMIN || !ro[0]) {
		if (a[0])
			snprintf(buf, size, "needs root or group %s", a);
		else
			snprintf(buf, size, "needs root");
	} else if (a[0])
		snprintf(buf, size, "needs root or group %s or %s", a, ro);
	else
		snprintf(buf, size, "needs root or group %s", ro);
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, CTL_CLIENT_TIMEOUT_MSEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int connect_socket(const char *path, int *ret, struct ctl_client_error *e)
{
	char who[160];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(e->msg, sizeof(e->msg), "socket path too long: %s", path);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(e->msg, sizeof(e->msg), "cannot create a socket: %s", strerror(-r));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		if (r == -ENOENT || r == -ENOTDIR) {
			e->unreachable = true;
			snprintf(e->msg, sizeof(e->msg),
				 "snp-attestd is not running (no socket at %s)", path);
		} else if (r == -ECONNREFUSED) {
			/* A socket file nobody listens on: the daemon died without removing it. */
			e->unreachable = true;
			snprintf(e->msg, sizeof(e->msg),
				 "snp-attestd is not running (nothing listens on %s)", path);
		} else if (r == -EACCES || r == -EPERM) {
			who_may(CTL_ROLE_READER, who, sizeof(who));
			snprintf(e->msg, sizeof(e->msg),
				 "permission denied: cannot connect to %s (%s)", path, who);
		} else {
			e->unreachable = true;
			snprintf(e->msg, sizeof(e->msg), "cannot connect to %s: %s", path,
				 strerror(-r));
		}
		return r;
	}
	*ret = fd;
	return 0;
}

int ctl_client_call(const char *path, const struct ctl_request *q, json_t **ret_body,
		    struct ctl_client_error *e)
{
	const size_t err_size = sizeof(e->msg);
	char *err = e->msg;
	char who[160];
	_cleanup_(closep) int fd = -1;
	_cleanup_(freep) char *line = NULL;
	struct strbuf in = {0};
	size_t off = 0, len;
	json_t *body = NULL;
	char msg[512];
	int r;

	err[0] = '\0';
	e->unreachable = false;
	r = connect_socket(path, &fd, e);
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
			snprintf(err, err_size,
				 "snp-attestd closed the connection without a reply");
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
		/* The daemon's role check: say who may, with this host's group names. */
		who_may(ctl_cmd_role(q->cmd), who, sizeof(who));
		snprintf(err, err_size, "permission denied: '%s' refused by snp-attestd (%s)",
			 ctl_cmd_name(q->cmd), who);
		return r;
	}
	if (r < 0) {
		snprintf(err, err_size, "%s", msg);
		return r;
	}
	*ret_body = body;
	return 0;
}

int snpctl_call(const char *cmd, const char *path, const struct ctl_request *q, json_t **ret_body)
{
	struct ctl_client_error e;
	int r;

	r = ctl_client_call(path, q, ret_body, &e);
	if (r < 0) {
		fprintf(stderr, "snpctl: %s: %s\n", cmd, e.msg);
		return e.unreachable ? SNPCTL_EXIT_UNREACHABLE : SNPCTL_EXIT_FAIL;
	}
	return SNPCTL_EXIT_OK;
}

int snpctl_print_reply_json(json_t *body)
{
	json_object_del(body, "ok");
	json_object_del(body, "id");
	return snpctl_json_print(body) < 0 ? SNPCTL_EXIT_FAIL : SNPCTL_EXIT_OK;
}
