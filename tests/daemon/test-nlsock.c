/* SPDX-License-Identifier: Apache-2.0 */
/* The netlink transport against a stand-in kernel on NETLINK_USERSOCK: REGISTER/ACK, VM_DUMP
 * after registration, sender checks, malformed input, and the receive-overrun resync. An
 * overrun only happens when the kernel delivers to a full socket; a user-space sender cannot
 * cause one by unicast, so the test joins the daemon's socket to a multicast group and floods
 * that group (netlink marks the overflowing member with ENOBUFS exactly as for kernel traffic). */
#include "testutil.h"

#include <errno.h>
#include <ev.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "conf.h"
#include "nl.h"
#include "nlsock.h"
#include "util.h"

#define KPORT 0x5e7e5701u
#define GROUP 3

struct ctx {
	int registered, unregistered, resyncs, messages;
	struct snpa_msg last;
	struct nlsock *answer; /* if set: every VM_ADD is answered with an ALLOW VERDICT */
	uint32_t table_len;    /* ... carrying a certificate table this long (0: none) */
	int answer_failures;
};

static void on_message(void *u, const struct snpa_msg *m)
{
	static uint8_t table[16384];
	struct ctx *c = u;

	c->messages++;
	c->last = *m;
	if (c->answer && m->cmd == SNPA_CMD_VM_ADD) {
		struct snpa_msg v = {
			.cmd = SNPA_CMD_VERDICT,
			.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
			.req_id = m->vm_id,
			.verdict = SNPA_VERDICT_ALLOW,
		};
		if (c->table_len) {
			v.present |= 1u << SNPA_A_CERT_TABLE;
			v.cert_table = table;
			v.cert_table_len = c->table_len;
		}
		if (nlsock_send(c->answer, &v) < 0)
			c->answer_failures++;
	}
}
static void on_registered(void *u)
{
	((struct ctx *)u)->registered++;
}
static void on_unregistered(void *u, int r)
{
	(void)r;
	((struct ctx *)u)->unregistered++;
}
static void on_resync(void *u)
{
	((struct ctx *)u)->resyncs++;
}
static const struct nlsock_handler handler = {on_message, on_registered, on_unregistered,
					      on_resync};

static int kernel_socket(uint32_t port)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = port};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Receives one datagram (waits up to 2 s while running the loop). */
static ssize_t kernel_recv(struct ev_loop *loop, int fd, void *buf, size_t size, uint32_t *ret_from)
{
	struct sockaddr_nl from;
	socklen_t fl = sizeof(from);

	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ev_run(loop, EVRUN_NOWAIT);
		if (poll(&p, 1, 10) == 1) {
			ssize_t n = recvfrom(fd, buf, size, 0, (struct sockaddr *)&from, &fl);
			if (ret_from)
				*ret_from = from.nl_pid;
			return n;
		}
	}
	return -1;
}

static void kernel_send(int fd, uint32_t to, const void *buf, size_t len)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_pid = to};
	ck_assert_int_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)), (ssize_t)len);
}

static void pump(struct ev_loop *loop, int rounds)
{
	for (int i = 0; i < rounds; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* Registers a fresh transport with the stand-in kernel and swallows the VM_DUMP that follows. */
static struct nlsock *setup(struct ev_loop *loop, int kfd, struct ctx *c, uint32_t *ret_port)
{
	uint8_t buf[8192] __attribute__((aligned(4)));
	struct conf conf;
	struct nlsock *s;
	struct snpa_msg m;
	uint32_t from = 0;
	int len;
	ssize_t n;

	ck_assert_int_eq(conf_init_defaults(&conf), 0);
	conf.transport = CONF_TRANSPORT_USERSOCK;
	conf.usersock_port = KPORT;
	ck_assert_int_eq(nlsock_new(loop, &conf, &handler, c, &s), 0);
	conf_done(&conf);
	ck_assert_int_eq(nlsock_start(s), 0);
	n = kernel_recv(loop, kfd, buf, sizeof(buf), &from);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(nl_parse(buf, (size_t)n, SNPA_USERSOCK_FAMILY, &m), 0);
	ck_assert_uint_eq(m.cmd, SNPA_CMD_REGISTER);
	{
		uint8_t ack[256] __attribute__((aligned(4)));
		len = nl_build_ack(ack, sizeof(ack), (struct nlmsghdr *)buf, 0);
		ck_assert_int_gt(len, 0);
		kernel_send(kfd, from, ack, (size_t)len);
	}
	n = kernel_recv(loop, kfd, buf, sizeof(buf), NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(nl_parse(buf, (size_t)n, SNPA_USERSOCK_FAMILY, &m), 0);
	ck_assert_uint_eq(m.cmd, SNPA_CMD_VM_DUMP); /* replay asked for right after the ACK */
	ck_assert(nlsock_registered(s));
	ck_assert_int_eq(c->registered, 1);
	*ret_port = from;
	return s;
}

static int build_vm_add(uint8_t *buf, size_t size, uint64_t vm)
{
	struct snpa_msg m = {
		.cmd = SNPA_CMD_VM_ADD,
		.present = (1u << SNPA_A_VM_ID) | (1u << SNPA_A_VMM_PID) | (1u << SNPA_A_ASID) |
			   (1u << SNPA_A_POLICY),
		.vm_id = vm,
		.vmm_pid = 1,
		.asid = 1,
		.policy = 0x30000,
	};
	return nl_build(buf, size, SNPA_USERSOCK_FAMILY, 0, 1, KPORT, &m);
}

START_TEST(test_register_and_messages)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	uint8_t buf[4096] __attribute__((aligned(4)));
	struct ctx c = {0};
	int kfd = kernel_socket(KPORT), other = kernel_socket(0), len;
	uint32_t port;
	struct nlsock *s = setup(loop, kfd, &c, &port);

	len = build_vm_add(buf, sizeof(buf), 42);
	ck_assert_int_gt(len, 0);
	kernel_send(kfd, port, buf, (size_t)len);
	pump(loop, 50);
	ck_assert_int_eq(c.messages, 1);
	ck_assert_uint_eq(c.last.vm_id, 42);

	/* The same message from another port is dropped and counted. */
	kernel_send(other, port, buf, (size_t)len);
	pump(loop, 50);
	ck_assert_int_eq(c.messages, 1);
	ck_assert_uint_eq(nlsock_get_stats(s)->foreign_sender, 1);

	/* Malformed (truncated) input is counted, never delivered. */
	kernel_send(kfd, port, buf, (size_t)len - 4);
	pump(loop, 50);
	ck_assert_int_eq(c.messages, 1);
	ck_assert_uint_ge(nlsock_get_stats(s)->malformed, 1);

	nlsock_free(s);
	close(kfd);
	close(other);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_overrun_resyncs)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	uint8_t buf[4096] __attribute__((aligned(4)));
	struct sockaddr_nl grp = {.nl_family = AF_NETLINK, .nl_groups = 1u << (GROUP - 1)};
	struct ctx c = {0};
	int kfd = kernel_socket(KPORT), g = GROUP, small = 4096, len, sent = 0;
	uint32_t port;
	struct nlsock *s = setup(loop, kfd, &c, &port);
	struct snpa_msg m;
	ssize_t n;

	/* Let the daemon's socket overflow: tiny buffer, member of a group we flood. */
	ck_assert_int_eq(
		setsockopt(nlsock_fd(s), SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
	ck_assert_int_eq(
		setsockopt(nlsock_fd(s), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)), 0);
	len = build_vm_add(buf, sizeof(buf), 7);
	ck_assert_int_gt(len, 0);
	/* netlink delivers to the group, then also tries the (absent) kernel port 0 and reports
	 * ECONNREFUSED for that part: the broadcast has happened either way. */
	for (int i = 0; i < 200; i++)
		if (sendto(kfd, buf, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&grp,
			   sizeof(grp)) == len ||
		    errno == ECONNREFUSED)
			sent++;
	ck_assert_int_gt(sent, 0);
	/* The transport notices the overrun, resynchronises with VM_DUMP, keeps the role. */
	for (int i = 0; i < 100 && c.resyncs == 0; i++)
		pump(loop, 5);
	ck_assert_int_ge(c.resyncs, 1);
	ck_assert_uint_ge(nlsock_get_stats(s)->enobufs, 1);
	ck_assert(nlsock_registered(s));
	do {
		n = kernel_recv(loop, kfd, buf, sizeof(buf), NULL);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(nl_parse(buf, (size_t)n, SNPA_USERSOCK_FAMILY, &m), 0);
	} while (m.cmd != SNPA_CMD_VM_DUMP);
	ck_assert_uint_eq(m.cmd, SNPA_CMD_VM_DUMP);
	/* Messages that did fit were still delivered. */
	ck_assert_int_gt(c.messages, 0);

	nlsock_free(s);
	close(kfd);
	ev_loop_destroy(loop);
}
END_TEST

/* Sends `count` VM_ADDs in separate datagrams before the transport reads any, then collects
 * the verdicts: every one arrives, in order, and none is lost to the coalescing. Returns the
 * number of datagrams they came in. */
static int burst_and_collect(struct ev_loop *loop, int kfd, uint32_t port, int count,
			     size_t *ret_max_datagram)
{
	static uint8_t buf[65536] __attribute__((aligned(4)));
	int got = 0, datagrams = 0, len;

	*ret_max_datagram = 0;
	for (int i = 1; i <= count; i++) {
		len = build_vm_add(buf, sizeof(buf), (uint64_t)i);
		ck_assert_int_gt(len, 0);
		kernel_send(kfd, port, buf, (size_t)len);
	}
	while (got < count) {
		ssize_t n = kernel_recv(loop, kfd, buf, sizeof(buf), NULL);
		size_t off = 0;

		ck_assert_msg(n > 0, "verdict %d of %d never came", got + 1, count);
		datagrams++;
		if ((size_t)n > *ret_max_datagram)
			*ret_max_datagram = (size_t)n;
		while (off + sizeof(struct nlmsghdr) <= (size_t)n) {
			const struct nlmsghdr *h = (const struct nlmsghdr *)(buf + off);
			struct snpa_msg m;

			ck_assert_uint_le(off + h->nlmsg_len, (size_t)n);
			ck_assert_int_eq(nl_parse(h, h->nlmsg_len, SNPA_USERSOCK_FAMILY, &m), 0);
			ck_assert_uint_eq(m.cmd, SNPA_CMD_VERDICT);
			ck_assert_uint_eq(m.req_id, (uint64_t)++got); /* in order, none missing */
			off += NLMSG_ALIGN(h->nlmsg_len);
		}
		ck_assert_uint_eq(off, NLMSG_ALIGN((size_t)n));
	}
	return datagrams;
}

START_TEST(test_verdicts_coalesced)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct ctx c = {0};
	int kfd = kernel_socket(KPORT), datagrams;
	uint32_t port;
	struct nlsock *s = setup(loop, kfd, &c, &port);
	size_t biggest;

	c.answer = s;
	/* 20 requests waiting in the socket: one receive batch, one datagram of verdicts. */
	datagrams = burst_and_collect(loop, kfd, port, 20, &biggest);
	ck_assert_int_eq(c.answer_failures, 0);
	ck_assert_int_lt(datagrams, 20);
	ck_assert_uint_eq(nlsock_get_stats(s)->tx_msgs - nlsock_get_stats(s)->tx_datagrams,
			  (uint64_t)(20 - datagrams));

	/* Verdicts with 16 KiB tables: never more than the largest single message per datagram,
	 * so a kernel side with a one-message buffer still takes every one whole. */
	c.table_len = 16384;
	datagrams = burst_and_collect(loop, kfd, port, 12, &biggest);
	ck_assert_int_eq(c.answer_failures, 0);
	ck_assert_int_ge(datagrams, 12 / (SNPA_MSG_MAX / 16384));
	ck_assert_uint_le(biggest, SNPA_MSG_MAX);

	/* Outside a receive batch a verdict goes out at once, alone. */
	{
		uint64_t before = nlsock_get_stats(s)->tx_datagrams;
		struct snpa_msg v = {
			.cmd = SNPA_CMD_VERDICT,
			.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
			.req_id = 99,
			.verdict = SNPA_VERDICT_ALLOW,
		};
		ck_assert_int_eq(nlsock_send(s, &v), 0);
		ck_assert_uint_eq(nlsock_get_stats(s)->tx_datagrams, before + 1);
	}

	nlsock_free(s);
	close(kfd);
	ev_loop_destroy(loop);
}
END_TEST

/* The peer reads our REGISTERs late (a simulator still starting): the retry has sent a second
 * one when the first is granted, and requests follow that grant at once. The first grant is
 * the role: the requests are answered, and the late ACK of the retry changes nothing. */
START_TEST(test_late_ack_of_earlier_register)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	uint8_t reg1[512] __attribute__((aligned(4))), reg2[512] __attribute__((aligned(4)));
	uint8_t buf[4096] __attribute__((aligned(4)));
	struct ctx c = {0};
	int kfd = kernel_socket(KPORT), len;
	struct conf conf;
	struct nlsock *s;
	struct snpa_msg m;
	uint32_t port = 0;
	ssize_t n1, n2, n;

	ck_assert_int_eq(conf_init_defaults(&conf), 0);
	conf.transport = CONF_TRANSPORT_USERSOCK;
	conf.usersock_port = KPORT;
	ck_assert_int_eq(nlsock_new(loop, &conf, &handler, &c, &s), 0);
	conf_done(&conf);
	c.answer = s;
	ck_assert_int_eq(nlsock_start(s), 0);
	n1 = kernel_recv(loop, kfd, reg1, sizeof(reg1), &port);
	ck_assert_int_gt(n1, 0);
	/* No answer: the retry (every second) sends another REGISTER. */
	n2 = kernel_recv(loop, kfd, reg2, sizeof(reg2), NULL);
	ck_assert_int_gt(n2, 0);
	ck_assert_int_eq(nl_parse(reg2, (size_t)n2, SNPA_USERSOCK_FAMILY, &m), 0);
	ck_assert_uint_eq(m.cmd, SNPA_CMD_REGISTER);
	ck_assert_uint_ne(((struct nlmsghdr *)reg1)->nlmsg_seq,
			  ((struct nlmsghdr *)reg2)->nlmsg_seq);

	/* Grant the first, and a request right behind the grant. */
	len = nl_build_ack(buf, sizeof(buf), (struct nlmsghdr *)reg1, 0);
	ck_assert_int_gt(len, 0);
	kernel_send(kfd, port, buf, (size_t)len);
	len = build_vm_add(buf, sizeof(buf), 5);
	ck_assert_int_gt(len, 0);
	kernel_send(kfd, port, buf, (size_t)len);
	do {
		n = kernel_recv(loop, kfd, buf, sizeof(buf), NULL);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(nl_parse(buf, (size_t)n, SNPA_USERSOCK_FAMILY, &m), 0);
	} while (m.cmd == SNPA_CMD_VM_DUMP);
	ck_assert_uint_eq(m.cmd, SNPA_CMD_VERDICT);
	ck_assert_uint_eq(m.req_id, 5);
	ck_assert_int_eq(c.answer_failures, 0);
	ck_assert(nlsock_registered(s));

	/* The retry's ACK arrives late: still one registration, still registered. */
	len = nl_build_ack(buf, sizeof(buf), (struct nlmsghdr *)reg2, 0);
	ck_assert_int_gt(len, 0);
	kernel_send(kfd, port, buf, (size_t)len);
	pump(loop, 20);
	ck_assert(nlsock_registered(s));
	ck_assert_uint_eq(nlsock_get_stats(s)->registrations, 1);
	ck_assert_int_eq(c.registered, 1);

	nlsock_free(s);
	close(kfd);
	ev_loop_destroy(loop);
}
END_TEST

static Suite *nlsock_suite(void)
{
	Suite *s = suite_create("nlsock");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_register_and_messages);
	tcase_add_test(tc, test_overrun_resyncs);
	tcase_add_test(tc, test_verdicts_coalesced);
	tcase_add_test(tc, test_late_ack_of_earlier_register);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(nlsock_suite());
}
