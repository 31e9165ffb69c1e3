/* SPDX-License-Identifier: Apache-2.0 */
/* nl: strict codec for the snp_attest netlink ABI over libmnl. Pure: caller-owned buffers,
 * no sockets; every byte from the peer is checked before it is trusted. */
#include "nl.h"

#include <errno.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

#include "exitinfo.h"
#include "util.h"

#define BIT(a) (1u << (a))

/* Where each attribute lives in struct snpa_msg (flags and the table are special). */
static const struct {
	const char *name;
	enum nl_attr_kind kind;
	size_t offset;
} attrs[__SNPA_A_MAX] = {
	[SNPA_A_ABI_VERSION] = {"ABI_VERSION", NL_KIND_U32, offsetof(struct snpa_msg, abi_version)},
	[SNPA_A_FEATURES] = {"FEATURES", NL_KIND_U32, offsetof(struct snpa_msg, features)},
	[SNPA_A_VM_ID] = {"VM_ID", NL_KIND_U64, offsetof(struct snpa_msg, vm_id)},
	[SNPA_A_VMM_PID] = {"VMM_PID", NL_KIND_U32, offsetof(struct snpa_msg, vmm_pid)},
	[SNPA_A_ASID] = {"ASID", NL_KIND_U32, offsetof(struct snpa_msg, asid)},
	[SNPA_A_POLICY] = {"POLICY", NL_KIND_U64, offsetof(struct snpa_msg, policy)},
	[SNPA_A_REQ_ID] = {"REQ_ID", NL_KIND_U64, offsetof(struct snpa_msg, req_id)},
	[SNPA_A_EXIT_CODE] = {"EXIT_CODE", NL_KIND_U32, offsetof(struct snpa_msg, exit_code)},
	[SNPA_A_MSG_SEQNO] = {"MSG_SEQNO", NL_KIND_U64, offsetof(struct snpa_msg, msg_seqno)},
	[SNPA_A_MSG_TYPE] = {"MSG_TYPE", NL_KIND_U8, offsetof(struct snpa_msg, msg_type)},
	[SNPA_A_MSG_VERSION] = {"MSG_VERSION", NL_KIND_U8, offsetof(struct snpa_msg, msg_version)},
	[SNPA_A_MSG_VMPCK] = {"MSG_VMPCK", NL_KIND_U8, offsetof(struct snpa_msg, msg_vmpck)},
	[SNPA_A_MSG_SIZE] = {"MSG_SIZE", NL_KIND_U16, offsetof(struct snpa_msg, msg_size)},
	[SNPA_A_DATA_NPAGES] = {"DATA_NPAGES", NL_KIND_U32, offsetof(struct snpa_msg, data_npages)},
	[SNPA_A_VERDICT] = {"VERDICT", NL_KIND_U32, offsetof(struct snpa_msg, verdict)},
	[SNPA_A_EXITINFO2] = {"EXITINFO2", NL_KIND_U64, offsetof(struct snpa_msg, exitinfo2)},
	[SNPA_A_CERT_TABLE] = {"CERT_TABLE", NL_KIND_BINARY, 0},
	[SNPA_A_NPAGES] = {"NPAGES", NL_KIND_U32, offsetof(struct snpa_msg, npages)},
	[SNPA_A_OUTCOME] = {"OUTCOME", NL_KIND_U32, offsetof(struct snpa_msg, outcome)},
	[SNPA_A_FW_STATUS] = {"FW_STATUS", NL_KIND_U32, offsetof(struct snpa_msg, fw_status)},
	[SNPA_A_FW_TIME_NS] = {"FW_TIME_NS", NL_KIND_U64, offsetof(struct snpa_msg, fw_time_ns)},
	[SNPA_A_DUMP] = {"DUMP", NL_KIND_FLAG, 0},
	[SNPA_A_INFLIGHT_REQ] = {"INFLIGHT_REQ", NL_KIND_U64,
				 offsetof(struct snpa_msg, inflight_req)},
	[SNPA_A_VM_COUNT] = {"VM_COUNT", NL_KIND_U32, offsetof(struct snpa_msg, vm_count)},
};

#define GUEST_REQ_HDR_ATTRS                                                                        \
	(BIT(SNPA_A_REQ_ID) | BIT(SNPA_A_VM_ID) | BIT(SNPA_A_EXIT_CODE) | BIT(SNPA_A_MSG_SEQNO) |  \
	 BIT(SNPA_A_MSG_TYPE) | BIT(SNPA_A_MSG_VERSION) | BIT(SNPA_A_MSG_VMPCK) |                  \
	 BIT(SNPA_A_MSG_SIZE))

static const struct {
	const char *name;
	uint32_t required;
	uint32_t optional;
} cmds[__SNPA_CMD_MAX] = {
	[SNPA_CMD_REGISTER] = {"REGISTER", BIT(SNPA_A_ABI_VERSION) | BIT(SNPA_A_FEATURES), 0},
	[SNPA_CMD_VM_ADD] = {"VM_ADD",
			     BIT(SNPA_A_VM_ID) | BIT(SNPA_A_VMM_PID) | BIT(SNPA_A_ASID) |
				     BIT(SNPA_A_POLICY),
			     BIT(SNPA_A_DUMP) | BIT(SNPA_A_INFLIGHT_REQ)},
	[SNPA_CMD_VM_REMOVE] = {"VM_REMOVE", BIT(SNPA_A_VM_ID), 0},
	[SNPA_CMD_VM_DUMP] = {"VM_DUMP", 0, BIT(SNPA_A_VM_COUNT)},
	[SNPA_CMD_GUEST_REQ] = {"GUEST_REQ", GUEST_REQ_HDR_ATTRS, BIT(SNPA_A_DATA_NPAGES)},
	[SNPA_CMD_VERDICT] = {"VERDICT", BIT(SNPA_A_REQ_ID) | BIT(SNPA_A_VERDICT),
			      BIT(SNPA_A_EXITINFO2) | BIT(SNPA_A_CERT_TABLE) | BIT(SNPA_A_NPAGES)},
	[SNPA_CMD_GUEST_DONE] = {"GUEST_DONE",
				 BIT(SNPA_A_REQ_ID) | BIT(SNPA_A_VM_ID) | BIT(SNPA_A_OUTCOME),
				 BIT(SNPA_A_FW_STATUS) | BIT(SNPA_A_FW_TIME_NS)},
};

static bool cmd_known(uint8_t cmd)
{
	return cmd >= 1 && cmd <= SNPA_CMD_MAX;
}

uint32_t nl_required_attrs(uint8_t cmd)
{
	return cmd_known(cmd) ? cmds[cmd].required : 0;
}

uint32_t nl_allowed_attrs(uint8_t cmd)
{
	return cmd_known(cmd) ? cmds[cmd].required | cmds[cmd].optional : 0;
}

const char *nl_cmd_name(uint8_t cmd)
{
	return cmd_known(cmd) ? cmds[cmd].name : "UNKNOWN";
}

const char *nl_attr_name(uint16_t attr)
{
	return attr >= 1 && attr <= SNPA_A_MAX ? attrs[attr].name : "UNKNOWN";
}

enum nl_attr_kind nl_attr_kind(uint16_t attr)
{
	return attr >= 1 && attr <= SNPA_A_MAX ? attrs[attr].kind : NL_KIND_NONE;
}

static size_t kind_len(enum nl_attr_kind k)
{
	switch (k) {
	case NL_KIND_U8:
		return 1;
	case NL_KIND_U16:
		return 2;
	case NL_KIND_U32:
		return 4;
	case NL_KIND_U64:
		return 8;
	default:
		return 0;
	}
}

static int fail(const char **ret_reason, const char *why, int r)
{
	if (ret_reason)
		*ret_reason = why;
	return r;
}

static bool has(const struct snpa_msg *m, enum snpa_attr a)
{
	return m->present & BIT(a);
}

static int validate_verdict(const struct snpa_msg *m, const char **ret_reason)
{
	switch (m->verdict) {
	case SNPA_VERDICT_ALLOW:
		if (has(m, SNPA_A_NPAGES))
			return fail(ret_reason, "NPAGES with ALLOW", -EINVAL);
		if (has(m, SNPA_A_EXITINFO2) && m->exitinfo2 != 0)
			return fail(ret_reason, "non-zero EXITINFO2 with ALLOW", -EINVAL);
		return 0;
	case SNPA_VERDICT_ANSWER:
		if (!has(m, SNPA_A_EXITINFO2))
			return fail(ret_reason, "ANSWER without EXITINFO2", -EINVAL);
		if (has(m, SNPA_A_CERT_TABLE))
			return fail(ret_reason, "CERT_TABLE with ANSWER", -EINVAL);
		/* Design §4.1: the host may only ever answer BUSY or INVALID_LEN itself. */
		if (m->exitinfo2 == EXITINFO2_BUSY) {
			if (has(m, SNPA_A_NPAGES))
				return fail(ret_reason, "NPAGES with a BUSY answer", -EINVAL);
			return 0;
		}
		if (m->exitinfo2 == EXITINFO2_INVALID_LEN) {
			if (!has(m, SNPA_A_NPAGES))
				return fail(ret_reason, "INVALID_LEN answer without NPAGES",
					    -EINVAL);
			if (m->npages < 1 || m->npages > SNPA_NPAGES_MAX)
				return fail(ret_reason, "NPAGES out of range", -EINVAL);
			return 0;
		}
		return fail(ret_reason, "EXITINFO2 is neither BUSY nor INVALID_LEN", -EINVAL);
	default:
		return fail(ret_reason, "unknown VERDICT", -EINVAL);
	}
}

int nl_validate(const struct snpa_msg *m, const char **ret_reason)
{
	uint32_t req, allowed;
	bool ext, fw;

	if (!m)
		return fail(ret_reason, "no message", -EINVAL);
	if (!cmd_known(m->cmd))
		return fail(ret_reason, "unknown command", -EINVAL);
	req = nl_required_attrs(m->cmd);
	allowed = nl_allowed_attrs(m->cmd);
	if (m->present & ~allowed)
		return fail(ret_reason, "attribute not allowed in this command", -EINVAL);
	if ((m->present & req) != req)
		return fail(ret_reason, "missing required attribute", -EINVAL);
	if (has(m, SNPA_A_CERT_TABLE) &&
	    (!m->cert_table || m->cert_table_len == 0 || m->cert_table_len > SNPA_CERT_TABLE_MAX))
		return fail(ret_reason, "CERT_TABLE length out of range", -EINVAL);

	switch (m->cmd) {
	case SNPA_CMD_VM_ADD:
		if (has(m, SNPA_A_INFLIGHT_REQ) && !has(m, SNPA_A_DUMP))
			return fail(ret_reason, "INFLIGHT_REQ outside a dump", -EINVAL);
		break;
	case SNPA_CMD_GUEST_REQ:
		if (m->exit_code != SVM_VMGEXIT_GUEST_REQUEST &&
		    m->exit_code != SVM_VMGEXIT_EXT_GUEST_REQUEST)
			return fail(ret_reason, "unknown EXIT_CODE", -EINVAL);
		ext = m->exit_code == SVM_VMGEXIT_EXT_GUEST_REQUEST;
		if (ext != has(m, SNPA_A_DATA_NPAGES))
			return fail(ret_reason, "DATA_NPAGES must be present iff extended",
				    -EINVAL);
		break;
	case SNPA_CMD_VERDICT:
		return validate_verdict(m, ret_reason);
	case SNPA_CMD_GUEST_DONE:
		if (m->outcome < SNPA_OUTCOME_FIRMWARE || m->outcome > SNPA_OUTCOME_NO_FW)
			return fail(ret_reason, "unknown OUTCOME", -EINVAL);
		fw = m->outcome == SNPA_OUTCOME_FIRMWARE;
		if (fw != has(m, SNPA_A_FW_STATUS) || fw != has(m, SNPA_A_FW_TIME_NS))
			return fail(ret_reason, "FW_STATUS/FW_TIME_NS must be present iff FIRMWARE",
				    -EINVAL);
		break;
	default:
		break;
	}
	return 0;
}

static bool aligned(const void *p)
{
	return ((uintptr_t)p & (MNL_ALIGNTO - 1)) == 0;
}

/* Reads the netlink header fields; the caller has checked alignment. */
static int check_nlmsg(const void *buf, size_t len, const struct nlmsghdr **ret_nlh)
{
	const struct nlmsghdr *nlh = buf;

	if (!buf || !aligned(buf))
		return -EINVAL;
	if (len < sizeof(*nlh))
		return -EMSGSIZE;
	if (nlh->nlmsg_len > len)
		return -EMSGSIZE;
	if (nlh->nlmsg_len < sizeof(*nlh))
		return -EBADMSG;
	*ret_nlh = nlh;
	return 0;
}

static void put_field(struct snpa_msg *m, uint16_t type, const struct nlattr *a)
{
	uint8_t *field = (uint8_t *)m + attrs[type].offset;
	const void *p = mnl_attr_get_payload(a);

	/* The payload is 4-byte aligned but u64 may not be 8-byte aligned: copy bytes. */
	memcpy(field, p, kind_len(attrs[type].kind));
}

int nl_parse_reason(const void *buf, size_t len, uint16_t family, struct snpa_msg *ret,
		    const char **ret_reason)
{
	const struct nlmsghdr *nlh = NULL;
	const struct genlmsghdr *gh;
	const uint8_t *p, *end;
	struct snpa_msg m = {0};
	const char *why = NULL;
	int r;

	r = check_nlmsg(buf, len, &nlh);
	if (r < 0)
		return fail(ret_reason, r == -EINVAL ? "misaligned buffer" : "truncated message",
			    r);
	if (nlh->nlmsg_type != family)
		return fail(ret_reason, "wrong family", -EBADMSG);
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return fail(ret_reason, "truncated generic netlink header", -EBADMSG);
	gh = mnl_nlmsg_get_payload(nlh);
	if (gh->version != SNPA_GENL_VERSION)
		return fail(ret_reason, "unsupported genl version", -EBADMSG);
	if (!cmd_known(gh->cmd))
		return fail(ret_reason, "unknown command", -EBADMSG);
	m.cmd = gh->cmd;
	m.version = gh->version;
	m.nlmsg_flags = nlh->nlmsg_flags;
	m.nlmsg_seq = nlh->nlmsg_seq;
	m.nlmsg_pid = nlh->nlmsg_pid;

	p = (const uint8_t *)buf + MNL_NLMSG_HDRLEN + GENL_HDRLEN;
	end = (const uint8_t *)buf + nlh->nlmsg_len;
	/* The last attribute's padding may be missing; everything else must be whole. */
	while (p < end) {
		const struct nlattr *a = (const struct nlattr *)p;
		size_t left = (size_t)(end - p), plen;
		uint16_t type;

		if (!mnl_attr_ok(a, (int)left))
			return fail(ret_reason, "truncated attribute", -EBADMSG);
		type = mnl_attr_get_type(a);
		plen = mnl_attr_get_payload_len(a);
		p += MNL_ALIGN(a->nla_len);

		if (type == SNPA_A_UNSPEC || type > SNPA_A_MAX)
			continue; /* unknown: a later ABI version may add attributes */
		if (a->nla_type & ~NLA_TYPE_MASK)
			return fail(ret_reason, "nested or byte-order flag on attribute", -EBADMSG);
		if (m.present & BIT(type))
			return fail(ret_reason, "duplicate attribute", -EBADMSG);
		if (attrs[type].kind == NL_KIND_BINARY) {
			if (plen == 0 || plen > SNPA_CERT_TABLE_MAX)
				return fail(ret_reason, "bad attribute length", -EBADMSG);
			m.cert_table = mnl_attr_get_payload(a);
			m.cert_table_len = (uint32_t)plen;
		} else {
			if (plen != kind_len(attrs[type].kind))
				return fail(ret_reason, "bad attribute length", -EBADMSG);
			if (attrs[type].kind != NL_KIND_FLAG)
				put_field(&m, type, a);
		}
		m.present |= BIT(type);
	}

	if (nl_validate(&m, &why) < 0)
		return fail(ret_reason, why, -EBADMSG);
	*ret = m;
	return 0;
}

int nl_parse(const void *buf, size_t len, uint16_t family, struct snpa_msg *ret)
{
	return nl_parse_reason(buf, len, family, ret, NULL);
}

struct snpa_msg nl_answer_msg(uint64_t req_id, uint64_t exitinfo2, uint32_t npages)
{
	struct snpa_msg v = {
		.cmd = SNPA_CMD_VERDICT,
		.present =
			(1u << SNPA_A_REQ_ID) | (1u << SNPA_A_VERDICT) | (1u << SNPA_A_EXITINFO2),
		.req_id = req_id,
		.verdict = SNPA_VERDICT_ANSWER,
		.exitinfo2 = exitinfo2,
	};

	if (exitinfo2 == EXITINFO2_INVALID_LEN) {
		v.present |= 1u << SNPA_A_NPAGES;
		v.npages = npages;
	}
	return v;
}

int nl_build(void *buf, size_t size, uint16_t family, uint16_t flags, uint32_t seq, uint32_t portid,
	     const struct snpa_msg *m)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *gh;
	static const uint8_t none; /* a valid pointer for zero-length payloads */
	int r;

	if (!buf || !aligned(buf))
		return -EINVAL;
	r = nl_validate(m, NULL);
	if (r < 0)
		return r;
	if (size < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return -ENOSPC;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = portid;
	gh = mnl_nlmsg_put_extra_header(nlh, GENL_HDRLEN);
	gh->cmd = m->cmd;
	gh->version = SNPA_GENL_VERSION;

	for (uint16_t type = 1; type <= SNPA_A_MAX; type++) {
		const void *data;
		size_t n;
		uint32_t old_len = nlh->nlmsg_len;

		if (!(m->present & BIT(type)))
			continue;
		switch (attrs[type].kind) {
		case NL_KIND_BINARY:
			data = m->cert_table;
			n = m->cert_table_len;
			break;
		case NL_KIND_FLAG:
			data = &none;
			n = 0;
			break;
		default:
			data = (const uint8_t *)m + attrs[type].offset;
			n = kind_len(attrs[type].kind);
			break;
		}
		if (!mnl_attr_put_check(nlh, size, type, n, data))
			return -ENOSPC;
		/* Zero the alignment padding: no stale bytes of buf go on the wire. */
		memset((uint8_t *)buf + old_len + MNL_ATTR_HDRLEN + n, 0,
		       nlh->nlmsg_len - old_len - MNL_ATTR_HDRLEN - n);
	}
	return (int)nlh->nlmsg_len;
}

int nl_msg_class(const void *buf, size_t len, uint16_t family)
{
	const struct nlmsghdr *nlh = NULL;
	int r;

	r = check_nlmsg(buf, len, &nlh);
	if (r < 0)
		return r;
	if (nlh->nlmsg_type == family)
		return NL_MSG_SNPA;
	switch (nlh->nlmsg_type) {
	case NLMSG_NOOP:
		return NL_MSG_NOOP;
	case NLMSG_ERROR:
		return NL_MSG_ACK;
	case NLMSG_DONE:
		return NL_MSG_DONE;
	case NLMSG_OVERRUN:
		return NL_MSG_OVERRUN;
	default:
		return NL_MSG_OTHER;
	}
}

int nl_parse_ack(const void *buf, size_t len, uint32_t *ret_seq, int *ret_err)
{
	const struct nlmsghdr *nlh = NULL;
	const struct nlmsgerr *e;
	int r;

	r = check_nlmsg(buf, len, &nlh);
	if (r < 0)
		return r;
	if (nlh->nlmsg_type != NLMSG_ERROR)
		return -EBADMSG;
	/* The error code and the echoed request header are always there (capped or not). */
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*e))
		return -EBADMSG;
	e = mnl_nlmsg_get_payload(nlh);
	if (e->error > 0 || e->error < -4095)
		return -EBADMSG;
	*ret_seq = nlh->nlmsg_seq;
	*ret_err = e->error;
	return 0;
}

int nl_build_ack(void *buf, size_t size, const struct nlmsghdr *req, int err)
{
	struct nlmsghdr *nlh;
	struct nlmsgerr *e;

	if (!buf || !aligned(buf) || !req || err > 0 || err < -4095)
		return -EINVAL;
	if (size < MNL_NLMSG_HDRLEN + sizeof(*e))
		return -ENOSPC;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_CAPPED;
	nlh->nlmsg_seq = req->nlmsg_seq;
	nlh->nlmsg_pid = req->nlmsg_pid;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = err;
	memcpy(&e->msg, req, sizeof(e->msg));
	return (int)nlh->nlmsg_len;
}
