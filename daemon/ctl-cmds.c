/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-cmds: what a control request does once it is framed and parsed: the role check per
 * command, the read commands answered at once, the asynchronous operations (rotation, TCB,
 * VLEK, certificate import and fetch, quotas) started on the broker and answered on completion,
 * and the audit trail of administrative commands. Owns no socket: replies go through ctl.c. */
#include "ctl-int.h"
#include "ctl-vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certs.h"
#include "log.h"

static struct broker *need_broker(struct ctl_client *cl, const json_t *id)
{
	struct broker *b = cl->ctl->m->broker;

	if (!b)
		client_error(cl, id, -EAGAIN, "the broker is not running");
	return b;
}

/* --- the audit trail --- */

/* Every administrative command (ctl_cmd_role() == admin) is recorded once with who asked (uid,
 * gid, pid, role), what (the command, the VM), the state before and after, and the outcome, as
 * journal fields (snp-attestd(8), AUDIT TRAIL). Refusals are recorded too. An operation that
 * completes later is recorded when it completes. */
#define AUDIT_MESSAGE_ID "MESSAGE_ID=6f3e1c9a4b7d4e0f8a2c5d1b9e7f3a60"

/* Copies s into the field buffer without control characters (they would split the line). */
static void audit_value(char *buf, size_t size, const char *name, const char *s)
{
	size_t o = (size_t)snprintf(buf, size, "%s=", name);

	for (; s && *s && o + 1 < size; s++)
		buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	if (o < size)
		buf[o] = '\0';
}

static void audit(const struct ctl_client *cl, enum ctl_cmd cmd, const uint64_t *vm,
		  const char *outcome, int r, const char *old, const char *new_, const char *detail)
{
	char f[11][320];
	const char *fields[11];
	size_t n = 0;

	audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_ACTION", ctl_cmd_name(cmd)), n++;
	audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_OUTCOME", outcome), n++;
	snprintf(f[n++], sizeof(f[0]), "SNP_PEER_UID=%u", (unsigned)cl->uid);
	snprintf(f[n++], sizeof(f[0]), "SNP_PEER_GID=%u", (unsigned)cl->gid);
	snprintf(f[n++], sizeof(f[0]), "SNP_PEER_PID=%d", (int)cl->pid);
	audit_value(f[n], sizeof(f[n]), "SNP_PEER_ROLE", ctl_role_name(cl->role)), n++;
	if (vm)
		snprintf(f[n++], sizeof(f[0]), "SNP_VM_ID=%llu", (unsigned long long)*vm);
	if (old)
		audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_OLD", old), n++;
	if (new_)
		audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_NEW", new_), n++;
	if (r < 0)
		audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_ERROR", ctl_errno_name(r)), n++;
	if (detail)
		audit_value(f[n], sizeof(f[n]), "SNP_AUDIT_DETAIL", detail), n++;
	for (size_t i = 0; i < n; i++)
		fields[i] = f[i];
	fields[n] = AUDIT_MESSAGE_ID;
	log_fields(strcmp(outcome, "ok") == 0 ? LOG_NOTICE : LOG_WARNING, fields, n + 1,
		   "Audit: %s by uid %u (pid %d): %s%s%s", ctl_cmd_name(cmd), (unsigned)cl->uid,
		   (int)cl->pid, outcome, detail ? ": " : "", detail ? detail : "");
}

static void audit_quota(char *buf, size_t size, struct broker *b, uint64_t vm)
{
	struct sched_quota q;
	char rate[32];
	bool custom = broker_get_quota(b, vm, &q);

	format_milli(q.rate_milli, rate, sizeof(rate));
	snprintf(buf, size, "rate=%s burst=%u weight=%u%s", rate, (unsigned)q.burst,
		 (unsigned)q.weight, custom ? "" : " (default)");
}

/* The state an operation changes, as one line for SNP_AUDIT_OLD / SNP_AUDIT_NEW. */
static void audit_op_state(char *buf, size_t size, struct broker *b)
{
	const struct platform_facts *pf = broker_platform(b);
	const struct chain *ch = broker_chain(b);
	uint64_t committed = 0;
	uint8_t fp[32];
	char hex[65] = "none", ctext[32] = "unknown";

	if (ch && certs_fingerprint_sha256(ch->leaf, fp) == 0)
		hex_encode(fp, sizeof(fp), hex);
	if (broker_committed_tcb(b, &committed) == 0)
		snprintf(ctext, sizeof(ctext), "0x%016llx", (unsigned long long)committed);
	snprintf(buf, size, "reported_tcb=0x%016llx committed_tcb=%s vlek_loaded=%s leaf_sha256=%s",
		 (unsigned long long)pf->reported_tcb, ctext, pf->vlek_loaded ? "yes" : "no", hex);
}

/* The reply of an asynchronous operation goes out now (body stolen; r < 0: error reply). */
static void op_reply(struct ctl_client *cl, int r, const char *message, json_t *body)
{
	json_t *id = TAKE_PTR(cl->op_id);

	struct broker *b = cl->ctl->m->broker;
	char now_state[256] = "";

	bool quota = cl->op_cmd == CTL_CMD_QUOTA_SET || cl->op_cmd == CTL_CMD_QUOTA_RESET;

	cl->op_pending = false;
	if (b && quota)
		audit_quota(now_state, sizeof(now_state), b, cl->op_vm_id);
	else if (b)
		audit_op_state(now_state, sizeof(now_state), b);
	audit(cl, cl->op_cmd, quota ? &cl->op_vm_id : NULL, r < 0 ? "failed" : "ok", r, cl->op_old,
	      b && (r == 0 || !quota) ? now_state : NULL, message);
	if (r < 0) {
		json_decref(body);
		client_error(cl, id, r, message);
	} else if (body) {
		json_object_set_new(body, "message", json_string(message));
		client_queue(cl, ctl_reply_ok(id, body));
	} else
		client_error(cl, id, -ENOMEM, "out of memory building the reply");
	json_decref(id);
	/* The time the operation took does not count against what waits behind it. */
	cl->in_since = cl->out_since = ev_now(cl->ctl->m->loop);
	client_step(cl); /* the reply, then the requests that wait behind it, in order */
}

/* Completion of an asynchronous operation. */
static void on_op_done(void *userdata, int r, const char *message)
{
	struct ctl_client *cl = userdata;
	struct broker *b = cl->ctl->m->broker;
	bool quota = cl->op_cmd == CTL_CMD_QUOTA_SET || cl->op_cmd == CTL_CMD_QUOTA_RESET;

	op_reply(cl, r, message,
		 r < 0	 ? NULL
		 : !b	 ? json_object()
		 : quota ? quota_entry(b, cl->op_vm_id)
			 : tcb_show_json(b));
}

static json_t *fetch_key_json(const struct broker_fetch_key *k, const char *key)
{
	const char *outcome = k->r < 0		      ? "error"
			      : k->http_status == 304 ? "not_modified"
			      : k->from_kds	      ? "fetched"
			      : k->stale	      ? "stale"
						      : "cache";
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:b, s:I, s:f}", "key", key, "outcome", outcome,
			      "http_status", (json_int_t)k->http_status, "source",
			      k->from_kds ? "kds"
			      : k->r < 0  ? "none"
					  : "cache",
			      "stale", k->stale, "failures", (json_int_t)k->failures,
			      "retry_in_sec", k->retry_in_sec);

	if (o && k->r < 0)
		json_object_set_new(o, "error", json_string(snp_strerror(k->r)));
	if (o && k->stale && k->fetch_error < 0)
		json_object_set_new(o, "fetch_error", json_string(snp_strerror(k->fetch_error)));
	return o;
}

/* Completion of cert.fetch: per-key outcomes, then whether a rotation ran. */
static void on_fetch_done(void *userdata, const struct broker_fetch_result *res)
{
	struct ctl_client *cl = userdata;
	json_t *body;
	int r = 0;

	body = json_pack("{s:[o, o], s:b, s:b}", "keys", fetch_key_json(&res->chain, "cert_chain"),
			 fetch_key_json(&res->leaf, "vcek"), "changed", res->changed, "rotated",
			 res->rotated);
	if (body && res->rotated)
		json_object_set_new(body, "rotation_ok", json_boolean(res->rotate_r == 0));
	/* The outcomes are the answer even when KDS failed; only a failed rotation is an error
	 * reply, since the admin asked for the chain to be brought up to date. */
	if (res->rotated && res->rotate_r < 0)
		r = res->rotate_r;
	op_reply(cl, r, res->message, body);
}

/* A certificate of cert.import: PEM text, or base64 of the DER. NULL with err on failure. */
static X509 *import_cert(const char *text, const char *what, char *err, size_t err_size)
{
	size_t len = strlen(text), n = 0;
	_cleanup_(freep) char *b64 = NULL;
	_cleanup_(freep) uint8_t *der = NULL;
	X509 *x = NULL;
	int r, dl;

	if (strstr(text, "-----BEGIN")) {
		r = certs_parse((const uint8_t *)text, len, &x);
	} else {
		/* Base64 without the whitespace; EVP_DecodeBlock counts the padding as zeros. */
		b64 = malloc(len + 1);
		der = malloc(len + 1);
		if (!b64 || !der) {
			snprintf(err, err_size, "out of memory");
			return NULL;
		}
		for (size_t i = 0; i < len; i++)
			if (text[i] != '\n' && text[i] != '\r' && text[i] != ' ' && text[i] != '\t')
				b64[n++] = text[i];
		r = -EBADMSG;
		if (n > 0 && n % 4 == 0) {
			dl = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)n);
			if (dl > 0) {
				dl -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
				r = certs_parse(der, (size_t)dl, &x);
			}
		}
	}
	if (r < 0) {
		snprintf(err, err_size, "the %s is not a certificate (PEM or base64 DER): %s", what,
			 snp_strerror(r));
		return NULL;
	}
	return x;
}

static int start_import(struct ctl_client *cl, struct broker *b, const struct ctl_request *q,
			char *err, size_t err_size)
{
	X509 *leaf = NULL, *ask = NULL, *ark = NULL;

	leaf = import_cert(q->leaf, "leaf (VCEK)", err, err_size);
	if (leaf)
		ask = import_cert(q->ask, "ASK", err, err_size);
	if (ask)
		ark = import_cert(q->ark, "ARK", err, err_size);
	if (!ark) {
		X509_free(leaf);
		X509_free(ask);
		return -EINVAL;
	}
	return broker_cert_import(b, leaf, ask, ark, on_op_done, cl, err, err_size);
}

static void start_op(struct ctl_client *cl, struct broker *b, const struct ctl_request *q)
{
	char err[1024] = "";
	uint64_t tcb;
	int r;

	if (cl->op_pending) {
		client_error(cl, q->id, -EBUSY,
			     "this connection is already waiting for an operation");
		return;
	}
	audit_op_state(cl->op_old, sizeof(cl->op_old), b);
	switch (q->cmd) {
	case CTL_CMD_CERT_ROTATE:
		r = broker_rotate(b, on_op_done, cl, err, sizeof(err));
		break;
	case CTL_CMD_TCB_SET:
		r = tcb_parse(q->tcb, broker_platform(b)->product, &tcb);
		if (r < 0) {
			snprintf(err, sizeof(err),
				 "bad TCB '%s': 16 hex digits, 0x..., or bl=,tee=,snp=,ucode= "
				 "(fmc= on Turin)",
				 q->tcb);
			break;
		}
		r = broker_tcb_set(b, tcb, on_op_done, cl, err, sizeof(err));
		break;
	case CTL_CMD_TCB_COMMIT:
		r = broker_tcb_commit(b, on_op_done, cl, err, sizeof(err));
		break;
	case CTL_CMD_VLEK_LOAD:
		r = broker_vlek_load(b, q->hashstick, on_op_done, cl, err, sizeof(err));
		break;
	case CTL_CMD_CERT_IMPORT:
		r = start_import(cl, b, q, err, sizeof(err));
		break;
	case CTL_CMD_CERT_FETCH:
		r = broker_cert_fetch(b, on_fetch_done, cl, err, sizeof(err));
		break;
	default:
		r = -EOPNOTSUPP;
		snprintf(err, sizeof(err), "unknown command");
		break;
	}
	if (r < 0) {
		char old[256];
		audit_op_state(old, sizeof(old), b);
		audit(cl, q->cmd, NULL, "failed", r, old, q->tcb[0] ? q->tcb : NULL,
		      err[0] ? err : snp_strerror(r));
		client_error(cl, q->id, r, err[0] ? err : snp_strerror(r));
		return;
	}
	log_info("Control: %s started by uid %u (pid %d)", ctl_cmd_name(q->cmd), (unsigned)cl->uid,
		 (int)cl->pid);
	cl->op_pending = true;
	cl->op_cmd = q->cmd;
	cl->op_id = q->id ? json_incref(q->id) : NULL;
}

void dispatch(struct ctl_client *cl, const struct ctl_request *q)
{
	struct ctl *c = cl->ctl;
	struct ctl_request named;
	struct broker *b;
	struct adm_vm_info info;
	struct sched_quota nq;
	char msg[256];
	json_t *body = NULL;
	int r;

	if (cl->role < ctl_cmd_role(q->cmd)) {
		c->refused++;
		if (ctl_cmd_role(q->cmd) == CTL_ROLE_ADMIN)
			audit(cl, q->cmd, q->has_vm ? &q->vm_id : NULL, "denied", -EACCES, NULL,
			      NULL, "needs the admin role");
		if (ratelimit_pass(&c->refuse_log, manager_now_usec(), NULL))
			log_notice("Control: refused %s for uid %u (pid %d, role %s)",
				   ctl_cmd_name(q->cmd), (unsigned)cl->uid, (int)cl->pid,
				   ctl_role_name(cl->role));
		snprintf(msg, sizeof(msg), "permission denied: '%s' needs the %s role (%s)",
			 ctl_cmd_name(q->cmd), ctl_role_name(ctl_cmd_role(q->cmd)),
			 ctl_cmd_role(q->cmd) == CTL_ROLE_ADMIN ? "root or the admin group"
								: "the admin or read-only group");
		client_error(cl, q->id, -EACCES, msg);
		/* A peer with no role at all gets one answer, then the door. */
		if (cl->role == CTL_ROLE_NONE)
			cl->closing = true;
		return;
	}
	b = need_broker(cl, q->id);
	if (!b)
		return;
	if (q->has_vm && q->vm_ref[0]) {
		/* A VM named by UUID or name (ctl-vm.c); the copy shares q's owned fields. */
		named = *q;
		r = ctl_vm_resolve(b, &named, msg, sizeof(msg));
		if (r < 0) {
			client_error(cl, q->id, r, msg);
			return;
		}
		q = &named;
	}

	switch (q->cmd) {
	case CTL_CMD_STATUS:
		body = status_json(c, b, cl->role);
		break;
	case CTL_CMD_VM_LIST: {
		json_t *arr = json_array();
		if (arr)
			broker_vm_foreach(b, add_vm, arr);
		ctl_vm_annotate_all(b, arr);
		body = json_pack("{s:o}", "vms", sorted(arr));
		break;
	}
	case CTL_CMD_VM_SHOW:
		if (broker_vm_info(b, q->vm_id, &info) < 0) {
			if (q->vm_ref[0])
				snprintf(msg, sizeof(msg), "no VM %s is connected", q->vm_ref);
			else
				snprintf(msg, sizeof(msg), "no VM %llu is known to the daemon",
					 (unsigned long long)q->vm_id);
			client_error(cl, q->id, -ENOENT, msg);
			return;
		}
		body = vm_json(&info, true);
		ctl_vm_annotate(b, body);
		body = json_pack("{s:o}", "vm_info", body);
		break;
	case CTL_CMD_QUOTA_GET:
		body = quota_entry(b, q->vm_id);
		break;
	case CTL_CMD_QUOTA_LIST: {
		struct sched_quota d;
		json_t *arr = json_array();
		if (arr)
			broker_quota_foreach(b, add_quota, arr);
		ctl_vm_annotate_all(b, arr);
		broker_default_quota(b, &d);
		body = json_pack("{s:o, s:o}", "default", ctl_quota_to_json(&d), "quotas",
				 sorted(arr));
		break;
	}
	case CTL_CMD_QUOTA_SET:
		(void)broker_get_quota(b, q->vm_id, &nq);
		if (q->quota_fields & CTL_QUOTA_RATE)
			nq.rate_milli = q->quota.rate_milli;
		if (q->quota_fields & CTL_QUOTA_BURST)
			nq.burst = q->quota.burst;
		if (q->quota_fields & CTL_QUOTA_WEIGHT)
			nq.weight = q->quota.weight;
		__attribute__((fallthrough));
	case CTL_CMD_QUOTA_RESET:
		/* Answered once the quota file is written (or could not be): on_op_done. */
		if (cl->op_pending) {
			client_error(cl, q->id, -EBUSY,
				     "this connection is already waiting for an operation");
			return;
		}
		audit_quota(cl->op_old, sizeof(cl->op_old), b, q->vm_id);
		r = broker_set_quota(b, q->vm_id, q->cmd == CTL_CMD_QUOTA_SET ? &nq : NULL,
				     on_op_done, cl, msg, sizeof(msg));
		if (r < 0) {
			audit(cl, q->cmd, &q->vm_id, "failed", r, cl->op_old, NULL, msg);
			client_error(cl, q->id, r, msg);
			return;
		}
		cl->op_pending = true;
		cl->op_cmd = q->cmd;
		cl->op_vm_id = q->vm_id;
		cl->op_id = q->id ? json_incref(q->id) : NULL;
		return;
	case CTL_CMD_TCB_SHOW:
		body = tcb_show_json(b);
		break;
	case CTL_CMD_CERT_ROTATE:
	case CTL_CMD_TCB_SET:
	case CTL_CMD_TCB_COMMIT:
	case CTL_CMD_VLEK_LOAD:
	case CTL_CMD_CERT_IMPORT:
	case CTL_CMD_CERT_FETCH:
		start_op(cl, b, q);
		return;
	case CTL_CMD_CERT_SHOW:
		body = cert_show_json(b);
		break;
	default:
		client_error(cl, q->id, -EOPNOTSUPP, "unknown command");
		return;
	}
	if (!body) {
		client_error(cl, q->id, -ENOMEM, "out of memory building the reply");
		return;
	}
	client_queue(cl, ctl_reply_ok(q->id, body));
}
