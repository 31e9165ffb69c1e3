/* SPDX-License-Identifier: Apache-2.0 */
/* KDS client against a real snp-kdssim on 127.0.0.1: fetch, coalescing, Retry-After, backoff
 * under a 429 storm, 404, 5xx, timeouts with a live loop, bad bodies, 304, warm cache. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ev.h>
#include <jansson.h>

#include "cache.h"
#include "certs.h"
#include "conf.h"
#include "kds.h"
#include "kdsc.h"
#include "manager.h"
#include "state.h"
#include "chain.h"
#include "util.h"

#define MS 1000ull

static char state_dir[PATH_MAX], sim_exe[PATH_MAX];
static uint8_t chip_id[64];
static uint64_t reported_tcb;

struct sim {
	pid_t pid;
	unsigned port;
};

struct ctx {
	char work[64], cache[PATH_MAX], url[64];
	struct sim sim;
	struct conf conf;
	struct ev_loop *loop;
	struct kdsc *k;
	struct kds_request chain, vcek;
};

struct result {
	int calls;
	int r;
	uint8_t *body;
	size_t len;
	struct kdsc_meta meta;
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

/* Returns NULL or what went wrong (usable outside a test: no Check calls). */
static const char *sim_try_start(struct sim *s, const char *work, const char *fault)
{
	char portf[PATH_MAX], logf[PATH_MAX];
	pid_t parent = getpid();

	snprintf(portf, sizeof(portf), "%s/sim.port", work);
	snprintf(logf, sizeof(logf), "%s/sim.log", work);
	unlink(portf);
	s->pid = fork();
	if (s->pid < 0)
		return "fork failed";
	if (s->pid == 0) {
		const char *argv[16];
		int n = 0;

		/* Never outlive a test process that failed an assertion. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		argv[n++] = sim_exe;
		argv[n++] = "--state";
		argv[n++] = state_dir;
		argv[n++] = "--product";
		argv[n++] = "milan";
		argv[n++] = "--listen";
		argv[n++] = "127.0.0.1:0";
		argv[n++] = "--port-file";
		argv[n++] = portf;
		argv[n++] = "--log";
		argv[n++] = logf;
		if (fault) {
			argv[n++] = "--fault";
			argv[n++] = fault;
		}
		argv[n] = NULL;
		execv(sim_exe, (char **)argv);
		_exit(127);
	}
	/* The first start generates RSA-4096 keys: this is a limit, not a measurement. */
	for (int i = 0; i < 3000; i++) {
		FILE *f = fopen(portf, "r");
		int st;

		if (f) {
			int ok = fscanf(f, "%u", &s->port) == 1;
			fclose(f);
			if (ok && s->port)
				return NULL;
		}
		if (waitpid(s->pid, &st, WNOHANG) != 0) {
			s->pid = 0;
			return "snp-kdssim exited";
		}
		usleep(100000);
	}
	return "snp-kdssim did not start";
}

static void sim_start(struct sim *s, const char *work, const char *fault)
{
	const char *err = sim_try_start(s, work, fault);

	ck_assert_msg(!err, "%s (%s)", err, sim_exe);
}

static void sim_stop(struct sim *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

static size_t on_stats_body(char *p, size_t size, size_t n, void *ud)
{
	struct strbuf *sb = ud;
	char tmp[4097];
	size_t len = MIN(size * n, sizeof(tmp) - 1);

	memcpy(tmp, p, len);
	tmp[len] = '\0';
	strbuf_append(sb, tmp);
	return len;
}

/* Upstream requests the simulator saw for a request's path (status NULL: any status). */
static long sim_count(const struct ctx *c, const struct kds_request *q, const char *status)
{
	struct strbuf sb = {0};
	char url[128], path[2048], *qm;
	json_t *root, *byp, *v;
	const char *key;
	long total = 0;
	CURL *e = curl_easy_init();

	ck_assert(e);
	ck_assert_int_eq(kds_url(q, "http://h", path, sizeof(path)), 0);
	memmove(path, path + 8, strlen(path + 8) + 1); /* the path as the server logs it */
	qm = strchr(path, '?');
	if (qm)
		*qm = '\0';
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/_sim/stats", c->sim.port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_stats_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &sb);
	ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	ck_assert(!strbuf_failed(&sb) && sb.buf);
	root = json_loads(sb.buf, 0, NULL);
	ck_assert(root);
	byp = json_object_get(json_object_get(root, "by_path"), path);
	if (byp) {
		json_object_foreach(byp, key, v)
		{
			if (!status || strcmp(key, status) == 0)
				total += (long)json_integer_value(v);
		}
	}
	json_decref(root);
	strbuf_done(&sb);
	return total;
}

static void on_done(void *ud, int r, const uint8_t *body, size_t len, const struct kdsc_meta *m)
{
	struct result *res = ud;

	res->calls++;
	res->r = r;
	free(res->body);
	res->body = NULL;
	res->len = 0;
	if (r == 0) {
		ck_assert(body && len > 0);
		res->body = malloc(len);
		memcpy(res->body, body, len);
		res->len = len;
	} else {
		ck_assert(!body && !len);
	}
	res->meta = *m;
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(bool *)w->data = true;
}

/* Runs the loop until *counter reaches target; a stuck test fails after a generous guard. */
static void run_until(struct ev_loop *loop, const int *counter, int target)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, on_guard, 90., 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	while (*counter < target && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
	ck_assert_msg(!expired, "loop did not complete");
}

static void set_str(char **p, const char *v)
{
	free(*p);
	*p = strdup(v);
	ck_assert(*p);
}

static void fast_params(struct kdsc *k)
{
	const struct kdsc_params p = {
		.timeout_usec = 10000 * MS,
		.min_interval_usec = 0,
		.backoff_base_usec = 100 * MS,
		.backoff_max_usec = 10000 * MS,
	};
	kdsc_set_params(k, &p);
}

static void ctx_start(struct ctx *c, const char *fault)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->work, sizeof(c->work), "/tmp/test-kdsc-XXXXXX");
	ck_assert(mkdtemp(c->work));
	snprintf(c->cache, sizeof(c->cache), "%s/cache", c->work);
	sim_start(&c->sim, c->work, fault);
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%u", c->sim.port);
	ck_assert_int_eq(conf_init_defaults(&c->conf), 0);
	set_str(&c->conf.kds_url, c->url);
	set_str(&c->conf.kds_proxy, "");
	set_str(&c->conf.cache_dir, c->cache);
	c->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert(c->loop);
	ck_assert_int_eq(kdsc_new(c->loop, &c->conf, &c->k), 0);
	fast_params(c->k);
	c->chain = (struct kds_request){.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_MILAN};
	c->vcek = (struct kds_request){.kind = KDS_VCEK,
				       .product = SNP_PRODUCT_MILAN,
				       .hwid_len = 64,
				       .tcb = reported_tcb};
	memcpy(c->vcek.hwid, chip_id, 64);
}

static void ctx_done(struct ctx *c)
{
	kdsc_free(c->k);
	ev_loop_destroy(c->loop);
	sim_stop(&c->sim);
	conf_done(&c->conf);
	nftw(c->work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Cache writes run on kdsc's worker thread and complete on the loop: runs the loop until
 * none is pending, so what the test reads on disk is what kdsc stored. */
static void settle(struct ctx *c)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, on_guard, 90., 0.);
	guard.data = &expired;
	ev_timer_start(c->loop, &guard);
	while (kdsc_writes_pending(c->k) > 0 && !expired)
		ev_run(c->loop, EVRUN_ONCE);
	ev_timer_stop(c->loop, &guard);
	ck_assert_msg(!expired, "cache writes did not complete");
}

static void fetch(struct ctx *c, const struct kds_request *q, unsigned flags, struct result *res)
{
	int before = res->calls;

	ck_assert_int_eq(kdsc_fetch(c->k, q, flags, on_done, res), 0);
	ck_assert_int_eq(res->calls, before); /* never called from inside kdsc_fetch */
	run_until(c->loop, &res->calls, before + 1);
	settle(c);
}

static unsigned count_files(const char *d, const char *mark)
{
	DIR *dir = opendir(d);
	struct dirent *de;
	unsigned n = 0;

	if (!dir)
		return 0;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    (!mark || strstr(de->d_name, mark)))
			n++;
	closedir(dir);
	return n;
}

START_TEST(test_fetch_chain_and_vcek)
{
	struct ctx c;
	struct result rc = {0}, rv = {0};
	STACK_OF(X509) *sk = NULL;
	X509 *leaf = NULL, *ark = NULL;
	struct certs_verify_opts o = {0};
	struct kdsc_key_state ks;
	struct kdsc_stats st;
	enum snp_product p;

	ctx_start(&c, NULL);
	fetch(&c, &c.chain, 0, &rc);
	fetch(&c, &c.vcek, 0, &rv);
	ck_assert_int_eq(rc.r, 0);
	ck_assert_int_eq(rv.r, 0);
	ck_assert_int_eq(rc.meta.source, KDSC_SOURCE_KDS);
	ck_assert_uint_eq(rv.meta.http_status, 200);

	/* What came back is the simulator's real chain, and the VCEK is this chip's. */
	ck_assert_int_eq(certs_parse_pem_chain(rc.body, rc.len, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	ck_assert_int_eq(certs_parse(rv.body, rv.len, &leaf), 0);
	ck_assert_int_eq(chain_load_sim_ark(state_dir, SNP_PRODUCT_MILAN, &ark), 0);
	ck_assert(ark);
	o.extra_ark = ark;
	ck_assert_int_eq(
		certs_verify_chain(leaf, sk_X509_value(sk, 0), sk_X509_value(sk, 1), &o, &p), 0);
	ck_assert_int_eq(certs_check_platform(leaf, SNP_PRODUCT_MILAN, reported_tcb, chip_id, 64),
			 0);

	/* Both are cached now: asking again makes no request. */
	fetch(&c, &c.chain, 0, &rc);
	fetch(&c, &c.vcek, 0, &rv);
	ck_assert_int_eq(rc.r, 0);
	ck_assert_int_eq(rc.meta.source, KDSC_SOURCE_CACHE);
	ck_assert_int_eq(rv.meta.source, KDSC_SOURCE_CACHE);
	ck_assert(!rv.meta.stale);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.ok, 2);
	ck_assert_uint_eq(st.cache_hits, 2);
	ck_assert_int_eq(sim_count(&c, &c.chain, NULL), 1);
	ck_assert_int_eq(sim_count(&c, &c.vcek, NULL), 1);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.vcek, &ks), 0);
	ck_assert_uint_eq(ks.last_http_status, 200);
	ck_assert_uint_eq(ks.failures, 0);
	ck_assert(!ks.in_flight);
	ck_assert_uint_eq(count_files(c.cache, ".kdsc"), 2);

	sk_X509_pop_free(sk, X509_free);
	X509_free(leaf);
	X509_free(ark);
	free(rc.body);
	free(rv.body);
	ctx_done(&c);
}
END_TEST

START_TEST(test_coalescing)
{
	struct ctx c;
	struct result res[10] = {0};
	struct kdsc_stats st;

	ctx_start(&c, NULL);
	for (size_t i = 0; i < ELEMENTSOF(res); i++)
		ck_assert_int_eq(kdsc_fetch(c.k, &c.vcek, 0, on_done, &res[i]), 0);
	ck_assert_uint_eq(kdsc_pending(c.k), 10);
	/* Waiters are answered in order: the last one called means all were. */
	run_until(c.loop, &res[9].calls, 1);
	for (size_t i = 0; i < ELEMENTSOF(res); i++) {
		ck_assert_int_eq(res[i].calls, 1);
		ck_assert_int_eq(res[i].r, 0);
		ck_assert_uint_eq(res[i].len, res[0].len);
		ck_assert(memcmp(res[i].body, res[0].body, res[0].len) == 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(res); i++)
		free(res[i].body);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 1);
	ck_assert_uint_eq(st.coalesced, 9);
	ck_assert_int_eq(sim_count(&c, &c.vcek, NULL), 1);
	ck_assert_uint_eq(kdsc_pending(c.k), 0);
	ctx_done(&c);
}
END_TEST

/* A caller that keeps asking (every tick) while kdsc decides when a request may go out. */
struct hammer {
	struct ctx *c;
	const struct kds_request *q;
	ev_timer tick;
	struct result res;
	bool outstanding, cur_is_request, last_was_request;
	uint64_t attempts[16]; /* request start times (key state right after the fetch) */
	int results[16];       /* each request's outcome */
	int n_attempts;
	int want;
	int in_flight_ticks;
};

static void hammer_done(void *ud, int r, const uint8_t *b, size_t len, const struct kdsc_meta *m)
{
	struct hammer *h = ud;

	on_done(&h->res, r, b, len, m);
	h->outstanding = false;
	h->last_was_request = h->cur_is_request;
	if (h->cur_is_request)
		h->results[h->n_attempts - 1] = r;
}

static void hammer_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hammer *h = container_of(w, struct hammer, tick);
	struct kdsc_key_state ks;
	struct kdsc_stats st;
	uint64_t before;

	if (kdsc_key_state(h->c->k, h->q, &ks) == 0 && ks.in_flight)
		h->in_flight_ticks++;
	if (h->outstanding || h->n_attempts >= h->want)
		return;
	kdsc_get_stats(h->c->k, &st);
	before = st.requests;
	ck_assert_int_eq(kdsc_fetch(h->c->k, h->q, 0, hammer_done, h), 0);
	h->outstanding = true;
	kdsc_get_stats(h->c->k, &st);
	h->cur_is_request = st.requests > before; /* requests start inside kdsc_fetch */
	if (h->cur_is_request) {
		ck_assert_int_eq(kdsc_key_state(h->c->k, h->q, &ks), 0);
		ck_assert(ks.in_flight);
		h->attempts[h->n_attempts++] = ks.last_attempt_usec;
	}
}

static void hammer_run(struct hammer *h, double every)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, on_guard, 90., 0.);
	guard.data = &expired;
	ev_timer_start(h->c->loop, &guard);
	ev_timer_init(&h->tick, hammer_tick, 0., every);
	ev_timer_start(h->c->loop, &h->tick);
	/* until `want` requests were made and the last one answered */
	while (!(h->n_attempts >= h->want && !h->outstanding && h->last_was_request) && !expired)
		ev_run(h->c->loop, EVRUN_ONCE);
	ev_timer_stop(h->c->loop, &h->tick);
	ev_timer_stop(h->c->loop, &guard);
	ck_assert_msg(!expired, "hammer did not complete");
}

START_TEST(test_retry_after_honoured)
{
	struct ctx c;
	struct hammer h = {.want = 2};
	struct kdsc_stats st;

	ctx_start(&c, "429-retry-after=2");
	h.c = &c;
	h.q = &c.chain;
	hammer_run(&h, 0.05);
	ck_assert_int_eq(h.n_attempts, 2);
	/* Backoff alone would retry after 100..150 ms: the server's 2 s win. */
	ck_assert_msg(h.attempts[1] - h.attempts[0] >= 2000 * MS, "retried after %llu us",
		      (unsigned long long)(h.attempts[1] - h.attempts[0]));
	ck_assert_int_eq(h.results[0], -EAGAIN);
	ck_assert_int_eq(h.res.r, -EAGAIN);
	ck_assert_uint_eq(h.res.meta.http_status, 429);
	ck_assert_uint_ge(h.res.meta.retry_at_usec, h.attempts[1] + 2000 * MS);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.throttled, 2);
	ck_assert_uint_gt(st.backoff_refused, 0); /* the caller asked in between: refused */
	ck_assert_int_eq(sim_count(&c, &c.chain, "429"), 2);
	free(h.res.body);
	ctx_done(&c);
}
END_TEST

/* Issue 13 point 5: KDS throttles per client, so a 429 on one key pauses every key: the next
 * fetch of another key makes no request until the Retry-After has passed (answered -EAGAIN
 * with that time), and the refused key's own failure count is not charged to the others. */
START_TEST(test_429_paces_every_key)
{
	struct ctx c;
	struct result r1 = {0}, r2 = {0}, r3 = {0};
	struct kdsc_key_state ks;
	struct kds_request crl = {.kind = KDS_VCEK_CRL, .product = SNP_PRODUCT_MILAN};
	struct kdsc_stats st;

	ctx_start(&c, "429-retry-after=600");
	fetch(&c, &c.chain, 0, &r1);
	ck_assert_int_eq(r1.r, -EAGAIN);
	ck_assert_uint_eq(r1.meta.http_status, 429);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.chain, &ks), 0);

	fetch(&c, &c.vcek, 0, &r2);
	ck_assert_int_eq(r2.r, -EAGAIN);
	ck_assert_uint_eq(r2.meta.http_status, 0); /* no request was made */
	ck_assert_uint_ge(r2.meta.retry_at_usec, ks.last_attempt_usec + 600000 * MS);
	fetch(&c, &crl, KDSC_FETCH_REVALIDATE, &r3);
	ck_assert_int_eq(r3.r, -EAGAIN);
	ck_assert_uint_eq(r3.meta.http_status, 0);

	ck_assert_int_eq(sim_count(&c, &c.vcek, NULL), 0);
	ck_assert_int_eq(sim_count(&c, &crl, NULL), 0);
	ck_assert_int_eq(sim_count(&c, &c.chain, NULL), 1);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 1);
	ck_assert_uint_eq(st.backoff_refused, 2);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.vcek, &ks), 0);
	ck_assert_uint_eq(ks.failures, 0);
	ck_assert_uint_ge(ks.next_attempt_usec, r2.meta.retry_at_usec);
	free(r1.body);
	free(r2.body);
	free(r3.body);
	ctx_done(&c);
}
END_TEST

START_TEST(test_429_storm_backs_off)
{
	struct ctx c;
	struct hammer h = {.want = 5};
	struct kdsc_stats st;
	struct kdsc_key_state ks;

	ctx_start(&c, "429");
	h.c = &c;
	h.q = &c.vcek;
	hammer_run(&h, 0.01);
	ck_assert_int_eq(h.n_attempts, 5);
	/* Exponential: the i-th wait is at least base * 2^(i-1) (jitter only adds). */
	for (int i = 1; i < h.n_attempts; i++) {
		uint64_t gap = h.attempts[i] - h.attempts[i - 1];
		ck_assert_msg(gap >= (100 * MS) << (i - 1), "gap %d: %llu us", i,
			      (unsigned long long)gap);
	}
	/* Every attempt was exactly one upstream request; the ~100 asks per second in between
	 * never reached the server. */
	ck_assert_int_eq(sim_count(&c, &c.vcek, NULL), 5);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 5);
	ck_assert_uint_gt(st.backoff_refused, 5);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.vcek, &ks), 0);
	ck_assert_uint_eq(ks.failures, 5);
	ck_assert_int_eq(ks.last_error, -EAGAIN);
	ck_assert_uint_eq(ks.last_http_status, 429);
	ck_assert_uint_ge(ks.next_attempt_usec, ks.last_attempt_usec + (1600 * MS));
	free(h.res.body);
	ctx_done(&c);
}
END_TEST

START_TEST(test_not_found_is_distinct)
{
	struct ctx c;
	struct result r1 = {0}, r2 = {0};
	struct kds_request other, genoa = {.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_GENOA};
	struct kdsc_key_state ks;

	ctx_start(&c, NULL);
	other = c.vcek;
	other.hwid[0] ^= 0xff; /* a masked or foreign chip id */
	fetch(&c, &other, 0, &r1);
	fetch(&c, &genoa, 0, &r2);
	ck_assert_int_eq(r1.r, -ENOENT);
	ck_assert_int_eq(r2.r, -ENOENT);
	ck_assert_uint_eq(r1.meta.http_status, 404);
	ck_assert_int_eq(kdsc_key_state(c.k, &other, &ks), 0);
	ck_assert_int_eq(ks.last_error, -ENOENT);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.vcek, &ks), -ENOENT); /* never asked */
	ck_assert_uint_eq(count_files(c.cache, NULL), 0);
	ctx_done(&c);
}
END_TEST

START_TEST(test_server_error_backs_off)
{
	struct ctx c;
	struct result res = {0};
	struct kdsc_key_state ks;

	ctx_start(&c, "500");
	fetch(&c, &c.chain, 0, &res);
	ck_assert_int_eq(res.r, -EREMOTEIO);
	ck_assert_uint_eq(res.meta.http_status, 500);
	ck_assert_int_eq(kdsc_key_state(c.k, &c.chain, &ks), 0);
	ck_assert_uint_eq(ks.failures, 1);
	ck_assert_uint_ge(ks.next_attempt_usec, ks.last_attempt_usec + 100 * MS);
	/* Asked again at once: answered from the schedule, no request. */
	fetch(&c, &c.chain, 0, &res);
	ck_assert_int_eq(res.r, -EAGAIN);
	ck_assert_uint_eq(res.meta.http_status, 0);
	ck_assert_uint_eq(res.meta.retry_at_usec, ks.next_attempt_usec);
	ck_assert_int_eq(sim_count(&c, &c.chain, NULL), 1);
	ctx_done(&c);
}
END_TEST

START_TEST(test_timeout_loop_stays_live)
{
	struct ctx c;
	struct hammer h = {.want = 1};
	struct kdsc_params p;
	struct kdsc_stats st;

	ctx_start(&c, "delay=3000ms");
	kdsc_get_params(c.k, &p);
	p.timeout_usec = 400 * MS;
	kdsc_set_params(c.k, &p);
	h.c = &c;
	h.q = &c.chain;
	hammer_run(&h, 0.02);
	ck_assert_int_eq(h.res.r, -ETIMEDOUT);
	/* Other watchers ran while the request was pending: nothing blocked the loop. */
	ck_assert_int_ge(h.in_flight_ticks, 2);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.timeouts, 1);
	ctx_done(&c);
}
END_TEST

static const char *const body_faults[] = {"garbage", "truncate"};

START_TEST(test_bad_bodies_not_cached)
{
	struct ctx c;
	struct result r1 = {0}, r2 = {0};
	struct kdsc_stats st;

	ctx_start(&c, body_faults[_i]);
	fetch(&c, &c.chain, 0, &r1);
	fetch(&c, &c.vcek, 0, &r2);
	ck_assert_int_eq(r1.r, -EBADMSG);
	ck_assert_int_eq(r2.r, -EBADMSG);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.bad_body, 2);
	ck_assert_uint_eq(count_files(c.cache, NULL), 0);
	ctx_done(&c);
}
END_TEST

START_TEST(test_conditional_revalidation)
{
	struct ctx c;
	struct result r1 = {0}, r2 = {0};
	struct cache_meta m;
	uint8_t *buf = NULL;
	size_t len;
	struct kdsc_stats st;

	ctx_start(&c, NULL);
	fetch(&c, &c.chain, 0, &r1);
	ck_assert_int_eq(r1.r, 0);
	ck_assert_int_eq(cache_get(c.cache, &c.chain, &buf, &len, &m), 0);
	ck_assert(m.etag[0] && m.last_modified[0]);	 /* kept for the next request */
	ck_assert(m.fresh_until != CACHE_FRESH_FOREVER); /* the sim sends max-age */
	free(buf);
	fetch(&c, &c.chain, KDSC_FETCH_REVALIDATE, &r2);
	ck_assert_int_eq(r2.r, 0);
	ck_assert_uint_eq(r2.meta.http_status, 304);
	ck_assert_int_eq(r2.meta.source, KDSC_SOURCE_CACHE);
	ck_assert_uint_eq(r2.len, r1.len);
	ck_assert(memcmp(r1.body, r2.body, r1.len) == 0);
	ck_assert_int_eq(sim_count(&c, &c.chain, "304"), 1);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.not_modified, 1);
	free(r1.body);
	free(r2.body);
	ctx_done(&c);
}
END_TEST

START_TEST(test_warm_cache_kds_down)
{
	struct ctx c;
	struct result res = {0};
	struct kdsc *k2;
	struct kdsc_stats st;

	ctx_start(&c, NULL);
	fetch(&c, &c.chain, 0, &res);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	sim_stop(&c.sim); /* KDS unreachable from now on */

	/* A restarted daemon: new client, same cache. Answers without any request. */
	ck_assert_int_eq(kdsc_new(c.loop, &c.conf, &k2), 0);
	kdsc_free(c.k);
	c.k = k2;
	fast_params(c.k);
	fetch(&c, &c.chain, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(res.meta.source, KDSC_SOURCE_CACHE);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert(!res.meta.stale);
	kdsc_get_stats(c.k, &st);
	ck_assert_uint_eq(st.requests, 0);

	/* Forcing a revalidation against the dead KDS still answers, marked stale. */
	fetch(&c, &c.vcek, KDSC_FETCH_REVALIDATE, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert(res.meta.stale);
	ck_assert_int_eq(res.meta.fetch_error, -ECONNREFUSED);
	/* And with no copy at all the error is the caller's. */
	fetch(&c, &c.chain, KDSC_FETCH_NO_CACHE, &res);
	ck_assert_int_eq(res.r, -ECONNREFUSED);
	free(res.body);
	ctx_done(&c);
}
END_TEST

START_TEST(test_corrupt_cache_refetched)
{
	struct ctx c;
	struct result res = {0};
	char path[PATH_MAX];
	uint8_t *f, *buf = NULL;
	size_t n, len;
	FILE *fp;

	ctx_start(&c, NULL);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(cache_entry_path(c.cache, &c.vcek, path, sizeof(path)), 0);
	f = test_read_file(path, &n);
	f[n - 1] ^= 0x55;
	fp = fopen(path, "wb");
	ck_assert(fp);
	ck_assert_uint_eq(fwrite(f, 1, n, fp), n);
	fclose(fp);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(res.meta.source, KDSC_SOURCE_KDS); /* not the corrupt copy */
	ck_assert_uint_eq(count_files(c.cache, ".corrupt-"), 1);
	ck_assert_int_eq(cache_get(c.cache, &c.vcek, &buf, &len, NULL), 0);
	ck_assert_uint_eq(len, res.len);
	ck_assert_int_eq(sim_count(&c, &c.vcek, NULL), 2);
	free(buf);
	free(f);
	free(res.body);
	ctx_done(&c);
}
END_TEST

/* The cache cannot store (here: its directory path is a file; on a host: a full disk): the
 * answer is kept in memory and served from there, and written out at its first use after the
 * cache works again, without a second download. */
START_TEST(test_unstorable_answer_kept)
{
	struct ctx c;
	struct result res = {0};
	uint8_t *buf = NULL;
	size_t len;
	FILE *fp;

	ctx_start(&c, NULL);
	fp = fopen(c.cache, "w");
	ck_assert(fp);
	fclose(fp);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(res.meta.source, KDSC_SOURCE_KDS);
	{
		struct kdsc_stats st;
		kdsc_get_stats(c.k, &st);
		ck_assert_uint_ge(st.cache_write_errors, 1);
	}
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(res.meta.source, KDSC_SOURCE_CACHE);
	ck_assert_int_eq(sim_count(&c, &c.vcek, "200"), 1);

	/* Space again: the next use writes the kept answer to the cache. */
	ck_assert_int_eq(unlink(c.cache), 0);
	ck_assert_int_eq(mkdir(c.cache, 0700), 0);
	fetch(&c, &c.vcek, 0, &res);
	ck_assert_int_eq(res.r, 0);
	ck_assert_int_eq(res.meta.source, KDSC_SOURCE_CACHE);
	ck_assert_int_eq(cache_get(c.cache, &c.vcek, &buf, &len, NULL), 0);
	ck_assert_uint_eq(len, res.len);
	ck_assert_mem_eq(buf, res.body, len);
	ck_assert_int_eq(sim_count(&c, &c.vcek, "200"), 1);
	free(buf);
	free(res.body);
	ctx_done(&c);
}
END_TEST

static void cb_unused(void *ud, int r, const uint8_t *b, size_t l, const struct kdsc_meta *m)
{
	ck_abort_msg("callback for a refused fetch");
}

START_TEST(test_invalid_and_cancel)
{
	struct ctx c;
	struct result res = {0};
	struct kds_request bad = {.kind = KDS_VCEK, .product = SNP_PRODUCT_MILAN, .hwid_len = 3};

	ctx_start(&c, "delay=2000ms");
	ck_assert_int_eq(kdsc_fetch(c.k, &bad, 0, cb_unused, NULL), -EINVAL);
	ck_assert_int_eq(kdsc_fetch(c.k, &c.chain, 0, NULL, NULL), -EINVAL);
	/* Freed with a request in flight: the waiter hears -ECANCELED, nothing leaks. */
	ck_assert_int_eq(kdsc_fetch(c.k, &c.chain, 0, on_done, &res), 0);
	ev_run(c.loop, EVRUN_NOWAIT);
	kdsc_free(c.k);
	c.k = NULL;
	ck_assert_int_eq(res.calls, 1);
	ck_assert_int_eq(res.r, -ECANCELED);
	ctx_done(&c);
}
END_TEST

static Suite *kdsc_suite(void)
{
	Suite *s = suite_create("kdsc");
	TCase *tc = tcase_create("kdssim");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fetch_chain_and_vcek);
	tcase_add_test(tc, test_coalescing);
	tcase_add_test(tc, test_retry_after_honoured);
	tcase_add_test(tc, test_429_storm_backs_off);
	tcase_add_test(tc, test_429_paces_every_key);
	tcase_add_test(tc, test_not_found_is_distinct);
	tcase_add_test(tc, test_server_error_backs_off);
	tcase_add_test(tc, test_timeout_loop_stays_live);
	tcase_add_loop_test(tc, test_bad_bodies_not_cached, 0, ELEMENTSOF(body_faults));
	tcase_add_test(tc, test_conditional_revalidation);
	tcase_add_test(tc, test_warm_cache_kds_down);
	tcase_add_test(tc, test_corrupt_cache_refetched);
	tcase_add_test(tc, test_unstorable_answer_kept);
	tcase_add_test(tc, test_invalid_and_cancel);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *build = getenv("SNP_BUILD_ROOT"), *exe = getenv("SNP_KDSSIM");
	struct sim_state *st = NULL;
	struct sim_state_data d;
	char work[PATH_MAX];
	struct sim warm = {0};
	int r;

	if (!build) {
		fprintf(stderr, "SNP_BUILD_ROOT not set\n");
		return EXIT_FAILURE;
	}
	snprintf(sim_exe, sizeof(sim_exe), "%s", exe ? exe : "");
	if (!exe)
		snprintf(sim_exe, sizeof(sim_exe), "%s/sim/kdssim/snp-kdssim", build);
	/* One state per build tree: its RSA-4096 CA keys are generated once. */
	snprintf(state_dir, sizeof(state_dir), "%s/tests/daemon/kdsc-state", build);
	r = sim_state_open(state_dir, SNP_PRODUCT_MILAN, &st);
	if (r >= 0)
		r = sim_state_read(st, &d);
	if (r < 0) {
		fprintf(stderr, "sim state %s: %s\n", state_dir, sim_state_strerror(r));
		return EXIT_FAILURE;
	}
	memcpy(chip_id, d.chip_id, sizeof(chip_id));
	reported_tcb = d.reported_tcb;
	sim_state_free(st);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Warm up outside the per-test timeout (key generation on first use). */
	snprintf(work, sizeof(work), "/tmp/test-kdsc-XXXXXX");
	if (!mkdtemp(work))
		return EXIT_FAILURE;
	if (sim_try_start(&warm, work, NULL)) {
		fprintf(stderr, "cannot start %s\n", sim_exe);
		return EXIT_FAILURE;
	}
	sim_stop(&warm);
	nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	r = test_run_suite(kdsc_suite());
	curl_global_cleanup();
	return r;
}
