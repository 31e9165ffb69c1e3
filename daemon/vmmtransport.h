/* SPDX-License-Identifier: Apache-2.0 */
/* vmmtransport: the VMM socket transport of the admission core (docs/vmm-protocol.md). Owns
 * the listening AF_UNIX SOCK_SEQPACKET socket (its own or the one systemd passes with the name
 * "vmm") and one connection per VM; turns HELLO, CERTS, DONE and a closed connection into core
 * calls (admission.h) and the core's verdicts into ALLOW, BUSY and ENOSPC. It decides nothing
 * about admission: every verdict is the core's. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "conf.h"
#include "vmmproto.h"

struct vmmtransport;

/* Everything a peer did wrong or that went wrong on a connection is counted here (metrics). */
enum vmmt_refusal {
	VMMT_REFUSE_DENIED,    /* SO_PEERCRED: neither root nor [vmm] group */
	VMMT_REFUSE_LIMIT,     /* [vmm] max_clients reached */
	VMMT_REFUSE_MALFORMED, /* a message did not parse (or was truncated) */
	VMMT_REFUSE_VERSION,   /* a protocol version we do not speak */
	VMMT_REFUSE_STATE,     /* a valid message at the wrong moment */
	VMMT_REFUSE_DUPLICATE, /* another live connection speaks for the UUID */
	VMMT_REFUSE_UNKNOWN_REQ, /* DONE for a request that is not outstanding */
	VMMT_REFUSE_HELLO_TIMEOUT, /* no HELLO within [vmm] hello_timeout */
	VMMT_REFUSE_PEER_ERROR,    /* the VMM sent ERROR */
	VMMT_REFUSE_SEND,          /* we could not send (peer not reading): connection dropped */
	_VMMT_REFUSE_MAX,
};

struct vmmtransport_stats {
	uint64_t accepted;   /* connections accepted (authorised or not) */
	uint64_t hellos;     /* VMs announced (HELLO_ACK sent) */
	uint64_t closed;     /* connections ended, for any reason */
	uint64_t certs;      /* CERTS received */
	uint64_t allow, busy, enospc; /* answers sent */
	uint64_t done_firmware, done_abandoned;
	uint64_t refused[_VMMT_REFUSE_MAX];
	uint64_t connections; /* open now */
	uint64_t vms;         /* open now and past HELLO */
	bool listening;
	bool activated; /* the socket came from systemd */
};

/* What the transport knows of one of its VMs (for snpctl and metrics). */
struct vmmt_vm {
	uint64_t vm_id;
	uint8_t uuid[16];
	const char *name; /* borrowed: valid until the VM goes */
	uint32_t peer_uid;
	uint32_t peer_pid;
};

/* Opens the socket as conf [vmm] says (none: no socket, and vmmtransport_new still succeeds;
 * auto: only a socket systemd passes). -errno with a line in err. */
int vmmtransport_new(struct ev_loop *loop, const struct conf *c, struct adm *adm,
		     struct vmmtransport **ret, char *err, size_t err_size);
/* Each VM's connection gets ERROR shutdown and is closed; its VMs are forgotten by the core.
 * NULL accepted. */
void vmmtransport_free(struct vmmtransport *v);
/* Takes the [vmm] keys that apply to a running socket (group, max_clients, hello_timeout);
 * a changed socket path needs a restart (reported through skipped). */
void vmmtransport_reconfigure(struct vmmtransport *v, const struct conf *old,
			      const struct conf *c, void (*skipped)(void *userdata, const char *key),
			      void *userdata);
const struct vmmtransport_stats *vmmtransport_stats(const struct vmmtransport *v);
/* The listening path ("" when none; the activated socket's path when systemd passed it). */
const char *vmmtransport_path(const struct vmmtransport *v);
/* A connected VM by id, or by name (first match). -ENOENT. */
int vmmtransport_vm(const struct vmmtransport *v, uint64_t vm_id, struct vmmt_vm *ret);
int vmmtransport_vm_by_name(const struct vmmtransport *v, const char *name, struct vmmt_vm *ret);
const char *vmmtransport_refusal_name(enum vmmt_refusal r);
