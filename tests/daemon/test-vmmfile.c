/* SPDX-License-Identifier: Apache-2.0 */
/* vmmfile: in-place rewrite under the OFD lock protocol, hostile paths, and a concurrent
 * reader process that must never see a torn or half-changed blob. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "certtable.h"
#include "util.h"
#include "vmmfile.h"

static char tmpdir[256];

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-vmmfile-XXXXXX");
	ck_assert(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *tpath(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
	return buf;
}

/* A table whose three certificates are all filled with gen and whose lengths depend on gen,
 * so that a mix of two generations is detectable. */
static void make_table(uint8_t gen, uint8_t **ret, size_t *ret_len)
{
	static const enum certtable_kind kinds[] = {CERTTABLE_ARK, CERTTABLE_ASK, CERTTABLE_VCEK};
	struct certtable_entry e[3];
	uint8_t *data[3];

	for (size_t i = 0; i < 3; i++) {
		uint32_t len = 1200u + 97u * gen + 311u * (uint32_t)i;
		data[i] = malloc(len);
		ck_assert(data[i]);
		memset(data[i], gen, len);
		memset(&e[i], 0, sizeof(e[i]));
		memcpy(e[i].guid, certtable_guid(kinds[i]), 16);
		e[i].data = data[i];
		e[i].length = len;
	}
	ck_assert_int_eq(certtable_build(e, 3, ret, ret_len), 0);
	for (size_t i = 0; i < 3; i++)
		free(data[i]);
}

/* 0 if buf is a complete table of one generation, else a reason code > 0. */
static int check_table(const uint8_t *buf, size_t len, uint8_t *ret_gen)
{
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
	size_t n;
	uint8_t gen;

	if (certtable_parse(buf, len, e, ELEMENTSOF(e), &n) < 0)
		return 1;
	if (n != 3)
		return 2;
	gen = e[0].data[0];
	for (size_t i = 0; i < n; i++) {
		if (e[i].length != 1200u + 97u * gen + 311u * (uint32_t)i)
			return 3;
		for (size_t k = 0; k < e[i].length; k++)
			if (e[i].data[k] != gen)
				return 4;
	}
	*ret_gen = gen;
	return 0;
}

START_TEST(test_roundtrip_shrinks)
{
	_cleanup_(freep) uint8_t *big = NULL, *small = NULL, *got = NULL;
	size_t big_len, small_len, got_len;
	struct vmmfile *f = NULL;
	char p[512];
	uint8_t gen = 0;

	make_table(9, &big, &big_len);
	make_table(1, &small, &small_len);
	ck_assert_uint_gt(big_len, small_len);
	ck_assert_int_eq(vmmfile_open(tpath("certs.blob", p, sizeof(p)), &f), 0);
	ck_assert_int_eq(vmmfile_read(p, &got, &got_len), -ENODATA); /* created empty */
	ck_assert_int_eq(vmmfile_replace(f, big, big_len), 0);
	ck_assert_int_eq(vmmfile_read(p, &got, &got_len), 0);
	ck_assert_uint_eq(got_len, big_len);
	ck_assert_int_eq(check_table(got, got_len, &gen), 0);
	ck_assert_uint_eq(gen, 9);
	free(TAKE_PTR(got));
	ck_assert_int_eq(vmmfile_replace(f, small, small_len), 0);
	ck_assert_int_eq(vmmfile_read(p, &got, &got_len), 0);
	ck_assert_uint_eq(got_len, small_len); /* truncated, no tail of the bigger table */
	ck_assert_int_eq(memcmp(got, small, small_len), 0);
	vmmfile_free(f);
}
END_TEST

START_TEST(test_write_needs_lock)
{
	struct vmmfile *f = NULL;
	uint8_t empty[CERTTABLE_ENTRY_SIZE] = {0};
	char p[512];

	ck_assert_int_eq(vmmfile_open(tpath("certs.blob", p, sizeof(p)), &f), 0);
	ck_assert_int_eq(vmmfile_write_locked(f, empty, sizeof(empty)), -ENOLCK);
	ck_assert_int_eq(vmmfile_lock(f), 0);
	ck_assert_int_eq(vmmfile_write_locked(f, empty, 0), -EINVAL);
	ck_assert_int_eq(vmmfile_write_locked(f, NULL, 24), -EINVAL);
	ck_assert_int_eq(vmmfile_write_locked(f, empty, VMMFILE_MAX_SIZE + 1), -EINVAL);
	ck_assert_int_eq(vmmfile_write_locked(f, empty, sizeof(empty)), 0);
	ck_assert_int_eq(vmmfile_unlock(f), 0);
	ck_assert_int_eq(vmmfile_write_locked(f, empty, sizeof(empty)), -ENOLCK);
	vmmfile_free(f);
}
END_TEST

/* OFD locks conflict between open file descriptions even in one process. */
START_TEST(test_lock_conflicts)
{
	struct vmmfile *w1 = NULL, *w2 = NULL;
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	char p[512];
	int rfd;

	ck_assert_int_eq(vmmfile_open(tpath("certs.blob", p, sizeof(p)), &w1), 0);
	ck_assert_int_eq(vmmfile_open(p, &w2), 0);
	ck_assert_int_eq(vmmfile_lock(w1), 0);
	ck_assert_int_eq(vmmfile_trylock(w2), -EAGAIN);
	rfd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_eq(fcntl(rfd, F_OFD_SETLK, &fl), -1); /* a reader must wait */
	ck_assert(errno == EAGAIN || errno == EACCES);
	ck_assert_int_eq(vmmfile_unlock(w1), 0);
	ck_assert_int_eq(fcntl(rfd, F_OFD_SETLK, &fl), 0);
	ck_assert_int_eq(vmmfile_trylock(w2), -EAGAIN); /* a writer waits for the reader */
	ck_assert_int_eq(vmmfile_lock_timeout(w2, 30), -ETIMEDOUT); /* ... but not for ever */
	close(rfd);
	ck_assert_int_eq(vmmfile_trylock(w2), 0);
	vmmfile_free(w2); /* frees the lock too */
	ck_assert_int_eq(vmmfile_trylock(w1), 0);
	vmmfile_free(w1);
}
END_TEST

enum hostile_kind { H_DIR, H_SYMLINK, H_FIFO, H_EMPTY_PATH, H_MISSING, H_EMPTY, H_HUGE };

static const struct {
	enum hostile_kind kind;
	int open_ret; /* vmmfile_open (writer) */
	int read_ret; /* vmmfile_read (reader) */
} hostile_cases[] = {
	{H_DIR, -EINVAL, -EINVAL},
	{H_SYMLINK, -ELOOP, 0}, /* readers may follow a symlink to a good file */
	{H_FIFO, -EINVAL, -EINVAL},
	{H_EMPTY_PATH, -EINVAL, -ENOENT},
	{H_MISSING, 0, -ENOENT}, /* the writer creates it; the reader reads before */
	{H_EMPTY, 0, -ENODATA},
	{H_HUGE, 0, -EFBIG},
};

START_TEST(test_hostile_paths)
{
	_cleanup_(freep) uint8_t *got = NULL;
	struct vmmfile *f = NULL;
	char p[512], good[512];
	size_t got_len = 0;
	int fd, r;

	tpath("x", p, sizeof(p));
	tpath("good", good, sizeof(good));
	fd = open(good, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, (uint8_t[24]){0}, 24), 24);
	close(fd);
	switch (hostile_cases[_i].kind) {
	case H_DIR:
		ck_assert_int_eq(mkdir(p, 0700), 0);
		break;
	case H_SYMLINK:
		ck_assert_int_eq(symlink(good, p), 0);
		break;
	case H_FIFO:
		ck_assert_int_eq(mkfifo(p, 0600), 0);
		break;
	case H_EMPTY_PATH:
		p[0] = '\0';
		break;
	case H_MISSING:
		break;
	case H_EMPTY:
	case H_HUGE:
		fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		if (hostile_cases[_i].kind == H_HUGE)
			ck_assert_int_eq(ftruncate(fd, VMMFILE_MAX_SIZE + 1), 0);
		close(fd);
		break;
	}
	r = vmmfile_read(p, &got, &got_len);
	ck_assert_msg(r == hostile_cases[_i].read_ret, "case %d: read %d", _i, r);
	if (r == 0)
		ck_assert_uint_eq(got_len, 24);
	r = vmmfile_open(p, &f);
	ck_assert_msg(r == hostile_cases[_i].open_ret, "case %d: open %d", _i, r);
	if (r == 0) {
		ck_assert_int_eq(vmmfile_replace(f, (uint8_t[24]){0}, 24), 0);
		vmmfile_free(f);
	}
}
END_TEST

/* The reader process: loops over the protocol until the parent closes the pipe; exit status
 * 0 = all reads good, 1 = a torn/mixed read, 2 = no read at all, 3 = I/O error. */
static int reader_loop(const char *path, int stop_fd)
{
	unsigned good = 0;

	for (;;) {
		uint8_t *buf = NULL, gen;
		size_t len;
		char c;
		int r = vmmfile_read(path, &buf, &len);

		if (r < 0)
			return 3;
		r = check_table(buf, len, &gen);
		free(buf);
		if (r != 0)
			return 1;
		good++;
		if (read(stop_fd, &c, 1) == 0)
			break;
	}
	return good > 0 ? 0 : 2;
}

START_TEST(test_concurrent_reader_sees_no_torn_file)
{
	_cleanup_(freep) uint8_t *t0 = NULL;
	struct vmmfile *f = NULL;
	size_t t0_len;
	char p[512];
	int pfd[2], status;
	pid_t pid;

	make_table(0, &t0, &t0_len);
	ck_assert_int_eq(vmmfile_open(tpath("certs.blob", p, sizeof(p)), &f), 0);
	ck_assert_int_eq(vmmfile_replace(f, t0, t0_len), 0);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pfd[1]);
		_exit(reader_loop(p, pfd[0]));
	}
	close(pfd[0]);
	for (unsigned i = 1; i <= 300; i++) {
		_cleanup_(freep) uint8_t *t = NULL;
		uint8_t junk[3000];
		size_t len;

		make_table((uint8_t)(i % 23), &t, &len);
		ck_assert_int_eq(vmmfile_lock(f), 0);
		/* A multi-step change under the lock (like firmware + blob): the intermediate
		 * junk must never be visible to the reader. */
		memset(junk, 0xa5, sizeof(junk));
		ck_assert_int_eq(vmmfile_write_locked(f, junk, sizeof(junk)), 0);
		ck_assert_int_eq(vmmfile_write_locked(f, t, len / 2), 0);
		ck_assert_int_eq(vmmfile_write_locked(f, t, len), 0);
		ck_assert_int_eq(vmmfile_unlock(f), 0);
	}
	close(pfd[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "reader exit %d", WEXITSTATUS(status));
	vmmfile_free(f);
}
END_TEST

/* Control for the test above: without the lock the same writer is seen torn, so the reader
 * really can tell. The reader takes its shared lock; the writer here bypasses it. */
/* [certs] vmm_certs_group / vmm_certs_mode: the file gets the VMM's group and exactly the
 * configured mode under the unit's UMask=0027; bad modes and unknown groups are handled. */
START_TEST(test_access_group_and_mode)
{
	struct vmmfile *f = NULL;
	struct group *g;
	struct stat st;
	char p[512], q[512], gname[64];
	mode_t old = umask(0027);
	gid_t want;

	/* A group other than ours that we may give the file to: any group as root, else one of
	 * our supplementary groups; without one, our own (the mode is still checked). */
	if (geteuid() == 0 && (g = getgrnam("nogroup")) && g->gr_gid != getegid())
		snprintf(gname, sizeof(gname), "%s", g->gr_name);
	else if ((g = getgrgid(getegid())))
		snprintf(gname, sizeof(gname), "%s", g->gr_name);
	else
		ck_abort_msg("no group name for gid %u", (unsigned)getegid());
	g = getgrnam(gname);
	ck_assert_ptr_nonnull(g);
	want = g->gr_gid;

	ck_assert_int_eq(vmmfile_open_access(tpath("certs.blob", p, sizeof(p)), gname, 0640, &f),
			 0);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_gid, want);
	ck_assert_uint_eq(st.st_uid, geteuid());
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	vmmfile_free(f);
	f = NULL;

	/* A mode the umask would cut (0644 under 0027) is applied explicitly, also to an existing
	 * file that had another mode. */
	ck_assert_int_eq(vmmfile_open_access(p, gname, 0644, &f), 0);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
	vmmfile_free(f);
	f = NULL;

	/* Refused: no owner write, world-writable, above 0777; the file is left alone. */
	ck_assert_int_eq(vmmfile_open_access(p, gname, 0440, &f), -EINVAL);
	ck_assert_int_eq(vmmfile_open_access(p, gname, 0666, &f), -EINVAL);
	ck_assert_int_eq(vmmfile_open_access(p, gname, 04640, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);

	/* A group that does not exist: opened, the group left as it was, the mode applied. */
	ck_assert_int_eq(vmmfile_open_access(tpath("other.blob", q, sizeof(q)), "no-such-group-snp",
					     0600, &f),
			 0);
	ck_assert_int_eq(stat(q, &st), 0);
	ck_assert_uint_eq(st.st_gid, getegid());
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	vmmfile_free(f);
	f = NULL;
	/* A name that cannot be a group is not looked up. */
	ck_assert_int_eq(vmmfile_open_access(q, "kvm;rm", 0640, &f), -EINVAL);
	ck_assert_ptr_null(f);
	umask(old);
}
END_TEST

START_TEST(test_reader_detects_unlocked_writer)
{
	_cleanup_(freep) uint8_t *t = NULL, *got = NULL;
	size_t len, got_len;
	uint8_t gen = 0;
	char p[512];
	int fd;

	make_table(5, &t, &len);
	fd = open(tpath("certs.blob", p, sizeof(p)), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, t, len / 2, 0), (ssize_t)(len / 2)); /* half a file */
	ck_assert_int_eq(vmmfile_read(p, &got, &got_len), 0);
	ck_assert_int_ne(check_table(got, got_len, &gen), 0);
	close(fd);
}
END_TEST

static Suite *vmmfile_suite(void)
{
	Suite *s = suite_create("vmmfile");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip_shrinks);
	tcase_add_test(tc, test_write_needs_lock);
	tcase_add_test(tc, test_lock_conflicts);
	tcase_add_loop_test(tc, test_hostile_paths, 0, (int)ELEMENTSOF(hostile_cases));
	tcase_add_test(tc, test_concurrent_reader_sees_no_torn_file);
	tcase_add_test(tc, test_reader_detects_unlocked_writer);
	tcase_add_test(tc, test_access_group_and_mode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(vmmfile_suite());
}
