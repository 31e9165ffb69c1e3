/* SPDX-License-Identifier: Apache-2.0 */
/* ctlproto: the control protocol codec (docs/control-protocol.md): one JSON object per line,
 * request parsing and validation, reply building and parsing. Pure: the daemon and snpctl do the
 * I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sched-policy.h"

/* Longest request or reply line the peers accept, newline included. A request line longer than
 * this is answered EMSGSIZE and the connection closed; replies may be larger (vm.list). */
#define CTL_REQUEST_MAX (64 * 1024)
#define CTL_REPLY_MAX (64 * 1024 * 1024)

#define CTL_TCB_TEXT_MAX 64    /* longest "tcb" text of tcb.set, NUL included */
#define CTL_HASHSTICK_SIZE 432 /* SNP_VLEK_HASHSTICK_SIZE (facts §8) */
/* Longest certificate text of cert.import (PEM, or base64 of the DER), NUL not included. */
#define CTL_CERT_TEXT_MAX (16 * 1024)

enum ctl_cmd {
	CTL_CMD_STATUS = 1,
	CTL_CMD_VM_LIST,
	CTL_CMD_VM_SHOW,
	CTL_CMD_QUOTA_GET,
	CTL_CMD_QUOTA_LIST,
	CTL_CMD_QUOTA_SET,
	CTL_CMD_QUOTA_RESET,
	CTL_CMD_CERT_ROTATE, /* rebuild the chain from its source and swap it (design §6) */
	CTL_CMD_TCB_SHOW,
	CTL_CMD_TCB_SET, /* "tcb": the new reported TCB (tcb_parse syntax; the daemon checks) */
	CTL_CMD_TCB_COMMIT,
	CTL_CMD_VLEK_LOAD,  /* "hashstick": the 432-byte wrapped VLEK as 864 hex digits */
	CTL_CMD_CERT_SHOW,  /* the served chain, certificate by certificate, with PEMs */
	CTL_CMD_CERT_FETCH, /* revalidate the chain and VCEK with KDS now; rotate if they changed */
	CTL_CMD_CERT_IMPORT, /* "leaf", "ask", "ark": certificates for the KDS cache (air-gapped) */
	_CTL_CMD_MAX,
};

/* What a peer may do; ordered: an admin may do everything a reader may. */
enum ctl_role {
	CTL_ROLE_NONE = 0,
	CTL_ROLE_READER,
	CTL_ROLE_ADMIN,
};

/* Quota fields of quota.set that were given (the others keep their current value). */
enum {
	CTL_QUOTA_RATE = 1u << 0,
	CTL_QUOTA_BURST = 1u << 1,
	CTL_QUOTA_WEIGHT = 1u << 2,
};

#define CTL_VM_REF_MAX 64

struct ctl_request {
	enum ctl_cmd cmd;
	json_t *id; /* owned: the request's "id", echoed in the reply; NULL if none */
	bool has_vm;
	uint64_t vm_id;
	/* "vm" given as a VMM-socket VM's UUID or name (1 to CTL_VM_REF_MAX printable bytes, no
	 * spaces, not all digits), "" otherwise; the daemon resolves it to vm_id. */
	char vm_ref[CTL_VM_REF_MAX + 1];
	unsigned quota_fields; /* CTL_QUOTA_* given in quota.set */
	struct sched_quota quota;
	char tcb[CTL_TCB_TEXT_MAX]; /* tcb.set: as sent (printable ASCII), "" otherwise */
	bool has_hashstick;
	uint8_t hashstick[CTL_HASHSTICK_SIZE];
	/* cert.import: owned NUL-terminated texts (PEM or base64 DER; printable ASCII and line
	 * breaks), NULL otherwise. ctl_request_done frees them. */
	char *leaf, *ask, *ark;
};

/* Why a request was refused, for the error reply. id is a new reference (or NULL) that the
 * caller must json_decref: error replies echo the id too when it could be read. */
struct ctl_parse_error {
	const char *msg; /* static text */
	json_t *id;	 /* owned by the caller after the call; NULL if none was readable */
};

/* "status", "vm.list", ... or NULL for an out-of-range value. */
const char *ctl_cmd_name(enum ctl_cmd c);
/* The least role that may run c. */
enum ctl_role ctl_cmd_role(enum ctl_cmd c);
const char *ctl_role_name(enum ctl_role r);

/* Parses one request line (len bytes, without the newline; no NUL needed). -EMSGSIZE when
 * len >= CTL_REQUEST_MAX, -EBADMSG for anything that is not a JSON object with unique keys,
 * -EINVAL for a bad or missing field or an unknown key, -EOPNOTSUPP for an unknown command.
 * err (may be NULL) gets the reason and any readable id on failure. */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
		      struct ctl_parse_error *err);
void ctl_request_done(struct ctl_request *r);
/* The request as one line ending in '\n' (malloc'd; NULL on allocation failure). */
char *ctl_request_build(const struct ctl_request *r);

/* Replies. body (stolen, may be NULL) is an object whose members are merged into
 * {"ok":true,"id":...}. The result ends in '\n'; NULL on allocation failure. */
char *ctl_reply_ok(const json_t *id, json_t *body);
/* {"ok":false,"id":...,"error":msg,"code":"EINVAL"}; r a negative errno. */
char *ctl_reply_error(const json_t *id, int r, const char *msg);
/* Parses a reply line. 0 with *ret_body (the whole object, new reference) when ok is true;
 * a negative errno from "code" (-EIO for an unknown code) when ok is false, with the daemon's
 * message copied into errbuf; -EBADMSG for a malformed reply (errbuf says why). */
int ctl_reply_parse(const char *line, size_t len, json_t **ret_body, char *errbuf,
		    size_t errbuf_size);

/* "EINVAL" for -EINVAL (or EINVAL); "EIO" for values not in the protocol's table. */
const char *ctl_errno_name(int r);
/* The inverse: -EINVAL for "EINVAL"; -EIO for an unknown name. */
int ctl_errno_from_name(const char *name);

/* VM ids are u64 but JSON integers are signed: ids above INT64_MAX travel as decimal strings.
 * ctl_json_u64 returns a new reference (NULL on allocation failure). */
json_t *ctl_json_u64(uint64_t v);
/* Accepts a non-negative JSON integer or a string of decimal digits; -EINVAL otherwise,
 * -ERANGE above UINT64_MAX. */
int ctl_json_get_u64(const json_t *v, uint64_t *ret);
/* {"rate":"0.5","burst":4,"weight":2}: rate as a decimal string in requests per second. */
json_t *ctl_quota_to_json(const struct sched_quota *q);
/* The inverse (all three fields required); -EINVAL with *reason on a bad one. */
int ctl_quota_from_json(const json_t *o, struct sched_quota *ret, const char **reason);
