/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-int: what the files of the control socket (ctl.c, ctl-cmds.c, ctl-views.c) share and
 * nothing outside them may include: the server and client state, and the calls between those
 * files. */
#pragma once

#include "ctl.h"

#include <ev.h>
#include <jansson.h>

#include "broker.h"
#include "ratelimit.h"
#include "util.h"

#define CTL_PEER_GROUPS_MAX 1024

struct ctl;

struct ctl_client {
	struct ctl *ctl; /* borrowed */
	struct ctl_client *prev, *next;
	int fd;
	ev_io io;
	ev_timer deadline; /* the request, reply or idle deadline, whichever comes first */
	enum ctl_role role;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char *in; /* owned, CTL_REQUEST_MAX bytes */
	size_t in_len;
	struct strbuf out; /* owned: replies not yet written */
	size_t out_off;
	ev_tstamp accepted;   /* loop time of accept */
	ev_tstamp in_since;   /* when the first byte of the unfinished input arrived (in_len > 0) */
	ev_tstamp out_since;  /* when the unwritten replies started to queue (out pending) */
	ev_tstamp idle_since; /* when the client last had nothing in flight */
	bool eof;     /* the peer half-closed: nothing more to read; a last line without '\n'
		       * is still a request, answered in its turn */
	bool closing; /* no more requests: close once out is written */
	/* An asynchronous operation (rotation, TCB change) answered by broker_on_op_done. */
	bool op_pending;
	json_t *op_id; /* owned: the request's id */
	enum ctl_cmd op_cmd;
	uint64_t op_vm_id; /* quota.set/reset: the VM */
	char op_old[256];  /* the state before it, for the audit trail */
};

struct ctl {
	struct manager *m; /* borrowed */
	int fd;
	bool activated;
	char *path; /* owned; the socket file we created (NULL when socket-activated) */
	ev_io accept_io;
	struct ctl_client *clients; /* owned list */
	size_t n_clients;
	size_t n_unprivileged; /* clients whose role is not admin */
	size_t n_norole;       /* clients with no role at all */
	struct ratelimit refuse_log;
	uint64_t requests, errors, refused, dropped;
};

/* ctl.c: the connection. */
void client_queue(struct ctl_client *cl, char *line);
void client_error(struct ctl_client *cl, const json_t *id, int r, const char *msg);
/* Processes, writes and re-arms the client; cl must not be used after this. */
void client_step(struct ctl_client *cl);

/* ctl-views.c: the JSON bodies (NULL when out of memory). sorted() sorts an array of objects
 * by "vm"; add_vm and add_quota are broker iteration callbacks appending to a json array. */
json_t *status_json(struct ctl *c, struct broker *b, enum ctl_role role);
json_t *vm_json(const struct adm_vm_info *i, bool full);
json_t *sorted(json_t *arr);
void add_vm(void *userdata, const struct adm_vm_info *info);
void add_quota(void *userdata, uint64_t vm_id, const struct sched_quota *q);
json_t *quota_entry(struct broker *b, uint64_t vm_id);
json_t *tcb_show_json(struct broker *b);
json_t *cert_show_json(struct broker *b);

/* ctl-cmds.c: one request line, parsed, answered or started. */
void dispatch(struct ctl_client *cl, const struct ctl_request *q);
