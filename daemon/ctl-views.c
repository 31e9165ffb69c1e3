/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-views: the JSON bodies of the control socket's read commands (status, vm list/show,
 * quota get/list, cert show, tcb show) and of the operations' replies, built from the broker's
 * read-only accessors. Changes nothing and answers nobody: ctl-cmds.c sends what it builds. */
#include "ctl-int.h"
#include "ctl-vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certs.h"
#include "config.h"
#include "log.h"

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
			json_object_set_new(
				o, k, json_integer((json_int_t)MIN(v[i], (uint64_t)INT64_MAX)));
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
		o = json_pack(
			"{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s%}", "role", role, "subject_cn",
			name_cn(X509_get_subject_name(x), subject, sizeof(subject)), "issuer_cn",
			name_cn(X509_get_issuer_name(x), issuer, sizeof(issuer)), "serial", serial,
			"not_before", asn1_time_json(X509_get0_notBefore(x)), "not_after",
			asn1_time_json(X509_get0_notAfter(x)), "sha256", fp_hex, "pem", pem,
			(size_t)pem_len);
	OPENSSL_free(serial);
	BN_free(bn);
	BIO_free(bio);
	return o;
}

/* status' chain object gets subjects, notAfter per certificate, when it was obtained (and its
 * age) and the next scheduled refresh. */
static void chain_extra(json_t *chain, struct broker *b, const struct chain *ch)
{
	X509 *certs[3] = {ch->leaf, ch->ask, ch->ark};
	const char *roles[3] = {ch->vlek ? "vlek" : "vcek", ch->vlek ? "asvk" : "ask", "ark"};
	json_t *subj = json_array();
	time_t since = broker_chain_since(b), next = broker_next_refresh(b), now = time(NULL);
	char text[64], cn[256];

	for (size_t i = 0; subj && i < 3; i++)
		json_array_append_new(
			subj, json_pack("{s:s, s:s, s:o}", "role", roles[i], "subject_cn",
					name_cn(X509_get_subject_name(certs[i]), cn, sizeof(cn)),
					"not_after", asn1_time_json(X509_get0_notAfter(certs[i]))));
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
json_t *cert_show_json(struct broker *b)
{
	const struct chain *ch = broker_chain(b);
	const struct platform_facts *pf = broker_platform(b);
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
			  ch->sim_root ? "simulator" : "amd", "table_bytes",
			  (json_int_t)ch->table_len, "table_pages", (json_int_t)ch->table_pages,
			  "has_crl", ch->has_crl);
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

json_t *status_json(struct ctl *c, struct broker *b, enum ctl_role role)
{
	const struct adm_stats *st = broker_get_stats(b);
	const struct platform_facts *pf = broker_platform(b);
	const struct chain *ch = broker_chain(b);
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
				  ch->sim_root ? "simulator" : "amd", "not_after",
				  (json_int_t)ch->not_after, "not_after_text", when, "table_pages",
				  (json_int_t)ch->table_pages, "table_bytes",
				  (json_int_t)ch->table_len, "vlek", ch->vlek, "tcb",
				  tcb_json(ch->tcb, ch->product));
		if (chain)
			chain_extra(chain, b, ch);
	}
	hex_encode(pf->chip_id, MIN(pf->chip_id_len, (size_t)64), chip);
	o = json_pack("{s:s, s:s, s:b, s:b, s:s, s:{s:b, s:b, s:I, s:I, s:I}, s:o, "
		      "s:{s:s, s:s, s:o, s:o, s:b}, "
		      "s:{s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:o, s:o}, s:{s:I, s:I, s:I}}",
		      "version", PACKAGE_VERSION, "backend", broker_backend_name(b), "simulated",
		      sim, "sim_root_trusted", broker_sim_root_trusted(b), "role",
		      ctl_role_name(role), "broker", "registered", broker_registered(b), "paused",
		      broker_paused(b), "vms", (json_int_t)broker_vm_count(b), "inflight",
		      (json_int_t)broker_inflight(b), "queued", (json_int_t)broker_queued(b),
		      "chain", chain, "platform", "product", snp_product_name(pf->product),
		      "chip_id", chip, "current_tcb", tcb_json(pf->current_tcb, pf->product),
		      "reported_tcb", tcb_json(pf->reported_tcb, pf->product), "vlek_loaded",
		      pf->vlek_loaded, "stats", "guest_reqs", (json_int_t)st->guest_reqs,
		      "verdicts", "allow", (json_int_t)st->verdicts_allow, "busy",
		      (json_int_t)st->verdicts_busy, "invalid_len",
		      (json_int_t)st->verdicts_invalid_len, "done", (json_int_t)st->done,
		      "send_failures", (json_int_t)st->send_failures, "stale_inflight_freed",
		      (json_int_t)st->stale_inflight_freed, "busy_by_reason",
		      counters_json(st->busy_by_reason, _SCHED_BUSY_MAX, busy_name), "anomalies",
		      counters_json(st->anomalies, _SCHED_ANOM_MAX, anom_name), "control",
		      "clients", (json_int_t)c->n_clients, "requests", (json_int_t)c->requests,
		      "errors", (json_int_t)c->errors);
	if (o)
		json_object_set_new(o, "snp",
				    json_pack("{s:b, s:s, s:I}", "initialized",
					      broker_snp_initialized(b), "state",
					      broker_snp_initialized(b)
						      ? "initialized"
						      : "waiting for kvm_amd with sev_snp=1",
					      "probes", (json_int_t)broker_snp_probes(b)));
	ctl_vm_status(b, o);
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
json_t *sorted(json_t *arr)
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

json_t *vm_json(const struct adm_vm_info *i, bool full)
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
		 (long long)(s->tokens_milli < 0 ? -(s->tokens_milli / 1000)
						 : s->tokens_milli / 1000),
		 (long long)(s->tokens_milli < 0 ? -(s->tokens_milli % 1000)
						 : s->tokens_milli % 1000));
	json_object_update_new(
		o,
		json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
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

void add_vm(void *userdata, const struct adm_vm_info *info)
{
	json_array_append_new(userdata, vm_json(info, false));
}

void add_quota(void *userdata, uint64_t vm_id, const struct sched_quota *q)
{
	json_t *o = ctl_quota_to_json(q);

	if (o)
		json_object_set_new(o, "vm", ctl_json_u64(vm_id));
	json_array_append_new(userdata, o);
}

json_t *quota_entry(struct broker *b, uint64_t vm_id)
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

json_t *tcb_show_json(struct broker *b)
{
	const struct platform_facts *pf = broker_platform(b);
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
