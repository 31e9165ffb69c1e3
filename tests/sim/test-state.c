/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of sim/state: create, reopen, corruption, hostile files, atomic and locked updates. */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "simtest.h"
#include "state.h"
#include "util.h"

static char *tmp, *dir, *file;

static void setup(void)
{
	tmp = simtest_mkdtemp();
	dir = simtest_path(tmp, "st");
	file = simtest_path(dir, SIM_STATE_FILE);
}

static void teardown(void)
{
	simtest_rmtree(dir);
	simtest_rmtree(tmp);
	free(file);
	free(dir);
	free(tmp);
}

static char *slurp(const char *path, size_t *len)
{
	return (char *)test_read_file(path, len);
}

/* Replaces path by a new file (like every writer of the state does), so that a handle
 * that cached the old version notices regardless of timestamp granularity. */
static void spew(const char *path, const char *buf, size_t len)
{
	char *tmpf = NULL;
	FILE *f;

	ck_assert(asprintf(&tmpf, "%s.new", path) > 0);
	f = fopen(tmpf, "wb");
	ck_assert(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmpf, path), 0);
	free(tmpf);
}

START_TEST(test_create_per_product)
{
	static const struct {
		enum snp_product p;
		size_t idlen;
		uint64_t tcb;
	} cases[] = {
		{SNP_PRODUCT_MILAN, 64, 0x7308000000000003ull},
		{SNP_PRODUCT_GENOA, 64, 0x4815000000000007ull},
		{SNP_PRODUCT_TURIN, 8, 0x5100000004010101ull},
	};
	struct sim_state *s = NULL;
	struct sim_state_data d;
	struct stat st;

	ck_assert_int_eq(sim_state_open(dir, cases[_i].p, &s), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0077, 0); /* the secret is in there */
	ck_assert_int_eq(sim_state_read(s, &d), 0);
	ck_assert_int_eq(d.product, cases[_i].p);
	ck_assert(!mem_is_zero(d.secret, sizeof(d.secret)));
	ck_assert(!mem_is_zero(d.chip_id, cases[_i].idlen));
	ck_assert(mem_is_zero(d.chip_id + cases[_i].idlen, 64 - cases[_i].idlen));
	ck_assert_uint_eq(d.current_tcb, cases[_i].tcb);
	ck_assert_uint_eq(d.reported_tcb, cases[_i].tcb);
	ck_assert_uint_eq(d.committed_tcb, cases[_i].tcb);
	ck_assert(!d.vlek_loaded);
	ck_assert_uint_eq(d.fw_major, 1);
	sim_state_free(s);
}
END_TEST

START_TEST(test_reopen)
{
	struct sim_state *s = NULL, *s2 = NULL;
	struct sim_state_data a, b;

	/* No state and no product: a clear "not found", nothing created. */
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_UNKNOWN, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_int_ne(access(file, F_OK), 0);

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_GENOA, &s), 0);
	ck_assert_int_eq(sim_state_read(s, &a), 0);
	sim_state_free(s);

	/* Reopen, with or without the product: the same chip. */
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_UNKNOWN, &s), 0);
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_GENOA, &s2), 0);
	ck_assert_int_eq(sim_state_read(s, &b), 0);
	ck_assert_mem_eq(a.secret, b.secret, sizeof(a.secret));
	ck_assert_mem_eq(a.chip_id, b.chip_id, sizeof(a.chip_id));
	ck_assert_int_eq(sim_state_read(s2, &b), 0);
	ck_assert_mem_eq(a.secret, b.secret, sizeof(a.secret));
	sim_state_free(s);
	sim_state_free(s2);

	/* Another product: refused, not recreated. */
	s = NULL;
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), -EEXIST);
	ck_assert_ptr_null(s);
	ck_assert_str_ne(sim_state_strerror(-EEXIST), "");
}
END_TEST

/* Flipping any byte of the file is an error with a clear message; the file stays as it is
 * and is never silently replaced, not even by an update. */
START_TEST(test_corrupt_flip)
{
	struct sim_state *s = NULL, *live = NULL;
	struct sim_state_data d;
	size_t len, len2;
	char *orig, *now;
	size_t off;
	int r;

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &live), 0);
	orig = slurp(file, &len);
	/* a spread of offsets: magic, values, the newline, the checksum, the last byte */
	const size_t offs[] = {0, 3, 20, 40, len / 3, len / 2, len - 70, len - 10, len - 1};
	for (size_t i = 0; i < ELEMENTSOF(offs); i++) {
		off = offs[i];
		spew(file, orig, len);
		orig[off] ^= 0x01;
		spew(file, orig, len);
		s = NULL;
		r = sim_state_open(dir, SNP_PRODUCT_MILAN, &s);
		ck_assert_msg(r == -EUCLEAN || r == -EBADMSG, "offset %zu: %d", off, r);
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(sim_state_strerror(r), "state file"), "message: %s",
			      sim_state_strerror(r));
		/* A handle opened before the corruption notices it too. */
		ck_assert_int_lt(sim_state_read(live, &d), 0);
		now = slurp(file, &len2);
		ck_assert_uint_eq(len2, len);
		ck_assert_mem_eq(now, orig, len);
		free(now);
		orig[off] ^= 0x01;
	}
	spew(file, orig, len);
	ck_assert_int_eq(sim_state_read(live, &d), 0);
	free(orig);
	sim_state_free(live);
}
END_TEST

static int bump_tcb(struct sim_state_data *d, void *userdata)
{
	(void)userdata;
	d->current_tcb++;
	return 0;
}

static int no_change(struct sim_state_data *d, void *userdata)
{
	(void)d;
	(void)userdata;
	return 1;
}

static int refuse(struct sim_state_data *d, void *userdata)
{
	d->current_tcb = 0; /* must not reach the file */
	(void)userdata;
	return -EPERM;
}

START_TEST(test_update_on_corrupt_refused)
{
	struct sim_state *s = NULL;
	size_t len, len2;
	char *orig, *now;

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), 0);
	orig = slurp(file, &len);
	orig[len / 2] ^= 0x20;
	spew(file, orig, len);
	ck_assert_int_lt(sim_state_update(s, bump_tcb, NULL), 0);
	now = slurp(file, &len2);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(now, orig, len);
	free(now);
	free(orig);
	sim_state_free(s);
}
END_TEST

static char *build_file(const char *body)
{
	uint8_t md[32];
	unsigned int n = 0;
	char hex[65], *out = NULL;

	EVP_Digest(body, strlen(body), md, &n, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), hex);
	ck_assert(asprintf(&out, "%ssha256=%s\n", body, hex) > 0);
	return out;
}

/* Valid-checksum files with hostile content: each rejected with the right error. */
START_TEST(test_parse_hostile)
{
	struct sim_state_data good, d;
	char buf[8192], *body;
	int n;

	memset(&good, 0, sizeof(good));
	good.product = SNP_PRODUCT_MILAN;
	good.secret[0] = 1;
	good.chip_id[0] = 2;
	good.current_tcb = good.reported_tcb = good.committed_tcb = 0x7308000000000003ull;
	n = sim_state_format(&good, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(sim_state_parse(buf, (size_t)n, &d), 0);
	ck_assert_mem_eq(&d.secret, &good.secret, sizeof(good.secret));
	ck_assert_uint_eq(d.reported_tcb, good.reported_tcb);

	/* body without the checksum line */
	body = strndup(buf, (size_t)(strstr(buf, "sha256=") - buf));
	static const struct {
		const char *find, *replace;
		int ret;
	} cases[] = {
		{"version=1\n", "version=2\n", -EPROTONOSUPPORT},
		{"magic=snp-sim-state\n", "magic=something-else\n", -EBADMSG},
		{"product=Milan\n", "product=Zen9\n", -EBADMSG},
		{"product=Milan\n", "", -EBADMSG},				 /* missing key */
		{"product=Milan\n", "product=Milan\nproduct=Milan\n", -EBADMSG}, /* duplicate */
		{"product=Milan\n", "product=Milan\ncolour=blue\n", -EBADMSG},	 /* unknown */
		{"product=Milan\n", "product=Milan\nnoequals\n", -EBADMSG},
		{"firmware=0.0.0\n", "firmware=1.2.300\n", -EBADMSG},
		{"firmware=0.0.0\n", "firmware=1.2\n", -EBADMSG},
		{"current_tcb=7308000000000003\n", "current_tcb=73080000000003\n", -EBADMSG},
		{"current_tcb=7308000000000003\n", "current_tcb=-308000000000003\n", -EBADMSG},
		{"config_flags=0\n", "config_flags=4\n", -EBADMSG},
		{"generation=0\n", "generation=99999999999999999999999\n", -EBADMSG},
		{"vlek=\n", "vlek=00\n", -EBADMSG},
		{"secret=01", "secret=zz", -EBADMSG},
		/* the product may be any known one as long as the chip id fits it */
		{"product=Milan\n", "product=Turin\n", 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *pos = strstr(body, cases[i].find), *mod = NULL, *f;
		ck_assert_msg(pos, "case %zu: '%s' not in body", i, cases[i].find);
		ck_assert(asprintf(&mod, "%.*s%s%s", (int)(pos - body), body, cases[i].replace,
				   pos + strlen(cases[i].find)) > 0);
		f = build_file(mod);
		memset(&d, 0xAA, sizeof(d));
		ck_assert_msg(sim_state_parse(f, strlen(f), &d) == cases[i].ret, "case %zu: %d", i,
			      sim_state_parse(f, strlen(f), &d));
		free(f);
		free(mod);
	}
	free(body);

	/* Truncations and garbage */
	for (size_t cut = 0; cut < (size_t)n; cut += 37)
		ck_assert_int_lt(sim_state_parse(buf, cut, &d), 0);
	ck_assert_int_eq(sim_state_parse("", 0, &d), -EBADMSG);
	ck_assert_int_eq(sim_state_format(&good, buf, 100), -ENOSPC);
	char *big = malloc(9000); /* above the format's 8 KiB limit */
	ck_assert(big);
	memset(big, 'A', 9000);
	ck_assert_int_eq(sim_state_parse(big, 9000, &d), -EFBIG);
	free(big);
}
END_TEST

/* A Turin state whose chip id has bytes beyond the 8-byte id is malformed. */
START_TEST(test_parse_turin_chip_id)
{
	struct sim_state_data t = {0}, d;
	char buf[8192];
	int n;

	t.product = SNP_PRODUCT_TURIN;
	t.chip_id[7] = 1;
	n = sim_state_format(&t, buf, sizeof(buf));
	ck_assert_int_eq(sim_state_parse(buf, (size_t)n, &d), 0);
	t.chip_id[8] = 1;
	n = sim_state_format(&t, buf, sizeof(buf));
	ck_assert_int_eq(sim_state_parse(buf, (size_t)n, &d), -EBADMSG);
}
END_TEST

START_TEST(test_atomic_update)
{
	struct sim_state *s = NULL, *other = NULL;
	struct sim_state_data a, b;
	struct stat st1, st2;
	char *tmpf = simtest_path(dir, "state.tmp");

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), 0);
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_UNKNOWN, &other), 0);
	ck_assert_int_eq(sim_state_read(other, &a), 0);
	ck_assert_int_eq(stat(file, &st1), 0);

	ck_assert_int_eq(sim_state_update(s, bump_tcb, NULL), 0);
	ck_assert_int_eq(stat(file, &st2), 0);
	ck_assert_uint_ne(st1.st_ino, st2.st_ino); /* replaced by rename, not rewritten */
	ck_assert_int_ne(access(tmpf, F_OK), 0);   /* no temp file left behind */

	/* The other handle sees the change (generation and value). */
	ck_assert_int_eq(sim_state_read(other, &b), 0);
	ck_assert_uint_eq(b.generation, a.generation + 1);
	ck_assert_uint_eq(b.current_tcb, a.current_tcb + 1);

	/* fn > 0: no write at all; fn < 0: error returned, nothing written. */
	ck_assert_int_eq(sim_state_update(s, no_change, NULL), 1);
	ck_assert_int_eq(stat(file, &st1), 0);
	ck_assert_uint_eq(st1.st_ino, st2.st_ino);
	ck_assert_int_eq(sim_state_update(s, refuse, NULL), -EPERM);
	ck_assert_int_eq(sim_state_read(other, &a), 0);
	ck_assert_uint_eq(a.current_tcb, b.current_tcb);
	ck_assert_uint_eq(a.generation, b.generation);

	free(tmpf);
	sim_state_free(s);
	sim_state_free(other);
}
END_TEST

/* Concurrent read-modify-write from several processes loses no update. */
START_TEST(test_concurrent_updates)
{
	enum { CHILDREN = 4, EACH = 25 };
	struct sim_state *s = NULL;
	struct sim_state_data a, b;

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), 0);
	ck_assert_int_eq(sim_state_read(s, &a), 0);
	for (int c = 0; c < CHILDREN; c++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct sim_state *cs = NULL;
			int ok = sim_state_open(dir, SNP_PRODUCT_UNKNOWN, &cs) == 0;
			for (int i = 0; ok && i < EACH; i++)
				ok = sim_state_update(cs, bump_tcb, NULL) == 0;
			sim_state_free(cs);
			_exit(ok ? 0 : 1);
		}
	}
	for (int c = 0; c < CHILDREN; c++) {
		int status = 0;
		ck_assert_int_gt(wait(&status), 0);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_int_eq(sim_state_read(s, &b), 0);
	ck_assert_uint_eq(b.current_tcb, a.current_tcb + CHILDREN * EACH);
	ck_assert_uint_eq(b.generation, a.generation + CHILDREN * EACH);
	sim_state_free(s);
}
END_TEST

/* The platform file: strict parse, defaults when absent, never follows a symlink. */
START_TEST(test_platform_file)
{
	static const struct {
		const char *text;
		int r;
		bool snp;
		int err;
		unsigned sockets;
	} cases[] = {
		{"", 0, true, EINVAL, 1},
		{"# comment\n\n  snp = off \n", 0, false, EINVAL, 1},
		{"snp=off\nuninit_errno=ENODEV\nsockets=2\n", 0, false, ENODEV, 2},
		{"sockets = 2", 0, true, EINVAL, 2}, /* no final newline */
		{"snp = maybe\n", -EBADMSG, true, 0, 0},
		{"sockets = 3\n", -EBADMSG, true, 0, 0},
		{"sockets = 02\n", -EBADMSG, true, 0, 0},
		{"uninit_errno = EPERM\n", -EBADMSG, true, 0, 0},
		{"snp = on\nsnp = off\n", -EBADMSG, true, 0, 0}, /* duplicate */
		{"cores = 4\n", -EBADMSG, true, 0, 0},		 /* unknown key */
		{"snp off\n", -EBADMSG, true, 0, 0},		 /* no '=' */
	};
	struct sim_platform p;
	char big[SIM_PLATFORM_MAX_SIZE + 2], path[4096];
	struct sim_state *st;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		memset(&p, 0x5a, sizeof(p));
		int r = sim_platform_parse(cases[i].text, strlen(cases[i].text), &p);
		ck_assert_msg(r == cases[i].r, "case %zu: %d", i, r);
		if (r == 0) {
			ck_assert_msg(p.snp_initialised == cases[i].snp, "case %zu", i);
			ck_assert_int_eq(p.uninit_errno, cases[i].err);
			ck_assert_uint_eq(p.sockets, cases[i].sockets);
		}
	}
	ck_assert_int_eq(sim_platform_parse("snp=on\0\n", 8, &p), -EBADMSG);
	memset(big, '#', sizeof(big));
	ck_assert_int_eq(sim_platform_parse(big, sizeof(big), &p), -EFBIG);

	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_GENOA, &st), 0);
	ck_assert_int_eq(sim_state_platform(st, &p), 0); /* absent: defaults */
	ck_assert(p.snp_initialised);
	ck_assert_uint_eq(p.sockets, 1);
	p.snp_initialised = false;
	p.uninit_errno = ENODEV;
	p.sockets = 2;
	ck_assert_int_eq(sim_state_platform_write(st, &p), 0);
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(sim_state_platform(st, &p), 0);
	ck_assert(!p.snp_initialised);
	ck_assert_int_eq(p.uninit_errno, ENODEV);
	ck_assert_uint_eq(p.sockets, 2);
	p.sockets = 3;
	ck_assert_int_eq(sim_state_platform_write(st, &p), -EINVAL);
	/* a symlink in its place is refused, not followed */
	snprintf(path, sizeof(path), "%s/%s", dir, SIM_PLATFORM_FILE);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink("/etc/hostname", path), 0);
	ck_assert_int_eq(sim_state_platform(st, &p), -EBADMSG);
	ck_assert_int_eq(unlink(path), 0);
	sim_state_free(st);
}
END_TEST

/* An operator's snp-kdssim run as root creates the state inside the daemon's state directory:
 * the directory, the state file (also after a root process rewrites it) and the lock file go
 * to the owner of the directory around them, so that the daemon's user can open them. */
START_TEST(test_root_hands_over_to_owner)
{
	struct sim_state *s = NULL;
	char *lock = simtest_path(dir, SIM_STATE_LOCK_FILE);
	struct stat st;
	const uid_t u = 65534;
	const gid_t g = 65533;

	if (geteuid() != 0) {
		free(lock);
		return; /* chown needs root; the systemd suite covers this under a real service */
	}
	ck_assert_int_eq(chown(tmp, u, g), 0);
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_uid, u);
	ck_assert_uint_eq(st.st_gid, g);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, u);
	ck_assert_uint_eq(st.st_gid, g);
	ck_assert_int_eq(stat(lock, &st), 0);
	ck_assert_uint_eq(st.st_uid, u);
	ck_assert_int_eq(sim_state_update(s, bump_tcb, NULL), 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, u);
	ck_assert_uint_eq(st.st_mode & 0077, 0);
	sim_state_free(s);
	/* A directory root creates under root's own directory stays root's. */
	ck_assert_int_eq(chown(tmp, 0, 0), 0);
	simtest_rmtree(dir);
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), 0);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, 0);
	sim_state_free(s);
	free(lock);
}
END_TEST

START_TEST(test_not_a_directory)
{
	struct sim_state *s = NULL;

	spew(dir, "x", 1); /* a file where the directory should be */
	ck_assert_int_eq(sim_state_open(dir, SNP_PRODUCT_MILAN, &s), -ENOTDIR);
	ck_assert_ptr_null(s);
	unlink(dir);
	ck_assert_int_eq(sim_state_open(NULL, SNP_PRODUCT_MILAN, &s), -EINVAL);
	ck_assert_int_eq(sim_state_open("", SNP_PRODUCT_MILAN, &s), -EINVAL);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("sim-state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_create_per_product, 0, 3);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_corrupt_flip);
	tcase_add_test(tc, test_update_on_corrupt_refused);
	tcase_add_test(tc, test_parse_hostile);
	tcase_add_test(tc, test_parse_turin_chip_id);
	tcase_add_test(tc, test_atomic_update);
	tcase_add_test(tc, test_concurrent_updates);
	tcase_add_test(tc, test_not_a_directory);
	tcase_add_test(tc, test_platform_file);
	tcase_add_test(tc, test_root_hands_over_to_owner);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(state_suite());
}
