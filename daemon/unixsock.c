/* SPDX-License-Identifier: Apache-2.0 */
/* unixsock: listening AF_UNIX sockets on a path (unixsock.h). */
#include "unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Refuses to steal the socket of a running daemon; removes a stale one. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, int type)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0 || errno == EAGAIN)
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int unixsock_listen(const char *path, int type, int backlog, const char **ret_what)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[sizeof(sa.sun_path)], *slash;
	int fd, r;

	*ret_what = "use the path";
	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/')
		return -EINVAL;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			*ret_what = "create the directory of";
			return -errno;
		}
	}
	r = clear_stale(path, &sa, type);
	if (r < 0)
		return r;
	*ret_what = "create a socket for";
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	*ret_what = "bind";
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_what = "listen on";
	if (chmod(path, 0666) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		close(fd);
		(void)unlink(path);
		return r;
	}
	return fd;
}
