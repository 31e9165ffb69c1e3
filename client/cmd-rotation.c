/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-rotation: cert rotate, tcb show|set|commit and vlek load over the control socket. The
 * daemon does the work (design §6: the chain for the new TCB first, then a paused swap); this
 * file checks arguments and prints the outcome. */
#include "cmd-rotation.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "certs.h"
#include "cmd-online.h"
#include "ctl-client.h"
#include "snpctl.h"
#include "util.h"

/* Every command here takes --json and --force (cert export replaces existing files). */
#define ROT_OPTS (ONLINE_OPT_JSON | ONLINE_OPT_FORCE)

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "?";
}

static void print_tcb(const char *title, const json_t *t)
{
	if (t)
		printf("%-15s %s (%s)\n", title, jstr(t, "text"), jstr(t, "raw"));
}

static int print_reply(json_t *b, bool json)
{
	const json_t *last = json_object_get(b, "last_rotation");

	if (json)
		return snpctl_print_reply_json(json_incref(b));
	if (json_object_get(b, "message"))
		printf("%s\n", jstr(b, "message"));
	printf("%-15s %s\n", "product", jstr(b, "product"));
	print_tcb("current TCB", json_object_get(b, "current_tcb"));
	print_tcb("reported TCB", json_object_get(b, "reported_tcb"));
	print_tcb("committed TCB", json_object_get(b, "committed_tcb"));
	printf("%-15s %s\n", "VLEK loaded",
	       json_is_true(json_object_get(b, "vlek_loaded")) ? "yes" : "no");
	if (json_is_true(json_object_get(b, "rotation_in_progress")))
		printf("%-15s %s\n", "rotation", "in progress");
	if (last)
		printf("%-15s %s: %s\n", "last rotation",
		       json_is_true(json_object_get(last, "ok")) ? "ok" : "FAILED",
		       jstr(last, "message"));
	return SNPCTL_EXIT_OK;
}

/* --- cert show|export|import|fetch --- */

static void print_cert_show(const json_t *b)
{
	const json_t *ch = json_object_get(b, "chain"), *c;
	size_t i;

	if (!json_is_object(ch)) {
		printf("no chain is served (product %s)\n", jstr(b, "product"));
		return;
	}
	printf("%-15s %s %s\n", "chain", jstr(ch, "product"), jstr(ch, "key"));
	print_tcb("TCB", json_object_get(ch, "tcb"));
	printf("%-15s %s\n", "source", jstr(ch, "source"));
	printf("%-15s %s (%lld s ago)\n", "obtained", jstr(ch, "obtained_text"),
	       (long long)json_integer_value(json_object_get(ch, "age_sec")));
	if (json_is_string(json_object_get(ch, "next_refresh_text")))
		printf("%-15s %s\n", "next refresh", jstr(ch, "next_refresh_text"));
	printf("%-15s %s\n", "root", jstr(ch, "root"));
	printf("%-15s %lld bytes, %lld pages\n", "table",
	       (long long)json_integer_value(json_object_get(ch, "table_bytes")),
	       (long long)json_integer_value(json_object_get(ch, "table_pages")));
	json_array_foreach(json_object_get(ch, "certificates"), i, c)
	{
		printf("\n%s\n", jstr(c, "role"));
		printf("  %-13s %s\n", "subject CN", jstr(c, "subject_cn"));
		printf("  %-13s %s\n", "issuer CN", jstr(c, "issuer_cn"));
		printf("  %-13s %s\n", "serial", jstr(c, "serial"));
		printf("  %-13s %s\n", "not before",
		       jstr(json_object_get(c, "not_before"), "text"));
		printf("  %-13s %s\n", "not after", jstr(json_object_get(c, "not_after"), "text"));
		printf("  %-13s %s\n", "SHA-256", jstr(c, "sha256"));
	}
}

/* Puts the positional argument of tcb set and vlek load into the request; checks only the
 * wire limits (the daemon parses the TCB for its product). Returns the exit code. */
static int fill_request(const char *cmd_name, struct online_args *a)
{
	if (a->q.cmd == CTL_CMD_TCB_SET) {
		if (strlen(a->arg) >= sizeof(a->q.tcb))
			return snpctl_usage_error(cmd_name, "TCB '%s' is too long", a->arg);
		snprintf(a->q.tcb, sizeof(a->q.tcb), "%s", a->arg);
	} else if (a->q.cmd == CTL_CMD_VLEK_LOAD) {
		_cleanup_(freep) uint8_t *buf = NULL;
		size_t len;
		int r = snpctl_read_file(a->arg, CTL_HASHSTICK_SIZE + 1, &buf, &len);

		if (r < 0)
			return snpctl_fail(r, "vlek load", "cannot read the hashstick %s", a->arg);
		if (len != CTL_HASHSTICK_SIZE)
			return snpctl_usage_error(cmd_name,
						  "%s is %zu bytes; a wrapped VLEK hashstick is %d",
						  a->arg, len, CTL_HASHSTICK_SIZE);
		memcpy(a->q.hashstick, buf, CTL_HASHSTICK_SIZE);
		a->q.has_hashstick = true;
	}
	return SNPCTL_EXIT_OK;
}

/* Parses (with the positional argument arg_name, if not NULL), asks, and with --json prints
 * the reply. *ret_b is the reply when the caller prints the text form (then SNPCTL_EXIT_OK);
 * NULL otherwise, and the return value is the exit code. */
static int ask(int argc, char **argv, enum ctl_cmd cmd, const char *arg_name, json_t **ret_b)
{
	struct online_args a = {.q.cmd = cmd};
	int r;

	*ret_b = NULL;
	r = online_parse(argc, argv, ROT_OPTS, arg_name, &a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	r = fill_request(argv[0], &a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	return online_call(argv[0], &a, ret_b);
}

int snpctl_cert_show(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	int r;

	r = ask(argc, argv, CTL_CMD_CERT_SHOW, NULL, &b);
	if (!b)
		return r;
	print_cert_show(b);
	return SNPCTL_EXIT_OK;
}

static const json_t *cert_by_role(const json_t *certs, const char *role)
{
	size_t i;
	const json_t *c;

	json_array_foreach(certs, i, c) if (strcmp(jstr(c, "role"), role) == 0) return c;
	return NULL;
}

/* The PEM of a certificate of cert.show, parsed (so that what is written is a certificate). */
static int pem_cert(const json_t *c, X509 **ret)
{
	const char *pem = json_string_value(json_object_get(c, "pem"));

	if (!pem)
		return -EBADMSG;
	return certs_parse((const uint8_t *)pem, strlen(pem), ret);
}

static int pem_text(X509 *x, struct strbuf *sb)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (!bio || PEM_write_bio_X509(bio, x) != 1) {
		BIO_free(bio);
		return -ENOMEM;
	}
	n = BIO_get_mem_data(bio, &data);
	for (long i = 0; i < n; i++) {
		char ch[2] = {data[i], 0};
		strbuf_append(sb, ch);
	}
	BIO_free(bio);
	return strbuf_failed(sb) ? -ENOMEM : 0;
}

int snpctl_cert_export(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_CERT_SHOW};
	const json_t *ch, *certs;
	X509 *x[3] = {NULL, NULL, NULL};
	struct strbuf out[4] = {{0}};
	const char *names[4];
	_cleanup_(freep) uint8_t *der = NULL;
	size_t der_len = 0;
	char path[4096];
	bool vlek;
	int r, ret = SNPCTL_EXIT_FAIL;

	r = online_parse(argc, argv, ROT_OPTS, "directory", &a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	r = snpctl_call(argv[0], a.socket, &a.q, &b);
	if (r != SNPCTL_EXIT_OK)
		return r;
	ch = json_object_get(b, "chain");
	if (!json_is_object(ch)) {
		fprintf(stderr, "snpctl: cert export: the daemon serves no chain\n");
		return SNPCTL_EXIT_FAIL;
	}
	vlek = strcmp(jstr(ch, "key"), "VLEK") == 0;
	certs = json_object_get(ch, "certificates");
	if (pem_cert(cert_by_role(certs, vlek ? "vlek" : "vcek"), &x[0]) < 0 ||
	    pem_cert(cert_by_role(certs, vlek ? "asvk" : "ask"), &x[1]) < 0 ||
	    pem_cert(cert_by_role(certs, "ark"), &x[2]) < 0) {
		fprintf(stderr, "snpctl: cert export: the daemon's reply has no usable "
				"certificates\n");
		goto out;
	}
	names[0] = "ark.pem";
	names[1] = vlek ? "asvk.pem" : "ask.pem";
	names[2] = vlek ? "cert_chain_vlek.pem" : "cert_chain.pem";
	names[3] = vlek ? "vlek.der" : "vcek.der";
	if (pem_text(x[2], &out[0]) < 0 || pem_text(x[1], &out[1]) < 0 ||
	    pem_text(x[1], &out[2]) < 0 || pem_text(x[2], &out[2]) < 0 ||
	    certs_to_der(x[0], &der, &der_len) < 0) {
		snpctl_fail(-ENOMEM, "cert export", "encoding the certificates");
		goto out;
	}
	if (mkdir(a.arg, 0755) < 0 && errno != EEXIST) {
		snpctl_fail(-errno, "cert export", "cannot create %s", a.arg);
		goto out;
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", a.arg, names[i]);
		if (!a.force && access(path, F_OK) == 0) {
			fprintf(stderr, "snpctl: cert export: %s exists (--force replaces it)\n",
				path);
			goto out;
		}
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", a.arg, names[i]);
		r = i < 3 ? snpctl_write_file_atomic(path, (const uint8_t *)out[i].buf, out[i].len)
			  : snpctl_write_file_atomic(path, der, der_len);
		if (r < 0) {
			snpctl_fail(r, "cert export", "cannot write %s", path);
			goto out;
		}
	}
	printf("exported the %s %s chain (source %s) to %s\n", jstr(ch, "product"), jstr(ch, "key"),
	       jstr(ch, "source"), a.arg);
	ret = SNPCTL_EXIT_OK;
out:
	for (size_t i = 0; i < 3; i++)
		X509_free(x[i]);
	for (size_t i = 0; i < 4; i++)
		strbuf_done(&out[i]);
	return ret;
}

/* Reads the first of names that exists in dir (capped); -ENOENT if none. */
static int read_first(const char *dir, const char *const *names, X509 **ret,
		      STACK_OF(X509) * *ret_chain, char *used, size_t used_size)
{
	char path[4096];

	for (size_t i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(used, used_size, "%s", path);
		return ret ? snpctl_load_cert(path, ret) : snpctl_load_chain(path, ret_chain);
	}
	return -ENOENT;
}

static char *pem_string(X509 *x)
{
	struct strbuf sb = {0};

	if (pem_text(x, &sb) < 0) {
		strbuf_done(&sb);
		return NULL;
	}
	return strbuf_steal(&sb);
}

int snpctl_cert_import(int argc, char **argv)
{
	static const char *const leaves[] = {"vcek.der", "vcek.pem", "vcek.crt", NULL};
	static const char *const chains[] = {"cert_chain.pem", NULL};
	static const char *const asks[] = {"ask.pem", NULL};
	static const char *const arks[] = {"ark.pem", NULL};
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_CERT_IMPORT};
	STACK_OF(X509) *sk = NULL;
	X509 *leaf = NULL, *ask = NULL, *ark = NULL;
	char used[4096] = "";
	int r, ret = SNPCTL_EXIT_FAIL;

	r = online_parse(argc, argv, ROT_OPTS, "directory", &a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	r = read_first(a.arg, leaves, &leaf, NULL, used, sizeof(used));
	if (r < 0) {
		snpctl_fail(r, "cert import", "no usable VCEK (vcek.der|.pem|.crt) in %s%s%s",
			    a.arg, used[0] ? ": " : "", used);
		goto out;
	}
	r = read_first(a.arg, chains, NULL, &sk, used, sizeof(used));
	if (r == 0 && certs_kds_chain_pair(sk, &ask, &ark) == 0) {
		ask = X509_dup(ask);
		ark = X509_dup(ark);
	} else if (r == 0) {
		fprintf(stderr,
			"snpctl: cert import: %s must hold two certificates (ASK then "
			"ARK)\n",
			used);
		goto out;
	} else if (r == -ENOENT) {
		r = read_first(a.arg, asks, &ask, NULL, used, sizeof(used));
		if (r == 0)
			r = read_first(a.arg, arks, &ark, NULL, used, sizeof(used));
	}
	if (r < 0 || !ask || !ark) {
		snpctl_fail(r < 0 ? r : -ENOMEM, "cert import",
			    "no usable cert_chain.pem or ask.pem + ark.pem in %s", a.arg);
		goto out;
	}
	a.q.leaf = pem_string(leaf);
	a.q.ask = pem_string(ask);
	a.q.ark = pem_string(ark);
	if (!a.q.leaf || !a.q.ask || !a.q.ark) {
		snpctl_fail(-ENOMEM, "cert import", "encoding the certificates");
		goto out;
	}
	r = snpctl_call(argv[0], a.socket, &a.q, &b);
	if (r != SNPCTL_EXIT_OK) {
		ret = r;
		goto out;
	}
	ret = print_reply(b, a.json);
out:
	free(a.q.leaf);
	free(a.q.ask);
	free(a.q.ark);
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
	if (sk)
		sk_X509_pop_free(sk, X509_free);
	return ret;
}

int snpctl_cert_fetch(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	const json_t *k;
	size_t i;
	int r;

	r = ask(argc, argv, CTL_CMD_CERT_FETCH, NULL, &b);
	if (!b)
		return r;
	json_array_foreach(json_object_get(b, "keys"), i, k)
	{
		printf("%-11s %-13s http %lld, source %s", jstr(k, "key"), jstr(k, "outcome"),
		       (long long)json_integer_value(json_object_get(k, "http_status")),
		       jstr(k, "source"));
		if (json_object_get(k, "error"))
			printf(", error: %s", jstr(k, "error"));
		if (json_integer_value(json_object_get(k, "failures")) > 0)
			printf(", %lld failures, next try in %.0f s",
			       (long long)json_integer_value(json_object_get(k, "failures")),
			       json_real_value(json_object_get(k, "retry_in_sec")));
		printf("\n");
	}
	printf("%s\n", jstr(b, "message"));
	return SNPCTL_EXIT_OK;
}

/* tcb show and the rotating commands: the daemon's answer in the text form of print_reply. */
static int run(int argc, char **argv, enum ctl_cmd cmd, const char *arg_name)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	int r;

	r = ask(argc, argv, cmd, arg_name, &b);
	if (!b)
		return r;
	return print_reply(b, false);
}

int snpctl_cert_rotate(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_CERT_ROTATE, NULL);
}

int snpctl_tcb_show(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_SHOW, NULL);
}

int snpctl_tcb_set(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_SET, "TCB");
}

int snpctl_tcb_commit(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_COMMIT, NULL);
}

int snpctl_vlek_load(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_VLEK_LOAD, "HASHSTICK file");
}

#define COMMON_HELP                                                                                \
	"  --json            print the daemon's JSON object\n"                                     \
	"  --socket PATH     the daemon's control socket (default "                                \
	"/run/snp-attestd/control.sock)\n"                                                         \
	"  -h, --help        this text\n"

#define ROTATION_TEXT                                                                              \
	"The daemon first obtains the chain for the new state (certificate directory, or cache\n"  \
	"then KDS) and refuses if it cannot; then it pauses admission (guests get BUSY), waits "   \
	"for\n"                                                                                    \
	"requests in flight, changes the firmware and rewrites the VMM certificate file under "    \
	"its\n"                                                                                    \
	"exclusive lock, swaps the chain and resumes. The answer comes when all that is done.\n"   \
	"Needs the admin group or root.\n"

const char snpctl_help_cert_rotate[] =
	"Usage: snpctl cert rotate [--json] [--socket PATH]\n"
	"\n"
	"Rebuilds the served chain from its source and swaps it in.\n" ROTATION_TEXT
	"\n" COMMON_HELP;
const char snpctl_help_cert_show[] =
	"Usage: snpctl cert show [--json] [--socket PATH]\n"
	"\n"
	"Shows the served chain: per certificate the subject and issuer CN, serial, validity,\n"
	"SHA-256 fingerprint and PEM (--json); the key kind, TCB, source, when it was obtained,\n"
	"the next scheduled refresh, the root and the table size.\n"
	"\n" COMMON_HELP;
const char snpctl_help_cert_export[] =
	"Usage: snpctl cert export DIR [--force] [--socket PATH]\n"
	"\n"
	"Writes the served chain into DIR (created if missing): ark.pem, ask.pem (asvk.pem),\n"
	"cert_chain.pem (ASK then ARK, as KDS serves it) and vcek.der (vlek.der), each\n"
	"atomically. Existing files are kept unless --force is given.\n"
	"\n"
	"  --force           replace existing files\n" COMMON_HELP;
const char snpctl_help_cert_import[] =
	"Usage: snpctl cert import DIR [--json] [--socket PATH]\n"
	"\n"
	"Sends the VCEK (vcek.der|.pem|.crt) and the chain (cert_chain.pem, or ask.pem and\n"
	"ark.pem) from DIR to the daemon, for hosts without KDS access. The daemon verifies them\n"
	"against its roots, the chip and the reported TCB, refuses them with the reason if they\n"
	"do not fit, else writes them into its KDS cache and serves them after a rotation.\n"
	"Needs the KDS cache as the source (not [certs] cert_dir).\n" ROTATION_TEXT
	"\n" COMMON_HELP;
const char snpctl_help_cert_fetch[] =
	"Usage: snpctl cert fetch [--json] [--socket PATH]\n"
	"\n"
	"Asks KDS now (revalidating the cache) for the chain and VCEK of the platform and\n"
	"reports per key the outcome (fetched, not_modified, cache, stale or error), the HTTP\n"
	"status and the backoff state; rotates when the answer differs from the served chain.\n"
	"Needs the admin group or root.\n"
	"\n" COMMON_HELP;
const char snpctl_help_tcb_show[] =
	"Usage: snpctl tcb show [--json] [--socket PATH]\n"
	"\n"
	"Shows the platform's current, reported and (simulator) committed TCB, whether a VLEK is\n"
	"loaded, and the outcome of the last rotation.\n"
	"\n" COMMON_HELP;
const char snpctl_help_tcb_set[] =
	"Usage: snpctl tcb set TCB [--json] [--socket PATH]\n"
	"\n"
	"Sets the reported TCB (SNP_SET_CONFIG). TCB: 16 hex digits, 0x..., or\n"
	"bl=N,tee=N,snp=N,ucode=N (with fmc=N on Turin); not newer than the current "
	"TCB.\n" ROTATION_TEXT "\n" COMMON_HELP;
const char snpctl_help_tcb_commit[] =
	"Usage: snpctl tcb commit [--json] [--socket PATH]\n"
	"\n"
	"Commits the current TCB (SNP_COMMIT): committed and reported TCB become the current one,\n"
	"and older firmware can no longer be loaded.\n" ROTATION_TEXT "\n" COMMON_HELP;
const char snpctl_help_vlek_load[] =
	"Usage: snpctl vlek load HASHSTICK [--json] [--socket PATH]\n"
	"\n"
	"Loads a wrapped VLEK hashstick (the 432-byte file from KDS; SNP_VLEK_LOAD). The VLEK\n"
	"chain (vlek-<TCB>.der and cert_chain_vlek.pem in the certificate directory) is served\n"
	"afterwards.\n" ROTATION_TEXT "\n" COMMON_HELP;
