/* SPDX-License-Identifier: Apache-2.0 */
/* test-libsnpattest: the library against the codec-built test server (ALLOW, ENOSPC, BUSY,
 * DONE, a late ALLOW handed back, a refusing or broken daemon), the timeout, reconnecting
 * after a restart, the OFD-locked file fallback and the empty fallback. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certtable.h"
#include "snpattest.h"
#include "testserver.h"
#include "testutil.h"
#include "util.h"

static char dir[64];
static char sock_path[128];
static char file_path[128];
static uint8_t *table; /* ARK + ASK + VCEK stand-ins: 2 pages */
static size_t table_len;
static const uint8_t uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
				 0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};

static void setup(void)
{
	static uint8_t ark[1639], ask[1677], vcek[1300];
	struct certtable_entry e[3];

	strcpy(dir, "/tmp/snpattest-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/vmm.sock", dir);
	snprintf(file_path, sizeof(file_path), "%s/certs.bin", dir);
	memset(ark, 0xa1, sizeof(ark));
	memset(ask, 0xa2, sizeof(ask));
	memset(vcek, 0xa3, sizeof(vcek));
	memcpy(e[0].guid, certtable_guid(CERTTABLE_ARK), 16);
	e[0].data = ark;
	e[0].length = sizeof(ark);
	memcpy(e[1].guid, certtable_guid(CERTTABLE_ASK), 16);
	e[1].data = ask;
	e[1].length = sizeof(ask);
	memcpy(e[2].guid, certtable_guid(CERTTABLE_VCEK), 16);
	e[2].data = vcek;
	e[2].length = sizeof(vcek);
	ck_assert_int_eq(certtable_build(e, 3, &table, &table_len), 0);
	ck_assert_uint_eq(certtable_npages(table_len), 2);
}

static void teardown(void)
{
	unlink(sock_path);
	unlink(file_path);
	rmdir(dir);
	free(table);
	table = NULL;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static struct snpattest *open_handle(bool with_file)
{
	struct snpattest *h = NULL;

	ck_assert_int_eq(snpattest_open(sock_path, uuid, "vm-a", &h), 0);
	ck_assert_int_eq(snpattest_set_certs_file(h, with_file ? file_path : NULL), 0);
	return h;
}

/* A second open file description of path tries an exclusive OFD lock: false while a reader
 * holds the shared one. */
static bool can_lock_exclusive(const char *path)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(path, O_RDWR | O_CLOEXEC);
	bool ok;

	ck_assert_int_ge(fd, 0);
	ok = fcntl(fd, F_OFD_SETLK, &fl) == 0;
	close(fd);
	return ok;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(test_open_rules)
{
	struct snpattest *h = NULL;

	ck_assert_int_eq(snpattest_open(sock_path, uuid, "", &h), -EINVAL);
	ck_assert_int_eq(snpattest_open(sock_path, uuid, "has space", &h), -EINVAL);
	ck_assert_int_eq(snpattest_open(sock_path, uuid, NULL, &h), -EINVAL);
	ck_assert_ptr_null(h);
	ck_assert_int_eq(snpattest_open(NULL, NULL, "vm", &h), 0); /* daemon not needed */
	ck_assert_int_eq(snpattest_set_timeout(h, 0), -EINVAL);
	ck_assert_int_eq(snpattest_set_timeout(h, 50), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_NONE);
	snpattest_close(h);
	snpattest_close(NULL);
}
END_TEST

START_TEST(test_daemon_allow_done)
{
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np = 4;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	h = open_handle(false);
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_DAEMON);
	ck_assert_mem_eq(buf, table, table_len);
	ck_assert_uint_eq(np, 4);
	/* The HELLO named this VM. */
	ck_assert_mem_eq(s.last_uuid, uuid, 16);
	ck_assert_str_eq(s.last_name, "vm-a");
	ck_assert_uint_eq(s.last_pid, (uint32_t)getpid());

	/* A request after a 0 without snpattest_done(): that KVM_RUN has happened, so the
	 * library reports DONE(firmware) itself before it asks (else the server, which keeps the
	 * VM in flight until DONE, would answer BUSY). */
	np = 4;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	TS_WAIT(&s, done_fw, 1);
	snpattest_done(h);
	TS_WAIT(&s, done_fw, 2);
	np = 4;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	snpattest_done(h);
	snpattest_done(h); /* harmless twice */
	TS_WAIT(&s, done_fw, 3);
	ck_assert_uint_eq(ts_counts(&s).busys, 0);
	ck_assert_uint_eq(ts_counts(&s).done_abandoned, 0);
	ck_assert_uint_eq(ts_counts(&s).hellos, 1);
	ck_assert_uint_eq(ts_counts(&s).conns, 1);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

START_TEST(test_daemon_enospc_busy)
{
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	h = open_handle(false);
	for (uint64_t want = 0; want < 2; want++) {
		np = want; /* RBX = 0 asks for the length; 1 page is too few for 2 */
		ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), ENOSPC);
		ck_assert_uint_eq(np, 2);
	}
	np = (uint64_t)1 << 40; /* RBX beyond 32 bits: plenty of room */
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	snpattest_done(h);
	ts_set_mode(&s, TS_BUSY);
	np = 4;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), EAGAIN);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_DAEMON);
	ck_assert_uint_eq(ts_counts(&s).enospcs, 2);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

START_TEST(test_timeout_and_late_allow)
{
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np = 4;
	double t0, took;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_HOLD, table, table_len), 0);
	h = open_handle(false);
	t0 = now_s();
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 200), EAGAIN);
	took = now_s() - t0;
	/* It waited for the daemon (not less than the timeout) and then gave up; the upper
	 * bound is loose on purpose: it catches a call that blocks, not a slow machine. */
	ck_assert_msg(took >= 0.19 && took < 10, "took %.3f s", took);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_NONE);

	/* The server answers ALLOW now, too late: the library hands it back (DONE abandoned)
	 * and asks again. */
	TS_WAIT(&s, certs, 1);
	ts_release(&s);
	TS_WAIT(&s, released, 1);
	ts_set_mode(&s, TS_ALLOW);
	np = 4;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_mem_eq(buf, table, table_len);
	snpattest_done(h);
	TS_WAIT(&s, done_fw, 1);
	ck_assert_uint_eq(ts_counts(&s).done_abandoned, 1);
	ck_assert_uint_eq(ts_counts(&s).malformed, 0);
	ck_assert_uint_eq(ts_counts(&s).errors_sent, 0);

	/* The default timeout (100 ms) applies with timeout_ms < 0. */
	ts_set_mode(&s, TS_HOLD);
	np = 4;
	t0 = now_s();
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, -1), EAGAIN);
	took = now_s() - t0;
	ck_assert_msg(took >= 0.09 && took < 10, "took %.3f s", took);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

START_TEST(test_reconnect)
{
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np = 4;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	h = open_handle(false);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	snpattest_done(h);
	TS_WAIT(&s, done_fw, 1);
	ts_stop(&s);

	/* Daemon gone, no file: an empty table and ret 0, never EIO or BUSY. */
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_EMPTY);
	ck_assert(mem_is_zero(buf, CERTTABLE_ENTRY_SIZE));
	snpattest_done(h);

	/* The daemon is back: the next request reconnects and says HELLO again. */
	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_DAEMON);
	ck_assert_mem_eq(buf, table, table_len);
	ck_assert_uint_eq(ts_counts(&s).hellos, 1);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

START_TEST(test_restart_between_requests)
{
	/* The daemon restarts while the connection is idle: the request must not fall back (the
	 * new daemon is there), it reconnects within the same call. */
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np = 4;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	h = open_handle(false);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	snpattest_done(h);
	TS_WAIT(&s, done_fw, 1);
	ts_stop(&s);
	ck_assert_int_eq(ts_start(&s, sock_path, TS_ALLOW, table, table_len), 0);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_DAEMON);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

START_TEST(test_file_fallback)
{
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	uint64_t np = 4;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int wfd;

	write_file(file_path, table, table_len);
	h = open_handle(true); /* no server at sock_path */
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_FILE);
	ck_assert_mem_eq(buf, table, table_len);
	/* The shared lock is held until done: a writer cannot take the exclusive one. */
	ck_assert(!can_lock_exclusive(file_path));
	snpattest_done(h);
	ck_assert(can_lock_exclusive(file_path));

	/* Too small a buffer: ENOSPC with the file's page count, and no lock kept. */
	np = 1;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), ENOSPC);
	ck_assert_uint_eq(np, 2);
	ck_assert(can_lock_exclusive(file_path));

	/* A writer holds the exclusive lock (a rotation): BUSY once the timeout is over. */
	wfd = open(file_path, O_RDWR | O_CLOEXEC);
	ck_assert_int_eq(fcntl(wfd, F_OFD_SETLK, &fl), 0);
	np = 4;
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 100), EAGAIN);
	close(wfd);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_FILE);
	snpattest_close(h); /* close drops the lock too */
	ck_assert(can_lock_exclusive(file_path));
}
END_TEST

START_TEST(test_empty_fallback)
{
	static const uint8_t junk[100] = {1, 2, 3};
	static uint8_t buf[4 * 4096];
	struct snpattest *h = open_handle(true);
	uint64_t np = 4;

	/* No daemon, no file. */
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_EMPTY);
	ck_assert(mem_is_zero(buf, CERTTABLE_ENTRY_SIZE));
	ck_assert_uint_eq(buf[CERTTABLE_ENTRY_SIZE], 0xee);
	ck_assert_uint_eq(np, 4);
	snpattest_done(h);

	/* RBX = 0: nothing to write, still 0 (what KVM does without certificates). */
	np = 0;
	ck_assert_int_eq(snpattest_request_certs(h, NULL, &np, 5000), 0);
	ck_assert_uint_eq(np, 0);

	/* A file that is not a table, and an empty file: the empty table. */
	write_file(file_path, junk, sizeof(junk));
	np = 4;
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_EMPTY);
	ck_assert(mem_is_zero(buf, CERTTABLE_ENTRY_SIZE));
	write_file(file_path, junk, 0);
	ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_EMPTY);
	ck_assert(can_lock_exclusive(file_path));
	snpattest_close(h);
}
END_TEST

START_TEST(test_refusing_daemon)
{
	/* A daemon that refuses the VM, or answers garbage, has no say: the fallbacks answer. */
	static const enum ts_mode modes[] = {TS_DENY, TS_GARBAGE};
	static uint8_t buf[4 * 4096];

	write_file(file_path, table, table_len);
	for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
		struct snpattest *h;
		struct ts s;
		uint64_t np = 4;

		ck_assert_int_eq(ts_start(&s, sock_path, modes[i], table, table_len), 0);
		h = open_handle(true);
		ck_assert_int_eq(snpattest_request_certs(h, buf, &np, 5000), 0);
		ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_FILE);
		ck_assert_mem_eq(buf, table, table_len);
		snpattest_done(h);
		snpattest_close(h);
		ts_stop(&s);
	}
}
END_TEST

START_TEST(test_hung_daemon_fails_open)
{
	/* A daemon that accepts and never answers: BUSY (EAGAIN) for a while, then the library
	 * stops waiting for it and answers from the fallback (here the empty table), so that a
	 * guest never sees BUSY for its 60 s. The window is 10 s; the loop allows 30 s. */
	static uint8_t buf[4 * 4096];
	struct snpattest *h;
	struct ts s;
	uint64_t np = 4;
	double t0 = now_s();
	int ret = EAGAIN, busy = 0;

	ck_assert_int_eq(ts_start(&s, sock_path, TS_HOLD, table, table_len), 0);
	h = open_handle(false);
	while (ret == EAGAIN && now_s() - t0 < 30) {
		ret = snpattest_request_certs(h, buf, &np, 100);
		busy += ret == EAGAIN;
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(snpattest_last_source(h), SNPATTEST_SOURCE_EMPTY);
	ck_assert_msg(busy > 1 && now_s() - t0 >= 9.9, "%d BUSY, %.1f s", busy, now_s() - t0);
	/* The server saw one CERTS only: a request stays unanswered, no pile-up behind it. */
	ck_assert_uint_eq(ts_counts(&s).certs, 1);
	snpattest_close(h);
	ts_stop(&s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("libsnpattest");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_rules);
	tcase_add_test(tc, test_daemon_allow_done);
	tcase_add_test(tc, test_daemon_enospc_busy);
	tcase_add_test(tc, test_timeout_and_late_allow);
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_restart_between_requests);
	tcase_add_test(tc, test_file_fallback);
	tcase_add_test(tc, test_empty_fallback);
	tcase_add_test(tc, test_refusing_daemon);
	tcase_add_test(tc, test_hung_daemon_fails_open);
	suite_add_tcase(su, tc);
	return test_run_suite(su);
}
