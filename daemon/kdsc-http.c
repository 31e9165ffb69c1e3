/* SPDX-License-Identifier: Apache-2.0 */
/* kdsc-http: the KDS client's HTTP side: libcurl's multi interface driven by the libev loop
 * (socket and timer callbacks), one easy handle per transfer (URL, proxy, CA bundle, conditional
 * headers, a capped body buffer) and the reading of an answer's headers (Retry-After,
 * Cache-Control, ETag, curl errors as -errno). Never blocks the loop; decides nothing about
 * keys, pacing or the cache: kdsc.c does. */
#include "kdsc-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "util.h"

/* ---- libcurl glue ---- */

static void on_sock_io(struct ev_loop *loop, ev_io *w, int revents);
void check_multi_info(struct kdsc *k);

void sock_free(struct kdsc *k, struct kdsc_sock *s)
{
	ev_io_stop(k->loop, &s->io);
	if (s->prev)
		s->prev->next = s->next;
	else
		k->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct kdsc *k = userp;
	struct kdsc_sock *s = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_free(k, s);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1; /* libcurl fails the transfer */
		s->k = k;
		s->next = k->socks;
		if (k->socks)
			k->socks->prev = s;
		k->socks = s;
		ev_init(&s->io, on_sock_io);
		curl_multi_assign(k->multi, fd, s);
	} else {
		ev_io_stop(k->loop, &s->io);
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	ev_io_set(&s->io, fd, events);
	ev_io_start(k->loop, &s->io);
	return 0;
}

int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct kdsc *k = userp;

	ev_timer_stop(k->loop, &k->curl_timer);
	if (timeout_ms >= 0) {
		/* Not calling into libcurl from here (not allowed): the loop runs it soon. */
		ev_timer_set(&k->curl_timer, (double)timeout_ms / 1000., 0.);
		ev_timer_start(k->loop, &k->curl_timer);
	}
	return 0;
}

static void on_sock_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kdsc_sock *s = container_of(w, struct kdsc_sock, io);
	struct kdsc *k = s->k;
	int flags = 0, running;

	if (revents & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (revents & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	/* s may be freed inside (CURL_POLL_REMOVE): only k is used afterwards. */
	curl_multi_socket_action(k->multi, w->fd, flags, &running);
	check_multi_info(k);
}

void on_curl_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kdsc *k = container_of(w, struct kdsc, curl_timer);
	int running;

	curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(k);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct kdsc_xfer *x = userdata;
	size_t n = size * nmemb;

	if (n > KDSC_BODY_MAX - x->len) {
		x->overflow = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (x->len + n > x->cap) {
		size_t cap = MAX(x->cap * 2, 4096);
		uint8_t *b;
		while (cap < x->len + n)
			cap *= 2;
		cap = MIN(cap, (size_t)KDSC_BODY_MAX);
		b = realloc(x->buf, cap);
		if (!b)
			return 0;
		x->buf = b;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	return n;
}

void xfer_free(struct kdsc *k, struct kdsc_xfer *x)
{
	if (!x)
		return;
	if (x->easy) {
		curl_multi_remove_handle(k->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	free(x->buf);
	free(x->cached);
	free(x);
}

static int add_header(struct kdsc_xfer *x, const char *name, const char *value)
{
	char line[256];
	struct curl_slist *l;
	int n;

	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	l = curl_slist_append(x->headers, line);
	if (!l)
		return -ENOMEM;
	x->headers = l;
	return 0;
}

#define SETOPT(x, opt, val)                                                                        \
	do {                                                                                       \
		if (curl_easy_setopt((x)->easy, (opt), (val)) != CURLE_OK)                         \
			return -EIO;                                                               \
	} while (0)

static int xfer_setup(struct kdsc *k, struct kdsc_xfer *x)
{
	long timeout_ms = (long)MAX(k->params.timeout_usec / 1000, 1);
	int r;

	x->easy = curl_easy_init();
	if (!x->easy)
		return -ENOMEM;
	SETOPT(x, CURLOPT_URL, x->url);
	SETOPT(x, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(x, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(x, CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(x, CURLOPT_MAXREDIRS, 3L);
	SETOPT(x, CURLOPT_NOSIGNAL, 1L);
	SETOPT(x, CURLOPT_TIMEOUT_MS, timeout_ms);
	SETOPT(x, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	/* A Content-Length above the cap fails before any byte is read. */
	SETOPT(x, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KDSC_BODY_MAX);
	SETOPT(x, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(x, CURLOPT_WRITEDATA, x);
	SETOPT(x, CURLOPT_PRIVATE, x);
	SETOPT(x, CURLOPT_USERAGENT, "snp-attestd/" PACKAGE_VERSION);
	/* "" disables proxies, including the ones the environment would name. */
	SETOPT(x, CURLOPT_PROXY, k->proxy);
	if (k->ca_bundle[0])
		SETOPT(x, CURLOPT_CAINFO, k->ca_bundle);
	if (x->have_cached) {
		/* A caching proxy in front (or KDS itself) can then answer 304. */
		if (x->cmeta.etag[0]) {
			r = add_header(x, "If-None-Match", x->cmeta.etag);
			if (r < 0)
				return r;
		}
		if (x->cmeta.last_modified[0]) {
			r = add_header(x, "If-Modified-Since", x->cmeta.last_modified);
			if (r < 0)
				return r;
		}
	}
	if (x->headers)
		SETOPT(x, CURLOPT_HTTPHEADER, x->headers);
	return 0;
}

/* ---- response interpretation ---- */

static const char *header_value(CURL *easy, const char *name)
{
	struct curl_header *h;

	if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	return h->value;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); clamped. 0 if absent/bad. */
uint64_t retry_after_usec(CURL *easy)
{
	const char *v = header_value(easy, "Retry-After");
	uint64_t sec = 0;

	if (!v)
		return 0;
	if (all_digits(v)) {
		if (strlen(v) > 9)
			sec = KDSC_RETRY_AFTER_MAX_SEC;
		else
			sec = strtoull(v, NULL, 10);
	} else {
		time_t t = curl_getdate(v, NULL), now = time(NULL);
		if (t > now)
			sec = (uint64_t)(t - now);
	}
	return MIN(sec, (uint64_t)KDSC_RETRY_AFTER_MAX_SEC) * 1000000ull;
}

/* Freshness from Cache-Control (RFC 9111 §5.2.2): max-age, no-cache, no-store. */
void cache_control(CURL *easy, enum kds_kind kind, uint64_t wall, uint64_t *fresh_until,
		   bool *no_store)
{
	const char *v = header_value(easy, "Cache-Control");
	bool crl = kind == KDS_VCEK_CRL || kind == KDS_VLEK_CRL;

	*no_store = false;
	*fresh_until = crl ? wall + KDSC_CRL_DEFAULT_FRESH_SEC : CACHE_FRESH_FOREVER;
	if (!v)
		return;
	while (*v) {
		char tok[64];
		size_t n = 0;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		while (*v && *v != ',' && n < sizeof(tok) - 1)
			tok[n++] = *v++;
		while (*v && *v != ',')
			v++; /* an over-long directive: ignored */
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			n--;
		tok[n] = '\0';
		if (strcasecmp(tok, "no-store") == 0)
			*no_store = true;
		else if (strcasecmp(tok, "no-cache") == 0)
			*fresh_until = wall;
		else if (strncasecmp(tok, "max-age=", 8) == 0 && all_digits(tok + 8)) {
			uint64_t age = strlen(tok + 8) > 9 ? KDSC_MAX_AGE_CAP_SEC
							   : strtoull(tok + 8, NULL, 10);
			*fresh_until = wall + MIN(age, KDSC_MAX_AGE_CAP_SEC);
		}
	}
}

void copy_text_header(CURL *easy, const char *name, char *buf, size_t size)
{
	const char *v = header_value(easy, name);
	size_t n;

	buf[0] = '\0';
	if (!v)
		return;
	n = strlen(v);
	if (n >= size)
		return; /* too long to replay: just no conditional request next time */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return;
	memcpy(buf, v, n + 1);
}

int map_curl_error(CURLcode cc, const struct kdsc_xfer *x)
{
	if (x->overflow)
		return -EMSGSIZE;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_PARTIAL_FILE:
		return -EBADMSG; /* truncated: never half a certificate */
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

void check_multi_info(struct kdsc *k)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(k->multi, &left))) {
		struct kdsc_xfer *x = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (x)
			xfer_done(k, x, m->data.result); /* m is invalid after this */
	}
}

int xfer_start(struct kdsc *k, struct kdsc_key *e, unsigned flags, uint8_t *cached,
	       size_t cached_len, const struct cache_meta *cmeta)
{
	struct kdsc_xfer *x = calloc(1, sizeof(*x));
	int r;

	if (!x)
		return -ENOMEM;
	x->key = e;
	x->flags = flags;
	if (cached) {
		x->have_cached = true;
		x->cached = cached;
		x->cached_len = cached_len;
		x->cmeta = *cmeta;
	}
	r = kds_url(&e->q, k->base, x->url, sizeof(x->url));
	if (r >= 0)
		r = xfer_setup(k, x);
	if (r >= 0 && curl_multi_add_handle(k->multi, x->easy) != CURLM_OK)
		r = -EIO;
	if (r < 0) {
		x->cached = NULL; /* still the caller's on failure */
		if (x->easy) {
			curl_easy_cleanup(x->easy);
			x->easy = NULL;
		}
		xfer_free(k, x);
		return r;
	}
	x->started_usec = now_usec();
	e->xfer = x;
	e->last_attempt_usec = x->started_usec;
	e->next_attempt_usec = x->started_usec + k->params.min_interval_usec;
	k->stats.requests++;
	log_debug("KDS GET %s", x->url);
	return 0;
}
