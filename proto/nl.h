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

/* The kernel answers the guest BUSY if no verdict arrives within this time. */
#define SNPA_VERDICT_TIMEOUT_MS 100

enum snpa_cmd {
	SNPA_CMD_UNSPEC = 0,
	SNPA_CMD_REGISTER,   /* daemon -> kernel: ABI_VERSION, FEATURES; answered by NLMSG_ERROR */
	SNPA_CMD_VM_ADD,     /* kernel -> daemon: VM_ID, VMM_PID, ASID, POLICY [, DUMP, INFLIGHT_REQ] */
	SNPA_CMD_VM_REMOVE,  /* kernel -> daemon: VM_ID */
	SNPA_CMD_VM_DUMP,    /* daemon -> kernel: (none); kernel -> daemon: end of replay, VM_COUNT */
	SNPA_CMD_GUEST_REQ,  /* kernel -> daemon: see struct snpa_guest_req */
	SNPA_CMD_VERDICT,    /* daemon -> kernel: REQ_ID, VERDICT, EXITINFO2 [, CERT_TABLE | NPAGES] */
	SNPA_CMD_GUEST_DONE, /* kernel -> daemon: REQ_ID, VM_ID, OUTCOME, FW_STATUS, FW_TIME_NS */
	__SNPA_CMD_MAX,
};
#define SNPA_CMD_MAX (__SNPA_CMD_MAX - 1)

enum snpa_attr {
	SNPA_A_UNSPEC = 0,
	SNPA_A_ABI_VERSION,  /* u32 */
	SNPA_A_FEATURES,     /* u32, SNPA_F_* */
	SNPA_A_VM_ID,        /* u64 */
	SNPA_A_VMM_PID,      /* u32 */
	SNPA_A_ASID,         /* u32 */
	SNPA_A_POLICY,       /* u64: the guest policy */
	SNPA_A_REQ_ID,       /* u64, unique per kernel boot */
	SNPA_A_EXIT_CODE,    /* u32: SVM_VMGEXIT_GUEST_REQUEST or _EXT_GUEST_REQUEST */
	SNPA_A_MSG_SEQNO,    /* u64 */
	SNPA_A_MSG_TYPE,     /* u8 */
	SNPA_A_MSG_VERSION,  /* u8 */
	SNPA_A_MSG_VMPCK,    /* u8 */
	SNPA_A_MSG_SIZE,     /* u16 */
	SNPA_A_DATA_NPAGES,  /* u32: RBX of an extended request */
	SNPA_A_VERDICT,      /* u32, enum snpa_verdict */
	SNPA_A_EXITINFO2,    /* u64: guest-visible answer when VERDICT != ALLOW */
	SNPA_A_CERT_TABLE,   /* binary, <= 16 KiB: table to copy to the guest before ALLOW */
	SNPA_A_NPAGES,       /* u32: RBX to return with INVALID_LEN */
	SNPA_A_OUTCOME,      /* u32, enum snpa_outcome */
	SNPA_A_FW_STATUS,    /* u32 */
	SNPA_A_FW_TIME_NS,   /* u64 */
	SNPA_A_DUMP,         /* flag: this VM_ADD is part of a VM_DUMP replay */
	SNPA_A_INFLIGHT_REQ, /* u64: request admitted (ALLOW) and not yet done, in a replay */
	SNPA_A_VM_COUNT,     /* u32: number of VMs replayed, in the end-of-dump VM_DUMP */
	__SNPA_A_MAX,
};
#define SNPA_A_MAX (__SNPA_A_MAX - 1)

#define SNPA_F_CERT_TABLE (1u << 0) /* the daemon supplies certificate tables */

enum snpa_verdict {
	SNPA_VERDICT_ALLOW = 1,   /* kernel issues the firmware command (and copies CERT_TABLE) */
	SNPA_VERDICT_ANSWER = 2,  /* kernel answers with EXITINFO2 (and NPAGES) without firmware */
};

enum snpa_outcome {
	SNPA_OUTCOME_FIRMWARE = 1, /* the firmware ran: FW_STATUS, FW_TIME_NS valid */
	SNPA_OUTCOME_EXPIRED = 2,  /* no verdict in time: the kernel answered BUSY itself */
	SNPA_OUTCOME_NO_FW = 3,    /* ALLOW but the firmware call failed without a status */
};

#define SVM_VMGEXIT_GUEST_REQUEST 0x80000011u
#define SVM_VMGEXIT_EXT_GUEST_REQUEST 0x80000012u

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
 * skipped. -EMSGSIZE if len does not hold the message. */
int nl_parse(const void *buf, size_t len, uint16_t family, struct snpa_msg *ret);

/* Builds m (attributes taken from m->present) into buf as one netlink message with the
 * given nlmsg_type=family, flags, seq and portid. Returns the message length or -ENOSPC. */
int nl_build(void *buf, size_t size, uint16_t family, uint16_t flags, uint32_t seq,
	     uint32_t portid, const struct snpa_msg *m);

/* Bitmask of attributes required for cmd (sent by the appropriate side). */
uint32_t nl_required_attrs(uint8_t cmd);
const char *nl_cmd_name(uint8_t cmd);
/* Largest message this ABI produces (a VERDICT with a 16 KiB table plus headers). */
#define SNPA_MSG_MAX 20480
