/* SPDX-License-Identifier: Apache-2.0 */
/* state: the simulated platform's state file (key=value text, SHA-256 trailer), atomic
 * replace, flock-protected updates. Never resets a corrupt state: it reports it. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

#define STATE_MAGIC "snp-sim-state"
#define STATE_VERSION 1
#define STATE_MAX_SIZE 8192
#define STATE_TMP_FILE "state.tmp"

struct sim_state {
	char *dir;	      /* owned */
	char *path;	      /* owned */
	char *lock_path;      /* owned */
	int lock_fd;	      /* owned; flock'ed only inside sim_state_update */
	pthread_mutex_t lock; /* guards the cache and serialises this process's writers */
	bool cached;
	struct stat cached_st;
	int cached_fd; /* owned; keeps the cached file's inode alive so it cannot be reused */
	struct sim_state_data data;
	/* A root process (an operator's snp-kdssim or snp-kvmsim) gives every file it creates
	 * here to the directory's owner, so that the daemon's user can still open them; -1:
	 * leave files as created. */
	uid_t owner_uid;
	gid_t owner_gid;
};

static int hand_over(const struct sim_state *s, int fd)
{
	if (s->owner_uid == (uid_t)-1)
		return 0;
	return fchown(fd, s->owner_uid, s->owner_gid) < 0 ? -errno : 0;
}

/* A directory root creates inside another user's directory (/var/lib/snp-attestd/sim inside
 * the daemon's state directory) belongs to that user: the daemon must be able to use it. */
static int adopt_parent_owner(const char *dir)
{
	struct stat pst;
	char *copy = strdup(dir);
	int r = 0;

	if (!copy)
		return -ENOMEM;
	if (stat(dirname(copy), &pst) < 0)
		r = -errno;
	else if (pst.st_uid != 0 && chown(dir, pst.st_uid, pst.st_gid) < 0)
		r = -errno;
	free(copy);
	return r;
}

/* Defaults for new chips: the firmware and TCB observed on real parts (facts §4, §10). */
static void state_defaults(enum snp_product p, struct sim_state_data *d)
{
	switch (p) {
	case SNP_PRODUCT_MILAN:
		d->fw_major = 1, d->fw_minor = 55, d->fw_build = 29;
		d->current_tcb = 0x7308000000000003ull; /* bl=3 tee=0 snp=8 ucode=0x73 */
		break;
	case SNP_PRODUCT_GENOA:
		d->fw_major = 1, d->fw_minor = 55, d->fw_build = 40;
		d->current_tcb = 0x4815000000000007ull; /* bl=7 tee=0 snp=21 ucode=0x48 */
		break;
	default:
		d->fw_major = 1, d->fw_minor = 55, d->fw_build = 65;
		d->current_tcb = 0x5100000004010101ull; /* fmc=1 bl=1 tee=1 snp=4 ucode=0x51 */
		break;
	}
	d->committed_major = d->fw_major;
	d->committed_minor = d->fw_minor;
	d->committed_build = d->fw_build;
	d->reported_tcb = d->committed_tcb = d->current_tcb;
}

const char *sim_state_strerror(int r)
{
	switch (r < 0 ? -r : r) {
	case EUCLEAN:
		return "state file is corrupt (checksum mismatch); it was left in place — "
		       "inspect or move it aside to start a new simulated chip";
	case EBADMSG:
		return "state file is malformed (bad magic, line or value); it was left in place";
	case EPROTONOSUPPORT:
		return "state file has an unsupported format version";
	case ENOENT:
		return "no simulation state here (give a product to create one)";
	case EEXIST:
		return "the state belongs to another product";
	case EFBIG:
		return "state file is too large to be a simulation state";
	case ENOTDIR:
		return "state path is not a directory";
	default:
		return snp_strerror(r);
	}
}

static void sha256_hex(const char *buf, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned int md_len = 0;

	EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}

int sim_state_format(const struct sim_state_data *d, char *buf, size_t size)
{
	char secret[2 * SIM_SECRET_LEN + 1], chip[2 * SIM_CHIP_ID_LEN + 1];
	char hs[2 * SIM_HASHSTICK_SIZE + 1] = "", sum[65];
	int n, m;

	hex_encode(d->secret, SIM_SECRET_LEN, secret);
	hex_encode(d->chip_id, SIM_CHIP_ID_LEN, chip);
	if (d->vlek_loaded)
		hex_encode(d->vlek_hashstick, SIM_HASHSTICK_SIZE, hs);
	n = snprintf(buf, size,
		     "magic=%s\nversion=%d\ngeneration=%" PRIu64 "\nproduct=%s\nsecret=%s\n"
		     "chip_id=%s\nfirmware=%u.%u.%u\ncommitted_firmware=%u.%u.%u\n"
		     "current_tcb=%016" PRIx64 "\nreported_tcb=%016" PRIx64
		     "\ncommitted_tcb=%016" PRIx64 "\nconfig_flags=%" PRIu32 "\nvlek=%s\n",
		     STATE_MAGIC, STATE_VERSION, d->generation, snp_product_name(d->product),
		     secret, chip, d->fw_major, d->fw_minor, d->fw_build, d->committed_major,
		     d->committed_minor, d->committed_build, d->current_tcb, d->reported_tcb,
		     d->committed_tcb, d->config_flags, hs);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	sha256_hex(buf, (size_t)n, sum);
	m = snprintf(buf + n, size - (size_t)n, "sha256=%s\n", sum);
	if (m < 0 || (size_t)m >= size - (size_t)n)
		return -ENOSPC;
	return n + m;
}

static int state_parse_num(const char *v, int base, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-' || *v == '+' || *v == ' ')
		return -EBADMSG;
	errno = 0;
	x = strtoull(v, &end, base);
	if (errno || *end || x > max)
		return -EBADMSG;
	*ret = x;
	return 0;
}

static int parse_fw(const char *v, uint8_t *major, uint8_t *minor, uint8_t *build)
{
	unsigned a, b, c;
	int n = 0;

	if (sscanf(v, "%3u.%3u.%3u%n", &a, &b, &c, &n) != 3 || v[n] || a > 255 || b > 255 ||
	    c > 255)
		return -EBADMSG;
	*major = (uint8_t)a, *minor = (uint8_t)b, *build = (uint8_t)c;
	return 0;
}

enum {
	K_MAGIC,
	K_VERSION,
	K_GENERATION,
	K_PRODUCT,
	K_SECRET,
	K_CHIP_ID,
	K_FIRMWARE,
	K_COMMITTED_FIRMWARE,
	K_CURRENT_TCB,
	K_REPORTED_TCB,
	K_COMMITTED_TCB,
	K_CONFIG_FLAGS,
	K_VLEK,
	_K_MAX,
};
static const char *const keys[_K_MAX] = {
	"magic",       "version",      "generation",	"product",
	"secret",      "chip_id",      "firmware",	"committed_firmware",
	"current_tcb", "reported_tcb", "committed_tcb", "config_flags",
	"vlek",
};

static int parse_line(int k, const char *v, struct sim_state_data *d)
{
	uint64_t x;
	int r;

	switch (k) {
	case K_MAGIC:
		return strcmp(v, STATE_MAGIC) == 0 ? 0 : -EBADMSG;
	case K_VERSION:
		if (state_parse_num(v, 10, INT_MAX, &x) < 0)
			return -EBADMSG;
		return x == STATE_VERSION ? 0 : -EPROTONOSUPPORT;
	case K_GENERATION:
		return state_parse_num(v, 10, UINT64_MAX, &d->generation);
	case K_PRODUCT:
		return snp_product_from_string(v, &d->product) < 0 ? -EBADMSG : 0;
	case K_SECRET:
		return hex_decode(v, strlen(v), d->secret, SIM_SECRET_LEN) < 0 ? -EBADMSG : 0;
	case K_CHIP_ID:
		return hex_decode(v, strlen(v), d->chip_id, SIM_CHIP_ID_LEN) < 0 ? -EBADMSG : 0;
	case K_FIRMWARE:
		return parse_fw(v, &d->fw_major, &d->fw_minor, &d->fw_build);
	case K_COMMITTED_FIRMWARE:
		return parse_fw(v, &d->committed_major, &d->committed_minor, &d->committed_build);
	case K_CURRENT_TCB:
	case K_REPORTED_TCB:
	case K_COMMITTED_TCB:
		if (strlen(v) != 16)
			return -EBADMSG;
		r = state_parse_num(v, 16, UINT64_MAX, &x);
		if (r < 0)
			return r;
		*(k == K_CURRENT_TCB	? &d->current_tcb
		  : k == K_REPORTED_TCB ? &d->reported_tcb
					: &d->committed_tcb) = x;
		return 0;
	case K_CONFIG_FLAGS:
		r = state_parse_num(v, 10, SNP_CONFIG_F_MASK_CHIP_ID | SNP_CONFIG_F_MASK_CHIP_KEY,
				    &x);
		if (r < 0)
			return r;
		d->config_flags = (uint32_t)x;
		return 0;
	case K_VLEK:
		if (!*v) {
			d->vlek_loaded = false;
			return 0;
		}
		d->vlek_loaded = true;
		return hex_decode(v, strlen(v), d->vlek_hashstick, SIM_HASHSTICK_SIZE) < 0
			       ? -EBADMSG
			       : 0;
	}
	return -EBADMSG;
}

int sim_state_parse(const char *buf, size_t len, struct sim_state_data *ret)
{
	struct sim_state_data d = {0};
	bool seen[_K_MAX] = {false};
	const char *sumline, *p, *end;
	char sum[65];
	int r = 0;

	if (len > STATE_MAX_SIZE)
		return -EFBIG;
	if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len))
		return -EBADMSG;
	/* The last line is the checksum of everything before it. */
	for (sumline = buf + len - 1; sumline > buf && sumline[-1] != '\n'; sumline--)
		;
	if ((size_t)(buf + len - sumline) != strlen("sha256=") + 64 + 1 ||
	    strncmp(sumline, "sha256=", 7) != 0)
		return -EBADMSG;
	sha256_hex(buf, (size_t)(sumline - buf), sum);
	if (strncasecmp(sum, sumline + 7, 64) != 0)
		return -EUCLEAN;

	for (p = buf; p < sumline; p = end + 1) {
		char line[2 * SIM_HASHSTICK_SIZE + 64];
		const char *eq;
		size_t n;
		int k;

		end = memchr(p, '\n', (size_t)(sumline - p));
		n = (size_t)(end - p);
		if (n >= sizeof(line))
			return -EBADMSG;
		memcpy(line, p, n);
		line[n] = '\0';
		eq = strchr(line, '=');
		if (!eq)
			return -EBADMSG;
		for (k = 0; k < _K_MAX; k++)
			if ((size_t)(eq - line) == strlen(keys[k]) &&
			    strncmp(line, keys[k], strlen(keys[k])) == 0)
				break;
		if (k == _K_MAX || seen[k])
			return -EBADMSG; /* unknown or duplicate key */
		/* magic and version come first so that a foreign or newer file says so */
		if ((k != K_MAGIC && !seen[K_MAGIC]) ||
		    (k != K_MAGIC && k != K_VERSION && !seen[K_VERSION]))
			return -EBADMSG;
		seen[k] = true;
		r = parse_line(k, eq + 1, &d);
		OPENSSL_cleanse(line, sizeof(line));
		if (r < 0)
			return r;
	}
	for (int k = 0; k < _K_MAX; k++)
		if (!seen[k])
			return -EBADMSG;
	if (d.product == SNP_PRODUCT_UNKNOWN)
		return -EBADMSG;
	/* Turin chip ids are 8 bytes: the rest must be zero (facts §4 CHIP_ID). */
	if (snp_product_hwid_len(d.product) < SIM_CHIP_ID_LEN &&
	    !mem_is_zero(d.chip_id + snp_product_hwid_len(d.product),
			 SIM_CHIP_ID_LEN - snp_product_hwid_len(d.product)))
		return -EBADMSG;
	*ret = d;
	OPENSSL_cleanse(&d, sizeof(d));
	return 0;
}

/* Reads the regular file open on fd into buf, at most size bytes (a caller that
 * passes one byte more than it accepts sees an oversized file as too long).
 * Fills *ret_st from fstat. Leaves fd open. -EBADMSG when fd is not a regular file. */
static int read_regular(int fd, struct stat *ret_st, char *buf, size_t size, size_t *ret_len)
{
	size_t len = 0;

	if (fstat(fd, ret_st) < 0)
		return -errno;
	if (!S_ISREG(ret_st->st_mode))
		return -EBADMSG;
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret_len = len;
	return 0;
}

static int read_state_file(const char *path, struct sim_state_data *ret, struct stat *ret_st,
			   int *ret_fd)
{
	char buf[STATE_MAX_SIZE + 1];
	struct stat st;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = read_regular(fd, &st, buf, sizeof(buf), &len);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = sim_state_parse(buf, len, ret);
	OPENSSL_cleanse(buf, len);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_st = st;
	if (ret_fd)
		*ret_fd = fd;
	else
		close(fd);
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* temp file + fsync + rename + fsync(dir): a crash leaves either the old or the new file. */
static int write_state_file(struct sim_state *s, const struct sim_state_data *d)
{
	char buf[STATE_MAX_SIZE], tmp[PATH_MAX];
	int fd, dfd, r, len;

	len = sim_state_format(d, buf, sizeof(buf));
	if (len < 0)
		return len;
	if (snprintf(tmp, sizeof(tmp), "%s/%s", s->dir, STATE_TMP_FILE) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = hand_over(s, fd);
	if (r >= 0)
		r = write_all(fd, buf, (size_t)len);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, s->path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		goto out;
	}
	dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0)
			r = -errno;
		close(dfd);
	}
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

static int create_state(enum snp_product product, struct sim_state_data *d)
{
	size_t idlen = snp_product_hwid_len(product);

	memset(d, 0, sizeof(*d));
	d->product = product;
	if (RAND_bytes(d->secret, SIM_SECRET_LEN) != 1 || RAND_bytes(d->chip_id, (int)idlen) != 1)
		return -EIO;
	state_defaults(product, d);
	return 0;
}

static int lock_file(int fd, int op)
{
	while (flock(fd, op) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

struct sim_state *sim_state_free(struct sim_state *s)
{
	if (!s)
		return NULL;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->cached_fd >= 0)
		close(s->cached_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s->path);
	free(s->lock_path);
	OPENSSL_cleanse(&s->data, sizeof(s->data));
	free(s);
	return NULL;
}

int sim_state_open(const char *dir, enum snp_product create_product, struct sim_state **ret)
{
	_cleanup_(sim_state_freep) struct sim_state *s = NULL;
	struct sim_state_data d;
	struct stat st;
	int r;

	if (!dir || !*dir || create_product < SNP_PRODUCT_UNKNOWN ||
	    create_product >= _SNP_PRODUCT_MAX)
		return -EINVAL;
	/* 0700: the chip secret is in there. */
	if (mkdir(dir, 0700) == 0) {
		if (geteuid() == 0) {
			r = adopt_parent_owner(dir);
			if (r < 0)
				return r;
		}
	} else if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lock_fd = s->cached_fd = -1;
	s->owner_uid = geteuid() == 0 && st.st_uid != 0 ? st.st_uid : (uid_t)-1;
	s->owner_gid = st.st_gid;
	pthread_mutex_init(&s->lock, NULL);
	s->dir = strdup(dir);
	if (!s->dir)
		return -ENOMEM;
	if (asprintf(&s->path, "%s/%s", dir, SIM_STATE_FILE) < 0) {
		s->path = NULL;
		return -ENOMEM;
	}
	if (asprintf(&s->lock_path, "%s/%s", dir, SIM_STATE_LOCK_FILE) < 0) {
		s->lock_path = NULL;
		return -ENOMEM;
	}
	s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0)
		return -errno;
	r = hand_over(s, s->lock_fd);
	if (r < 0)
		return r;

	/* Creation happens under the lock so two first users agree on one chip. */
	r = lock_file(s->lock_fd, LOCK_EX);
	if (r < 0)
		return r;
	r = read_state_file(s->path, &d, &st, &s->cached_fd);
	if (r == -ENOENT && create_product != SNP_PRODUCT_UNKNOWN) {
		r = create_state(create_product, &d);
		if (r >= 0)
			r = write_state_file(s, &d);
		if (r >= 0)
			r = read_state_file(s->path, &d, &st, &s->cached_fd);
	}
	lock_file(s->lock_fd, LOCK_UN);
	if (r < 0)
		return r;
	if (create_product != SNP_PRODUCT_UNKNOWN && d.product != create_product) {
		OPENSSL_cleanse(&d, sizeof(d));
		return -EEXIST;
	}
	s->data = d;
	s->cached_st = st;
	s->cached = true;
	OPENSSL_cleanse(&d, sizeof(d));
	*ret = TAKE_PTR(s);
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Caller holds s->lock. Every write is a rename of a new file and we hold the cached file
 * open, so a different inode at the path means a new version; size and times also catch an
 * edit in place. */
static int refresh_locked(struct sim_state *s)
{
	struct sim_state_data d;
	struct stat st;
	int r, fd = -1;

	if (stat(s->path, &st) < 0) {
		s->cached = false;
		return -errno;
	}
	if (s->cached && same_file(&st, &s->cached_st))
		return 0;
	r = read_state_file(s->path, &d, &st, &fd);
	if (r < 0) {
		s->cached = false;
		return r;
	}
	if (s->cached_fd >= 0)
		close(s->cached_fd);
	s->cached_fd = fd;
	s->data = d;
	s->cached_st = st;
	s->cached = true;
	OPENSSL_cleanse(&d, sizeof(d));
	return 0;
}

int sim_state_read(struct sim_state *s, struct sim_state_data *ret)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = refresh_locked(s);
	if (r >= 0)
		*ret = s->data;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sim_state_update(struct sim_state *s, sim_state_update_fn fn, void *userdata)
{
	struct sim_state_data d;
	struct stat st;
	int r, k;

	pthread_mutex_lock(&s->lock);
	r = lock_file(s->lock_fd, LOCK_EX);
	if (r < 0)
		goto out;
	r = read_state_file(s->path, &d, &st, NULL);
	if (r < 0)
		goto unlock;
	k = fn(&d, userdata);
	if (k < 0) {
		r = k;
		goto unlock;
	}
	if (k == 0) {
		d.generation++;
		r = write_state_file(s, &d);
		if (r < 0)
			goto unlock;
	}
	s->cached = false; /* re-stat next time */
	r = refresh_locked(s);
	if (r >= 0)
		r = k;
unlock:
	lock_file(s->lock_fd, LOCK_UN);
out:
	OPENSSL_cleanse(&d, sizeof(d));
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* --- the platform file (kernel and board knobs, not chip state) --- */

void sim_platform_defaults(struct sim_platform *ret)
{
	*ret = (struct sim_platform){.snp_initialised = true, .uninit_errno = EINVAL, .sockets = 1};
}

/* Trims blanks at both ends in place; returns the start. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int sim_platform_parse(const char *buf, size_t len, struct sim_platform *ret)
{
	struct sim_platform p;
	bool seen_snp = false, seen_errno = false, seen_sockets = false;
	const char *end = buf + len;

	if (len > SIM_PLATFORM_MAX_SIZE)
		return -EFBIG;
	if (len && memchr(buf, '\0', len))
		return -EBADMSG;
	sim_platform_defaults(&p);
	for (const char *l = buf; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t n = nl ? (size_t)(nl - l) : (size_t)(end - l);
		char line[256], *k, *v, *eq;

		if (n >= sizeof(line))
			return -EBADMSG;
		memcpy(line, l, n);
		line[n] = '\0';
		l += n + (nl ? 1 : 0);
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (strcmp(k, "snp") == 0 && !seen_snp) {
			seen_snp = true;
			if (strcmp(v, "on") == 0)
				p.snp_initialised = true;
			else if (strcmp(v, "off") == 0)
				p.snp_initialised = false;
			else
				return -EBADMSG;
		} else if (strcmp(k, "uninit_errno") == 0 && !seen_errno) {
			seen_errno = true;
			if (strcmp(v, "EINVAL") == 0)
				p.uninit_errno = EINVAL;
			else if (strcmp(v, "ENODEV") == 0)
				p.uninit_errno = ENODEV;
			else
				return -EBADMSG;
		} else if (strcmp(k, "sockets") == 0 && !seen_sockets) {
			seen_sockets = true;
			if (strcmp(v, "1") == 0)
				p.sockets = 1;
			else if (strcmp(v, "2") == 0)
				p.sockets = 2;
			else
				return -EBADMSG;
		} else {
			return -EBADMSG; /* unknown or duplicate key */
		}
	}
	*ret = p;
	return 0;
}

int sim_state_platform(struct sim_state *s, struct sim_platform *ret)
{
	char path[PATH_MAX], buf[SIM_PLATFORM_MAX_SIZE + 1];
	struct stat st;
	size_t len = 0;
	int fd, r;

	if (snprintf(path, sizeof(path), "%s/%s", s->dir, SIM_PLATFORM_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			sim_platform_defaults(ret);
			return 0;
		}
		return errno == ELOOP ? -EBADMSG : -errno;
	}
	r = read_regular(fd, &st, buf, sizeof(buf), &len);
	close(fd);
	if (r < 0)
		return r;
	return sim_platform_parse(buf, len, ret);
}

int sim_state_platform_write(struct sim_state *s, const struct sim_platform *p)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[256];
	int fd, r, n;

	if (!p || p->sockets < 1 || p->sockets > SIM_PLATFORM_MAX_SOCKETS ||
	    (p->uninit_errno != EINVAL && p->uninit_errno != ENODEV))
		return -EINVAL;
	n = snprintf(buf, sizeof(buf), "snp = %s\nuninit_errno = %s\nsockets = %u\n",
		     p->snp_initialised ? "on" : "off",
		     p->uninit_errno == ENODEV ? "ENODEV" : "EINVAL", p->sockets);
	if (snprintf(path, sizeof(path), "%s/%s", s->dir, SIM_PLATFORM_FILE) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", s->dir, SIM_PLATFORM_FILE) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, (size_t)n);
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r == -ENOSPC ? -EDQUOT : r;
}
