/* SPDX-License-Identifier: Apache-2.0 */
/* Disk cache: round trips on real AMD answers, refused bodies, crash at every write step,
 * corrupt and hostile entries moved aside. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cache.h"
#include "certs.h"
#include "kds.h"
#include "util.h"
#include "worker.h"

static char dir[PATH_MAX];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-cache-XXXXXX");
	ck_assert(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const struct kds_request q_chain = {.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_MILAN};
static const struct kds_request q_crl = {.kind = KDS_VCEK_CRL, .product = SNP_PRODUCT_MILAN};

/* The VCEK request the real Milan sample answers. */
static void vcek_request(struct kds_request *q, uint8_t **der, size_t *len)
{
	struct certs_amd_ext e;
	X509 *x = NULL;

	*der = test_read_data("amd/milan/report-v2.vcek.der", len);
	ck_assert_int_eq(certs_parse(*der, *len, &x), 0);
	ck_assert_int_eq(certs_amd_ext_parse(x, &e), 0);
	memset(q, 0, sizeof(*q));
	q->kind = KDS_VCEK;
	q->product = SNP_PRODUCT_MILAN;
	memcpy(q->hwid, e.hwid, e.hwid_len);
	q->hwid_len = e.hwid_len;
	ck_assert_int_eq(certs_amd_ext_tcb(&e, SNP_PRODUCT_MILAN, &q->tcb), 0);
	X509_free(x);
}

/* A DER CRL signed by a throw-away key (no CRL in the sample data). */
static uint8_t *make_crl(size_t *len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_CRL *c = X509_CRL_new();
	X509_NAME *n = X509_NAME_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, 1700000000);
	unsigned char *der = NULL;
	uint8_t *out;
	int l;

	ck_assert(k && c && n && t);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"SEV-Milan", -1,
				   -1, 0);
	ck_assert(X509_CRL_set_version(c, 1));
	ck_assert(X509_CRL_set_issuer_name(c, n));
	ck_assert(X509_CRL_set1_lastUpdate(c, t));
	ck_assert(X509_CRL_sign(c, k, EVP_sha256()) > 0);
	l = i2d_X509_CRL(c, &der);
	ck_assert_int_gt(l, 0);
	out = malloc((size_t)l);
	memcpy(out, der, (size_t)l);
	*len = (size_t)l;
	OPENSSL_free(der);
	ASN1_TIME_free(t);
	X509_NAME_free(n);
	X509_CRL_free(c);
	EVP_PKEY_free(k);
	return out;
}

static unsigned count_files(const char *mark)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	ck_assert(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    (!mark || strstr(de->d_name, mark)))
			n++;
	closedir(d);
	return n;
}

static void expect_entry(const struct kds_request *q, const uint8_t *body, size_t len,
			 const char *etag)
{
	uint8_t *got = NULL;
	size_t glen = 0;
	struct cache_meta m;

	ck_assert_int_eq(cache_get(dir, q, &got, &glen, &m), 0);
	ck_assert_uint_eq(glen, len);
	ck_assert(memcmp(got, body, len) == 0);
	ck_assert_str_eq(m.etag, etag);
	free(got);
}

START_TEST(test_round_trip)
{
	struct kds_request qv;
	uint8_t *vcek, *chain, *crl;
	size_t vl, cl, rl;
	struct {
		const struct kds_request *q;
		uint8_t **body;
		size_t *len;
		struct cache_meta meta;
	} t[] = {
		{&q_chain,
		 &chain,
		 &cl,
		 {1700000000, CACHE_FRESH_FOREVER, "\"abc\"", "Tue, 14 Nov 2023 22:13:20 GMT"}},
		{&qv, &vcek, &vl, {1700000001, 1700086401, "", ""}},
		{&q_crl, &crl, &rl, {1700000002, 1700003602, "W/\"x\"", ""}},
	};

	vcek_request(&qv, &vcek, &vl);
	chain = test_read_data("amd/milan/cert_chain.pem", &cl);
	crl = make_crl(&rl);
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		uint8_t *got = NULL;
		size_t glen = 0;
		struct cache_meta m;

		ck_assert_int_eq(cache_get(dir, t[i].q, &got, &glen, &m), -ENOENT);
		ck_assert_int_eq(cache_put(dir, t[i].q, *t[i].body, *t[i].len, &t[i].meta), 0);
		ck_assert_int_eq(cache_get(dir, t[i].q, &got, &glen, &m), 0);
		ck_assert_uint_eq(glen, *t[i].len);
		ck_assert_msg(memcmp(got, *t[i].body, glen) == 0, "entry %zu", i);
		ck_assert_uint_eq(m.fetched, t[i].meta.fetched);
		ck_assert_uint_eq(m.fresh_until, t[i].meta.fresh_until);
		ck_assert_str_eq(m.etag, t[i].meta.etag);
		ck_assert_str_eq(m.last_modified, t[i].meta.last_modified);
		free(got);
	}
	ck_assert_uint_eq(count_files(".kdsc"), 3);
	free(vcek);
	free(chain);
	free(crl);
}
END_TEST

START_TEST(test_put_refuses_bad_bodies)
{
	struct kds_request qv;
	uint8_t *vcek, *chain, *one_pem, *big;
	size_t vl, cl, pl;
	const struct cache_meta meta = {1, CACHE_FRESH_FOREVER, "", ""};
	struct cache_meta bad_etag = meta;

	vcek_request(&qv, &vcek, &vl);
	chain = test_read_data("amd/milan/cert_chain.pem", &cl);
	one_pem = test_read_data("amd/genoa/vcek.pem", &pl);
	big = calloc(1, CACHE_BODY_MAX + 1);
	ck_assert(big);
	memcpy(big, vcek, vl);
	{
		const struct {
			const struct kds_request *q;
			const uint8_t *body;
			size_t len;
			int err;
		} t[] = {
			{&q_chain, (const uint8_t *)"garbage", 7, -EBADMSG},
			{&q_chain, one_pem, pl, -EBADMSG},   /* one certificate, not two */
			{&q_chain, chain, cl / 2, -EBADMSG}, /* truncated PEM */
			{&q_chain, vcek, vl, -EBADMSG},	     /* DER where PEM is due */
			{&qv, chain, cl, -EBADMSG},	     /* PEM where DER is due */
			{&qv, one_pem, pl, -EBADMSG},	     /* a VCEK, but PEM */
			{&qv, vcek, vl - 1, -EBADMSG},	     /* truncated DER */
			{&qv, big, vl + 1, -EBADMSG},	     /* trailing byte */
			{&qv, big, CACHE_BODY_MAX + 1, -EMSGSIZE},
			{&qv, vcek, 0, -EBADMSG},
			{&q_crl, vcek, vl, -EBADMSG}, /* a certificate is not a CRL */
		};
		for (size_t i = 0; i < ELEMENTSOF(t); i++)
			ck_assert_msg(cache_put(dir, t[i].q, t[i].body, t[i].len, &meta) ==
					      t[i].err,
				      "case %zu", i);
	}
	/* Header values go back out in HTTP requests: no control characters. */
	snprintf(bad_etag.etag, sizeof(bad_etag.etag), "\"a\r\nX-Evil: 1\"");
	ck_assert_int_eq(cache_put(dir, &q_chain, chain, cl, &bad_etag), -EINVAL);
	ck_assert_uint_eq(count_files(NULL), 0); /* nothing written, not even a temp file */
	free(vcek);
	free(chain);
	free(one_pem);
	free(big);
}
END_TEST

/* A crash after each step of the write leaves the previous entry (or none), never a torn one,
 * and the leftovers are removed at the next start. */
START_TEST(test_crash_at_every_step)
{
	static const enum cache_step steps[] = {
		CACHE_STEP_CREATE, CACHE_STEP_HALF,    CACHE_STEP_WRITTEN,
		CACHE_STEP_SYNCED, CACHE_STEP_RENAMED, CACHE_STEP_ALL,
	};
	uint8_t *v1, *v2;
	size_t l1, l2;
	const struct cache_meta m1 = {1, CACHE_FRESH_FOREVER, "\"v1\"", ""};
	const struct cache_meta m2 = {2, CACHE_FRESH_FOREVER, "\"v2\"", ""};

	v1 = test_read_data("amd/milan/cert_chain.pem", &l1);
	v2 = test_read_data("amd/genoa/cert_chain.pem", &l2);
	for (int prev = 0; prev <= 1; prev++) {
		for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
			bool done = steps[i] >= CACHE_STEP_RENAMED;
			uint8_t *got = NULL;
			size_t glen;

			teardown();
			ck_assert_int_eq(mkdir(dir, 0700), 0);
			if (prev)
				ck_assert_int_eq(cache_put(dir, &q_chain, v1, l1, &m1), 0);
			ck_assert_int_eq(cache_put_until(dir, &q_chain, v2, l2, &m2, steps[i]), 0);
			if (done)
				expect_entry(&q_chain, v2, l2, "\"v2\"");
			else if (prev)
				expect_entry(&q_chain, v1, l1, "\"v1\"");
			else
				ck_assert_int_eq(cache_get(dir, &q_chain, &got, &glen, NULL),
						 -ENOENT);
			/* The next start cleans up what the crash left. */
			ck_assert_int_eq(cache_clean_temp(dir), done ? 0 : 1);
			ck_assert_uint_eq(count_files(NULL), done || prev ? 1 : 0);
			ck_assert_uint_eq(count_files("corrupt"), 0);
		}
	}
	free(v1);
	free(v2);
}
END_TEST

/* Re-seals a file image after a test changed it, per the layout documented in cache.h. */
static void reseal(uint8_t *f, size_t n)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	ck_assert(c);
	ck_assert(EVP_DigestInit_ex(c, EVP_sha256(), NULL));
	ck_assert(EVP_DigestUpdate(c, f, 44));
	ck_assert(EVP_DigestUpdate(c, f + 76, n - 76));
	ck_assert(EVP_DigestFinal_ex(c, f + 44, NULL));
	EVP_MD_CTX_free(c);
}

enum mutation {
	M_FLIP_BODY,
	M_FLIP_HEADER,
	M_FLIP_SUM,
	M_TRUNCATE,
	M_APPEND,
	M_EMPTY,
	M_MAGIC,
	M_VERSION,
	M_HUGE_LEN,
	M_KIND_RESEALED, /* valid checksum, wrong kind */
	M_BODY_RESEALED, /* valid checksum, body that does not parse */
	M_CTRL_ETAG,	 /* valid checksum, control character in the ETag */
	M_OTHER_KEY,	 /* a valid entry of another key copied over this one */
	M_DIRECTORY,	 /* a directory where the file should be */
	M_BIG_FILE,	 /* far over any real entry */
};

START_TEST(test_corrupt_moved_aside)
{
	enum mutation m = (enum mutation)_i;
	const struct kds_request q_genoa = {.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_GENOA};
	const struct cache_meta meta = {5, CACHE_FRESH_FOREVER, "\"e\"", ""};
	char path[PATH_MAX], other[PATH_MAX];
	uint8_t *chain, *f, *got = NULL;
	size_t cl, n, glen;
	int fd;

	chain = test_read_data("amd/milan/cert_chain.pem", &cl);
	ck_assert_int_eq(cache_put(dir, &q_chain, chain, cl, &meta), 0);
	ck_assert_int_eq(cache_entry_path(dir, &q_chain, path, sizeof(path)), 0);
	f = test_read_file(path, &n);
	f = realloc(f, n + 1);
	switch (m) {
	case M_FLIP_BODY:
		f[n - 10] ^= 1;
		break;
	case M_FLIP_HEADER:
		f[17] ^= 0x80;
		break;
	case M_FLIP_SUM:
		f[50] ^= 1;
		break;
	case M_TRUNCATE:
		n /= 2;
		break;
	case M_APPEND:
		f[n++] = '\n';
		break;
	case M_EMPTY:
		n = 0;
		break;
	case M_MAGIC:
		f[0] = 'X';
		break;
	case M_VERSION:
		f[8] = 2;
		reseal(f, n);
		break;
	case M_HUGE_LEN:
		put_le32(f + 32, 0xfffffff0u);
		reseal(f, n);
		break;
	case M_KIND_RESEALED:
		put_le32(f + 12, KDS_VCEK);
		reseal(f, n);
		break;
	case M_BODY_RESEALED:
		memcpy(f + n - 40, "AAAA", 4);
		f[n - 30] = '!';
		reseal(f, n);
		break;
	case M_CTRL_ETAG:
		f[76 + get_le16(f + 40)] = '\n';
		reseal(f, n);
		break;
	case M_OTHER_KEY:
		free(f);
		ck_assert_int_eq(cache_put(dir, &q_genoa, chain, cl, &meta), 0);
		ck_assert_int_eq(cache_entry_path(dir, &q_genoa, other, sizeof(other)), 0);
		f = test_read_file(other, &n);
		break;
	case M_DIRECTORY:
	case M_BIG_FILE:
		break;
	}
	ck_assert_int_eq(unlink(path), 0);
	if (m == M_DIRECTORY) {
		ck_assert_int_eq(mkdir(path, 0700), 0);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_ge(fd, 0);
		if (m == M_BIG_FILE)
			ck_assert_int_eq(ftruncate(fd, 16 << 20), 0);
		else
			ck_assert_int_eq(write(fd, f, n), (ssize_t)n);
		close(fd);
	}

	ck_assert_int_eq(cache_get(dir, &q_chain, &got, &glen, NULL), -ENOENT);
	ck_assert_int_eq(access(path, F_OK), -1);	/* moved away ... */
	ck_assert_uint_eq(count_files(".corrupt-"), 1); /* ... kept for inspection */
	/* and replaced by the next fetch */
	ck_assert_int_eq(cache_put(dir, &q_chain, chain, cl, &meta), 0);
	expect_entry(&q_chain, chain, cl, "\"e\"");
	free(f);
	free(chain);
}
END_TEST

START_TEST(test_entry_path)
{
	char buf[PATH_MAX], small[16];
	struct kds_request bad = {.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_UNKNOWN};

	ck_assert_int_eq(cache_entry_path("/var/cache/snp-attestd", &q_chain, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/var/cache/snp-attestd/Milan-cert_chain.kdsc");
	ck_assert_int_eq(cache_entry_path("/var/cache/snp-attestd", &q_chain, small, sizeof(small)),
			 -ENAMETOOLONG);
	ck_assert_int_lt(cache_entry_path("/x", &bad, buf, sizeof(buf)), 0);
}
END_TEST

/* A worker job that holds the worker thread until the test writes to its pipe: the disk as
 * seen by a write stuck in fsync. */
struct gate {
	struct worker_job job;
	int fds[2];
};

static void gate_run(struct worker_job *j)
{
	struct gate *g = container_of(j, struct gate, job);
	char c;

	while (read(g->fds[0], &c, 1) < 0 && errno == EINTR)
		;
}

struct async_put {
	int calls, r;
	pthread_t thread;
	bool timer_ran;
	bool entry_during_timer;
	struct gate *gate;
	const struct kds_request *q;
};

static void on_put(void *userdata, int r)
{
	struct async_put *a = userdata;

	a->calls++;
	a->r = r;
	a->thread = pthread_self();
}

static bool entry_exists(const struct kds_request *q)
{
	char path[PATH_MAX];

	ck_assert_int_eq(cache_entry_path(dir, q, path, sizeof(path)), 0);
	return access(path, F_OK) == 0;
}

static int unlink_entry(const struct kds_request *q)
{
	char path[PATH_MAX];

	ck_assert_int_eq(cache_entry_path(dir, q, path, sizeof(path)), 0);
	return unlink(path);
}

/* The loop keeps running while the write is stuck; then it releases the disk. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct async_put *a = w->data;

	a->timer_ran = true;
	ck_assert_int_eq(a->calls, 0); /* not completed while the disk is held */
	a->entry_during_timer = entry_exists(a->q);
	ck_assert_int_eq(write(a->gate->fds[1], "x", 1), 1);
}

/* Issue 11 point 5: cache_put_async returns before any disk work, the loop runs timers while
 * the write is stuck behind a held disk, and the completion comes back on the loop thread
 * after the write (the entry is then on disk). */
START_TEST(test_put_async_off_loop)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct async_put a = {0};
	struct gate g = {.job.run = gate_run};
	struct cache_meta m = {.fetched = 1, .fresh_until = CACHE_FRESH_FOREVER};
	struct worker *w = NULL;
	ev_timer tick;
	uint8_t *chain, *buf = NULL;
	size_t len, got;

	ck_assert(loop);
	ck_assert_int_eq(pipe(g.fds), 0);
	chain = test_read_data("amd/milan/cert_chain.pem", &len);
	ck_assert_int_eq(worker_new(loop, &w), 0);
	worker_submit(w, &g.job);
	a.gate = &g;
	a.q = &q_chain;
	ck_assert_int_eq(cache_put_async(w, dir, &q_chain, chain, len, &m, on_put, &a), 0);
	memset(chain, 0, len); /* copied at submission: the caller's buffer is free again */
	ck_assert_int_eq(a.calls, 0);
	ck_assert(!entry_exists(&q_chain));

	ev_timer_init(&tick, on_tick, 0., 0.);
	tick.data = &a;
	ev_timer_start(loop, &tick);
	while (a.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	ck_assert(a.timer_ran);
	ck_assert(!a.entry_during_timer);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(a.r, 0);
	ck_assert(pthread_equal(a.thread, pthread_self()));
	ck_assert_int_eq(cache_get(dir, &q_chain, &buf, &got, NULL), 0);
	free(chain);
	chain = test_read_data("amd/milan/cert_chain.pem", &len);
	ck_assert_uint_eq(got, len);
	ck_assert_mem_eq(buf, chain, len);

	/* A write that fails reports the errno of the disk, not a domain meaning. */
	{
		char file[PATH_MAX + 8];
		FILE *fp;

		snprintf(file, sizeof(file), "%s/f", dir);
		fp = fopen(file, "w");
		ck_assert(fp);
		fclose(fp);
		a.calls = 0;
		ck_assert_int_eq(cache_put_async(w, file, &q_chain, chain, len, &m, on_put, &a), 0);
		while (a.calls == 0)
			ev_run(loop, EVRUN_ONCE);
		ck_assert_int_lt(a.r, 0);
		ck_assert_int_ne(a.r, -EBADMSG);
	}
	worker_free(w);
	ev_loop_destroy(loop);
	close(g.fds[0]);
	close(g.fds[1]);
	free(buf);
	free(chain);
}
END_TEST

/* The import path: VCEK then chain in one job; a failure stops the rest and is reported. */
START_TEST(test_put_all_async)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct cache_meta m = {.fetched = 1, .fresh_until = CACHE_FRESH_FOREVER};
	struct async_put a = {0};
	struct cache_item items[2];
	struct kds_request qv;
	struct worker *w = NULL;
	uint8_t *vcek, *chain, bad[4] = {1, 2, 3, 4};
	size_t vlen, clen;

	vcek_request(&qv, &vcek, &vlen);
	chain = test_read_data("amd/milan/cert_chain.pem", &clen);
	ck_assert_int_eq(worker_new(loop, &w), 0);
	items[0] = (struct cache_item){.q = qv, .body = vcek, .len = vlen, .meta = m};
	items[1] = (struct cache_item){.q = q_chain, .body = chain, .len = clen, .meta = m};
	ck_assert_int_eq(cache_put_all_async(w, dir, items, 2, on_put, &a), 0);
	while (a.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_int_eq(a.r, 0);
	ck_assert(entry_exists(&qv));
	ck_assert(entry_exists(&q_chain));

	/* A bad first body: nothing after it is written, the error comes back. */
	ck_assert_int_eq(unlink_entry(&q_chain), 0);
	items[0].body = bad;
	items[0].len = sizeof(bad);
	a.calls = 0;
	ck_assert_int_eq(cache_put_all_async(w, dir, items, 2, on_put, &a), 0);
	while (a.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_int_eq(a.r, -EBADMSG);
	ck_assert(!entry_exists(&q_chain));
	ck_assert_int_eq(cache_put_all_async(NULL, dir, items, 2, on_put, &a), -EINVAL);
	worker_free(w);
	ev_loop_destroy(loop);
	free(vcek);
	free(chain);
}
END_TEST

static unsigned count_marked(const char *mark)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	ck_assert(d);
	while ((de = readdir(d)))
		if (strstr(de->d_name, mark))
			n++;
	closedir(d);
	return n;
}

static void touch(const char *name)
{
	char path[PATH_MAX + 80];
	FILE *fp;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert(n > 0 && (size_t)n < sizeof(path));
	fp = fopen(path, "w");
	ck_assert(fp);
	fclose(fp);
}

/* Issue 13 point 20: quarantined corrupt entries are bounded: none older than the age bound,
 * at most `keep` of the rest (the newest), and nothing else in the directory is touched. */
START_TEST(test_prune_corrupt)
{
	const uint64_t now = 1800000000, day = 24 * 3600;
	char name[128], path[PATH_MAX + 80];
	const char *keep_names[] = {"Milan-cert_chain.kdsc", ".Milan-cert_chain.kdsc.tmp-abc",
				    "notes.corrupt-1", "x.kdsc.corrupt-12ab", "x.kdsc.corrupt-"};

	for (size_t i = 0; i < ELEMENTSOF(keep_names); i++)
		touch(keep_names[i]);
	/* 12 recent ones (one a second apart) and 3 older than the bound. */
	for (unsigned i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "Milan-%u.kdsc.corrupt-%llu", i,
			 (unsigned long long)(now - i));
		touch(name);
	}
	for (unsigned i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "Genoa-%u.kdsc.corrupt-%llu", i,
			 (unsigned long long)(now - CACHE_CORRUPT_MAX_AGE_SEC - day * (i + 1)));
		touch(name);
	}
	ck_assert_int_eq(cache_prune_corrupt(dir, 8, CACHE_CORRUPT_MAX_AGE_SEC, now), 3 + 4);
	ck_assert_uint_eq(count_marked("Genoa-"), 0);
	ck_assert_uint_eq(count_marked("Milan-"), 8 + 2); /* + the entry and its temp file */
	for (unsigned i = 0; i < 12; i++) {
		snprintf(path, sizeof(path), "%s/Milan-%u.kdsc.corrupt-%llu", dir, i,
			 (unsigned long long)(now - i));
		ck_assert_msg((access(path, F_OK) == 0) == (i < 8), "%s", path);
	}
	for (size_t i = 0; i < ELEMENTSOF(keep_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, keep_names[i]);
		ck_assert_msg(access(path, F_OK) == 0, "%s removed", keep_names[i]);
	}
	/* Within the bound: nothing more to do. A missing directory is no error. */
	ck_assert_int_eq(cache_prune_corrupt(dir, 8, CACHE_CORRUPT_MAX_AGE_SEC, now), 0);
	ck_assert_int_eq(cache_prune_corrupt("/nonexistent-snp-cache", 8, 1, now), 0);
}
END_TEST

/* The daemon path: a corrupt entry read by cache_get is quarantined, and the next write
 * applies the bound (here: keep 8, so the 9th oldest quarantined file goes). */
START_TEST(test_put_async_prunes)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct cache_meta m = {.fetched = 1, .fresh_until = CACHE_FRESH_FOREVER};
	struct async_put a = {0};
	struct worker *w = NULL;
	char name[128];
	uint8_t *chain;
	size_t len;
	uint64_t now = (uint64_t)time(NULL);

	for (unsigned i = 0; i < CACHE_CORRUPT_KEEP + 3; i++) {
		snprintf(name, sizeof(name), "Milan-cert_chain.kdsc.corrupt-%llu",
			 (unsigned long long)(now - 10 - i));
		touch(name);
	}
	chain = test_read_data("amd/milan/cert_chain.pem", &len);
	ck_assert_int_eq(worker_new(loop, &w), 0);
	ck_assert_int_eq(cache_put_async(w, dir, &q_chain, chain, len, &m, on_put, &a), 0);
	while (a.calls == 0)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_int_eq(a.r, 0);
	ck_assert_uint_eq(count_marked(".corrupt-"), CACHE_CORRUPT_KEEP);
	worker_free(w);
	ev_loop_destroy(loop);
	free(chain);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_put_refuses_bad_bodies);
	tcase_add_test(tc, test_crash_at_every_step);
	tcase_add_loop_test(tc, test_corrupt_moved_aside, M_FLIP_BODY, M_BIG_FILE + 1);
	tcase_add_test(tc, test_entry_path);
	tcase_add_test(tc, test_put_async_off_loop);
	tcase_add_test(tc, test_put_all_async);
	tcase_add_test(tc, test_prune_corrupt);
	tcase_add_test(tc, test_put_async_prunes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(cache_suite());
}
