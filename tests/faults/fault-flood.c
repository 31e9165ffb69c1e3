/* SPDX-License-Identifier: Apache-2.0 */
/* fault-flood: hostile peers for the fault campaign: netlink datagrams from a foreign port
 * (random, truncated, oversized, near-valid) and hostile control-socket clients. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "nl.h"

/* Datagram sizes: up to four times the largest message the ABI produces. */
#define FLOOD_BUF_MAX (4 * SNPA_MSG_MAX)

struct flood_stats {
	unsigned long sent, refused, dropped;
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible with the seed, no quality needed. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void fill_random(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng_next(s);
}

/* A message that nl_build accepts, for a command the kernel sends to the daemon (or the
 * daemon to the kernel), with VM ids and request ids that a live fleet really uses. */
static int near_valid(uint64_t *s, uint8_t *buf, size_t size, uint32_t myport)
{
	struct snpa_msg m = {0};
	uint64_t vm = 1 + rng_next(s) % 64;

	switch (rng_next(s) % 6) {
	case 0:
		m.cmd = SNPA_CMD_VM_REMOVE;
		m.present = 1u << SNPA_A_VM_ID;
		m.vm_id = vm;
		break;
	case 1:
		m.cmd = SNPA_CMD_VM_ADD;
		m.present = (1u << SNPA_A_VM_ID) | (1u << SNPA_A_VMM_PID) | (1u << SNPA_A_ASID) |
			    (1u << SNPA_A_POLICY);
		m.vm_id = 100000 + rng_next(s) % 100000;
		m.vmm_pid = 1;
		m.asid = 1;
		m.policy = 0x30000;
		break;
	case 2:
		m.cmd = SNPA_CMD_GUEST_REQ;
		m.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VM_ID) |
			    (1u << SNPA_A_EXIT_CODE) | (1u << SNPA_A_MSG_SEQNO) |
			    (1u << SNPA_A_MSG_TYPE) | (1u << SNPA_A_MSG_VERSION) |
			    (1u << SNPA_A_MSG_VMPCK) | (1u << SNPA_A_MSG_SIZE);
		m.req_id = 1 + rng_next(s) % 100000;
		m.vm_id = vm;
		m.exit_code = SVM_VMGEXIT_GUEST_REQUEST;
		m.msg_seqno = 1 + 2 * (rng_next(s) % 1000);
		m.msg_type = 5; /* MSG_REPORT_REQ */
		m.msg_version = 1;
		m.msg_size = 96;
		break;
	case 3:
		m.cmd = SNPA_CMD_GUEST_DONE;
		m.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VM_ID) | (1u << SNPA_A_OUTCOME);
		m.req_id = 1 + rng_next(s) % 100000;
		m.vm_id = vm;
		m.outcome = SNPA_OUTCOME_EXPIRED;
		break;
	case 4:
		m.cmd = SNPA_CMD_VM_DUMP;
		m.present = 1u << SNPA_A_VM_COUNT;
		m.vm_count = 0;
		break;
	default:
		m.cmd = SNPA_CMD_REGISTER;
		m.present = (1u << SNPA_A_ABI_VERSION) | (1u << SNPA_A_FEATURES);
		m.abi_version = SNPA_ABI_VERSION;
		m.features = SNPA_F_CERT_TABLE;
		break;
	}
	return nl_build(buf, size, SNPA_USERSOCK_FAMILY, NLM_F_REQUEST, 0, myport, &m);
}

/* One hostile datagram: its length, built in buf. */
static size_t make_datagram(uint64_t *s, unsigned kind, uint8_t *buf, uint32_t myport)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	size_t len;
	int r;

	switch (kind % 6) {
	case 0: /* random bytes, random length */
		len = 1 + rng_next(s) % 512;
		fill_random(s, buf, len);
		return len;
	case 1: /* a near-valid message cut short */
		r = near_valid(s, buf, FLOOD_BUF_MAX, myport);
		if (r <= 1)
			return 16;
		return 1 + rng_next(s) % ((size_t)r - 1);
	case 2: /* a header claiming more than the datagram holds */
		r = near_valid(s, buf, FLOOD_BUF_MAX, myport);
		if (r < (int)sizeof(*nlh))
			return 16;
		nlh->nlmsg_len = (uint32_t)r + 4096;
		return (size_t)r;
	case 3: /* oversized: longer than any message of the ABI, random after a valid header */
		len = SNPA_MSG_MAX + 1 + rng_next(s) % (FLOOD_BUF_MAX - SNPA_MSG_MAX - 1);
		fill_random(s, buf, len);
		r = near_valid(s, buf, FLOOD_BUF_MAX, myport);
		if (r >= (int)sizeof(*nlh))
			nlh->nlmsg_len = (uint32_t)len;
		return len;
	case 4: /* near-valid with one attribute byte flipped */
		r = near_valid(s, buf, FLOOD_BUF_MAX, myport);
		if (r <= (int)NLMSG_HDRLEN + 4)
			return 16;
		buf[NLMSG_HDRLEN + 4 + rng_next(s) % ((size_t)r - NLMSG_HDRLEN - 4)] ^=
			(uint8_t)(1u << (rng_next(s) % 8));
		return (size_t)r;
	default: /* well-formed, but from the wrong sender */
		r = near_valid(s, buf, FLOOD_BUF_MAX, myport);
		return r > 0 ? (size_t)r : 16;
	}
}

static int flood_netlink(uint32_t port, unsigned long count, uint64_t seed)
{
	static uint8_t buf[FLOOD_BUF_MAX] __attribute__((aligned(4)));
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
	struct flood_stats st = {0};
	socklen_t sl = sizeof(me);
	uint64_t s = seed ? seed : 1;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&me, &sl) < 0) {
		perror("fault-flood: netlink socket");
		return 1;
	}
	for (unsigned long i = 0; i < count; i++) {
		size_t len = make_datagram(&s, (unsigned)i, buf, me.nl_pid);
		ssize_t n = sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));

		if (n >= 0) {
			st.sent++;
		} else if (errno == EAGAIN || errno == ENOBUFS) {
			/* The daemon's buffer is full: give it a moment, the flood goes on. */
			st.dropped++;
			usleep(200);
		} else if (errno == ECONNREFUSED) {
			st.refused++;
			usleep(1000);
		} else {
			perror("fault-flood: sendto");
			close(fd);
			return 1;
		}
		/* Drain whatever the daemon may answer (it should answer nothing). */
		while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	close(fd);
	printf("{\"sent\":%lu,\"dropped\":%lu,\"refused\":%lu,\"port\":%u}\n", st.sent, st.dropped,
	       st.refused, me.nl_pid);
	return 0;
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Writes what fits without blocking for long; a daemon that closed early is fine. */
static void ctl_send(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		ssize_t k;

		if (poll(&pf, 1, 2000) <= 0)
			return;
		k = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return;
		}
		b += k;
		n -= (size_t)k;
	}
}

/* Reads replies until EOF or a quiet second; returns the number of reply lines. */
static unsigned long ctl_drain(int fd)
{
	char buf[65536];
	unsigned long lines = 0;

	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t k;

		if (poll(&pf, 1, 1000) <= 0)
			return lines;
		k = recv(fd, buf, sizeof(buf), 0);
		if (k <= 0)
			return lines;
		for (ssize_t i = 0; i < k; i++)
			lines += buf[i] == '\n';
	}
}

static const char *const ctl_lines[] = {
	"{",
	"[]",
	"null",
	"{\"cmd\":\"status\",\"cmd\":\"status\"}",
	"{\"cmd\":\"no.such.command\"}",
	"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"0\"}",
	"{\"cmd\":\"quota.set\",\"vm\":-1,\"rate\":\"1\"}",
	"{\"cmd\":\"quota.set\",\"vm\":\"99999999999999999999999\",\"rate\":\"1\"}",
	"{\"cmd\":\"quota.set\",\"vm\":1,\"rate\":\"0.0001\",\"burst\":1}",
	"{\"cmd\":\"quota.get\",\"vm\":1,\"extra\":true}",
	"{\"cmd\":\"tcb.set\",\"tcb\":\"zz\"}",
	"{\"cmd\":\"vm.show\",\"vm\":18446744073709551615}",
	"{\"cmd\":\"status\",\"id\":\"\\u0000\\ud800\"}",
	"{\"cmd\":\"cert.import\",\"dir\":\"/nonexistent/\\n\"}",
	"{\"cmd\":\"vm.list\"}",
	"{\"cmd\":\"status\"}",
};

/* One hostile client; returns the reply lines it saw. */
static unsigned long ctl_client(const char *path, uint64_t *s, unsigned kind)
{
	static char big[70000];
	char line[512];
	unsigned long replies = 0;
	int fd = ctl_connect(path);

	if (fd < 0)
		return 0;
	switch (kind % 5) {
	case 0: { /* random bytes with newlines */
		size_t n = 1 + rng_next(s) % sizeof(line);
		fill_random(s, (uint8_t *)line, n);
		line[n - 1] = '\n';
		ctl_send(fd, line, n);
		break;
	}
	case 1: /* a line longer than the limit */
		memset(big, 'a', sizeof(big));
		big[0] = '{';
		big[sizeof(big) - 1] = '\n';
		ctl_send(fd, big, sizeof(big));
		break;
	case 2: /* half a request, then a close */
		ctl_send(fd, "{\"cmd\":\"quota.s", 15);
		close(fd);
		return 0;
	case 3: /* many pipelined requests, strict-parser edge cases */
		for (unsigned i = 0; i < 64; i++) {
			const char *l =
				ctl_lines[rng_next(s) % (sizeof(ctl_lines) / sizeof(ctl_lines[0]))];
			ctl_send(fd, l, strlen(l));
			ctl_send(fd, "\n", 1);
		}
		break;
	default: /* NUL bytes and a lone carriage return */
		ctl_send(fd, "{\"cmd\":\0\"status\"}\r\n\r\n\0\0\0\n", 26);
		break;
	}
	shutdown(fd, SHUT_WR);
	replies = ctl_drain(fd);
	close(fd);
	return replies;
}

static int flood_ctl(const char *path, unsigned long count, uint64_t seed)
{
	int held[300];
	unsigned nheld = 0;
	unsigned long replies = 0;
	uint64_t s = seed ? seed : 1;

	/* More connections than the daemon serves at once (256), held open for a moment. */
	for (unsigned i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
		int fd = ctl_connect(path);
		if (fd >= 0)
			held[nheld++] = fd;
	}
	/* The one past the limit is answered EBUSY and closed. */
	if (nheld > 0)
		replies += ctl_client(path, &s, 3);
	for (unsigned i = 0; i < nheld; i++)
		close(held[i]);
	for (unsigned long i = 0; i < count; i++)
		replies += ctl_client(path, &s, (unsigned)i);
	printf("{\"clients\":%lu,\"replies\":%lu,\"held\":%u}\n", count, replies, nheld);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long count;
	uint64_t seed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 5)
		goto usage;
	count = strtoul(argv[3], NULL, 10);
	seed = strtoull(argv[4], NULL, 10);
	if (strcmp(argv[1], "netlink") == 0) {
		char *end;
		unsigned long port = strtoul(argv[2], &end, 0);
		if (*end || port == 0 || port > UINT32_MAX)
			goto usage;
		return flood_netlink((uint32_t)port, count, seed);
	}
	if (strcmp(argv[1], "ctl") == 0)
		return flood_ctl(argv[2], count, seed);
usage:
	fprintf(stderr, "usage: fault-flood netlink DAEMON-PORT COUNT SEED\n"
			"       fault-flood ctl SOCKET COUNT SEED\n");
	return 2;
}
