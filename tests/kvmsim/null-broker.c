/* SPDX-License-Identifier: Apache-2.0 */
/* null-broker: a do-nothing snp_attest broker for snp-kvmsim tests (bench/run's floor is
 * bench/bench-null). REGISTERs over NETLINK_USERSOCK and answers every GUEST_REQ at once
 * (ALLOW, or BUSY / INVALID_LEN by option); no policy, no scheduling. */
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

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ca.h"
#include "certs.h"
#include "certtable.h"
#include "exitinfo.h"
#include "keys.h"
#include "msg.h"
#include "nl.h"
#include "state.h"
#include "util.h"

struct nb_stats {
	unsigned long long guest_reqs, allow, busy, invalid_len, invalid_len_plain, done_fw,
		done_fw_error, done_expired, done_no_fw, vm_add, vm_add_dump, vm_remove, dump_end,
		malformed, registrations, resend_failed;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int der(X509 *x, uint8_t **ret, size_t *ret_len)
{
	return certs_to_der(x, ret, ret_len);
}

/* VCEK (for the reported TCB, or another TCB with wrong_key), ASK, ARK as a GHCB table. */
static int build_table(const char *state_dir, bool wrong_key, uint8_t **ret, size_t *ret_len)
{
	struct sim_state *st = NULL;
	struct sim_state_data d;
	struct sim_ca *ca = NULL;
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *vcek = NULL;
	uint8_t *dv = NULL, *da = NULL, *dr = NULL;
	size_t lv = 0, la = 0, lr = 0;
	char dir[4096];
	int r;

	r = sim_state_open(state_dir, SNP_PRODUCT_UNKNOWN, &st);
	if (r >= 0)
		r = sim_state_read(st, &d);
	if (r < 0)
		goto out;
	snprintf(dir, sizeof(dir), "%s/kds", state_dir);
	r = sim_ca_open(dir, d.product, &ca);
	if (r >= 0)
		r = sim_keys_vcek(d.secret, d.product, d.reported_tcb + (wrong_key ? 1 : 0), &priv);
	OPENSSL_cleanse(d.secret, sizeof(d.secret));
	if (r >= 0)
		r = sim_keys_public(priv, &pub);
	if (r >= 0)
		r = sim_ca_issue_vcek(ca, pub, d.chip_id, snp_product_hwid_len(d.product),
				      d.reported_tcb, time(NULL), &vcek);
	if (r >= 0)
		r = der(vcek, &dv, &lv);
	if (r >= 0)
		r = der(sim_ca_signer(ca, SIM_CA_VCEK), &da, &la);
	if (r >= 0)
		r = der(sim_ca_ark(ca), &dr, &lr);
	if (r >= 0) {
		struct certtable_entry e[3] = {
			{.data = dv, .length = (uint32_t)lv},
			{.data = da, .length = (uint32_t)la},
			{.data = dr, .length = (uint32_t)lr},
		};
		memcpy(e[0].guid, certtable_guid(CERTTABLE_VCEK), 16);
		memcpy(e[1].guid, certtable_guid(CERTTABLE_ASK), 16);
		memcpy(e[2].guid, certtable_guid(CERTTABLE_ARK), 16);
		r = certtable_build(e, 3, ret, ret_len);
	}
out:
	free(dv);
	free(da);
	free(dr);
	X509_free(vcek);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
	if (ca)
		sim_ca_free(ca);
	sim_state_free(st);
	return r;
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

static void usage(void)
{
	printf("Usage: null-broker [OPTIONS]\n"
	       "  --port N          the simulator's port id (default 0x%08x)\n"
	       "  --state DIR       serve a certificate table built from DIR's simulated KDS CA\n"
	       "  --wrong-table     serve a VCEK for another TCB (reports must fail to verify)\n"
	       "  --busy-every K    answer every K-th GUEST_REQ BUSY\n"
	       "  --invalid-len-plain  answer INVALID_LEN to plain requests (a broker bug: wipes)\n"
	       "  --fail-resend     answer INVALID_LEN to the plain re-send that follows an\n"
	       "                    extended request's INVALID_LEN (the guest wipes one request "
	       "later)\n"
	       "  --register-only   REGISTER, print the kernel's answer (0 or -errno) and exit\n"
	       "  --duration S      exit after S seconds (default: until SIGTERM/SIGINT)\n"
	       "  --stats           print counters as JSON on exit\n",
	       SNPA_USERSOCK_KERNEL_PORT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"state", required_argument, NULL, 's'},
		{"wrong-table", no_argument, NULL, 'w'},
		{"busy-every", required_argument, NULL, 'b'},
		{"invalid-len-plain", no_argument, NULL, 'i'},
		{"fail-resend", no_argument, NULL, 'f'},
		{"register-only", no_argument, NULL, 'R'},
		{"duration", required_argument, NULL, 'd'},
		{"stats", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static uint8_t rx[65536] __attribute__((aligned(4)));
	uint32_t port = SNPA_USERSOCK_KERNEL_PORT, seq = 0, reg_seq = 0;
	const char *state_dir = NULL;
	bool wrong = false, inval_plain = false, print_stats = false, registered = false;
	bool fail_resend = false, register_only = false;
	/* fail-resend: the (VM, sequence number) of extended requests answered INVALID_LEN */
	struct {
		uint64_t vm_id, seqno;
	} resend[256] = {{0, 0}};
	size_t resend_next = 0;
	uint64_t busy_every = 0, v;
	double duration = 0;
	uint8_t *table = NULL;
	size_t table_len = 0, table_pages = 0;
	struct nb_stats st = {0};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	time_t t_end = 0, t_reg = 0;
	int fd, c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > UINT32_MAX)
				return 2;
			port = (uint32_t)v;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'w':
			wrong = true;
			break;
		case 'b':
			if (parse_u64(optarg, &busy_every) < 0)
				return 2;
			break;
		case 'i':
			inval_plain = true;
			break;
		case 'f':
			fail_resend = true;
			break;
		case 'R':
			register_only = true;
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'S':
			print_stats = true;
			break;
		case 'h':
			usage();
			return 0;
		default:
			return 2;
		}
	}
	if (state_dir) {
		r = build_table(state_dir, wrong, &table, &table_len);
		if (r < 0) {
			fprintf(stderr, "null-broker: cannot build the table: %s\n",
				snp_strerror(r));
			return 1;
		}
		table_pages = certtable_npages(table_len);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_USERSOCK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("null-broker: netlink socket");
		return 1;
	}
	v = 8 * 1024 * 1024;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){(int)v}, sizeof(int));
	if (duration > 0)
		t_end = time(NULL) + (time_t)(duration + 0.999);

	while (!stop && (!t_end || time(NULL) < t_end)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n;

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
		n = recvfrom(fd, rx, sizeof(rx), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n <= 0 || from.nl_pid != port)
			continue;
		for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)n;) {
			struct nlmsghdr *nlh = (struct nlmsghdr *)(rx + off);
			size_t ml = nlh->nlmsg_len;
			struct snpa_msg m;
			uint32_t aseq;
			int err;

			if (ml < sizeof(*nlh) || ml > (size_t)n - off)
				break;
			off += NLMSG_ALIGN(ml);
			if (nl_msg_class(nlh, ml, SNPA_USERSOCK_FAMILY) == NL_MSG_ACK) {
				if (nl_parse_ack(nlh, ml, &aseq, &err) == 0 && aseq == reg_seq &&
				    register_only) {
					printf("%d\n", err);
					close(fd);
					free(table);
					return 0;
				}
				if (nl_parse_ack(nlh, ml, &aseq, &err) == 0 && aseq == reg_seq &&
				    !registered) {
					if (err == 0) {
						struct snpa_msg dump = {.cmd = SNPA_CMD_VM_DUMP};
						registered = true;
						st.registrations++;
						(void)send_msg(fd, port, &dump, NLM_F_REQUEST,
							       ++seq);
					} else {
						fprintf(stderr,
							"null-broker: REGISTER refused: %s\n",
							strerror(-err));
					}
				}
				continue;
			}
			if (nl_parse(nlh, ml, SNPA_USERSOCK_FAMILY, &m) < 0) {
				st.malformed++;
				continue;
			}
			switch (m.cmd) {
			case SNPA_CMD_GUEST_REQ: {
				struct snpa_msg vd = {
					.cmd = SNPA_CMD_VERDICT,
					.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
					.req_id = m.req_id,
					.verdict = SNPA_VERDICT_ALLOW,
				};
				bool ext = m.exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST;
				bool ext_report = ext && m.msg_type == MSG_REPORT_REQ;

				st.guest_reqs++;
				bool is_resend = false;
				for (size_t i = 0; fail_resend && !ext && i < ELEMENTSOF(resend);
				     i++)
					if (resend[i].seqno == m.msg_seqno &&
					    resend[i].vm_id == m.vm_id && m.msg_seqno) {
						is_resend = true;
						resend[i].seqno = 0;
					}
				if (is_resend) {
					vd.verdict = SNPA_VERDICT_ANSWER;
					vd.present |=
						(1u << SNPA_A_EXITINFO2) | (1u << SNPA_A_NPAGES);
					vd.exitinfo2 = EXITINFO2_INVALID_LEN;
					vd.npages = table_pages ? (uint32_t)table_pages : 1;
					st.resend_failed++;
				} else if (inval_plain && !ext) {
					vd.verdict = SNPA_VERDICT_ANSWER;
					vd.present |=
						(1u << SNPA_A_EXITINFO2) | (1u << SNPA_A_NPAGES);
					vd.exitinfo2 = EXITINFO2_INVALID_LEN;
					vd.npages = 1;
					st.invalid_len_plain++;
				} else if (busy_every && st.guest_reqs % busy_every == 0) {
					vd.verdict = SNPA_VERDICT_ANSWER;
					vd.present |= 1u << SNPA_A_EXITINFO2;
					vd.exitinfo2 = EXITINFO2_BUSY;
					st.busy++;
				} else if (ext_report && table && m.data_npages < table_pages) {
					vd.verdict = SNPA_VERDICT_ANSWER;
					vd.present |=
						(1u << SNPA_A_EXITINFO2) | (1u << SNPA_A_NPAGES);
					vd.exitinfo2 = EXITINFO2_INVALID_LEN;
					vd.npages = (uint32_t)table_pages;
					st.invalid_len++;
					resend[resend_next].vm_id = m.vm_id;
					resend[resend_next].seqno = m.msg_seqno;
					resend_next = (resend_next + 1) % ELEMENTSOF(resend);
				} else {
					if (ext_report && table) {
						vd.present |= 1u << SNPA_A_CERT_TABLE;
						vd.cert_table = table;
						vd.cert_table_len = (uint32_t)table_len;
					}
					st.allow++;
				}
				r = send_msg(fd, port, &vd, NLM_F_REQUEST, ++seq);
				if (r == -ECONNREFUSED)
					registered = false;
				break;
			}
			case SNPA_CMD_GUEST_DONE:
				if (m.outcome == SNPA_OUTCOME_FIRMWARE && m.fw_status == 0)
					st.done_fw++;
				else if (m.outcome == SNPA_OUTCOME_FIRMWARE)
					st.done_fw_error++;
				else if (m.outcome == SNPA_OUTCOME_EXPIRED)
					st.done_expired++;
				else
					st.done_no_fw++;
				break;
			case SNPA_CMD_VM_ADD:
				if (snpa_has(&m, SNPA_A_DUMP))
					st.vm_add_dump++;
				else
					st.vm_add++;
				break;
			case SNPA_CMD_VM_REMOVE:
				st.vm_remove++;
				break;
			case SNPA_CMD_VM_DUMP:
				st.dump_end++;
				break;
			default:
				break;
			}
		}
	}
	if (print_stats)
		printf("{\"registrations\":%llu,\"guest_reqs\":%llu,\"allow\":%llu,\"busy\":%llu,"
		       "\"invalid_len\":%llu,\"invalid_len_plain\":%llu,\"done_fw\":%llu,"
		       "\"done_fw_error\":%llu,\"done_expired\":%llu,\"done_no_fw\":%llu,"
		       "\"vm_add\":%llu,\"vm_add_dump\":%llu,\"vm_remove\":%llu,\"dump_end\":%llu,"
		       "\"malformed\":%llu,\"resend_failed\":%llu,\"table_pages\":%zu}\n",
		       st.registrations, st.guest_reqs, st.allow, st.busy, st.invalid_len,
		       st.invalid_len_plain, st.done_fw, st.done_fw_error, st.done_expired,
		       st.done_no_fw, st.vm_add, st.vm_add_dump, st.vm_remove, st.dump_end,
		       st.malformed, st.resend_failed, table_pages);
	free(table);
	close(fd);
	return 0;
}
