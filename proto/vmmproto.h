/* SPDX-License-Identifier: Apache-2.0 */
/* vmmproto: the VMM socket's wire format (docs/vmm-protocol.md). Pure: no I/O, no clock, no
 * allocation. Compiled into the daemon, the tests, the fuzzer and libsnpattest (which must not
 * depend on anything beyond libc, so this module includes only util.h's inline helpers). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMMPROTO_MAGIC 0x56504e53u /* "SNPV" in little-endian byte order */
#define VMMPROTO_VERSION 1
#define VMMPROTO_HDR_SIZE 12
#define VMMPROTO_NAME_MAX 64
#define VMMPROTO_TABLE_MAX 16384 /* the Linux guest's certificate limit (facts §6) */
/* The largest message (ALLOW with a full table); a SOCK_SEQPACKET receiver sized for it
 * takes every well-formed message whole. */
#define VMMPROTO_MSG_MAX (VMMPROTO_HDR_SIZE + 16 + VMMPROTO_TABLE_MAX)
#define VMMPROTO_DEFAULT_SOCKET "/run/snp-attestd/vmm.sock"

enum vmmproto_type {
	VMMPROTO_HELLO = 1,	/* VMM -> daemon: the VM behind this connection */
	VMMPROTO_HELLO_ACK = 2, /* daemon -> VMM */
	VMMPROTO_CERTS = 3,	/* VMM -> daemon: a KVM_EXIT_SNP_REQ_CERTS to decide */
	VMMPROTO_ALLOW = 4,	/* daemon -> VMM: ret 0, with the table to copy */
	VMMPROTO_BUSY = 5,	/* daemon -> VMM: ret EAGAIN */
	VMMPROTO_ENOSPC = 6,	/* daemon -> VMM: ret ENOSPC, npages = the pages needed */
	VMMPROTO_DONE = 7,	/* VMM -> daemon: the firmware call of an ALLOW is over */
	VMMPROTO_ERROR = 8,	/* either way: a protocol error; the sender closes after it */
	VMMPROTO__TYPE_MAX = VMMPROTO_ERROR,
};

enum vmmproto_error {
	VMMPROTO_E_MALFORMED = 1,   /* a message did not parse */
	VMMPROTO_E_VERSION = 2,	    /* protocol version not spoken by the receiver */
	VMMPROTO_E_STATE = 3,	    /* valid message, wrong moment (CERTS before HELLO, ...) */
	VMMPROTO_E_DENIED = 4,	    /* the peer is not authorised (SO_PEERCRED) */
	VMMPROTO_E_DUPLICATE = 5,   /* another connection already speaks for this UUID */
	VMMPROTO_E_UNKNOWN_REQ = 6, /* DONE for a request that is not outstanding */
	VMMPROTO_E_LIMIT = 7,	    /* too many connections */
	VMMPROTO_E_SHUTDOWN = 8,    /* the daemon is stopping */
	VMMPROTO_E_INTERNAL = 9,
	VMMPROTO__E_MAX = VMMPROTO_E_INTERNAL,
};

enum vmmproto_done_outcome {
	VMMPROTO_DONE_FIRMWARE = 0,  /* KVM_RUN completed the exit: the firmware call happened */
	VMMPROTO_DONE_ABANDONED = 1, /* the VMM did not pass the ALLOW to KVM (late, too big) */
	VMMPROTO__DONE_MAX = VMMPROTO_DONE_ABANDONED,
};

struct vmmproto_msg {
	uint16_t version; /* VMMPROTO_VERSION on build; what the header said on parse */
	enum vmmproto_type type;
	union {
		struct {
			uint8_t uuid[16];
			uint32_t vmm_pid;
			char name[VMMPROTO_NAME_MAX +
				  1]; /* NUL-terminated, 1..64 printable ASCII */
		} hello;
		struct {
			uint64_t vm_id; /* the daemon's id for this VM (metrics, snpctl) */
		} hello_ack;
		struct {
			uint64_t req_id;
			uint32_t
				npages; /* the guest's buffer; RBX above 2^32-1 is sent as 2^32-1 */
		} certs;
		struct {
			uint64_t req_id;
			const uint8_t *table; /* borrowed: points into the parsed buffer */
			uint32_t table_len; /* 0: no certificates (the VMM writes an empty table) */
		} allow;
		struct {
			uint64_t req_id;
		} busy;
		struct {
			uint64_t req_id;
			uint32_t npages; /* >= 1 */
		} enospc;
		struct {
			uint64_t req_id;
			enum vmmproto_done_outcome outcome;
		} done;
		struct {
			uint64_t req_id; /* 0: not about one request */
			enum vmmproto_error code;
		} error;
	};
};

/* Parses one message (one SOCK_SEQPACKET record). *ret is written only on success.
 *   -EBADMSG          shorter than the header, wrong magic, or header length != len
 *   -EPROTONOSUPPORT  header version != VMMPROTO_VERSION (*ret_version still says which,
 *                     when ret_version is not NULL, so the receiver can answer E_VERSION)
 *   -EOPNOTSUPP       unknown message type
 *   -EMSGSIZE         body length wrong for the type
 *   -EINVAL           a field out of range: reserved bits set, request id 0, a name that is
 *                     empty, too long or not printable, npages 0 in ENOSPC, an unknown
 *                     outcome or error code, a table over 16 KiB or shorter than 24 bytes */
int vmmproto_parse(const uint8_t *buf, size_t len, struct vmmproto_msg *ret, uint16_t *ret_version);

/* Builds m into buf (size bytes). The same field rules as parse (-EINVAL), -ENOBUFS when buf
 * is too small. m->version is ignored: version VMMPROTO_VERSION is written. */
int vmmproto_build(const struct vmmproto_msg *m, uint8_t *buf, size_t size, size_t *ret_len);

/* True for the types a VMM may send (HELLO, CERTS, DONE, ERROR). */
bool vmmproto_from_vmm(enum vmmproto_type t);
const char *vmmproto_type_name(enum vmmproto_type t);	/* "HELLO", ...; "UNKNOWN" */
const char *vmmproto_error_name(enum vmmproto_error e); /* "malformed", ...; "unknown" */

/* VM identity. A VM of the VMM socket has no kernel id: the daemon names it 2^63 | a 63-bit
 * hash of its UUID (of its name when the UUID is all zero), so the same VM gets the same id, and
 * its stored quota, after a reconnect, a VM restart or a daemon restart; snpctl derives the
 * same id from a UUID given on the command line. Kernel VM ids (netlink) stay below 2^63. */
#define VMMPROTO_VM_KEY_BIT (1ull << 63)
uint64_t vmmproto_vm_key(const uint8_t uuid[16], const char *name);
#define VMMPROTO_UUID_STR 37 /* 36 characters and the NUL */
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex digits in either case) into 16 bytes in RFC 4122
 * order; *ret written only on success. 0 or -EINVAL. */
int vmmproto_uuid_parse(const char *s, uint8_t ret[16]);
/* The canonical lower-case form. */
void vmmproto_uuid_format(const uint8_t uuid[16], char ret[VMMPROTO_UUID_STR]);
