/* SPDX-License-Identifier: Apache-2.0 */
/* ctl: control socket. Listening socket, per-client line buffers capped at CTL_REQUEST_MAX,
 * SO_PEERCRED roles, dispatch to the broker, the audit trail of administrative commands. Every
 * socket is non-blocking; a client that stalls only stalls itself. Deadlines are per request,
 * not per byte ([control] request_timeout), and slots are kept for administrators, so no number
 * of unprivileged or slow peers keeps root or the admin group out. */
#include "ctl.h"
#include "ctl-vm.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <systemd/sd-daemon.h>

#include "broker.h"
#include "certs.h"
#include "config.h"
#include "log.h"
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
	ev_tstamp accepted;  /* loop time of accept */
	ev_tstamp in_since;  /* when the first byte of the unfinished input arrived (in_len > 0) */
	ev_tstamp out_since; /* when the unwritten replies started to queue (out pending) */
	ev_tstamp idle_since; /* when the client last had nothing in flight */
	bool eof;     /* the peer half-closed: nothing more to read; a last line without '\n'
		       * is still a request, answered in its turn */
	bool closing; /* no more requests: close once out is written */
	/* An asynchronous operation (rotation, TCB change) answered by broker_on_op_done. */
	bool op_pending;
	json_t *op_id;      /* owned: the request's id */
	enum ctl_cmd op_cmd;
	uint64_t op_vm_id;  /* quota.set/reset: the VM */
	char op_old[256];   /* the state before it, for the audit trail */
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

int ctl_get_stats(struct manager *m, struct ctl_stats *ret)
{
	const struct ctl *c = m->ctl;

	if (!c)
		return -ENOENT;
	*ret = (struct ctl_stats){ .requests = c->requests, .errors = c->errors,
				   .refused = c->refused, .dropped = c->dropped,
				   .clients = c->n_clients };
	return 0;
}

/* --- authorisation --- */

static bool group_gid(const char *name, gid_t *ret)
{
	struct group *g;

	if (!name || !*name)
		return false;
	g = getgrnam(name);
	if (!g)
		return false;
	*ret = g->gr_gid;
	return true;
}

static bool in_groups(gid_t want, gid_t gid, const gid_t *groups, size_t n)
{
	if (gid == want)
		return true;
	for (size_t i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

enum ctl_role ctl_role_for(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
			   const char *admin_group, const char *readonly_group)
{
	gid_t g;

	if (uid == 0 || uid == geteuid())
		return CTL_ROLE_ADMIN;
	if (group_gid(admin_group, &g) && in_groups(g, gid, groups, n_groups))
		return CTL_ROLE_ADMIN;
	if (group_gid(readonly_group, &g) && in_groups(g, gid, groups, n_groups))
		return CTL_ROLE_READER;
	return CTL_ROLE_NONE;
}

/* The peer's groups as the kernel saw them at connect time (SO_PEERGROUPS); on kernels without
 * it, the user's groups from the user database. */
static enum ctl_role peer_role(struct ctl *c, int fd, uid_t *ret_uid, gid_t *ret_gid,
			       pid_t *ret_pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	gid_t *groups;
	enum ctl_role role;
	int n = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof(uc))
		return CTL_ROLE_NONE;
	*ret_uid = uc.uid;
	*ret_gid = uc.gid;
	*ret_pid = uc.pid;
	groups = calloc(CTL_PEER_GROUPS_MAX, sizeof(gid_t));
	if (!groups)
		return CTL_ROLE_NONE;
	len = CTL_PEER_GROUPS_MAX * sizeof(gid_t);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		n = (int)(len / sizeof(gid_t));
	} else if (errno == ENOPROTOOPT) {
		struct passwd *pw = getpwuid(uc.uid);
		n = CTL_PEER_GROUPS_MAX;
		if (!pw || getgrouplist(pw->pw_name, uc.gid, groups, &n) < 0)
			n = 0;
	}
	role = ctl_role_for(uc.uid, uc.gid, groups, (size_t)n, c->m->conf.admin_group,
			    c->m->conf.readonly_group);
	free(groups);
	return role;
}

/* --- clients --- */

static void client_free(struct ctl_client *cl)
{
	struct ctl *c;

	if (!cl)
		return;
	c = cl->ctl;
	if (cl->op_pending && c->m->broker)
		broker_op_forget(c->m->broker, cl);
	json_decref(cl->op_id);
	ev_io_stop(c->m->loop, &cl->io);
	ev_timer_stop(c->m->loop, &cl->deadline);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;
	if (cl->role != CTL_ROLE_ADMIN)
		c->n_unprivileged--;
	if (cl->role == CTL_ROLE_NONE)
		c->n_norole--;
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->in);
	strbuf_done(&cl->out);
	free(cl);
}

static bool out_pending(const struct ctl_client *cl)
{
	return cl->out_off < cl->out.len;
}

static void client_queue(struct ctl_client *cl, char *line)
{
	if (!out_pending(cl))
		cl->out_since = ev_now(cl->ctl->m->loop);
	if (!line) {
		/* Out of memory building a reply: the client cannot get a coherent answer. */
		cl->closing = true;
		return;
	}
	strbuf_append(&cl->out, line);
	free(line);
	if (strbuf_failed(&cl->out))
		cl->closing = true;
}

static void client_error(struct ctl_client *cl, const json_t *id, int r, const char *msg)
{
	cl->ctl->errors++;
	client_queue(cl, ctl_reply_error(id, r, msg));
}

static void client_step(struct ctl_client *cl);

static struct broker *need_broker(struct ctl_client *cl, const json_t *id)
{
	struct broker *b = cl->ctl->m->broker;

	if (!b)
		client_error(cl, id, -EAGAIN, "the broker is not running");
	return b;
}

static json_t *tcb_json(uint64_t raw, enum snp_product p)
{
	char text[TCB_FORMAT_MAX], hex[24];

	snprintf(hex, sizeof(hex), "0x%016llx", (unsigned long long)raw);
	return json_pack("{s:s, s:s}", "raw", hex, "text", tcb_format(raw, p, text, sizeof(text)));
}

static json_t *counters_json(const uint64_t *v, size_t n, const char *(*name)(int))
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++) {
		const char *k = name((int)i);
		if (k && strcmp(k, "none") != 0)
			json_object_set_new(o, k, json_integer((json_int_t)MIN(v[i], (uint64_t)INT64_MAX)));
	}
	return o;
}

static const char *busy_name(int i)
{
	return i == SCHED_BUSY_NONE ? NULL : sched_busy_reason_name((enum sched_busy_reason)i);
}

static const char *anom_name(int i)
{
	return sched_anomaly_name((enum sched_anomaly)i);
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)MIN(v, (uint64_t)INT64_MAX));
}

static void time_text(time_t t, char *buf, size_t size)
{
	struct tm tm;

	buf[0] = '\0';
	if (gmtime_r(&t, &tm))
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *name_cn(const X509_NAME *n, char *buf, size_t size)
{
	buf[0] = '\0';
	if (n && X509_NAME_get_text_by_NID((X509_NAME *)n, NID_commonName, buf, (int)size) < 0)
		buf[0] = '\0';
	return buf;
}

static json_t *asn1_time_json(const ASN1_TIME *t)
{
	struct tm tm;
	char text[64];

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return json_null();
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:I, s:s}", "epoch", (json_int_t)timegm(&tm), "text", text);
}

/* One certificate of the served chain: names, serial, validity, fingerprint and PEM. */
static json_t *cert_json(X509 *x, const char *role)
{
	char subject[256], issuer[256], fp_hex[65];
	uint8_t fp[32];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *serial = bn ? BN_bn2hex(bn) : NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long pem_len = 0;
	json_t *o = NULL;

	if (bio && PEM_write_bio_X509(bio, x) == 1)
		pem_len = BIO_get_mem_data(bio, &pem);
	if (certs_fingerprint_sha256(x, fp) == 0)
		hex_encode(fp, sizeof(fp), fp_hex);
	else
		fp_hex[0] = '\0';
	if (serial && pem && pem_len > 0)
		o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s%}", "role", role, "subject_cn",
			      name_cn(X509_get_subject_name(x), subject, sizeof(subject)),
			      "issuer_cn", name_cn(X509_get_issuer_name(x), issuer, sizeof(issuer)),
			      "serial", serial, "not_before", asn1_time_json(X509_get0_notBefore(x)),
			      "not_after", asn1_time_json(X509_get0_notAfter(x)), "sha256", fp_hex,
			      "pem", pem, (size_t)pem_len);
	OPENSSL_free(serial);
	BN_free(bn);
	BIO_free(bio);
	return o;
}

/* status' chain object gets subjects, notAfter per certificate, when it was obtained (and its
 * age) and the next scheduled refresh. */
static void chain_extra(json_t *chain, struct broker *b, const struct store_chain *ch)
{
	X509 *certs[3] = { ch->leaf, ch->ask, ch->ark };
	const char *roles[3] = { ch->vlek ? "vlek" : "vcek", ch->vlek ? "asvk" : "ask", "ark" };
	json_t *subj = json_array();
	time_t since = broker_chain_since(b), next = broker_next_refresh(b), now = time(NULL);
	char text[64], cn[256];

	for (size_t i = 0; subj && i < 3; i++)
		json_array_append_new(subj, json_pack("{s:s, s:s, s:o}", "role", roles[i],
						      "subject_cn",
						      name_cn(X509_get_subject_name(certs[i]), cn,
							      sizeof(cn)),
						      "not_after",
						      asn1_time_json(X509_get0_notAfter(certs[i]))));
	json_object_set_new(chain, "certificates", subj ? subj : json_null());
	time_text(since, text, sizeof(text));
	json_object_set_new(chain, "obtained", json_integer((json_int_t)since));
	json_object_set_new(chain, "obtained_text", json_string(text));
	json_object_set_new(chain, "age_sec", json_integer(since && now > since ? now - since : 0));
	if (next) {
		time_text(next, text, sizeof(text));
		json_object_set_new(chain, "next_refresh", json_integer((json_int_t)next));
		json_object_set_new(chain, "next_refresh_text", json_string(text));
	} else {
		json_object_set_new(chain, "next_refresh", json_null());
	}
}

/* cert.show: the served chain in full (null when none is served). */
static json_t *cert_show_json(struct broker *b)
{
	const struct store_chain *ch = broker_chain(b);
	const struct store_platform *pf = broker_platform(b);
	json_t *o, *chain, *certs;

	if (!ch)
		return json_pack("{s:n, s:s, s:o}", "chain", "product",
				 snp_product_name(pf->product), "reported_tcb",
				 tcb_json(pf->reported_tcb, pf->product));
	certs = json_pack("[o, o, o]", cert_json(ch->leaf, ch->vlek ? "vlek" : "vcek"),
			  cert_json(ch->ask, ch->vlek ? "asvk" : "ask"), cert_json(ch->ark, "ark"));
	chain = json_pack("{s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:b}", "product",
			  snp_product_name(ch->product), "key", ch->vlek ? "VLEK" : "VCEK", "tcb",
			  tcb_json(ch->tcb, ch->product), "source", ch->source, "root",
			  ch->sim_root ? "simulator" : "amd", "table_bytes", (json_int_t)ch->table_len,
			  "table_pages", (json_int_t)ch->table_pages, "has_crl", ch->has_crl);
	if (!chain || !certs) {
		json_decref(chain);
		json_decref(certs);
		return NULL;
	}
	chain_extra(chain, b, ch);
	/* chain_extra's short list is superseded by the full one. */
	json_object_set_new(chain, "certificates", certs);
	o = json_pack("{s:o, s:s, s:o}", "chain", chain, "product", snp_product_name(pf->product),
		      "reported_tcb", tcb_json(pf->reported_tcb, pf->product));
	return o;
}

static json_t *status_json(struct ctl *c, struct broker *b, enum ctl_role role)
{
	const struct adm_stats *st = broker_get_stats(b);
	const struct store_platform *pf = broker_platform(b);
	const struct store_chain *ch = broker_chain(b);
	bool sim = c->m->conf.backend == CONF_BACKEND_SIM;
	json_t *o, *chain = json_null();
	char chip[129];

	if (ch) {
		char when[64] = "";
		struct tm tm;
		time_t na = ch->not_after;
		if (gmtime_r(&na, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		chain = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:b, s:o}", "product",
				  snp_product_name(ch->product), "source", ch->source, "root",
				  ch->sim_root ? "simulator" : "amd", "not_after", (json_int_t)ch->not_after,
				  "not_after_text", when, "table_pages", (json_int_t)ch->table_pages,
				  "table_bytes", (json_int_t)ch->table_len, "vlek", ch->vlek, "tcb",
				  tcb_json(ch->tcb, ch->product));
		if (chain)
			chain_extra(chain, b, ch);
	}
	hex_encode(pf->chip_id, MIN(pf->chip_id_len, (size_t)64), chip);
	o = json_pack("{s:s, s:s, s:b, s:b, s:s, s:{s:b, s:b, s:I, s:I, s:I}, s:o, "
		      "s:{s:s, s:s, s:o, s:o, s:b}, "
		      "s:{s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:o, s:o}, s:{s:I, s:I, s:I}}",
		      "version", PACKAGE_VERSION, "backend", broker_backend_name(b), "simulated", sim,
		      "sim_root_trusted", broker_sim_root_trusted(b), "role", ctl_role_name(role),
		      "broker", "registered", broker_registered(b), "paused", broker_paused(b), "vms",
		      (json_int_t)broker_vm_count(b), "inflight", (json_int_t)broker_inflight(b),
		      "queued", (json_int_t)broker_queued(b), "chain", chain, "platform", "product",
		      snp_product_name(pf->product), "chip_id", chip, "current_tcb",
		      tcb_json(pf->current_tcb, pf->product), "reported_tcb",
		      tcb_json(pf->reported_tcb, pf->product), "vlek_loaded", pf->vlek_loaded,
		      "stats", "guest_reqs", (json_int_t)st->guest_reqs, "verdicts", "allow",
		      (json_int_t)st->verdicts_allow, "busy", (json_int_t)st->verdicts_busy,
		      "invalid_len", (json_int_t)st->verdicts_invalid_len, "done",
		      (json_int_t)st->done, "send_failures", (json_int_t)st->send_failures,
		      "stale_inflight_freed", (json_int_t)st->stale_inflight_freed, "busy_by_reason",
		      counters_json(st->busy_by_reason, _SCHED_BUSY_MAX, busy_name), "anomalies",
		      counters_json(st->anomalies, _SCHED_ANOM_MAX, anom_name), "control", "clients",
		      (json_int_t)c->n_clients, "requests", (json_int_t)c->requests, "errors",
		      (json_int_t)c->errors);
	if (o)
		json_object_set_new(o, "snp",
				    json_pack("{s:b, s:s, s:I}", "initialized",
					      broker_snp_initialized(b), "state",
					      broker_snp_initialized(b)
						      ? "initialized"
						      : "waiting for kvm_amd with sev_snp=1",
					      "probes", (json_int_t)broker_snp_probes(b)));
	return o;
}

static int cmp_vm(const void *a, const void *b)
{
	uint64_t x = json_integer_value(json_object_get(*(json_t *const *)a, "vm"));
	uint64_t y = json_integer_value(json_object_get(*(json_t *const *)b, "vm"));

	/* ids above INT64_MAX are strings (value 0 here): order among them is unspecified. */
	return x < y ? -1 : x > y;
}

/* Sorts an array of objects by "vm" so that listings are stable. */
static json_t *sorted(json_t *arr)
{
	size_t n = json_array_size(arr);
	json_t **v, *out;

	if (!arr || n < 2)
		return arr;
	v = calloc(n, sizeof(*v));
	out = json_array();
	if (!v || !out) {
		free(v);
		json_decref(out);
		return arr;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_vm);
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(arr);
	return out;
}

static json_t *vm_json(const struct adm_vm_info *i, bool full)
{
	const struct sched_vm_stats *s = &i->sched;
	uint64_t busy = 0;
	char pol[24], tokens[32];
	json_t *o;

	for (size_t k = 0; k < _SCHED_BUSY_MAX; k++)
		busy += s->busy[k];
	snprintf(pol, sizeof(pol), "0x%llx", (unsigned long long)i->policy);
	o = json_pack("{s:o, s:I, s:I, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:o}", "vm",
		      ctl_json_u64(i->vm_id), "vmm_pid", (json_int_t)i->vmm_pid, "asid",
		      (json_int_t)i->asid, "policy", pol, "requests", jint(s->requests), "admitted",
		      jint(s->admitted), "busy", jint(busy), "fw_errors", jint(i->fw_errors),
		      "inflight", s->inflight, "queued", s->queued, "custom_quota", s->custom_quota,
		      "quota", ctl_quota_to_json(&s->quota));
	if (!o || !full)
		return o;
	snprintf(tokens, sizeof(tokens), "%s%lld.%03lld", s->tokens_milli < 0 ? "-" : "",
		 (long long)(s->tokens_milli < 0 ? -(s->tokens_milli / 1000) : s->tokens_milli / 1000),
		 (long long)(s->tokens_milli < 0 ? -(s->tokens_milli % 1000) : s->tokens_milli % 1000));
	json_object_update_new(
		o, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
			     "forced", jint(s->forced), "done", jint(s->done), "fw_ok", jint(i->fw_ok),
			     "invalid_len", jint(i->invalid_len), "expired", jint(i->expired),
			     "fw_time_ns_total", jint(i->fw_time_ns_total), "req_report",
			     jint(i->req_report), "req_key", jint(i->req_key), "req_other",
			     jint(i->req_other), "busy_by_reason",
			     counters_json(s->busy, _SCHED_BUSY_MAX, busy_name), "anomalies",
			     counters_json(s->anomalies, _SCHED_ANOM_MAX, anom_name),
			     "busy_streak_usec", jint(s->busy_streak_usec), "max_busy_streak_usec",
			     jint(s->max_busy_streak_usec), "tokens", tokens));
	return o;
}

static void add_vm(void *userdata, const struct adm_vm_info *info)
{
	json_array_append_new(userdata, vm_json(info, false));
}

static void add_quota(void *userdata, uint64_t vm_id, const struct sched_quota *q)
{
	json_t *o = ctl_quota_to_json(q);

	if (o)
		json_object_set_new(o, "vm", ctl_json_u64(vm_id));
	json_array_append_new(userdata, o);
}

static json_t *quota_entry(struct broker *b, uint64_t vm_id)
{
	struct sched_quota q, d;
	bool custom = broker_get_quota(b, vm_id, &q);

	json_t *o;

	broker_default_quota(b, &d);
	o = json_pack("{s:o, s:o, s:b, s:o}", "vm", ctl_json_u64(vm_id), "quota",
		      ctl_quota_to_json(&q), "custom", custom, "default", ctl_quota_to_json(&d));
	ctl_vm_annotate(b, o);
	return o;
}

static json_t *tcb_show_json(struct broker *b)
{
	const struct store_platform *pf = broker_platform(b);
	const struct broker_rotation_stats *rs = broker_get_rotation_stats(b);
	uint64_t committed;
	json_t *o;

	o = json_pack("{s:s, s:o, s:o, s:b, s:b}", "product", snp_product_name(pf->product),
		      "current_tcb", tcb_json(pf->current_tcb, pf->product), "reported_tcb",
		      tcb_json(pf->reported_tcb, pf->product), "vlek_loaded", pf->vlek_loaded,
		      "rotation_in_progress", rs->in_progress);
	if (o && broker_committed_tcb(b, &committed) == 0)
		json_object_set_new(o, "committed_tcb", tcb_json(committed, pf->product));
	if (o && rs->last_time)
		json_object_set_new(o, "last_rotation",
				    json_pack("{s:I, s:b, s:s}", "time", (json_int_t)rs->last_time,
					      "ok", rs->last_result == 0, "message",
					      rs->last_message));
	return o;
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
	const struct store_platform *pf = broker_platform(b);
	const struct store_chain *ch = broker_chain(b);
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
	audit(cl, cl->op_cmd, quota ? &cl->op_vm_id : NULL, r < 0 ? "failed" : "ok", r,
	      cl->op_old, b && (r == 0 || !quota) ? now_state : NULL, message);
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
		 r < 0	? NULL
		 : !b	? json_object()
		 : quota ? quota_entry(b, cl->op_vm_id)
			 : tcb_show_json(b));
}

static json_t *fetch_key_json(const struct broker_fetch_key *k, const char *key)
{
	const char *outcome = k->r < 0	      ? "error"
			      : k->http_status == 304 ? "not_modified"
			      : k->from_kds	      ? "fetched"
			      : k->stale	      ? "stale"
						      : "cache";
	json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:b, s:I, s:f}", "key", key, "outcome",
			      outcome, "http_status", (json_int_t)k->http_status, "source",
			      k->from_kds ? "kds" : k->r < 0 ? "none" : "cache", "stale", k->stale,
			      "failures", (json_int_t)k->failures, "retry_in_sec", k->retry_in_sec);

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

static void dispatch(struct ctl_client *cl, const struct ctl_request *q)
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
			audit(cl, q->cmd, q->has_vm ? &q->vm_id : NULL, "denied", -EACCES, NULL, NULL,
			      "needs the admin role");
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

static void handle_line(struct ctl_client *cl, const char *line, size_t len)
{
	struct ctl_request q;
	struct ctl_parse_error err;
	int r;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return; /* blank lines are ignored (they restart no deadline) */
	cl->ctl->requests++;
	r = ctl_request_parse(line, len, &q, &err);
	if (r < 0) {
		log_debug("Control: bad request from uid %u: %s", (unsigned)cl->uid, err.msg);
		client_error(cl, err.id, r, err.msg);
		json_decref(err.id);
		if (cl->role == CTL_ROLE_NONE)
			cl->closing = true;
		return;
	}
	dispatch(cl, &q);
	ctl_request_done(&q);
}

/* Writes what it can; 0, or -errno when the client is gone. */
static int client_flush(struct ctl_client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.buf + cl->out_off, cl->out.len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -errno;
		}
		cl->out_off += (size_t)n;
	}
	strbuf_done(&cl->out);
	cl->out_off = 0;
	return 0;
}

static bool out_below_high_water(const struct ctl_client *cl)
{
	return cl->out.len - cl->out_off < CTL_OUT_HIGH_WATER;
}

/* Answers the complete lines of the input buffer, in order, while nothing holds them back (an
 * operation waiting for its reply, replies over the high water, a closing connection). After
 * the peer's half-close the rest of the buffer is one last request, answered in its turn like
 * any other: never before the requests in front of it. */
static void client_process(struct ctl_client *cl)
{
	size_t start = 0;

	while (!cl->closing && !cl->op_pending && out_below_high_water(cl) && start < cl->in_len) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		size_t end = nl ? (size_t)(nl - cl->in) : cl->in_len;

		if (!nl && !cl->eof)
			break;
		handle_line(cl, cl->in + start, end - start);
		start = nl ? end + 1 : end;
	}
	if (start > 0) {
		memmove(cl->in, cl->in + start, cl->in_len - start);
		cl->in_len -= start;
		/* What is left is a request begun no earlier than now. */
		cl->in_since = ev_now(cl->ctl->m->loop);
	}
	if (cl->closing)
		cl->in_len = 0; /* nothing after the last answer is read */
	if (!cl->closing && cl->in_len >= CTL_REQUEST_MAX && !memchr(cl->in, '\n', cl->in_len)) {
		client_error(cl, NULL, -EMSGSIZE, "request line longer than 65536 bytes");
		cl->closing = true;
		cl->in_len = 0;
	}
}

/* Is there a request that client_process would answer now? */
static bool client_can_process(const struct ctl_client *cl)
{
	return !cl->closing && !cl->op_pending && out_below_high_water(cl) && cl->in_len > 0 &&
	       (cl->eof || memchr(cl->in, '\n', cl->in_len));
}

static bool client_wants_read(const struct ctl_client *cl)
{
	return !cl->eof && !cl->closing && !cl->op_pending && out_below_high_water(cl) &&
	       cl->in_len < CTL_REQUEST_MAX;
}

/* Has the client nothing left to be answered? Then it is closed. */
static bool client_finished(const struct ctl_client *cl)
{
	if (cl->op_pending || out_pending(cl))
		return false;
	return cl->closing || (cl->eof && cl->in_len == 0);
}

/* When the client is dropped unless it makes progress: the unfinished request must complete
 * within request_timeout of its first byte, the queued replies must be taken within
 * request_timeout of being queued, and a client with nothing in flight is closed after
 * CTL_IDLE_TIMEOUT_SEC. A peer with no role gets request_timeout from connect for everything:
 * it has one question to ask. Partial progress restarts nothing. */
static ev_tstamp client_deadline(const struct ctl_client *cl)
{
	ev_tstamp req = (ev_tstamp)cl->ctl->m->conf.control_request_timeout_usec / 1e6;
	ev_tstamp d;

	if (cl->role == CTL_ROLE_NONE)
		return cl->accepted + req;
	d = cl->idle_since + MAX(CTL_IDLE_TIMEOUT_SEC, req);
	if (cl->in_len > 0 || out_pending(cl))
		d = INFINITY;
	if (cl->in_len > 0)
		d = MIN(d, cl->in_since + req);
	if (out_pending(cl))
		d = MIN(d, cl->out_since + req);
	return d;
}

static void client_arm(struct ctl_client *cl)
{
	struct ev_loop *loop = cl->ctl->m->loop;
	ev_tstamp now = ev_now(loop);

	ev_timer_stop(loop, &cl->deadline);
	if (cl->op_pending)
		return; /* the broker bounds the operation; the deadline starts again after it */
	ev_timer_set(&cl->deadline, MAX(client_deadline(cl) - now, 0.), 0.);
	ev_timer_start(loop, &cl->deadline);
}

/* Processes what can be, writes what can be written, sets the watchers to what the client needs
 * next, and frees it when it is done or gone. cl must not be used after this. */
static void client_step(struct ctl_client *cl)
{
	struct ev_loop *loop = cl->ctl->m->loop;
	int events = 0;

	for (;;) {
		client_process(cl);
		if (client_flush(cl) < 0) {
			client_free(cl);
			return;
		}
		/* Lines held back by the high water go on once the flush brought it down. */
		if (!client_can_process(cl))
			break;
	}
	if (!cl->op_pending && !cl->in_len && !out_pending(cl))
		cl->idle_since = ev_now(loop);
	if (client_finished(cl)) {
		client_free(cl);
		return;
	}
	if (out_pending(cl))
		events |= EV_WRITE;
	if (client_wants_read(cl))
		events |= EV_READ;
	if (events != (cl->io.events & (EV_READ | EV_WRITE)) || !ev_is_active(&cl->io)) {
		ev_io_stop(loop, &cl->io);
		ev_io_set(&cl->io, cl->fd, events);
		if (events)
			ev_io_start(loop, &cl->io);
	}
	client_arm(cl);
}

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = container_of(w, struct ctl_client, io);

	(void)loop;
	if ((revents & EV_READ) && client_wants_read(cl)) {
		ssize_t n = recv(cl->fd, cl->in + cl->in_len, CTL_REQUEST_MAX - cl->in_len,
				 MSG_DONTWAIT);
		if (n == 0) {
			cl->eof = true;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_free(cl);
			return;
		} else if (n > 0) {
			if (cl->in_len == 0)
				cl->in_since = ev_now(loop);
			cl->in_len += (size_t)n;
		}
	}
	client_step(cl);
}

static void on_client_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *cl = container_of(w, struct ctl_client, deadline);

	(void)revents;
	if (cl->op_pending)
		return;
	if (client_deadline(cl) > ev_now(loop)) {
		client_arm(cl); /* progress was made since the timer was set */
		return;
	}
	log_debug("Control: dropping client uid %u (pid %d): %s", (unsigned)cl->uid, (int)cl->pid,
		  cl->in_len ? "request not completed in time"
		  : out_pending(cl) ? "replies not taken in time" : "idle");
	cl->ctl->dropped++;
	client_free(cl);
}

static void refuse_busy(int fd, const char *why)
{
	char *line = ctl_reply_error(NULL, -EBUSY, why);

	if (line)
		(void)send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
	close(fd);
}

/* Whether a new peer with this role and uid gets a slot. Administrators may use every slot;
 * everyone else leaves CTL_CLIENTS_RESERVED of them free, no uid holds more than
 * CTL_CLIENTS_PER_UID, and peers with no role (they can only be told no) share
 * CTL_CLIENTS_NOROLE_MAX. NULL if admitted, else why not. */
static const char *admission_refusal(const struct ctl *c, enum ctl_role role, uid_t uid)
{
	size_t same_uid = 0;

	if (c->n_clients >= CTL_CLIENTS_MAX)
		return "too many control connections";
	if (role == CTL_ROLE_ADMIN)
		return NULL;
	if (c->n_unprivileged >= CTL_CLIENTS_MAX - CTL_CLIENTS_RESERVED)
		return "too many control connections (the rest are kept for administrators)";
	if (role == CTL_ROLE_NONE && c->n_norole >= CTL_CLIENTS_NOROLE_MAX)
		return "too many control connections from peers without a role";
	for (const struct ctl_client *cl = c->clients; cl; cl = cl->next)
		if (cl->uid == uid && cl->role != CTL_ROLE_ADMIN)
			same_uid++;
	if (same_uid >= CTL_CLIENTS_PER_UID)
		return "too many control connections from this user";
	return NULL;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl *c = container_of(w, struct ctl, accept_io);

	(void)revents;
	/* A bounded batch per wake-up: a connect storm cannot starve the rest of the loop. */
	for (int i = 0; i < 32; i++) {
		struct ctl_client *cl;
		const char *why;
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(-errno, "Control: accept failed");
			return;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl)
			cl->in = malloc(CTL_REQUEST_MAX);
		if (!cl || !cl->in) {
			if (cl)
				free(cl);
			refuse_busy(fd, "out of memory");
			continue;
		}
		cl->ctl = c;
		cl->fd = fd;
		cl->uid = (uid_t)-1;
		cl->gid = (gid_t)-1;
		cl->role = peer_role(c, fd, &cl->uid, &cl->gid, &cl->pid);
		why = admission_refusal(c, cl->role, cl->uid);
		if (why) {
			c->dropped++;
			if (ratelimit_pass(&c->refuse_log, manager_now_usec(), NULL))
				log_notice("Control: connection of uid %u (pid %d, role %s) refused: %s",
					   (unsigned)cl->uid, (int)cl->pid, ctl_role_name(cl->role),
					   why);
			free(cl->in);
			free(cl);
			refuse_busy(fd, why);
			continue;
		}
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->n_clients++;
		if (cl->role != CTL_ROLE_ADMIN)
			c->n_unprivileged++;
		if (cl->role == CTL_ROLE_NONE)
			c->n_norole++;
		cl->accepted = cl->idle_since = ev_now(loop);
		ev_io_init(&cl->io, on_client_io, fd, EV_READ);
		ev_io_start(loop, &cl->io);
		ev_init(&cl->deadline, on_client_deadline);
		client_arm(cl);
		log_debug("Control: client uid %u pid %d role %s", (unsigned)cl->uid, (int)cl->pid,
			  ctl_role_name(cl->role));
	}
}

/* --- the listening socket --- */

static int activated_fd(void)
{
	int n = sd_listen_fds(0);

	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0)
			return fd;
	}
	return -ENOENT;
}

/* Refuses to steal the socket of a running daemon; removes a stale one. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0 || errno == EAGAIN)
		return -EADDRINUSE;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int listen_on(struct ctl *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)], *slash;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] != '/')
		return log_error_errno(-EINVAL, "Control socket path '%s' is unusable", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(-errno, "Cannot create %s", dir);
	}
	r = clear_stale(path, &sa);
	if (r == -EADDRINUSE)
		return log_error_errno(r, "Another daemon is listening on %s", path);
	if (r < 0)
		return log_error_errno(r, "Cannot use %s for the control socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(-errno, "Cannot create the control socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return log_error_errno(r, "Cannot bind the control socket %s", path);
	}
	/* Anyone may connect: SO_PEERCRED decides what they may do, and says why not. */
	if (chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		unlink(path);
		return log_error_errno(r, "Cannot listen on %s", path);
	}
	c->path = strdup(path);
	if (!c->path) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	c->fd = fd;
	return 0;
}

static void warn_groups(const struct conf *conf)
{
	gid_t g;

	if (conf->admin_group[0] && !group_gid(conf->admin_group, &g))
		log_warning("Control: admin group '%s' does not exist; only root may change things",
			    conf->admin_group);
	if (conf->readonly_group[0] && !group_gid(conf->readonly_group, &g))
		log_warning("Control: read-only group '%s' does not exist", conf->readonly_group);
}

static void ctl_stop(struct manager *m);

static int ctl_start(struct manager *m)
{
	struct ctl *c;
	int fd, r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->fd = -1;
	m->ctl = c;
	ratelimit_init(&c->refuse_log, 10 * 1000000ull, 10);
	fd = activated_fd();
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			r = log_error_errno(-errno, "Cannot use the socket passed by systemd");
			ctl_stop(m);
			return r;
		}
		c->fd = fd;
		c->activated = true;
		log_info("Control socket passed by systemd (fd %d)", fd);
	} else {
		r = listen_on(c, m->conf.control_socket);
		if (r < 0) {
			ctl_stop(m);
			return r;
		}
		log_info("Control socket listening on %s", c->path);
	}
	warn_groups(&m->conf);
	ev_io_init(&c->accept_io, on_accept, c->fd, EV_READ);
	ev_io_start(m->loop, &c->accept_io);
	return 0;
}

static void ctl_stop(struct manager *m)
{
	struct ctl *c = m->ctl;

	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	if (c->fd >= 0) {
		ev_io_stop(m->loop, &c->accept_io);
		close(c->fd);
	}
	if (c->path)
		unlink(c->path);
	free(c->path);
	free(c);
	m->ctl = NULL;
}

static int ctl_reload(struct manager *m, const struct conf *old)
{
	struct ctl *c = m->ctl;

	if (!c->activated && strcmp(old->control_socket, m->conf.control_socket) != 0)
		log_notice("Control socket stays at %s until restart (configured: %s)", c->path,
			   m->conf.control_socket);
	/* Roles are computed per connection from the current groups: nothing else to do. */
	warn_groups(&m->conf);
	return 0;
}

const struct manager_module ctl_module = {
	.name = "control",
	.start = ctl_start,
	.stop = ctl_stop,
	.reload = ctl_reload,
};
