/* SPDX-License-Identifier: Apache-2.0 */
/* vmm-raw: a scriptable VMM-socket client for tests/integration/vmm.sh, well-behaved or not.
 * Runs its steps in order on one connection and prints one line per answer:
 *   ACK VM_ID | ALLOW REQ TABLE_LEN | BUSY REQ | ENOSPC REQ NPAGES | ERROR CODE_NAME REQ |
 *   CLOSED | TIMEOUT | OTHER TYPE
 * Steps:
 *   hello UUID NAME      HELLO (answer printed)
 *   hello-v VERSION UUID NAME   HELLO with another protocol version in its header
 *   certs REQ NPAGES     CERTS (answer printed)
 *   certs-nowait REQ NPAGES     CERTS, answer not read
 *   done REQ [abandoned] DONE (no answer expected)
 *   hex BYTES            sends these bytes as one record
 *   read                 reads and prints one answer
 *   expect-close         reads until the daemon closes (prints what came, then CLOSED)
 *   wait-file PATH       waits until PATH exists (the test's go-ahead)
 *   hold                 waits until killed (keeps the connection open)
 * Or: flood SOCKET N    opens N connections without a word, prints "refused R open O" once
 *                       the daemon has answered every connection it refuses, then holds. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmmproto.h"

#define WAIT_MS 60000 /* generous: a busy machine */

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_msg(int fd, const struct vmmproto_msg *m)
{
	uint8_t buf[VMMPROTO_MSG_MAX];
	size_t len;

	if (vmmproto_build(m, buf, sizeof(buf), &len) < 0)
		return -1;
	return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Reads one record and prints it; 0 when a message was printed, 1 on close, -1 on timeout. */
static int read_one(int fd)
{
	uint8_t buf[VMMPROTO_MSG_MAX];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct vmmproto_msg m;
	ssize_t n;

	if (poll(&p, 1, WAIT_MS) <= 0) {
		printf("TIMEOUT\n");
		return -1;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		printf("CLOSED\n");
		return 1;
	}
	if (vmmproto_parse(buf, (size_t)n, &m, NULL) < 0) {
		printf("UNPARSABLE %zd\n", n);
		return 0;
	}
	switch (m.type) {
	case VMMPROTO_HELLO_ACK:
		printf("ACK %llu\n", (unsigned long long)m.hello_ack.vm_id);
		break;
	case VMMPROTO_ALLOW:
		printf("ALLOW %llu %u\n", (unsigned long long)m.allow.req_id, m.allow.table_len);
		break;
	case VMMPROTO_BUSY:
		printf("BUSY %llu\n", (unsigned long long)m.busy.req_id);
		break;
	case VMMPROTO_ENOSPC:
		printf("ENOSPC %llu %u\n", (unsigned long long)m.enospc.req_id, m.enospc.npages);
		break;
	case VMMPROTO_ERROR:
		printf("ERROR %s %llu\n", vmmproto_error_name(m.error.code),
		       (unsigned long long)m.error.req_id);
		break;
	default:
		printf("OTHER %s\n", vmmproto_type_name(m.type));
		break;
	}
	return 0;
}

static int hello(int fd, uint16_t version, const char *uuid, const char *name)
{
	struct vmmproto_msg m = { .type = VMMPROTO_HELLO };
	uint8_t buf[VMMPROTO_MSG_MAX];
	size_t len;

	if (vmmproto_uuid_parse(uuid, m.hello.uuid) < 0 || strlen(name) > VMMPROTO_NAME_MAX)
		return -1;
	m.hello.vmm_pid = (uint32_t)getpid();
	snprintf(m.hello.name, sizeof(m.hello.name), "%s", name);
	if (vmmproto_build(&m, buf, sizeof(buf), &len) < 0)
		return -1;
	buf[4] = (uint8_t)version; /* the header's little-endian version field */
	buf[5] = (uint8_t)(version >> 8);
	/* A refused peer may find the connection closed already: its ERROR is still to read. */
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len && errno != EPIPE &&
	    errno != ECONNRESET)
		return -1;
	return 0;
}

static int send_hex(int fd, const char *hex)
{
	uint8_t buf[VMMPROTO_MSG_MAX + 64];
	size_t n = 0;

	for (; hex[0] && hex[1] && n < sizeof(buf); hex += 2) {
		unsigned v;
		if (sscanf(hex, "%2x", &v) != 1)
			return -1;
		buf[n++] = (uint8_t)v;
	}
	return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int flood(const char *path, int n)
{
	int *fds = calloc((size_t)n, sizeof(int)), refused = 0, open_ = 0;

	if (!fds)
		return 1;
	for (int i = 0; i < n; i++)
		fds[i] = connect_to(path);
	/* Every connection the daemon refuses gets ERROR limit and is closed; the others stay
	 * silent until the HELLO timeout. The daemon accepts in order: once the last one (over
	 * the limit when n is) has its answer, every other one has been decided. */
	if (n > 0 && fds[n - 1] >= 0)
		(void)poll(&(struct pollfd){ .fd = fds[n - 1], .events = POLLIN }, 1, WAIT_MS);
	for (int i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };
		uint8_t buf[64];
		struct vmmproto_msg m;
		ssize_t k;
		if (fds[i] < 0) {
			refused++;
			continue;
		}
		if (poll(&p, 1, 0) <= 0) {
			open_++;
			continue;
		}
		k = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
		if (k > 0 && vmmproto_parse(buf, (size_t)k, &m, NULL) == 0 &&
		    m.type == VMMPROTO_ERROR && m.error.code == VMMPROTO_E_LIMIT)
			refused++;
		else
			open_++;
	}
	printf("refused %d open %d\n", refused, open_);
	fflush(stdout);
	pause();
	return 0;
}

int main(int argc, char **argv)
{
	int fd, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "flood") == 0)
		return flood(argv[2], atoi(argv[3]));
	if (argc < 2) {
		fprintf(stderr, "usage: vmm-raw SOCKET STEP... | vmm-raw flood SOCKET N\n");
		return 2;
	}
	fd = connect_to(argv[1]);
	if (fd < 0) {
		printf("CONNECT-FAILED %s\n", strerror(errno));
		return 1;
	}
	for (i = 2; i < argc; i++) {
		const char *s = argv[i];
		int r = 0;

		if (strcmp(s, "hello") == 0 && i + 2 < argc) {
			r = hello(fd, VMMPROTO_VERSION, argv[i + 1], argv[i + 2]);
			i += 2;
			if (r == 0)
				r = read_one(fd) < 0 ? -1 : 0;
		} else if (strcmp(s, "hello-v") == 0 && i + 3 < argc) {
			r = hello(fd, (uint16_t)atoi(argv[i + 1]), argv[i + 2], argv[i + 3]);
			i += 3;
			if (r == 0)
				r = read_one(fd) < 0 ? -1 : 0;
		} else if ((strcmp(s, "certs") == 0 || strcmp(s, "certs-nowait") == 0) &&
			   i + 2 < argc) {
			struct vmmproto_msg m = { .type = VMMPROTO_CERTS };
			m.certs.req_id = strtoull(argv[i + 1], NULL, 0);
			m.certs.npages = (uint32_t)strtoul(argv[i + 2], NULL, 0);
			i += 2;
			r = send_msg(fd, &m);
			if (r == 0 && strcmp(s, "certs") == 0)
				r = read_one(fd) < 0 ? -1 : 0;
		} else if (strcmp(s, "done") == 0 && i + 1 < argc) {
			struct vmmproto_msg m = { .type = VMMPROTO_DONE };
			m.done.req_id = strtoull(argv[++i], NULL, 0);
			if (i + 1 < argc && strcmp(argv[i + 1], "abandoned") == 0) {
				m.done.outcome = VMMPROTO_DONE_ABANDONED;
				i++;
			}
			r = send_msg(fd, &m);
		} else if (strcmp(s, "hex") == 0 && i + 1 < argc) {
			r = send_hex(fd, argv[++i]);
		} else if (strcmp(s, "read") == 0) {
			r = read_one(fd) < 0 ? -1 : 0;
		} else if (strcmp(s, "expect-close") == 0) {
			int k;
			while ((k = read_one(fd)) == 0)
				;
			r = k < 0 ? -1 : 0;
		} else if (strcmp(s, "wait-file") == 0 && i + 1 < argc) {
			/* Polled: the test creates the file when the step may go on. */
			while (access(argv[i + 1], F_OK) < 0)
				usleep(10000);
			i++;
		} else if (strcmp(s, "hold") == 0) {
			pause();
		} else {
			fprintf(stderr, "vmm-raw: bad step '%s'\n", s);
			return 2;
		}
		if (r < 0) {
			printf("STEP-FAILED %s\n", s);
			return 1;
		}
	}
	close(fd);
	return 0;
}
