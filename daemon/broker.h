/* SPDX-License-Identifier: Apache-2.0 */
/* broker: the daemon's guest-facing module and its read-only view for ctl and metrics. It
 * assembles the admission core (admission.h) with its netlink transport, the platform view
 * (firmware backend, worker), the rotation of the served chain, the chain source and the
 * quotas; broker-int.h says which file owns what. Everything runs on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "admission.h"
#include "manager.h"
#include "sched-policy.h"
#include "sevuapi.h"
#include "chain.h"

#include <openssl/x509.h>

struct broker;
struct nlsock_stats;

extern const struct manager_module broker_module;

/* Completion of an asynchronous operation: r = 0 or -errno, message one line (borrowed, valid
 * during the call). Called exactly once, on the loop thread, never from inside the starting
 * call. */
typedef void (*broker_op_done_fn)(void *userdata, int r, const char *message);

struct broker *broker_get(struct manager *m);
const struct adm_stats *broker_get_stats(const struct broker *b);
/* The admission core, read-only (VMs, quotas, counters). */
const struct adm *broker_adm(const struct broker *b);
const struct chain *broker_chain(const struct broker *b); /* NULL: serving no chain */
const struct platform_facts *broker_platform(const struct broker *b);
bool broker_registered(const struct broker *b);
/* SNP state (platform.c): false while SNP is not initialised (the daemon waits for kvm_amd);
 * probes counts the SNP_PLATFORM_STATUS reads made while waiting. */
bool broker_snp_initialized(const struct broker *b);
uint64_t broker_snp_probes(const struct broker *b);
unsigned broker_inflight(const struct broker *b);
unsigned broker_queued(const struct broker *b);
size_t broker_vm_count(const struct broker *b);
bool broker_paused(const struct broker *b);
const char *broker_backend_name(const struct broker *b);
bool broker_sim_root_trusted(const struct broker *b);
/* -ENOENT for an unknown VM. */
int broker_vm_info(const struct broker *b, uint64_t vm_id, struct adm_vm_info *ret);
size_t broker_vm_foreach(const struct broker *b,
			 void (*fn)(void *userdata, const struct adm_vm_info *info),
			 void *userdata);
/* Runtime quota for a VM, q NULL: back to the default. Stored first (on the worker thread),
 * then applied: cb gets 0, or the error with its cause and nothing changed. Returns 0 (cb
 * follows, never from inside this call) or -EINVAL/-ESHUTDOWN/-ENOMEM with err. */
int broker_set_quota(struct broker *b, uint64_t vm_id, const struct sched_quota *q,
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size);
/* --- rotation and TCB administration (design §6, facts §9.2) ---
 * A rotation: the new chain is obtained first (refused if it cannot be, except after a TCB
 * change seen in platform status, which must be followed), then admission pauses (new requests
 * get BUSY), in-flight requests finish (at most BROKER_ROTATE_DRAIN_SEC), and on the worker
 * thread the exclusive OFD lock on the VMM certificate file is taken, the firmware change (if
 * any) runs, platform status is read back and the VMM file rewritten, the lock released; then
 * the chain and platform view are swapped on the loop and admission resumes. Nothing is ever
 * served that does not match the key and TCB that sign the reports: if no matching chain can be
 * had after a firmware change, no chain is served (and that is logged). */
#define BROKER_ROTATE_DRAIN_SEC 3.0

/* Each returns 0 (started: cb follows; cb may be NULL) or a negative errno with a one-line
 * reason in err (cb not called): -EBUSY (a rotation is under way), -ESHUTDOWN (draining),
 * -ENOKEY (the chain for the new TCB/key cannot be obtained), -ERANGE (TCB newer than the
 * current one), -EALREADY (nothing to commit). */
int broker_rotate(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		  size_t err_size);
/* SET_CONFIG with reported_tcb (the mask flags are kept as they are). */
int broker_tcb_set(struct broker *b, uint64_t reported_tcb, broker_op_done_fn cb, void *userdata,
		   char *err, size_t err_size);
/* COMMIT: committed and reported TCB := current TCB. */
int broker_tcb_commit(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		      size_t err_size);
/* VLEK_LOAD of a wrapped hashstick; then the VLEK chain is served. */
int broker_vlek_load(struct broker *b, const uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE],
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size);
/* The caller of an operation goes away (e.g. a control client disconnected): its callback
 * will not be called. */
void broker_op_forget(struct broker *b, void *userdata);
/* Committed TCB if the backend tells (sim); -EOPNOTSUPP otherwise. */
int broker_committed_tcb(const struct broker *b, uint64_t *ret);
/* The VMM socket transport (VMs by UUID and name, its counters); NULL before start. */
struct vmmtransport;
const struct vmmtransport *broker_vmmtransport(const struct broker *b);
/* The netlink transport's counters (malformed, foreign senders, overruns, ...). */
const struct nlsock_stats *broker_nlsock_stats(const struct broker *b);

struct broker_rotation_stats {
	uint64_t started;
	uint64_t succeeded;
	uint64_t failed;	   /* refused, timed out, or the firmware change failed */
	uint64_t tcb_changes_seen; /* reported TCB changed outside the daemon (polling) */
	uint64_t vmm_file_writes;
	uint64_t vmm_file_errors;
	bool in_progress;
	time_t last_time; /* wall clock of the last completed rotation, 0 none */
	int last_result;
	char last_message[256];
};
const struct broker_rotation_stats *broker_get_rotation_stats(const struct broker *b);
/* The KDS client (with its cache) when it is the chain source, else NULL. */
struct kdsc;
struct kdsc *broker_kdsc(const struct broker *b);

/* --- offline import and explicit KDS fetch (snpctl cert import|fetch) --- */
/* Verifies leaf/ask/ark (always taken over, freed here) against the platform's chip, reported
 * TCB and the trusted roots, writes them into the KDS cache under the platform's cert_chain and
 * VCEK keys (fresh for ever), then starts a rotation that serves them (cb as broker_rotate).
 * -EOPNOTSUPP when the chain does not come from the KDS cache (cert_dir configured, no kds_url,
 * a VLEK loaded), -EBUSY, -ESHUTDOWN, the chain_build error when they do not fit. */
int broker_cert_import(struct broker *b, X509 *leaf, X509 *ask, X509 *ark, broker_op_done_fn cb,
		       void *userdata, char *err, size_t err_size);

/* Outcome of one key of a cert fetch. */
struct broker_fetch_key {
	int r;		      /* 0 or the kdsc error */
	unsigned http_status; /* 0: no request was made (backing off, or served from cache) */
	bool from_kds;	      /* the body came from a 200 just now */
	bool stale;	      /* a cached copy was served because KDS could not be asked */
	int fetch_error;      /* with stale */
	unsigned failures;    /* consecutive failed attempts of the key */
	double retry_in_sec;  /* until the next request for the key is allowed, 0 if now */
};
struct broker_fetch_result {
	struct broker_fetch_key chain, leaf;
	bool changed; /* the answer differs from the chain served (or none is served) */
	bool rotated; /* a rotation was started and has finished */
	int rotate_r; /* of that rotation */
	char message[700];
};
/* Called once on the loop thread (never from inside broker_cert_fetch); res borrowed. */
typedef void (*broker_fetch_done_fn)(void *userdata, const struct broker_fetch_result *res);
/* Revalidates the platform's cert_chain and VCEK with KDS now (KDSC_FETCH_REVALIDATE) and
 * rotates when the answer differs from the served chain. -EOPNOTSUPP when KDS is not the
 * source (message says which is), -EBUSY while a fetch or rotation runs, -ESHUTDOWN. */
int broker_cert_fetch(struct broker *b, broker_fetch_done_fn cb, void *userdata, char *err,
		      size_t err_size);
/* Wall-clock time of the next scheduled chain refresh (expiry re-fetch or KDS retry), 0 none. */
time_t broker_next_refresh(const struct broker *b);
/* Wall-clock time the served chain was obtained and swapped in, 0 if none is served. */
time_t broker_chain_since(const struct broker *b);

/* The quota a VM gets (custom or default); false if it has no custom one. */
bool broker_get_quota(const struct broker *b, uint64_t vm_id, struct sched_quota *ret);
/* Iterates custom quotas (vm_id, quota). */
size_t broker_quota_foreach(const struct broker *b,
			    void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			    void *userdata);
void broker_default_quota(const struct broker *b, struct sched_quota *ret);
