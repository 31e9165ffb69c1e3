/* SPDX-License-Identifier: Apache-2.0 */
/* cache: atomic, checksummed KDS answers on disk (layout in cache.h). Trusts nothing it reads. */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs.h"
#include "util.h"
#include "worker.h"

#define CACHE_MAGIC "SNPKDSC\n"
#define CACHE_VERSION 1u
#define CACHE_HDR 76
#define CACHE_SUM_OFF 44
#define CACHE_KEY_MAX 256
#define CACHE_SUFFIX ".kdsc"
#define CACHE_TMP_MARK ".tmp-"
#define CACHE_CORRUPT_MARK ".corrupt-"
#define CACHE_FILE_MAX                                                                             \
	(CACHE_HDR + CACHE_KEY_MAX + sizeof(((struct cache_meta *)0)->etag) +                      \
	 sizeof(((struct cache_meta *)0)->last_modified) + CACHE_BODY_MAX)

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

/* One DER object of type it filling body exactly. DER only: KDS sends
 * application/pkix-cert and application/pkix-crl; a PEM answer would be a different server
 * than the one we think we talk to. */
static int der_exact(const uint8_t *body, size_t len, const ASN1_ITEM *it)
{
	const unsigned char *p = body;
	ASN1_VALUE *v;
	int r = 0;

	if (body[0] != 0x30)
		return -EBADMSG;
	v = ASN1_item_d2i(NULL, &p, (long)len, it);
	if (!v || p != body + len)
		r = -EBADMSG;
	ASN1_item_free(v, it);
	return r;
}

int cache_body_check(enum kds_kind kind, const uint8_t *body, size_t len)
{
	if (!body || len == 0)
		return -EBADMSG;
	if (len > CACHE_BODY_MAX)
		return -EMSGSIZE;
	switch (kind) {
	case KDS_VCEK:
		return der_exact(body, len, ASN1_ITEM_rptr(X509));
	case KDS_VCEK_CHAIN:
	case KDS_VLEK_CHAIN:
		return certs_parse_kds_chain(body, len, NULL, NULL) < 0 ? -EBADMSG : 0;
	case KDS_VCEK_CRL:
	case KDS_VLEK_CRL:
		return der_exact(body, len, ASN1_ITEM_rptr(X509_CRL));
	}
	return -EINVAL;
}

int cache_entry_path(const char *dir, const struct kds_request *q, char *buf, size_t size)
{
	char key[CACHE_KEY_MAX];
	int r, n;

	r = kds_cache_key(q, key, sizeof(key));
	if (r < 0)
		return r;
	n = snprintf(buf, size, "%s/%s" CACHE_SUFFIX, dir, key);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* The entry's key (stored inside it) and its path. */
static int entry_names(const char *dir, const struct kds_request *q, char key[CACHE_KEY_MAX],
		       char path[PATH_MAX])
{
	int r = kds_cache_key(q, key, CACHE_KEY_MAX);

	if (r < 0)
		return r;
	return cache_entry_path(dir, q, path, PATH_MAX);
}

/* Header strings go back out as HTTP header values: printable ASCII only. */
static bool text_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static int checksum(const uint8_t *file, size_t len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, file, CACHE_SUM_OFF) &&
	     EVP_DigestUpdate(ctx, file + CACHE_HDR, len - CACHE_HDR) &&
	     EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* Serialises an entry into a malloc'd buffer. */
static int entry_build(const struct kds_request *q, const char *key, const uint8_t *body,
		       size_t len, const struct cache_meta *meta, uint8_t **ret, size_t *ret_len)
{
	size_t kl = strlen(key), el = strlen(meta->etag), ll = strlen(meta->last_modified);
	size_t total = CACHE_HDR + kl + el + ll + len;
	uint8_t *f, *p;
	int r;

	if (kl >= CACHE_KEY_MAX || el >= sizeof(meta->etag) || ll >= sizeof(meta->last_modified) ||
	    !text_ok((const uint8_t *)meta->etag, el) ||
	    !text_ok((const uint8_t *)meta->last_modified, ll))
		return -EINVAL;
	f = calloc(1, total);
	if (!f)
		return -ENOMEM;
	memcpy(f, CACHE_MAGIC, 8);
	put_le32(f + 8, CACHE_VERSION);
	put_le32(f + 12, (uint32_t)q->kind);
	put_le64(f + 16, meta->fetched);
	put_le64(f + 24, meta->fresh_until);
	put_le32(f + 32, (uint32_t)len);
	put_le16(f + 36, (uint16_t)el);
	put_le16(f + 38, (uint16_t)ll);
	put_le16(f + 40, (uint16_t)kl);
	p = f + CACHE_HDR;
	memcpy(p, key, kl);
	p += kl;
	memcpy(p, meta->etag, el);
	p += el;
	memcpy(p, meta->last_modified, ll);
	p += ll;
	memcpy(p, body, len);
	r = checksum(f, total, f + CACHE_SUM_OFF);
	if (r < 0) {
		free(f);
		return r;
	}
	*ret = f;
	*ret_len = total;
	return 0;
}

/* Validates a whole file image; on success points *body into it and fills meta. */
static int entry_parse(const uint8_t *f, size_t n, const struct kds_request *q, const char *key,
		       const uint8_t **ret_body, size_t *ret_len, struct cache_meta *meta)
{
	uint8_t sum[32];
	size_t bl, el, ll, kl;
	const uint8_t *p;
	int r;

	if (n < CACHE_HDR || memcmp(f, CACHE_MAGIC, 8) != 0 || get_le32(f + 8) != CACHE_VERSION)
		return -EBADMSG;
	bl = get_le32(f + 32);
	el = get_le16(f + 36);
	ll = get_le16(f + 38);
	kl = get_le16(f + 40);
	if (el >= sizeof(meta->etag) || ll >= sizeof(meta->last_modified) || kl >= CACHE_KEY_MAX ||
	    bl > CACHE_BODY_MAX || n != CACHE_HDR + kl + el + ll + bl || f[42] || f[43])
		return -EBADMSG;
	r = checksum(f, n, sum);
	if (r < 0)
		return r;
	if (memcmp(sum, f + CACHE_SUM_OFF, 32) != 0)
		return -EBADMSG;
	/* A valid file under the wrong name (copied or renamed by hand) is not this entry. */
	p = f + CACHE_HDR;
	if (get_le32(f + 12) != (uint32_t)q->kind || kl != strlen(key) || memcmp(p, key, kl) != 0)
		return -EBADMSG;
	p += kl;
	if (!text_ok(p, el) || !text_ok(p + el, ll))
		return -EBADMSG;
	memset(meta, 0, sizeof(*meta));
	memcpy(meta->etag, p, el);
	memcpy(meta->last_modified, p + el, ll);
	p += el + ll;
	meta->fetched = get_le64(f + 16);
	meta->fresh_until = get_le64(f + 24);
	r = cache_body_check(q->kind, p, bl);
	if (r < 0)
		return -EBADMSG;
	*ret_body = p;
	*ret_len = bl;
	return 0;
}

static int read_all(int fd, uint8_t **ret, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if (st.st_size <= 0 || (uint64_t)st.st_size > CACHE_FILE_MAX)
		return -EBADMSG;
	buf = malloc((size_t)st.st_size);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + len, (size_t)st.st_size - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = -errno;
			free(buf);
			return e;
		}
		if (k == 0)
			break; /* shrank under us: the parse sees the short length */
		len += (size_t)k;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static void move_aside(const char *path)
{
	char aside[PATH_MAX + 64];
	int n;

	n = snprintf(aside, sizeof(aside), "%s" CACHE_CORRUPT_MARK "%lld", path,
		     (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof(aside) || rename(path, aside) < 0)
		(void)unlink(path); /* cannot keep it for inspection: at least do not reuse it */
}

int cache_get(const char *dir, const struct kds_request *q, uint8_t **ret_buf, size_t *ret_len,
	      struct cache_meta *ret_meta)
{
	_cleanup_(closep) int fd = -1;
	_cleanup_(freep) uint8_t *file = NULL;
	char path[PATH_MAX], key[CACHE_KEY_MAX];
	struct cache_meta meta;
	const uint8_t *body;
	size_t n = 0, bl = 0;
	uint8_t *copy;
	int r;

	r = entry_names(dir, q, key, path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? (move_aside(path), -ENOENT) : -errno;
	r = read_all(fd, &file, &n);
	if (r == -EBADMSG) {
		move_aside(path);
		return -ENOENT;
	}
	if (r < 0)
		return r;
	r = entry_parse(file, n, q, key, &body, &bl, &meta);
	if (r == -EBADMSG) {
		move_aside(path);
		return -ENOENT;
	}
	if (r < 0)
		return r;
	copy = malloc(bl);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, body, bl);
	*ret_buf = copy;
	*ret_len = bl;
	if (ret_meta)
		*ret_meta = meta;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int cache_put_until(const char *dir, const struct kds_request *q, const uint8_t *body, size_t len,
		    const struct cache_meta *meta, enum cache_step stop)
{
	_cleanup_(closep) int fd = -1, dfd = -1;
	_cleanup_(freep) uint8_t *file = NULL;
	char path[PATH_MAX], tmp[PATH_MAX], key[CACHE_KEY_MAX];
	size_t n;
	int r, k;

	r = cache_body_check(q->kind, body, len);
	if (r < 0)
		return r;
	r = entry_names(dir, q, key, path);
	if (r < 0)
		return r;
	k = snprintf(tmp, sizeof(tmp), "%s/.%s" CACHE_SUFFIX CACHE_TMP_MARK "XXXXXX", dir, key);
	if (k < 0 || (size_t)k >= sizeof(tmp))
		return -ENAMETOOLONG;
	r = entry_build(q, key, body, len, meta, &file, &n);
	if (r < 0)
		return r;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644) < 0)
		goto fail_errno;
	if (stop == CACHE_STEP_CREATE)
		return 0;
	r = write_all(fd, file, stop == CACHE_STEP_HALF ? n / 2 : n);
	if (r < 0)
		goto fail;
	if (stop == CACHE_STEP_HALF || stop == CACHE_STEP_WRITTEN)
		return 0;
	if (fsync(fd) < 0)
		goto fail_errno;
	if (stop == CACHE_STEP_SYNCED)
		return 0;
	if (rename(tmp, path) < 0)
		goto fail_errno;
	if (stop == CACHE_STEP_RENAMED)
		return 0;
	/* The rename itself must survive a power cut before we call the entry written. */
	if (fsync(dfd) < 0)
		return -errno;
	return 0;

fail_errno:
	r = -errno;
fail:
	(void)unlink(tmp);
	return r;
}

int cache_put(const char *dir, const struct kds_request *q, const uint8_t *body, size_t len,
	      const struct cache_meta *meta)
{
	return cache_put_until(dir, q, body, len, meta, CACHE_STEP_ALL);
}

int cache_clean_temp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] != '.' || !strstr(de->d_name, CACHE_SUFFIX CACHE_TMP_MARK))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ---- asynchronous writes ---- */

struct put_job {
	struct worker_job job;
	char *dir;
	struct cache_item *items; /* bodies owned */
	size_t n;
	cache_put_done_fn done;
	void *userdata;
	int r;
};

static void put_job_free(struct put_job *p)
{
	for (size_t i = 0; i < p->n; i++)
		free((uint8_t *)p->items[i].body);
	free(p->items);
	free(p->dir);
	free(p);
}

static void put_run(struct worker_job *j)
{
	struct put_job *p = container_of(j, struct put_job, job);

	p->r = 0;
	for (size_t i = 0; i < p->n && p->r == 0; i++)
		p->r = cache_put(p->dir, &p->items[i].q, p->items[i].body, p->items[i].len,
				 &p->items[i].meta);
	(void)cache_prune_corrupt(p->dir, CACHE_CORRUPT_KEEP, CACHE_CORRUPT_MAX_AGE_SEC,
				  (uint64_t)time(NULL));
}

static void put_done(struct worker_job *j)
{
	struct put_job *p = container_of(j, struct put_job, job);

	if (p->done)
		p->done(p->userdata, p->r);
	put_job_free(p);
}

int cache_put_all_async(struct worker *w, const char *dir, const struct cache_item *items, size_t n,
			cache_put_done_fn done, void *userdata)
{
	struct put_job *p;

	if (!w || !dir || (!items && n))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dir = strdup(dir);
	p->items = calloc(n ? n : 1, sizeof(*p->items));
	if (!p->dir || !p->items) {
		put_job_free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *copy = malloc(items[i].len ? items[i].len : 1);

		if (!copy) {
			put_job_free(p);
			return -ENOMEM;
		}
		if (items[i].len)
			memcpy(copy, items[i].body, items[i].len);
		p->items[i] = items[i];
		p->items[i].body = copy;
		p->n = i + 1;
	}
	p->done = done;
	p->userdata = userdata;
	p->job.run = put_run;
	p->job.done = put_done;
	worker_submit(w, &p->job);
	return 0;
}

int cache_put_async(struct worker *w, const char *dir, const struct kds_request *q,
		    const uint8_t *body, size_t len, const struct cache_meta *meta,
		    cache_put_done_fn done, void *userdata)
{
	const struct cache_item it = {.q = *q, .body = body, .len = len, .meta = *meta};

	return cache_put_all_async(w, dir, &it, 1, done, userdata);
}

/* ---- the bound on quarantined files ---- */

struct corrupt_file {
	char name[NAME_MAX + 1];
	uint64_t t;
};

static int corrupt_cmp(const void *a, const void *b)
{
	const struct corrupt_file *x = a, *y = b;

	return x->t < y->t ? 1 : x->t > y->t ? -1 : 0; /* newest first */
}

/* "<key>.kdsc.corrupt-<digits>": the time move_aside put in the name, or -1. */
static int64_t corrupt_time(const char *name)
{
	const char *m = strstr(name, CACHE_SUFFIX CACHE_CORRUPT_MARK);
	const char *d;
	uint64_t t = 0;

	if (!m || name[0] == '.')
		return -1;
	d = m + strlen(CACHE_SUFFIX CACHE_CORRUPT_MARK);
	if (!*d || strlen(d) > 18)
		return -1;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return -1;
		t = t * 10 + (uint64_t)(*d - '0');
	}
	return (int64_t)t;
}

int cache_prune_corrupt(const char *dir, unsigned keep, uint64_t max_age_sec, uint64_t now)
{
	struct corrupt_file *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int removed = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		int64_t t = corrupt_time(de->d_name);

		if (t < 0 || strlen(de->d_name) > NAME_MAX)
			continue;
		if ((uint64_t)t + max_age_sec < now) {
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				removed++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct corrupt_file *l = realloc(list, nc * sizeof(*l));
			if (!l)
				break; /* prune what we listed; the next pass does the rest */
			list = l;
			cap = nc;
		}
		snprintf(list[n].name, sizeof(list[n].name), "%s", de->d_name);
		list[n].t = (uint64_t)t;
		n++;
	}
	if (n > keep) {
		qsort(list, n, sizeof(*list), corrupt_cmp);
		for (size_t i = keep; i < n; i++)
			if (unlinkat(dirfd(d), list[i].name, 0) == 0)
				removed++;
	}
	closedir(d);
	free(list);
	return removed;
}
