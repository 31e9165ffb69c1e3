/* SPDX-License-Identifier: Apache-2.0 */
/* snp-kdssim: an HTTP(S) server with AMD KDS's URL layout serving the simulated chip's
 * certificates, with fault injection, conditional GET and a request log. Test tool only. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "certs.h"
#include "config.h"
#include "fault.h"
#include "kds.h"
#include "keys.h"
#include "state.h"
#include "tcb.h"
#include "tls.h"
#include "util.h"

#define MAX_STAT_PATHS 1024
#define MAX_BODIES 1024 /* every TCB is a distinct VCEK: bound what a client can make us keep */
#define MAX_QUERY 1024
#define CACHE_CONTROL "public, max-age=86400"

/* One response body produced once and then served as is (a re-signed certificate would get a
 * new ETag on every request, which a caching proxy in front must not see). */
struct body {
	struct body *next;
	char *key;     /* owned: kds_cache_key */
	uint8_t *data; /* owned */
	size_t len;
	const char *type; /* static */
	time_t mtime;
	char etag[40];
};

struct stat_entry {
	struct stat_entry *next;
	char *path; /* owned */
	unsigned status;
	uint64_t count;
};

struct server {
	struct sim_state *state; /* owned */
	struct sim_ca *ca;	 /* owned */
	enum snp_product product;
	pthread_mutex_t lock; /* guards everything below */
	struct sim_fault_set faults;
	struct body *bodies; /* owned list, newest first */
	size_t n_bodies;
	struct stat_entry *stats; /* owned list */
	size_t n_stat_paths;
	uint64_t total;
	FILE *log; /* owned unless stdout */
};

static void logf_locked(struct server *s, const char *fmt, ...) _printf_(2, 3);
static void logf_locked(struct server *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(s->log, fmt, ap);
	va_end(ap);
	fflush(s->log);
}

static void http_date(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* IMF-fixdate only; anything else is ignored like an absent header. */
static bool parse_http_date(const char *s, time_t *ret)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	if (!end || *end)
		return false;
	*ret = timegm(&tm);
	return true;
}

static void stat_count(struct server *s, const char *path, unsigned status)
{
	struct stat_entry *e;
	bool known_path = false;

	s->total++;
	for (e = s->stats; e; e = e->next) {
		if (strcmp(e->path, path) == 0) {
			known_path = true;
			if (e->status == status) {
				e->count++;
				return;
			}
		}
	}
	/* Bounded: a client inventing paths must not grow this without limit. */
	if (!known_path && s->n_stat_paths >= MAX_STAT_PATHS)
		path = "(other)";
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->path = strdup(path);
	if (!e->path) {
		free(e);
		return;
	}
	e->status = status;
	e->count = 1;
	e->next = s->stats;
	s->stats = e;
	if (!known_path)
		s->n_stat_paths++;
}

/* {"total": N, "by_path": {"/vcek/v1/Milan/cert_chain": {"200": 2}}, "by_status": {...}} */
static char *stats_json(struct server *s)
{
	json_t *root = json_object(), *by_path = json_object(), *by_status = json_object();
	char *out;

	for (struct stat_entry *e = s->stats; e; e = e->next) {
		char code[8];
		json_t *p = json_object_get(by_path, e->path);
		json_int_t prev;

		snprintf(code, sizeof(code), "%u", e->status);
		if (!p) {
			p = json_object();
			json_object_set_new(by_path, e->path, p);
		}
		json_object_set_new(p, code, json_integer((json_int_t)e->count));
		prev = json_integer_value(json_object_get(by_status, code));
		json_object_set_new(by_status, code, json_integer(prev + (json_int_t)e->count));
	}
	json_object_set_new(root, "total", json_integer((json_int_t)s->total));
	json_object_set_new(root, "by_path", by_path);
	json_object_set_new(root, "by_status", by_status);
	out = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(root);
	return out;
}

static int body_new(const char *key, uint8_t *data, size_t len, const char *type, time_t now,
		    struct body **ret)
{
	struct body *b = calloc(1, sizeof(*b));
	uint8_t md[32];
	char hex[65];

	if (!b)
		return -ENOMEM;
	b->key = strdup(key);
	if (!b->key) {
		free(b);
		return -ENOMEM;
	}
	b->data = data;
	b->len = len;
	b->type = type;
	b->mtime = now;
	if (!EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL)) {
		free(b->key);
		free(b);
		return -EIO;
	}
	hex_encode(md, 16, hex);
	snprintf(b->etag, sizeof(b->etag), "\"%.32s\"", hex);
	*ret = b;
	return 0;
}

/* Issues the VCEK for (hwid, tcb) if hwid is the simulated chip's: -ENOENT otherwise. */
static int make_vcek(struct server *s, const struct kds_request *q, time_t now, uint8_t **ret,
		     size_t *ret_len)
{
	struct sim_state_data d;
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *x = NULL;
	int r;

	r = sim_state_read(s->state, &d);
	if (r < 0)
		return r;
	if (q->hwid_len > sizeof(d.chip_id) || memcmp(q->hwid, d.chip_id, q->hwid_len) != 0)
		r = -ENOENT;
	else
		r = sim_keys_vcek(d.secret, d.product, q->tcb, &priv);
	OPENSSL_cleanse(d.secret, sizeof(d.secret));
	if (r < 0)
		return r;
	r = sim_keys_public(priv, &pub);
	if (r >= 0)
		r = sim_ca_issue_vcek(s->ca, pub, q->hwid, q->hwid_len, q->tcb, now, &x);
	if (r >= 0) {
		/* Self-check with the project's own verifier before anything leaves the server. */
		struct certs_verify_opts o = {.extra_ark = sim_ca_ark(s->ca), .now = now};
		enum snp_product got;

		r = certs_verify_chain(x, sim_ca_signer(s->ca, SIM_CA_VCEK), sim_ca_ark(s->ca), &o,
				       &got);
		if (r >= 0)
			r = certs_check_platform(x, s->product, q->tcb, q->hwid, q->hwid_len);
		if (r < 0)
			fprintf(stderr, "snp-kdssim: issued VCEK fails self-check: %s\n",
				snp_strerror(r));
	}
	if (r >= 0)
		r = certs_to_der(x, ret, ret_len);
	X509_free(x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
	return r;
}

/* The body for a parsed request, from the cache or made now. Called with the lock held:
 * issuing is quick (one signature) and serialising keeps one body per key. */
static int get_body(struct server *s, const struct kds_request *q, struct body **ret)
{
	char key[256];
	uint8_t *data = NULL;
	size_t len = 0;
	const char *type;
	time_t now = time(NULL);
	struct body *b;
	int r;

	r = kds_cache_key(q, key, sizeof(key));
	if (r < 0)
		return r;
	for (b = s->bodies; b; b = b->next)
		if (strcmp(b->key, key) == 0) {
			*ret = b;
			return 0;
		}

	switch (q->kind) {
	case KDS_VCEK_CHAIN:
	case KDS_VLEK_CHAIN: {
		char *pem;
		r = sim_ca_chain_pem(s->ca, q->kind == KDS_VLEK_CHAIN ? SIM_CA_VLEK : SIM_CA_VCEK,
				     &pem, &len);
		data = (uint8_t *)pem;
		type = "application/x-pem-file";
		break;
	}
	case KDS_VCEK_CRL:
	case KDS_VLEK_CRL: {
		X509_CRL *crl = NULL;
		r = sim_ca_issue_crl(s->ca, q->kind == KDS_VLEK_CRL ? SIM_CA_VLEK : SIM_CA_VCEK,
				     now, &crl);
		if (r >= 0)
			r = certs_crl_to_der(crl, &data, &len);
		X509_CRL_free(crl);
		type = "application/pkix-crl";
		break;
	}
	case KDS_VCEK:
		r = make_vcek(s, q, now, &data, &len);
		type = "application/pkix-cert";
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;
	r = body_new(key, data, len, type, now, &b);
	if (r < 0) {
		free(data);
		return r;
	}
	b->next = s->bodies;
	s->bodies = b;
	if (++s->n_bodies > MAX_BODIES) {
		/* Drop the oldest; callers copy a body under the lock, so nobody still uses it. */
		struct body **pp = &s->bodies;
		while ((*pp)->next)
			pp = &(*pp)->next;
		free((*pp)->key);
		free((*pp)->data);
		free(*pp);
		*pp = NULL;
		s->n_bodies--;
	}
	*ret = b;
	return 0;
}

struct query_buf {
	char buf[MAX_QUERY];
	size_t len;
	bool overflow;
};

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct query_buf *qb = cls;
	int n = snprintf(qb->buf + qb->len, sizeof(qb->buf) - qb->len, "%s%s%s%s",
			 qb->len ? "&" : "", key, value ? "=" : "", value ? value : "");

	if (n < 0 || (size_t)n >= sizeof(qb->buf) - qb->len) {
		qb->overflow = true;
		return MHD_NO;
	}
	qb->len += (size_t)n;
	return MHD_YES;
}

struct truncated {
	uint8_t *data; /* owned */
	size_t cut;
};

static ssize_t on_truncated_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct truncated *t = cls;
	size_t n;

	if (pos >= t->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR; /* drop the connection mid-body */
	n = MIN(max, t->cut - (size_t)pos);
	memcpy(buf, t->data + pos, n);
	return (ssize_t)n;
}

static void on_truncated_free(void *cls)
{
	struct truncated *t = cls;

	free(t->data);
	free(t);
}

static struct MHD_Response *text_response(const char *text)
{
	return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
}

/* Queues and logs one answer; takes ownership of resp. */
static enum MHD_Result finish(struct server *s, struct MHD_Connection *c, const char *method,
			      const char *url, unsigned status, struct MHD_Response *resp,
			      size_t bytes, const struct sim_fault_decision *fd)
{
	enum MHD_Result ret;
	char when[64], fault[128], safe[256];
	time_t now = time(NULL);
	struct tm tm;
	size_t i;

	if (!resp)
		return MHD_NO;
	/* The path is client text after URL-decoding: keep the log one line per request and
	 * the stats keys valid JSON strings. */
	for (i = 0; url[i] && i < sizeof(safe) - 1; i++)
		safe[i] = (unsigned char)url[i] < 0x21 || (unsigned char)url[i] >= 0x7f ? '?'
											: url[i];
	safe[i] = '\0';
	url = safe;
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&s->lock);
	if (strncmp(url, "/_sim/", 6) != 0)
		stat_count(s, url, status);
	logf_locked(s, "%s method=%s path=%s status=%u bytes=%zu fault=%s\n", when, method, url,
		    status, bytes, sim_fault_describe(fd, fault, sizeof(fault)));
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Whether the client already holds this body (If-None-Match wins over If-Modified-Since). */
static bool not_modified(struct MHD_Connection *c, const struct body *b)
{
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	const char *ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Modified-Since");
	time_t t;

	if (inm)
		return strcmp(inm, "*") == 0 || strstr(inm, b->etag) != NULL;
	return ims && parse_http_date(ims, &t) && t >= b->mtime;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct server *s = cls;
	struct sim_fault_decision fd = {0};
	struct query_buf qb = {.len = 0};
	struct kds_request q;
	struct MHD_Response *resp;
	struct body *b = NULL;
	char path[MAX_QUERY + 512], date[64], ra[16];
	unsigned status;
	uint8_t *copy;
	size_t len;
	int r;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
		resp = text_response("only GET is supported\n");
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
		return finish(s, c, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, resp, 0, &fd);
	}
	if (strcmp(url, "/_sim/stats") == 0) {
		char *j;
		pthread_mutex_lock(&s->lock);
		j = stats_json(s);
		pthread_mutex_unlock(&s->lock);
		if (!j)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(strlen(j), j, MHD_RESPMEM_MUST_FREE);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"application/json");
		return finish(s, c, method, url, MHD_HTTP_OK, resp, strlen(j), &fd);
	}

	pthread_mutex_lock(&s->lock);
	sim_fault_decide_head(&s->faults, &fd);
	pthread_mutex_unlock(&s->lock);
	/* One thread per connection: a delay holds only this client. */
	if (fd.delay_ms)
		usleep((useconds_t)fd.delay_ms * 1000);
	if (fd.status) {
		resp = text_response(fd.status == 429 ? "Too Many Requests\n" : "injected fault\n");
		if (resp && fd.retry_after) {
			snprintf(ra, sizeof(ra), "%u", fd.retry_after);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
		}
		return finish(s, c, method, url, fd.status, resp, 0, &fd);
	}

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_query_arg, &qb);
	if (qb.overflow) {
		return finish(s, c, method, url, MHD_HTTP_BAD_REQUEST,
			      text_response("query too long\n"), 0, &fd);
	}
	snprintf(path, sizeof(path), "%s%s%s", url, qb.len ? "?" : "", qb.buf);
	if (strncmp(url, "/vcek/v1/", 9) != 0 && strncmp(url, "/vlek/v1/", 9) != 0)
		return finish(s, c, method, url, MHD_HTTP_NOT_FOUND, text_response("not found\n"),
			      0, &fd);
	r = kds_parse_path(path, &q);
	if (r < 0)
		return finish(s, c, method, url, MHD_HTTP_BAD_REQUEST,
			      text_response("malformed KDS request\n"), 0, &fd);
	if (q.product != s->product)
		return finish(s, c, method, url, MHD_HTTP_NOT_FOUND,
			      text_response("product not served here\n"), 0, &fd);

	pthread_mutex_lock(&s->lock);
	r = get_body(s, &q, &b);
	if (r >= 0 && !not_modified(c, b))
		sim_fault_decide_body(&s->faults, &fd);
	len = b ? b->len : 0;
	copy = r >= 0 ? malloc(MAX(len, 1)) : NULL;
	if (copy) {
		if (fd.garbage)
			sim_fault_fill(&s->faults, copy, len);
		else
			memcpy(copy, b->data, len);
	}
	pthread_mutex_unlock(&s->lock);
	if (r == -ENOENT)
		return finish(s, c, method, url, MHD_HTTP_NOT_FOUND,
			      text_response("unknown hwid\n"), 0, &fd);
	if (r < 0) {
		fprintf(stderr, "snp-kdssim: cannot serve %s: %s\n", path, snp_strerror(r));
		return finish(s, c, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
			      text_response("internal error\n"), 0, &fd);
	}
	if (!copy)
		return MHD_NO;

	if (not_modified(c, b)) {
		free(copy);
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_MODIFIED;
		len = 0;
	} else if (fd.truncate) {
		struct truncated *t = malloc(sizeof(*t));
		if (!t) {
			free(copy);
			return MHD_NO;
		}
		t->data = copy;
		t->cut = len / 2;
		resp = MHD_create_response_from_callback(len, 4096, on_truncated_read, t,
							 on_truncated_free);
		if (!resp)
			on_truncated_free(t);
		status = MHD_HTTP_OK;
		len /= 2;
	} else {
		resp = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(copy);
		status = MHD_HTTP_OK;
	}
	if (!resp)
		return MHD_NO;
	http_date(b->mtime, date, sizeof(date));
	if (status == MHD_HTTP_OK)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, b->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, CACHE_CONTROL);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, b->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	return finish(s, c, method, url, status, resp, len, &fd);
}

static void server_done(struct server *s)
{
	while (s->bodies) {
		struct body *b = s->bodies;
		s->bodies = b->next;
		free(b->key);
		free(b->data);
		free(b);
	}
	while (s->stats) {
		struct stat_entry *e = s->stats;
		s->stats = e->next;
		free(e->path);
		free(e);
	}
	sim_ca_free(s->ca);
	sim_state_free(s->state);
	if (s->log && s->log != stdout)
		fclose(s->log);
	pthread_mutex_destroy(&s->lock);
}

/* "127.0.0.1:8080", "[::1]:0", "localhost:0" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		port = end + 2;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		port = colon + 1;
	}
	if (n == 0 || n >= sizeof(host) || !*port || strspn(port, "0123456789") != strlen(port) ||
	    strlen(port) > 5 || atoi(port) > 65535)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EADDRNOTAVAIL;
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f) != 0)
		return -errno;
	if (rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static void help(void)
{
	printf("Usage: snp-kdssim --state DIR --listen ADDR:PORT [OPTIONS]\n"
	       "A simulated AMD Key Distribution Service for the simulated chip in DIR.\n\n"
	       "  --state DIR        simulation state directory (CA keys go to DIR/kds/)\n"
	       "  --product NAME     milan|genoa|turin; creates the state if DIR has none\n"
	       "  --listen ADDR:PORT address to bind, e.g. 127.0.0.1:0 ([::1]:PORT for IPv6)\n"
	       "  --port-file FILE   write the bound port to FILE once listening\n"
	       "  --tls              serve HTTPS with a test CA kept in DIR/kds/tls/ (path "
	       "printed)\n"
	       "  --log FILE         request log (default: stdout), one line per request\n"
	       "  --fault SPEC       inject a fault; repeatable, tried in order:\n"
	       "                       STATUS[:TRIGGER]               400..599, e.g. 429, 404, "
	       "500\n"
	       "                       429-retry-after=SECS[:TRIGGER] 429 with Retry-After\n"
	       "                       delay=MS[ms]|SECSs[:TRIGGER]   wait before answering\n"
	       "                       truncate[:TRIGGER]             send half the body, then "
	       "close\n"
	       "                       garbage[:TRIGGER]              random bytes as the body\n"
	       "                     TRIGGER: p=PROBABILITY (0..1) or next=N (the next N "
	       "requests);\n"
	       "                     none: every request. Body faults only hit 200 answers.\n"
	       "  --seed N           seed of the fault generator (default 1)\n"
	       "  --stats            print request counts as JSON on exit (also GET /_sim/stats)\n"
	       "  --help             this text\n\n"
	       "Paths: /vcek/v1/{Milan|Genoa|Turin}/cert_chain, /vcek/v1/{product}/{hwid}?"
	       "[fmcSPL=&]blSPL=&teeSPL=&snpSPL=&ucodeSPL=,\n"
	       "       /vcek/v1/{product}/crl, /vlek/v1/{product}/cert_chain, "
	       "/vlek/v1/{product}/crl\n");
}

/* Run as root for a daemon that is not (the README's service steps): what this process
 * created under DIR/kds (CA keys, the simulated ARK the daemon reads, the TLS test CA) goes to
 * the owner of the state directory, as sim/state does for the state file. One level of
 * subdirectories (kds/tls); symlinks are neither followed nor changed. */
static int hand_over_tree(const char *path, uid_t uid, gid_t gid, int depth)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (lchown(path, uid, gid) < 0)
		return -errno;
	if (depth > 1 || !(d = opendir(path)))
		return depth > 1 ? 0 : -errno;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= sizeof(sub) ||
		    lstat(sub, &st) < 0 || S_ISLNK(st.st_mode))
			continue;
		if (S_ISDIR(st.st_mode))
			r = hand_over_tree(sub, uid, gid, depth + 1);
		else if (S_ISREG(st.st_mode) && lchown(sub, uid, gid) < 0)
			r = -errno;
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

/* READY=1 to the service manager when started as a Type=notify unit (systemd-run -p
 * Type=notify), so that whatever comes next finds the state created and the port open. */
static void notify_ready(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char msg[] = "READY=1";
	socklen_t len;
	size_t n;
	int fd;

	if (!e || (e[0] != '/' && e[0] != '@') || (n = strlen(e)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, e, n);
	if (e[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		fprintf(stderr, "snp-kdssim: cannot notify the service manager: %s\n",
			strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	enum {
		OPT_STATE = 256,
		OPT_PRODUCT,
		OPT_LISTEN,
		OPT_PORT_FILE,
		OPT_TLS,
		OPT_LOG,
		OPT_FAULT,
		OPT_SEED,
		OPT_STATS,
		OPT_HELP
	};
	static const struct option opts[] = {
		{"state", required_argument, NULL, OPT_STATE},
		{"product", required_argument, NULL, OPT_PRODUCT},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"port-file", required_argument, NULL, OPT_PORT_FILE},
		{"tls", no_argument, NULL, OPT_TLS},
		{"log", required_argument, NULL, OPT_LOG},
		{"fault", required_argument, NULL, OPT_FAULT},
		{"seed", required_argument, NULL, OPT_SEED},
		{"stats", no_argument, NULL, OPT_STATS},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *state_dir = NULL, *listen_arg = NULL, *port_file = NULL, *log_path = NULL;
	const char *faults[SIM_FAULT_MAX_RULES + 1];
	size_t n_faults = 0;
	enum snp_product product = SNP_PRODUCT_UNKNOWN;
	bool tls = false, print_stats = false;
	unsigned long long seed = 1;
	struct server s = {.log = stdout};
	struct sockaddr_storage addr;
	socklen_t addr_len = 0;
	struct MHD_Daemon *d = NULL;
	const union MHD_DaemonInfo *info;
	char kds_dir[4096], *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL, portbuf[16];
	struct sim_state_data data;
	sigset_t sigs;
	int c, r, sig, ret = EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case OPT_STATE:
			state_dir = optarg;
			break;
		case OPT_PRODUCT:
			if (snp_product_from_string(optarg, &product) < 0) {
				fprintf(stderr, "snp-kdssim: unknown product '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		case OPT_LISTEN:
			listen_arg = optarg;
			break;
		case OPT_PORT_FILE:
			port_file = optarg;
			break;
		case OPT_TLS:
			tls = true;
			break;
		case OPT_LOG:
			log_path = optarg;
			break;
		case OPT_FAULT:
			if (n_faults >= SIM_FAULT_MAX_RULES) {
				fprintf(stderr, "snp-kdssim: at most %d --fault rules\n",
					SIM_FAULT_MAX_RULES);
				return EXIT_FAILURE;
			}
			faults[n_faults++] = optarg;
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "snp-kdssim: bad --seed '%s'\n", optarg);
				return EXIT_FAILURE;
			}
			break;
		}
		case OPT_STATS:
			print_stats = true;
			break;
		case OPT_HELP:
		case 'h':
			help();
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'snp-kdssim --help'.\n");
			return EXIT_FAILURE;
		}
	}
	if (optind < argc || !state_dir || !listen_arg) {
		fprintf(stderr, "snp-kdssim: --state and --listen are required (see --help)\n");
		return EXIT_FAILURE;
	}
	if (parse_listen(listen_arg, &addr, &addr_len) < 0) {
		fprintf(stderr, "snp-kdssim: bad --listen '%s' (want ADDR:PORT)\n", listen_arg);
		return EXIT_FAILURE;
	}

	pthread_mutex_init(&s.lock, NULL);
	sim_fault_init(&s.faults, seed);
	for (size_t i = 0; i < n_faults; i++) {
		if (sim_fault_add(&s.faults, faults[i]) < 0) {
			fprintf(stderr, "snp-kdssim: bad --fault '%s' (see --help)\n", faults[i]);
			goto out;
		}
	}
	if (log_path) {
		s.log = fopen(log_path, "ae");
		if (!s.log) {
			fprintf(stderr, "snp-kdssim: cannot open log '%s': %s\n", log_path,
				strerror(errno));
			goto out;
		}
	}

	r = sim_state_open(state_dir, product, &s.state);
	if (r == -ENOENT) {
		fprintf(stderr,
			"snp-kdssim: no simulation state in '%s'; pass --product to create "
			"one\n",
			state_dir);
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "snp-kdssim: state '%s': %s\n", state_dir, sim_state_strerror(r));
		goto out;
	}
	r = sim_state_read(s.state, &data);
	if (r < 0) {
		fprintf(stderr, "snp-kdssim: state '%s': %s\n", state_dir, sim_state_strerror(r));
		goto out;
	}
	s.product = data.product;
	OPENSSL_cleanse(data.secret, sizeof(data.secret));

	snprintf(kds_dir, sizeof(kds_dir), "%s/kds", state_dir);
	r = sim_ca_open(kds_dir, s.product, &s.ca);
	if (r < 0) {
		fprintf(stderr, "snp-kdssim: CA in '%s': %s\n", kds_dir, snp_strerror(r));
		goto out;
	}
	if (tls) {
		r = sim_tls_prepare(kds_dir, &tls_cert, &tls_key, &tls_ca);
		if (r < 0) {
			fprintf(stderr, "snp-kdssim: TLS setup in '%s/tls': %s\n", kds_dir,
				snp_strerror(r));
			goto out;
		}
	}
	if (geteuid() == 0) {
		struct stat st;

		if (stat(state_dir, &st) == 0 && st.st_uid != 0 &&
		    (r = hand_over_tree(kds_dir, st.st_uid, st.st_gid, 0)) < 0) {
			fprintf(stderr, "snp-kdssim: cannot give '%s' to the owner of '%s': %s\n",
				kds_dir, state_dir, strerror(-r));
			goto out;
		}
	}

	/* Signals are taken by sigwait() below; MHD's threads inherit the blocked mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
				     MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0) |
				     (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			     tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert,
			     MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "snp-kdssim: cannot listen on %s\n", listen_arg);
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		fprintf(stderr, "snp-kdssim: cannot read the bound port\n");
		goto out;
	}
	snprintf(portbuf, sizeof(portbuf), "%u\n", (unsigned)info->port);
	if (port_file && (r = write_file_atomic(port_file, portbuf)) < 0) {
		fprintf(stderr, "snp-kdssim: cannot write '%s': %s\n", port_file, strerror(-r));
		goto out;
	}
	fprintf(stderr, "snp-kdssim: serving %s on port %u%s%s\n", snp_product_name(s.product),
		(unsigned)info->port, tls ? " (https), CA: " : "", tls ? tls_ca : "");
	notify_ready();

	while (sigwait(&sigs, &sig) == 0 && sig != SIGINT && sig != SIGTERM)
		;
	ret = EXIT_SUCCESS;
out:
	if (d)
		MHD_stop_daemon(d);
	if (print_stats && s.ca) {
		char *j = stats_json(&s);
		if (j)
			printf("%s\n", j);
		free(j);
	}
	free(tls_cert);
	free(tls_key);
	free(tls_ca);
	server_done(&s);
	return ret;
}
