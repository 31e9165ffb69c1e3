/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-raw: helper of the control socket integration tests. Creates a simulation state, and talks
 * raw bytes to the control socket (malformed, oversized, stalled, trickling and flooding
 * clients) where snpctl would refuse to. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "state.h"
#include "tcb.h"

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("ctl-raw: connect");
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Everything the daemon answers until it closes (or until the reader's EOF). */
static void copy_replies(int fd)
{
	char buf[65536];
	ssize_t k;

	while ((k = recv(fd, buf, sizeof(buf), 0)) > 0)
		fwrite(buf, 1, (size_t)k, stdout);
}

int main(int argc, char **argv)
{
	int fd;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 4 && strcmp(argv[1], "mkstate") == 0) {
		enum snp_product p;
		struct sim_state *s = NULL;
		int r;

		if (snp_product_from_string(argv[3], &p) < 0)
			return 2;
		r = sim_state_open(argv[2], p, &s);
		if (r < 0) {
			fprintf(stderr, "ctl-raw: cannot create state: %s\n", strerror(-r));
			return 1;
		}
		sim_state_free(s);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "send") == 0) {
		/* stdin as is, then half-close and print the replies. */
		char *buf = malloc(1 << 20);
		size_t n = 0;
		size_t k;

		if (!buf)
			return 1;
		while ((k = fread(buf + n, 1, (1 << 20) - n, stdin)) > 0 && n < (1 << 20))
			n += k;
		fd = connect_to(argv[2]);
		if (fd < 0)
			return 1;
		/* The daemon may close early (oversized line): the replies are still readable. */
		(void)send_all(fd, buf, n);
		shutdown(fd, SHUT_WR);
		copy_replies(fd);
		free(buf);
		close(fd);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "stall") == 0) {
		/* Half a request, then silence for SECONDS: a client that never finishes. */
		static const char half[] = "{\"cmd\":\"sta";

		fd = connect_to(argv[2]);
		if (fd < 0 || send_all(fd, half, sizeof(half) - 1) < 0)
			return 1;
		printf("stalling\n");
		sleep((unsigned)atoi(argv[3]));
		close(fd);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "trickle") == 0) {
		/* One byte of a request line that never ends every MS milliseconds, at most MAX
		 * bytes: exit 0 when the daemon closes the connection first, 1 when it never did.
		 */
		int ms = atoi(argv[3]), max = atoi(argv[4]);

		fd = connect_to(argv[2]);
		if (fd < 0)
			return 2;
		for (int i = 0; i < max; i++) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			char c = i == 0 ? '{' : ' ';

			if (poll(&p, 1, ms) > 0) {
				char buf[4096];
				if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
					printf("closed by the daemon after %d bytes\n", i);
					return 0;
				}
			}
			if (send(fd, &c, 1, MSG_NOSIGNAL) < 0) {
				printf("closed by the daemon after %d bytes (send: %s)\n", i,
				       strerror(errno));
				return 0;
			}
		}
		printf("still open after %d bytes\n", max);
		return 1;
	}
	if (argc == 5 && strcmp(argv[1], "slowread") == 0) {
		/* status requests until the daemon stops taking them, then one byte of the replies
		 * every MS milliseconds, at most MAX times: exit 0 when the daemon hangs up first.
		 */
		static const char req[] = "{\"cmd\":\"status\"}\n";
		int ms = atoi(argv[3]), max = atoi(argv[4]);
		size_t sent = 0;

		fd = connect_to(argv[2]);
		if (fd < 0)
			return 2;
		while (sent < 100000 &&
		       send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
			sent++;
		for (int i = 0; i < max; i++) {
			/* No events asked: poll waits the whole MS unless the daemon hangs up. */
			struct pollfd p = {.fd = fd, .events = 0};
			char c;

			if (poll(&p, 1, ms) > 0 && (p.revents & (POLLHUP | POLLERR))) {
				printf("hung up by the daemon after %zu requests, %d bytes read\n",
				       sent, i);
				return 0;
			}
			if (recv(fd, &c, 1, MSG_DONTWAIT) == 0) {
				printf("closed by the daemon after %d bytes read\n", i);
				return 0;
			}
		}
		printf("still open after %d slow reads\n", max);
		return 1;
	}
	if (argc == 5 && strcmp(argv[1], "hold") == 0) {
		/* N connections that send nothing, held for SECONDS; prints "held" once every
		 * connect returned (accepted or refused: the daemon takes them in order). */
		int want = atoi(argv[3]);

		for (int i = 0; i < want; i++)
			if (connect_to(argv[2]) < 0)
				return 1;
		printf("held\n");
		sleep((unsigned)atoi(argv[4]));
		return 0;
	}
	fprintf(stderr, "usage: ctl-raw mkstate DIR PRODUCT | send SOCKET < DATA | "
			"stall SOCKET SECONDS | trickle SOCKET MS MAX | slowread SOCKET MS MAX | "
			"hold SOCKET N SECONDS\n");
	return 2;
}
