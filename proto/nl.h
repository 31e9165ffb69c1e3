/* SPDX-License-Identifier: Apache-2.0 */
/* nl: the snp_attest generic-netlink ABI, version 1 (design §3), and strict build/parse
 * over libmnl. Pure: builds into and parses from caller-owned buffers; no sockets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/netlink.h>

#define SNPA_GENL_NAME "snp_attest"
#define SNPA_GENL_VERSION 1
#define SNPA_ABI_VERSION 1

/* NETLINK_USERSOCK stand-in for the kernel (design §3): the simulator binds this port id
 * and uses this constant as nlmsg_type in place of a resolved generic-netlink family id. */
#define SNPA_USERSOCK_FAMILY 0x5350u
#define SNPA_USERSOCK_KERNEL_PORT 0x534e5031u

/* The kernel answers the guest BUSY if no verdict arrives within this many milliseconds. */
#define SNPA_VERDICT_TIMEOUT_MS 100

/* Largest certificate table a VERDICT may carry: the Linux guest's limit (facts §1.5). */
#define SNPA_CERT_TABLE_MAX 16384u
/* Largest page count an INVALID_LEN answer may ask for (SNPA_CERT_TABLE_MAX in 4 KiB pages). */
#define SNPA_NPAGES_MAX 4u

/*
 * Commands. "Required" attributes are enforced by nl_parse and nl_build; "optional" ones
 * are allowed; any other known attribute in a command is rejected. Unknown attribute ids
 * (above SNPA_A_MAX) are skipped, so later ABI versions can add attributes.
 *
 * REGISTER    daemon -> kernel. Required: ABI_VERSION, FEATURES. Sent with NLM_F_ACK; the
 *             kernel answers NLMSG_ERROR with 0 (the daemon is the broker) or -EBUSY
 *             (another broker holds the role); see nl_parse_ack.
 * VM_ADD      kernel -> daemon. Required: VM_ID, VMM_PID, ASID, POLICY. Optional: DUMP (this
 *             VM_ADD is part of a VM_DUMP replay), INFLIGHT_REQ (only with DUMP: a request
 *             admitted with ALLOW whose GUEST_DONE has not been sent yet).
 * VM_REMOVE   kernel -> daemon. Required: VM_ID.
 * VM_DUMP     daemon -> kernel with no attributes: replay every live VM as VM_ADD + DUMP.
 *             kernel -> daemon as the end of the replay, with optional VM_COUNT.
 * GUEST_REQ   kernel -> daemon. Required: REQ_ID, VM_ID, EXIT_CODE, MSG_SEQNO, MSG_TYPE,
 *             MSG_VERSION, MSG_VMPCK, MSG_SIZE; DATA_NPAGES present iff EXIT_CODE is
 *             SVM_VMGEXIT_EXT_GUEST_REQUEST. MSG_TYPE and MSG_VMPCK are the guest's plaintext
 *             and are not range-checked here (the daemon counts anomalies, design §4.5).
 * VERDICT     daemon -> kernel. Required: REQ_ID, VERDICT.
 *             ALLOW: optional CERT_TABLE (1..16 KiB), optional EXITINFO2 which must be 0.
 *             ANSWER: EXITINFO2 required and either EXITINFO2_BUSY or EXITINFO2_INVALID_LEN
 *             (the only answers a guest may see from the host, design §4.1); NPAGES
 *             (1..SNPA_NPAGES_MAX) present iff INVALID_LEN; no CERT_TABLE.
 * GUEST_DONE  kernel -> daemon. Required: REQ_ID, VM_ID, OUTCOME. FW_STATUS and FW_TIME_NS
 *             present iff OUTCOME is FIRMWARE.
 */
enum snpa_cmd {
	SNPA_CMD_UNSPEC = 0,
	SNPA_CMD_REGISTER, /* daemon -> kernel: ABI_VERSION, FEATURES; answered by NLMSG_ERROR */
	SNPA_CMD_VM_ADD, /* kernel -> daemon: VM_ID, VMM_PID, ASID, POLICY [, DUMP, INFLIGHT_REQ] */
	SNPA_CMD_VM_REMOVE, /* kernel -> daemon: VM_ID */
	SNPA_CMD_VM_DUMP, /* daemon -> kernel: (none); kernel -> daemon: end of replay, VM_COUNT */
	SNPA_CMD_GUEST_REQ, /* kernel -> daemon: REQ_ID, VM_ID, EXIT_CODE, MSG_* [, DATA_NPAGES] */
	SNPA_CMD_VERDICT, /* daemon -> kernel: REQ_ID, VERDICT [, EXITINFO2, CERT_TABLE | NPAGES] */
	SNPA_CMD_GUEST_DONE, /* kernel -> daemon: REQ_ID, VM_ID, OUTCOME [, FW_STATUS, FW_TIME_NS]
			      */
	__SNPA_CMD_MAX,
};
#define SNPA_CMD_MAX (__SNPA_CMD_MAX - 1)

enum snpa_attr {
	SNPA_A_UNSPEC = 0,
	SNPA_A_ABI_VERSION,  /* u32 */
	SNPA_A_FEATURES,     /* u32, SNPA_F_* */
	SNPA_A_VM_ID,	     /* u64 */
	SNPA_A_VMM_PID,	     /* u32 */
	SNPA_A_ASID,	     /* u32 */
	SNPA_A_POLICY,	     /* u64: the guest policy */
	SNPA_A_REQ_ID,	     /* u64, unique per kernel boot */
	SNPA_A_EXIT_CODE,    /* u32: SVM_VMGEXIT_GUEST_REQUEST or _EXT_GUEST_REQUEST */
	SNPA_A_MSG_SEQNO,    /* u64 */
	SNPA_A_MSG_TYPE,     /* u8 */
	SNPA_A_MSG_VERSION,  /* u8 */
	SNPA_A_MSG_VMPCK,    /* u8 */
	SNPA_A_MSG_SIZE,     /* u16 */
	SNPA_A_DATA_NPAGES,  /* u32: RBX of an extended request */
	SNPA_A_VERDICT,	     /* u32, enum snpa_verdict */
	SNPA_A_EXITINFO2,    /* u64: guest-visible answer when VERDICT != ALLOW */
	SNPA_A_CERT_TABLE,   /* binary, <= 16 KiB: table to copy to the guest before ALLOW */
	SNPA_A_NPAGES,	     /* u32: RBX to return with INVALID_LEN */
	SNPA_A_OUTCOME,	     /* u32, enum snpa_outcome */
	SNPA_A_FW_STATUS,    /* u32 */
	SNPA_A_FW_TIME_NS,   /* u64 */
	SNPA_A_DUMP,	     /* flag: this VM_ADD is part of a VM_DUMP replay */
	SNPA_A_INFLIGHT_REQ, /* u64: request admitted (ALLOW) and not yet done, in a replay */
	SNPA_A_VM_COUNT,     /* u32: number of VMs replayed, in the end-of-dump VM_DUMP */
	__SNPA_A_MAX,
};
#define SNPA_A_MAX (__SNPA_A_MAX - 1)

#define SNPA_F_CERT_TABLE (1u << 0) /* the daemon supplies certificate tables */

enum snpa_verdict {
	SNPA_VERDICT_ALLOW = 1,	 /* kernel issues the firmware command (and copies CERT_TABLE) */
	SNPA_VERDICT_ANSWER = 2, /* kernel answers with EXITINFO2 (and NPAGES) without firmware */
};

enum snpa_outcome {
	SNPA_OUTCOME_FIRMWARE = 1, /* the firmware ran: FW_STATUS, FW_TIME_NS valid */
	SNPA_OUTCOME_EXPIRED = 2,  /* no verdict in time: the kernel answered BUSY itself */
	SNPA_OUTCOME_NO_FW = 3,	   /* ALLOW but the firmware call failed without a status */
};

#define SVM_VMGEXIT_GUEST_REQUEST 0x80000011u
#define SVM_VMGEXIT_EXT_GUEST_REQUEST 0x80000012u

/* Wire encoding of each attribute (host byte order, as netlink is). */
enum nl_attr_kind {
	NL_KIND_NONE = 0, /* not an attribute of this ABI version */
	NL_KIND_U8,
	NL_KIND_U16,
	NL_KIND_U32,
	NL_KIND_U64,
	NL_KIND_FLAG,	/* zero-length payload */
	NL_KIND_BINARY, /* 1..SNPA_CERT_TABLE_MAX bytes */
};

/* One decoded message. `present` has bit (1 << SNPA_A_x) set for every attribute seen. */
struct snpa_msg {
	uint8_t cmd;
	uint8_t version;
	uint32_t present;
	uint32_t abi_version;
	uint32_t features;
	uint64_t vm_id;
	uint32_t vmm_pid;
	uint32_t asid;
	uint64_t policy;
	uint64_t req_id;
	uint32_t exit_code;
	uint64_t msg_seqno;
	uint8_t msg_type;
	uint8_t msg_version;
	uint8_t msg_vmpck;
	uint16_t msg_size;
	uint32_t data_npages;
	uint32_t verdict;
	uint64_t exitinfo2;
	const uint8_t *cert_table; /* borrowed: points into the parsed message */
	uint32_t cert_table_len;
	uint32_t npages;
	uint32_t outcome;
	uint32_t fw_status;
	uint64_t fw_time_ns;
	uint64_t inflight_req;
	uint32_t vm_count;
	/* From the nlmsghdr: filled by nl_parse, ignored by nl_build (which takes them as
	 * arguments). */
	uint16_t nlmsg_flags;
	uint32_t nlmsg_seq;
	uint32_t nlmsg_pid;
};

static inline bool snpa_has(const struct snpa_msg *m, enum snpa_attr a)
{
	return m->present & (1u << a);
}

/* Parses one message (nlmsghdr + genlmsghdr + attributes). family is the expected
 * nlmsg_type (resolved genl id, or SNPA_USERSOCK_FAMILY). Rejects with -EBADMSG: wrong
 * family, truncated headers, genl version != 1, unknown cmd, wrong attribute length,
 * duplicated attribute, missing required attribute for cmd, inconsistent values (e.g. a
 * plain GUEST_REQ with DATA_NPAGES, CERT_TABLE over 16 KiB). Unknown attribute ids are
 * skipped. -EMSGSIZE if len does not hold the message. -EINVAL if buf is not 4-byte aligned
 * (netlink headers are read in place). Bytes after nlmsg_len (a further message of the
 * same datagram) are not looked at. ret->cert_table points into buf. */
int nl_parse(const void *buf, size_t len, uint16_t family, struct snpa_msg *ret);

/* nl_parse, and on failure (only) *ret_reason, if non-NULL, gets a static text naming the
 * rule the message broke ("duplicate attribute", ...), for logs and counters. */
int nl_parse_reason(const void *buf, size_t len, uint16_t family, struct snpa_msg *ret,
		    const char **ret_reason);

/* Checks m against the rules above (allowed/required attributes, values). 0 or -EINVAL;
 * on failure *ret_reason (if non-NULL) names the rule. */
int nl_validate(const struct snpa_msg *m, const char **ret_reason);

/* Builds m (attributes taken from m->present) into buf as one netlink message with the
 * given nlmsg_type=family, flags, seq and portid. buf must be 4-byte aligned. Returns the
 * message length, -EINVAL if m breaks the rules (nl_validate), or -ENOSPC. */
int nl_build(void *buf, size_t size, uint16_t family, uint16_t flags, uint32_t seq, uint32_t portid,
	     const struct snpa_msg *m);

/* A VERDICT of type ANSWER for req_id with exitinfo2 (BUSY, INVALID_LEN, ...); with
 * INVALID_LEN it also carries npages (the pages the certificate table needs). */
struct snpa_msg nl_answer_msg(uint64_t req_id, uint64_t exitinfo2, uint32_t npages);

/* Bitmask of attributes required for cmd (sent by the appropriate side); 0 for an unknown
 * cmd. Conditional requirements (DATA_NPAGES, EXITINFO2, NPAGES, FW_*) are not included. */
uint32_t nl_required_attrs(uint8_t cmd);
/* Bitmask of attributes a cmd may carry (required | optional); 0 for an unknown cmd. */
uint32_t nl_allowed_attrs(uint8_t cmd);
/* "REGISTER", ...; "UNKNOWN" for anything else. */
const char *nl_cmd_name(uint8_t cmd);
/* "VM_ID", ...; "UNKNOWN" for anything else. */
const char *nl_attr_name(uint16_t attr);
/* Wire encoding of attr; NL_KIND_NONE for ids this version does not know. */
enum nl_attr_kind nl_attr_kind(uint16_t attr);

/* Netlink control messages (nlmsg_type below NLMSG_MIN_TYPE) that share the socket. */
enum nl_msg_class {
	NL_MSG_SNPA = 0, /* nlmsg_type == family: an snp_attest message for nl_parse */
	NL_MSG_NOOP,	 /* NLMSG_NOOP: ignore */
	NL_MSG_ACK,	 /* NLMSG_ERROR: an ACK or error for a request (nl_parse_ack) */
	NL_MSG_DONE,	 /* NLMSG_DONE: end of a multipart answer */
	NL_MSG_OVERRUN,	 /* NLMSG_OVERRUN: data lost; resynchronise (e.g. VM_DUMP) */
	NL_MSG_OTHER,	 /* another type: not ours; skip it */
};

/* Classifies the message at buf: -EINVAL (misaligned), -EMSGSIZE (len does not hold
 * the header or nlmsg_len), -EBADMSG (nlmsg_len below the header size), else a class. */
int nl_msg_class(const void *buf, size_t len, uint16_t family);

/* Parses an NLMSG_ERROR message: *ret_seq = the nlmsg_seq it answers, *ret_err = 0 for an
 * ACK or the negative errno the peer reported (e.g. -EBUSY for REGISTER). -EBADMSG if it
 * is not a well-formed NLMSG_ERROR (wrong type, truncated, error outside -4095..0),
 * -EMSGSIZE / -EINVAL as for nl_parse. */
int nl_parse_ack(const void *buf, size_t len, uint32_t *ret_seq, int *ret_err);

/* Builds the NLMSG_ERROR answer (err = 0 for an ACK, or a negative errno) for the request
 * header req, as the kernel does with NLM_F_CAPPED: the request header is echoed, not its
 * payload. buf must be 4-byte aligned. Returns the length, -EINVAL or -ENOSPC. */
int nl_build_ack(void *buf, size_t size, const struct nlmsghdr *req, int err);

/* Largest message this ABI produces (a VERDICT with a 16 KiB table plus headers). */
#define SNPA_MSG_MAX 20480
