/* SPDX-License-Identifier: Apache-2.0 */
/* nltransport: the netlink transport (nltransport.h). Knows the snp_attest message format
 * and nothing of policy: every decision is the admission core's. */
#include "nltransport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exitinfo.h"
#include "log.h"
#include "msg.h"
#include "nl.h"
#include "nlsock.h"
#include "util.h"

struct nltransport {
	struct adm_transport t; /* first: the ops get it back */
	struct adm *adm;	/* borrowed */
	struct nlsock *nl;	/* owned */
	nltransport_status_fn status;
	void *userdata;
};

static struct nltransport *of(struct adm_transport *t)
{
	return container_of(t, struct nltransport, t);
}

/* --- verdicts out --- */

static int nl_answer(struct nltransport *n, uint64_t req_id, uint64_t exitinfo2, uint32_t npages)
{
	struct snpa_msg v = nl_answer_msg(req_id, exitinfo2, npages);

	return nlsock_send(n->nl, &v);
}

static int op_allow(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
		    const uint8_t *table, size_t table_len)
{
	struct snpa_msg v = {
		.cmd = SNPA_CMD_VERDICT,
		.present = (1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT),
		.req_id = req_id,
		.verdict = SNPA_VERDICT_ALLOW,
	};

	(void)vm_id;
	(void)peer;
	if (table) {
		v.present |= 1u << SNPA_A_CERT_TABLE;
		v.cert_table = table;
		v.cert_table_len = (uint32_t)table_len;
	}
	return nlsock_send(of(t)->nl, &v);
}

static int op_busy(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id)
{
	(void)vm_id;
	(void)peer;
	return nl_answer(of(t), req_id, EXITINFO2_BUSY, 0);
}

static int op_invalid_len(struct adm_transport *t, uint64_t vm_id, void *peer, uint64_t req_id,
			  uint32_t npages)
{
	(void)vm_id;
	(void)peer;
	return nl_answer(of(t), req_id, EXITINFO2_INVALID_LEN, npages);
}

static int op_request_resync(struct adm_transport *t)
{
	struct snpa_msg dump = {.cmd = SNPA_CMD_VM_DUMP};

	return nlsock_send(of(t)->nl, &dump);
}

static uint64_t op_rx_usec(struct adm_transport *t)
{
	return nlsock_rx_usec(of(t)->nl);
}

static const struct adm_transport_ops nl_ops = {
	.name = "netlink",
	.allow = op_allow,
	.busy = op_busy,
	.invalid_len = op_invalid_len,
	.request_resync = op_request_resync,
	.rx_usec = op_rx_usec,
};

/* --- messages in --- */

static void on_guest_req(struct nltransport *n, const struct snpa_msg *m)
{
	bool ext = m->exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST;
	struct adm_request rq = {
		.req_id = m->req_id,
		.msg = {.seqno = m->msg_seqno,
			.type = m->msg_type,
			.version = m->msg_version,
			.vmpck = m->msg_vmpck,
			.size = m->msg_size},
		.has_msg = true,
		.wants_table = ext && m->msg_type == MSG_REPORT_REQ,
		.npages = m->data_npages,
	};

	adm_request(n->adm, &n->t, m->vm_id, &rq);
}

static void on_guest_done(struct nltransport *n, const struct snpa_msg *m)
{
	enum adm_done_kind k;

	switch (m->outcome) {
	case SNPA_OUTCOME_FIRMWARE:
		k = ADM_DONE_FIRMWARE;
		break;
	case SNPA_OUTCOME_EXPIRED:
		k = ADM_DONE_EXPIRED;
		break;
	default:
		k = ADM_DONE_NOT_RUN;
		break;
	}
	adm_done(n->adm, m->vm_id, m->req_id, k, m->fw_status, m->fw_time_ns);
}

static void on_vm_add(struct nltransport *n, const struct snpa_msg *m)
{
	struct adm_vm_attrs at = {.vmm_pid = m->vmm_pid, .asid = m->asid, .policy = m->policy};
	bool dump = snpa_has(m, SNPA_A_DUMP);

	(void)adm_vm_add(n->adm, &n->t, m->vm_id, &at, dump,
			 dump && snpa_has(m, SNPA_A_INFLIGHT_REQ), m->inflight_req);
}

static void on_message(void *userdata, const struct snpa_msg *m)
{
	struct nltransport *n = userdata;

	switch (m->cmd) {
	case SNPA_CMD_GUEST_REQ:
		on_guest_req(n, m);
		break;
	case SNPA_CMD_GUEST_DONE:
		on_guest_done(n, m);
		break;
	case SNPA_CMD_VM_ADD:
		on_vm_add(n, m);
		break;
	case SNPA_CMD_VM_REMOVE:
		(void)adm_vm_remove(n->adm, m->vm_id, "VM_REMOVE");
		break;
	case SNPA_CMD_VM_DUMP:
		/* The end of a replay. */
		adm_resync_end(n->adm, &n->t);
		log_debug("VM list synchronised: %zu VMs (kernel says %u)", adm_vm_count(n->adm),
			  snpa_has(m, SNPA_A_VM_COUNT) ? m->vm_count : 0);
		break;
	default:
		break; /* REGISTER/VERDICT are ours to send, not to receive */
	}
}

static void on_registered(void *userdata)
{
	struct nltransport *n = userdata;

	/* nlsock has sent VM_DUMP: the kernel replays every VM. */
	adm_resync_begin(n->adm, &n->t);
	if (n->status)
		n->status(n->userdata, "serving: broker registered");
}

static void on_unregistered(void *userdata, int reason)
{
	struct nltransport *n = userdata;

	/* The kernel side is gone: every pending request died with it. The VM_DUMP after the
	 * next REGISTER rebuilds the VM list and in-flight state. */
	log_warning("Lost the broker role (%s); guests get BUSY until it is back",
		    strerror(reason < 0 ? -reason : reason));
	adm_transport_lost(n->adm, &n->t);
	if (n->status)
		n->status(n->userdata, "waiting for the kernel (broker role lost)");
}

static void on_resync(void *userdata)
{
	struct nltransport *n = userdata;

	adm_resync_begin(n->adm, &n->t);
}

static const struct nlsock_handler nl_handler = {
	.on_message = on_message,
	.on_registered = on_registered,
	.on_unregistered = on_unregistered,
	.on_resync = on_resync,
};

int nltransport_new(struct ev_loop *loop, const struct conf *c, struct adm *adm,
		    nltransport_status_fn status, void *userdata, struct nltransport **ret)
{
	struct nltransport *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	adm_transport_init(&n->t, &nl_ops);
	n->adm = adm;
	n->status = status;
	n->userdata = userdata;
	r = nlsock_new(loop, c, &nl_handler, n, &n->nl);
	if (r < 0) {
		free(n);
		return r;
	}
	*ret = n;
	return 0;
}

void nltransport_free(struct nltransport *n)
{
	if (!n)
		return;
	nlsock_free(n->nl);
	/* The VMs of this transport stay in the core only while it lives. */
	adm_transport_lost(n->adm, &n->t);
	free(n);
}

int nltransport_start(struct nltransport *n)
{
	return nlsock_start(n->nl);
}

bool nltransport_registered(const struct nltransport *n)
{
	return nlsock_registered(n->nl);
}

const struct nlsock_stats *nltransport_stats(const struct nltransport *n)
{
	return nlsock_get_stats(n->nl);
}
