/* SPDX-License-Identifier: Apache-2.0 */
/* bench-null: the leanest broker the transport allows; bench/run uses it (not
 * tests/kvmsim/null-broker) as the floor of the overhead and scale runs. Registers over
 * NETLINK_USERSOCK, drains datagrams as the daemon's nlsock does (recvmmsg of up to BN_BATCH
 * = 32, repeated while a batch comes back full, at most BN_ROUNDS = 8 times: up to 256
 * datagrams per wakeup) and answers every GUEST_REQ ALLOW with the same certificate table the
 * daemon serves, the verdicts of one batch in one datagram; no policy. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certtable.h"
#include "exitinfo.h"
#include "msg.h"
#include "nl.h"
#include "util.h"

#define BN_BATCH 32
#define BN_ROUNDS 8
#define BN_DGRAM_MAX (SNPA_MSG_MAX + 4096)
#define BN_TABLE_MAX (64 * 1024)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int send_msg(int fd, uint32_t port, const struct snpa_msg *m, uint16_t flags, uint32_t seq)
{
	static uint8_t buf[SNPA_MSG_MAX] __attribute__((aligned(4)));
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
	int len = nl_build(buf, sizeof(buf), SNPA_USERSOCK_FAMILY, flags, seq, 0, m);

	if (len < 0)
		return len;
	if (sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* The GHCB table from a file (e.g. the daemon's vmm_certs_file), checked before use. */
static int load_table(const char *path, uint8_t **ret, size_t *ret_len)
{
	struct certtable_entry e[8];
	uint8_t *buf;
	size_t len, n_e;
	FILE *f;
	int r;

	f = fopen(path, "rbe");
	if (!f)
		return -errno;
	buf = malloc(BN_TABLE_MAX);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, BN_TABLE_MAX, f);
	r = ferror(f) ? -EIO : (len == BN_TABLE_MAX ? -EFBIG : 0);
	fclose(f);
	if (r >= 0)
		r = certtable_parse(buf, len, e, ELEMENTSOF(e), &n_e);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

struct bn_stats {
	unsigned long long guest_reqs, allow, invalid_len, done, malformed;
};

/* Verdicts answering one receive batch share one datagram, as the daemon sends them. */
static uint8_t txq[SNPA_MSG_MAX] __attribute__((aligned(4)));
static size_t txq_len;

static void txq_flush(int fd, uint32_t port)
{
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};

	if (txq_len)
		(void)sendto(fd, txq, txq_len, 0, (struct sockaddr *)&to, sizeof(to));
	txq_len = 0;
}

static void txq_add(int fd, uint32_t port, const struct snpa_msg *m, uint32_t seq)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int len = nl_build(txq + txq_len, sizeof(txq) - txq_len, SNPA_USERSOCK_FAMILY,
				   NLM_F_REQUEST, seq, 0, m);
		if (len >= 0) {
			txq_len += NLMSG_ALIGN((size_t)len);
			return;
		}
		if (len != -ENOSPC || txq_len == 0)
			return;
		txq_flush(fd, port); /* full: send what is queued, then this one alone */
	}
}

static void handle(int fd, uint32_t port, uint32_t *seq, const struct snpa_msg *m,
		   const uint8_t *table, size_t table_len, struct bn_stats *st)
{
	struct snpa_msg vd = {
		.cmd = SNPA_CMD_VERDICT,
		.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
		.req_id = m->req_id,
		.verdict = SNPA_VERDICT_ALLOW,
	};
	bool ext_report =
		m->exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST && m->msg_type == MSG_REPORT_REQ;

	if (m->cmd == SNPA_CMD_GUEST_DONE)
		st->done++;
	if (m->cmd != SNPA_CMD_GUEST_REQ)
		return;
	st->guest_reqs++;
	if (ext_report && table && m->data_npages < certtable_npages(table_len)) {
		vd.verdict = SNPA_VERDICT_ANSWER;
		vd.present |= (1u << SNPA_A_EXITINFO2) | (1u << SNPA_A_NPAGES);
		vd.exitinfo2 = EXITINFO2_INVALID_LEN;
		vd.npages = (uint32_t)certtable_npages(table_len);
		st->invalid_len++;
	} else {
		if (ext_report && table) {
			vd.present |= 1u << SNPA_A_CERT_TABLE;
			vd.cert_table = table;
			vd.cert_table_len = (uint32_t)table_len;
		}
		st->allow++;
	}
	txq_add(fd, port, &vd, ++*seq);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"table", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static uint8_t rx[BN_BATCH][BN_DGRAM_MAX] __attribute__((aligned(4)));
	struct mmsghdr msgs[BN_BATCH];
	struct iovec iov[BN_BATCH];
	struct sockaddr_nl from[BN_BATCH];
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	uint32_t port = SNPA_USERSOCK_KERNEL_PORT, seq = 0, reg_seq = 0;
	uint8_t *table = NULL;
	size_t table_len = 0;
	struct bn_stats st = {0};
	bool registered = false;
	time_t t_reg = 0;
	uint64_t v;
	int fd, c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > UINT32_MAX) {
				fprintf(stderr, "bench-null: bad --port\n");
				return 2;
			}
			port = (uint32_t)v;
			break;
		case 't':
			r = load_table(optarg, &table, &table_len);
			if (r < 0) {
				fprintf(stderr, "bench-null: table '%s': %s\n", optarg,
					snp_strerror(r));
				return 1;
			}
			break;
		case 'h':
			printf("Usage: bench-null [--port N] [--table GHCB-TABLE-FILE]\n"
			       "Answers every GUEST_REQ ALLOW at once until SIGTERM; prints "
			       "counters\n"
			       "as JSON on exit.\n");
			return 0;
		default:
			return 2;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bench-null: netlink socket");
		free(table);
		return 1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){8 << 20}, sizeof(int));

	while (!stop) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n;

		if (!registered && time(NULL) != t_reg) {
			struct snpa_msg m = {
				.cmd = SNPA_CMD_REGISTER,
				.present = (1u << SNPA_A_ABI_VERSION) | (1u << SNPA_A_FEATURES),
				.abi_version = SNPA_ABI_VERSION,
				.features = table ? SNPA_F_CERT_TABLE : 0,
			};
			t_reg = time(NULL);
			reg_seq = ++seq;
			(void)send_msg(fd, port, &m, NLM_F_REQUEST | NLM_F_ACK, reg_seq);
		}
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		/* Drain as the daemon does: up to BN_ROUNDS batches per wakeup. */
		for (int round = 0; round < BN_ROUNDS; round++) {
			for (int i = 0; i < BN_BATCH; i++) {
				iov[i] = (struct iovec){.iov_base = rx[i], .iov_len = BN_DGRAM_MAX};
				msgs[i] =
					(struct mmsghdr){.msg_hdr = {.msg_name = &from[i],
								     .msg_namelen = sizeof(from[i]),
								     .msg_iov = &iov[i],
								     .msg_iovlen = 1}};
			}
			n = recvmmsg(fd, msgs, BN_BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				break;
			txq_len = 0;
			for (int i = 0; i < n; i++) {
				size_t len = msgs[i].msg_len;

				if (from[i].nl_pid != port)
					continue;
				for (size_t off = 0; off + sizeof(struct nlmsghdr) <= len;) {
					struct nlmsghdr *nlh = (struct nlmsghdr *)(rx[i] + off);
					size_t ml = nlh->nlmsg_len;
					struct snpa_msg m;
					uint32_t aseq;
					int err;

					if (ml < sizeof(*nlh) || ml > len - off)
						break;
					off += NLMSG_ALIGN(ml);
					if (nl_msg_class(nlh, ml, SNPA_USERSOCK_FAMILY) ==
					    NL_MSG_ACK) {
						if (nl_parse_ack(nlh, ml, &aseq, &err) == 0 &&
						    aseq == reg_seq && err == 0 && !registered) {
							struct snpa_msg d = {
								.cmd = SNPA_CMD_VM_DUMP};
							registered = true;
							(void)send_msg(fd, port, &d, NLM_F_REQUEST,
								       ++seq);
						}
						continue;
					}
					if (nl_parse(nlh, ml, SNPA_USERSOCK_FAMILY, &m) < 0) {
						st.malformed++;
						continue;
					}
					handle(fd, port, &seq, &m, table, table_len, &st);
				}
			}
			txq_flush(fd, port);
			if (n < BN_BATCH)
				break;
		}
	}
	printf("{\"guest_reqs\":%llu,\"allow\":%llu,\"invalid_len\":%llu,\"done\":%llu,"
	       "\"malformed\":%llu,\"table_bytes\":%zu}\n",
	       st.guest_reqs, st.allow, st.invalid_len, st.done, st.malformed, table_len);
	free(table);
	close(fd);
	return 0;
}
