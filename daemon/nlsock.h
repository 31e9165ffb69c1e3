/* SPDX-License-Identifier: Apache-2.0 */
/* nlsock: the daemon's netlink transport. Owns the socket (generic netlink family
 * "snp_attest", or NETLINK_USERSOCK towards snp-kvmsim), the REGISTER handshake and its
 * retries, batched receive, sender checks and the counters. Knows nothing of policy. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "nl.h"

struct nlsock;

struct nlsock_handler {
	/* A well-formed snp_attest message from the kernel (or the simulator). */
	void (*on_message)(void *userdata, const struct snpa_msg *m);
	/* The broker role was granted (after REGISTER's ACK); VM_DUMP has been sent. */
	void (*on_registered)(void *userdata);
	/* The role was lost or never granted (peer gone, EBUSY): requests will not arrive. */
	void (*on_unregistered)(void *userdata, int reason);
	/* Messages were lost (ENOBUFS/overrun); a VM_DUMP has been sent to resynchronise. */
	void (*on_resync)(void *userdata);
};

struct nlsock_stats {
	uint64_t rx_msgs;
	uint64_t tx_msgs;
	uint64_t tx_datagrams; /* verdicts answering one receive batch share a datagram */
	uint64_t tx_errors;
	uint64_t malformed;	 /* failed nl_parse */
	uint64_t foreign_sender; /* dropped: not from the kernel's (or simulator's) port */
	uint64_t enobufs;	 /* receive overruns */
	uint64_t register_attempts;
	uint64_t registrations;
	uint64_t malformed_answered; /* malformed GUEST_REQs still answered BUSY by req id */
	uint64_t family_missing;     /* failed lookups of the generic netlink family */
};

/* Looks up a generic netlink family's id by name (CTRL_CMD_GETFAMILY on a socket of its own).
 * Bounded: the kernel queues its answer before the request's send returns; the receives still
 * time out (at most 4 of 0.5 s). -ENOENT: no such family; -EINVAL: not a valid name;
 * -ETIMEDOUT, -EINTR or a socket error otherwise. Writes *ret_id only on success. */
int nlsock_resolve_family(const char *name, uint16_t *ret_id);

int nlsock_new(struct ev_loop *loop, const struct conf *c, const struct nlsock_handler *h,
	       void *userdata, struct nlsock **ret);
void nlsock_free(struct nlsock *s);
/* Starts the REGISTER handshake (retried every second until granted). */
int nlsock_start(struct nlsock *s);
/* Sends one message to the kernel. -ENOTCONN when not registered (messages other than
 * REGISTER need the role), or a send error (counted). */
int nlsock_send(struct nlsock *s, const struct snpa_msg *m);
bool nlsock_registered(const struct nlsock *s);
const struct nlsock_stats *nlsock_get_stats(const struct nlsock *s);
const char *nlsock_transport_name(const struct nlsock *s);
/* CLOCK_MONOTONIC µs at which the datagrams being handled were received (valid inside
 * on_message; 0 outside a receive batch). */
uint64_t nlsock_rx_usec(const struct nlsock *s);
/* The socket, for tests that need to provoke conditions only a kernel sender can (overruns). */
int nlsock_fd(const struct nlsock *s);
