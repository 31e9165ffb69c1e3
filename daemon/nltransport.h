/* SPDX-License-Identifier: Apache-2.0 */
/* nltransport: the netlink transport of the admission core. Owns the netlink socket
 * (nlsock.c) and translates: GUEST_REQ, GUEST_DONE, VM_ADD, VM_REMOVE and the VM_DUMP replay
 * into core calls (admission.h), the core's verdicts into VERDICT messages. */
#pragma once

#include <ev.h>
#include <stdbool.h>

#include "admission.h"
#include "conf.h"

struct nltransport;
struct nlsock_stats;

/* Status text changes (registered, role lost) for sd_notify STATUS=; may be NULL. */
typedef void (*nltransport_status_fn)(void *userdata, const char *status);

int nltransport_new(struct ev_loop *loop, const struct conf *c, struct adm *adm,
		    nltransport_status_fn status, void *userdata, struct nltransport **ret);
void nltransport_free(struct nltransport *n);
/* Starts the REGISTER handshake. */
int nltransport_start(struct nltransport *n);
bool nltransport_registered(const struct nltransport *n);
const struct nlsock_stats *nltransport_stats(const struct nltransport *n);
