/* SPDX-License-Identifier: Apache-2.0 */
/* Rotation and TCB administration in the broker against the simulated platform: tcb set /
 * commit / vlek load / cert rotate, refusals before any pause, a TCB change behind the daemon's
 * back found by polling, and a concurrent reader process that follows the VMM file's OFD lock
 * protocol and checks every blob it reads against the TCB the platform reports. */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <jansson.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "ca.h"
#include "certs.h"
#include "certtable.h"
#include "conf.h"
#include "ctl.h"
#include "keys.h"
#include "manager.h"
#include "state.h"
#include "util.h"
#include "vmmfile.h"

#define T0 0x7308000000000003ull       /* Milan sim default: reported = current */
#define T1 0x7307000000000003ull       /* snp=7: a VCEK is in the cert dir */
#define T_NOCERT 0x7306000000000003ull /* snp=6: none */
#define T_NEWER 0x7309000000000003ull  /* newer than current */

static char base[256], sim_dir[300], cert_dir[300], vmm_path[300], state_dir[300];
static const char *kvmsim_path; /* argv[1]: snp-kvmsim, for the test under load */
static const char *kdssim_path; /* argv[2]: snp-kdssim, for the KDS source */
static char kds_url[64];	/* set: the daemon uses KDS instead of cert_dir */
static bool expect_crl = true;	/* the cert dir has a CRL; KDS answers here carry none */
static uint32_t nl_port;
static uint8_t hashstick[SIM_HASHSTICK_SIZE];

static const struct manager_module *const modules[] = {&broker_module, NULL};

/* Set-up outside any test: a failure ends the program. */
#define must(x)                                                                                    \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: set-up failed: %s\n", __FILE__, __LINE__, #x);     \
			exit(EXIT_FAILURE);                                                        \
		}                                                                                  \
	} while (0)

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	must(f);
	must((fwrite(data, 1, len, f)) == (len));
	must((fclose(f)) == (0));
}

static void write_cert(const char *name, X509 *x)
{
	_cleanup_(freep) uint8_t *der = NULL;
	size_t len;

	must((certs_to_der(x, &der, &len)) == (0));
	write_file(cert_dir, name, der, len);
}

/* Once for all tests (the CA's RSA keys take seconds): sim platform, CA, cert dir with VCEKs
 * for T0 and T1 and a VLEK for T0, a hashstick for that VLEK. */
static void build_world(void)
{
	struct sim_state *st = NULL;
	struct sim_state_data d;
	struct sim_ca *ca = NULL;
	uint8_t seed[SIM_VLEK_SEED_LEN];
	char kds[400], *pem = NULL, name[64];
	size_t pem_len;
	time_t now = time(NULL);
	static const uint64_t tcbs[] = {T0, T1};

	snprintf(base, sizeof(base), "/tmp/test-rotation-XXXXXX");
	must(mkdtemp(base));
	snprintf(sim_dir, sizeof(sim_dir), "%s/sim", base);
	snprintf(cert_dir, sizeof(cert_dir), "%s/certs", base);
	snprintf(vmm_path, sizeof(vmm_path), "%s/vmm-certs.blob", base);
	snprintf(state_dir, sizeof(state_dir), "%s/state", base);
	must((mkdir(cert_dir, 0700)) == (0));
	must((sim_state_open(sim_dir, SNP_PRODUCT_MILAN, &st)) == (0));
	must((sim_state_read(st, &d)) == (0));
	must((d.reported_tcb) == (T0));
	snprintf(kds, sizeof(kds), "%s/kds", sim_dir);
	must((sim_ca_open(kds, SNP_PRODUCT_MILAN, &ca)) == (0));

	must((sim_ca_chain_pem(ca, SIM_CA_VCEK, &pem, &pem_len)) == (0));
	write_file(cert_dir, "cert_chain.pem", pem, pem_len);
	free(pem);
	must((sim_ca_chain_pem(ca, SIM_CA_VLEK, &pem, &pem_len)) == (0));
	write_file(cert_dir, "cert_chain_vlek.pem", pem, pem_len);
	free(pem);
	for (size_t i = 0; i < ELEMENTSOF(tcbs); i++) {
		EVP_PKEY *priv = NULL, *pub = NULL;
		X509 *x = NULL;
		must((sim_keys_vcek(d.secret, d.product, tcbs[i], &priv)) == (0));
		must((sim_keys_public(priv, &pub)) == (0));
		must((sim_ca_issue_vcek(ca, pub, d.chip_id, 64, tcbs[i], now, &x)) == (0));
		snprintf(name, sizeof(name), "vcek-%016llx.der", (unsigned long long)tcbs[i]);
		write_cert(name, x);
		X509_free(x);
		EVP_PKEY_free(priv);
		EVP_PKEY_free(pub);
	}
	{
		EVP_PKEY *priv = NULL, *pub = NULL;
		X509 *x = NULL;
		memset(seed, 0x5c, sizeof(seed));
		must((sim_keys_hashstick_wrap(d.secret, d.product, d.chip_id, T0, seed,
					      hashstick)) == (0));
		must((sim_keys_vlek(seed, d.product, T0, &priv)) == (0));
		must((sim_keys_public(priv, &pub)) == (0));
		must((sim_ca_issue_vlek(ca, pub, "test-csp", T0, now, &x)) == (0));
		snprintf(name, sizeof(name), "vlek-%016llx.der", (unsigned long long)T0);
		write_cert(name, x);
		X509_free(x);
		EVP_PKEY_free(priv);
		EVP_PKEY_free(pub);
	}
	{
		X509_CRL *crl = NULL;
		uint8_t *der = NULL;
		int len;
		must(sim_ca_issue_crl(ca, SIM_CA_VCEK, now, &crl) == 0);
		len = i2d_X509_CRL(crl, &der);
		must(len > 0);
		write_file(cert_dir, "crl.der", der, (size_t)len);
		OPENSSL_free(der);
		X509_CRL_free(crl);
	}
	sim_ca_free(ca);
	sim_state_free(st);
}

static int reset_fn(struct sim_state_data *d, void *userdata)
{
	const uint64_t *tcb = userdata;

	d->reported_tcb = *tcb;
	d->committed_tcb = T0;
	d->vlek_loaded = false;
	return 0;
}

static void sim_set_reported(uint64_t tcb)
{
	struct sim_state *st = NULL;

	ck_assert_int_eq(sim_state_open(sim_dir, SNP_PRODUCT_UNKNOWN, &st), 0);
	ck_assert_int_eq(sim_state_update(st, reset_fn, &tcb), 0);
	sim_state_free(st);
}

static uint64_t sim_reported(bool *ret_vlek)
{
	struct sim_state *st = NULL;
	struct sim_state_data d;

	ck_assert_int_eq(sim_state_open(sim_dir, SNP_PRODUCT_UNKNOWN, &st), 0);
	ck_assert_int_eq(sim_state_read(st, &d), 0);
	sim_state_free(st);
	if (ret_vlek)
		*ret_vlek = d.vlek_loaded;
	return d.reported_tcb;
}

static void set_str(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
	ck_assert(*field);
}

static struct manager *daemon_start_ctl(uint64_t poll_usec, bool with_ctl);

static struct manager *daemon_start(uint64_t poll_usec)
{
	return daemon_start_ctl(poll_usec, false);
}

static const struct manager_module *const modules_ctl[] = {&broker_module, &ctl_module, NULL};

static struct manager *daemon_start_ctl(uint64_t poll_usec, bool with_ctl)
{
	struct manager *m = NULL;
	struct conf c;

	sim_set_reported(T0);
	unlink(vmm_path);
	ck_assert_int_eq(conf_init_defaults(&c), 0);
	c.backend = CONF_BACKEND_SIM;
	c.transport = CONF_TRANSPORT_USERSOCK;
	set_str(&c.sim_state_dir, sim_dir);
	set_str(&c.state_dir, state_dir);
	set_str(&c.cert_dir, kds_url[0] ? "" : cert_dir);
	if (kds_url[0]) {
		char cache[400];
		snprintf(cache, sizeof(cache), "%s/cache", base);
		set_str(&c.kds_url, kds_url);
		set_str(&c.cache_dir, cache);
	}
	set_str(&c.vmm_certs_file, vmm_path);
	set_str(&c.vmm_socket, "none"); /* the VMM socket has its own tests (integration/vmm) */
	c.trust_sim_ark = true;
	c.tcb_poll_interval_usec = poll_usec;
	c.usersock_port = nl_port;
	if (with_ctl) {
		char sock[400];
		snprintf(sock, sizeof(sock), "%s/control.sock", base);
		set_str(&c.control_socket, sock);
	}
	ck_assert_int_eq(manager_new("/nonexistent/snp-attestd.conf", false, &c,
				     with_ctl ? modules_ctl : modules, &m),
			 0);
	conf_done(&c);
	ck_assert_int_eq(broker_module.start(m), 0);
	m->n_started = 1;
	if (with_ctl) {
		ck_assert_int_eq(ctl_module.start(m), 0);
		m->n_started = 2;
	}
	return m;
}

struct op {
	bool done;
	int r;
	char msg[1024];
};

static void op_done(void *userdata, int r, const char *message)
{
	struct op *o = userdata;

	ck_assert(!o->done); /* exactly once */
	o->done = true;
	o->r = r;
	snprintf(o->msg, sizeof(o->msg), "%s", message);
}

/* Runs the loop until *flag. The bound only stops a hung test; nothing asserts speed. */
static void run_until(struct manager *m, const bool *flag)
{
	time_t give_up = time(NULL) + 60;

	while (!*flag && time(NULL) < give_up)
		ev_run(m->loop, EVRUN_ONCE);
	ck_assert_msg(*flag, "event did not come");
}

/* The leaf in a blob: its kind and TCB. */
static void blob_leaf(const uint8_t *buf, size_t len, enum certtable_kind *ret_kind,
		      uint64_t *ret_tcb)
{
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
	const struct certtable_entry *leaf;
	struct certs_amd_ext ext;
	size_t n;
	X509 *x = NULL;

	ck_assert_int_eq(certtable_parse(buf, len, e, ELEMENTSOF(e), &n), 0);
	ck_assert(certtable_find(e, n, CERTTABLE_ARK));
	ck_assert(certtable_find(e, n, CERTTABLE_ASK));
	leaf = certtable_find(e, n, CERTTABLE_VCEK);
	*ret_kind = CERTTABLE_VCEK;
	if (!leaf) {
		leaf = certtable_find(e, n, CERTTABLE_VLEK);
		*ret_kind = CERTTABLE_VLEK;
	}
	ck_assert(leaf);
	ck_assert_int_eq(certs_parse(leaf->data, leaf->length, &x), 0);
	ck_assert_int_eq(certs_amd_ext_parse(x, &ext), 0);
	ck_assert_int_eq(certs_amd_ext_tcb(&ext, SNP_PRODUCT_MILAN, ret_tcb), 0);
	X509_free(x);
}

static void assert_serving(struct broker *b, uint64_t tcb, enum certtable_kind kind)
{
	const struct chain *c = broker_chain(b);
	_cleanup_(freep) uint8_t *buf = NULL;
	enum certtable_kind k;
	size_t len;
	uint64_t t;
	bool vlek;

	ck_assert_uint_eq(sim_reported(&vlek), tcb);
	ck_assert(vlek == (kind == CERTTABLE_VLEK));
	ck_assert_uint_eq(broker_platform(b)->reported_tcb, tcb);
	ck_assert(c);
	ck_assert_uint_eq(c->tcb, tcb);
	ck_assert(c->vlek == (kind == CERTTABLE_VLEK));
	ck_assert(c->sim_root);
	ck_assert_int_eq(vmmfile_read(vmm_path, &buf, &len), 0);
	ck_assert_uint_eq(len, c->table_len);
	ck_assert_int_eq(memcmp(buf, c->table, len), 0);
	blob_leaf(buf, len, &k, &t);
	ck_assert_int_eq(k, kind);
	ck_assert_uint_eq(t, tcb);
	ck_assert(!broker_paused(b));
	/* The source has a CRL for the VCEK line only; it travels in the table. */
	ck_assert(c->has_crl == (expect_crl && kind == CERTTABLE_VCEK));
	{
		struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
		size_t n;
		ck_assert_int_eq(certtable_parse(buf, len, e, ELEMENTSOF(e), &n), 0);
		ck_assert((certtable_find(e, n, CERTTABLE_CRL) != NULL) == c->has_crl);
	}
}

START_TEST(test_start_serves_reported_tcb)
{
	struct manager *m = daemon_start(0);

	assert_serving(broker_get(m), T0, CERTTABLE_VCEK);
	ck_assert_uint_eq(broker_get_rotation_stats(broker_get(m))->vmm_file_writes, 1);
	manager_free(m);
}
END_TEST

START_TEST(test_tcb_set_and_commit)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	struct op o = {0};
	char err[512];
	uint64_t committed = 0;

	ck_assert_int_eq(broker_tcb_set(b, T1, op_done, &o, err, sizeof(err)), 0);
	ck_assert(!o.done);	     /* never from inside the call */
	ck_assert(broker_paused(b)); /* admission paused for the change */
	ck_assert(broker_get_rotation_stats(b)->in_progress);
	run_until(m, &o.done);
	ck_assert_msg(o.r == 0, "%s", o.msg);
	assert_serving(b, T1, CERTTABLE_VCEK);

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(broker_tcb_commit(b, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_msg(o.r == 0, "%s", o.msg);
	assert_serving(b, T0, CERTTABLE_VCEK);
	ck_assert_int_eq(broker_committed_tcb(b, &committed), 0);
	ck_assert_uint_eq(committed, T0);
	ck_assert_uint_eq(broker_get_rotation_stats(b)->succeeded, 2);
	manager_free(m);
}
END_TEST

/* Refused before pausing: the platform and the served chain stay as they were. */
static const struct {
	uint64_t tcb;
	int ret;
	const char *needle;
} refusal_cases[] = {
	{T_NOCERT, -ENOKEY, "cannot obtain the VCEK"},
	{T_NEWER, -ERANGE, "newer than the current TCB"},
};

START_TEST(test_tcb_set_refused)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	struct op o = {0};
	char err[1024] = "";

	ck_assert_int_eq(broker_tcb_set(b, refusal_cases[_i].tcb, op_done, &o, err, sizeof(err)),
			 refusal_cases[_i].ret);
	ck_assert_msg(strstr(err, refusal_cases[_i].needle), "%s", err);
	ck_assert(!broker_paused(b));
	ck_assert_uint_eq(broker_get_rotation_stats(b)->started, 0);
	ev_run(m->loop, EVRUN_NOWAIT);
	ck_assert(!o.done);
	assert_serving(b, T0, CERTTABLE_VCEK);
	manager_free(m);
}
END_TEST

START_TEST(test_one_rotation_at_a_time)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	struct op o1 = {0}, o2 = {0};
	char err[512];

	ck_assert_int_eq(broker_rotate(b, op_done, &o1, err, sizeof(err)), 0);
	ck_assert_int_eq(broker_tcb_set(b, T1, op_done, &o2, err, sizeof(err)), -EBUSY);
	run_until(m, &o1.done);
	ck_assert_msg(o1.r == 0, "%s", o1.msg);
	ck_assert(!o2.done);
	assert_serving(b, T0, CERTTABLE_VCEK);
	ck_assert_uint_eq(broker_get_rotation_stats(b)->vmm_file_writes, 2);
	manager_free(m);
}
END_TEST

START_TEST(test_vlek_load_serves_vlek_chain)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	struct op o = {0};
	uint8_t bad[SNP_VLEK_HASHSTICK_SIZE];
	char err[512];

	/* A hashstick the firmware refuses: nothing changes, and we say so. */
	memcpy(bad, hashstick, sizeof(bad));
	bad[0x100] ^= 1;
	ck_assert_int_eq(broker_vlek_load(b, bad, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_int_lt(o.r, 0);
	ck_assert_msg(strstr(o.msg, "SNP_VLEK_LOAD failed"), "%s", o.msg);
	assert_serving(b, T0, CERTTABLE_VCEK);

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(broker_vlek_load(b, hashstick, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_msg(o.r == 0, "%s", o.msg);
	assert_serving(b, T0, CERTTABLE_VLEK);
	manager_free(m);
}
END_TEST

/* A VMM that sits on its shared lock cannot keep admission paused: the change is abandoned
 * before the firmware is touched. */
START_TEST(test_stuck_reader_bounds_pause)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	struct op o = {0};
	char err[512];
	int fd = open(vmm_path, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	ck_assert_int_eq(broker_tcb_set(b, T1, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_int_eq(o.r, -ETIMEDOUT);
	ck_assert_msg(strstr(o.msg, "held it too long") && strstr(o.msg, "previous chain"), "%s",
		      o.msg);
	ck_assert(!broker_paused(b));
	close(fd);
	assert_serving(b, T0, CERTTABLE_VCEK); /* firmware untouched, same chain, same file */
	manager_free(m);
}
END_TEST

static void wait_idle(struct manager *m, struct broker *b)
{
	time_t give_up = time(NULL) + 60;

	while (broker_get_rotation_stats(b)->in_progress && time(NULL) < give_up)
		ev_run(m->loop, EVRUN_ONCE);
	ck_assert(!broker_get_rotation_stats(b)->in_progress);
}

/* SIGHUP (module reload) rebuilds the chain as a rotation; with a broken source the old chain
 * stays and admission is never paused. */
START_TEST(test_reload_rotates_or_keeps)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	const struct broker_rotation_stats *st = broker_get_rotation_stats(b);
	struct conf old;
	char empty[400];

	ck_assert_int_eq(conf_copy(&m->conf, &old), 0);
	ck_assert_int_eq(broker_module.reload(m, &old), 0);
	ck_assert(st->in_progress);
	wait_idle(m, b);
	ck_assert_uint_eq(st->succeeded, 1);
	ck_assert_uint_eq(st->vmm_file_writes, 2);
	assert_serving(b, T0, CERTTABLE_VCEK);

	snprintf(empty, sizeof(empty), "%s/empty", base);
	ck_assert(mkdir(empty, 0700) == 0 || errno == EEXIST);
	set_str(&m->conf.cert_dir, empty);
	ck_assert_int_eq(broker_module.reload(m, &old), 0);
	ck_assert(!st->in_progress);
	ck_assert(!broker_paused(b));
	ck_assert_uint_eq(st->failed, 1);
	ck_assert_int_lt(st->last_result, 0);
	ck_assert_msg(strstr(st->last_message, "still serving the previous one"), "%s",
		      st->last_message);
	set_str(&m->conf.cert_dir, cert_dir); /* for assert_serving's view of the world */
	assert_serving(b, T0, CERTTABLE_VCEK);
	conf_done(&old);
	manager_free(m);
}
END_TEST

/* No cert_dir: the chain comes from KDS (snp-kdssim) through the disk cache, also for the
 * pre-fetch of a new TCB's VCEK; with KDS gone, cached TCBs still work and others are refused
 * before anything changes. */
START_TEST(test_kds_source)
{
	struct manager *m;
	struct broker *b;
	const struct broker_rotation_stats *st;
	struct op o = {0};
	char portfile[400], err[1024], port[16] = "";
	time_t give_up = time(NULL) + 60;
	int status;
	pid_t pid;

	snprintf(portfile, sizeof(portfile), "%s/kds.port", base);
	unlink(portfile);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			(void)dup2(fd, STDOUT_FILENO);
		execl(kdssim_path, kdssim_path, "--state", sim_dir, "--listen", "127.0.0.1:0",
		      "--port-file", portfile, (char *)NULL);
		_exit(127);
	}
	while (!port[0] && time(NULL) < give_up) {
		FILE *f = fopen(portfile, "re");
		if (f) {
			if (!fgets(port, sizeof(port), f))
				port[0] = '\0';
			fclose(f);
		}
		if (!port[0])
			usleep(20000);
	}
	ck_assert_msg(port[0], "snp-kdssim did not start");
	port[strcspn(port, "\n")] = '\0';
	snprintf(kds_url, sizeof(kds_url), "http://127.0.0.1:%s", port);
	expect_crl = false;

	m = daemon_start(0);
	b = broker_get(m);
	st = broker_get_rotation_stats(b);
	ck_assert(broker_chain(b) == NULL); /* fetching */
	wait_idle(m, b);
	ck_assert_msg(st->last_result == 0, "%s", st->last_message);
	assert_serving(b, T0, CERTTABLE_VCEK);
	ck_assert_str_eq(broker_chain(b)->source, "kds");

	ck_assert_int_eq(broker_tcb_set(b, T1, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_msg(o.r == 0, "%s", o.msg);
	assert_serving(b, T1, CERTTABLE_VCEK);

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(broker_tcb_set(b, T0, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_msg(o.r == 0, "%s", o.msg);
	assert_serving(b, T0, CERTTABLE_VCEK);
	ck_assert_str_eq(broker_chain(b)->source, "cache");

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(broker_tcb_set(b, T_NOCERT, op_done, &o, err, sizeof(err)), 0);
	run_until(m, &o.done);
	ck_assert_int_eq(o.r, -ENOKEY);
	ck_assert_msg(strstr(o.msg, "refusing SNP_SET_CONFIG"), "%s", o.msg);
	assert_serving(b, T0, CERTTABLE_VCEK); /* nothing changed */
	manager_free(m);
	kds_url[0] = '\0';
	expect_crl = true;
}
END_TEST

static void poll_until_rotated(struct manager *m, struct broker *b, uint64_t seen_before)
{
	time_t give_up = time(NULL) + 60;
	const struct broker_rotation_stats *st = broker_get_rotation_stats(b);

	while ((st->tcb_changes_seen == seen_before || st->in_progress) && time(NULL) < give_up)
		ev_run(m->loop, EVRUN_ONCE);
	ck_assert_uint_gt(st->tcb_changes_seen, seen_before);
	ck_assert(!st->in_progress);
}

START_TEST(test_poll_follows_outside_change)
{
	struct manager *m = daemon_start(20000);
	struct broker *b = broker_get(m);

	sim_set_reported(T1); /* someone ran SET_CONFIG behind our back */
	poll_until_rotated(m, b, 0);
	assert_serving(b, T1, CERTTABLE_VCEK);

	/* Behind our back again, to a TCB without a VCEK: never the stale chain. */
	sim_set_reported(T_NOCERT);
	poll_until_rotated(m, b, 1);
	ck_assert(broker_chain(b) == NULL);
	ck_assert_uint_eq(broker_platform(b)->reported_tcb, T_NOCERT);
	{
		_cleanup_(freep) uint8_t *buf = NULL;
		struct certtable_entry e[4];
		size_t len, n = 99;
		ck_assert_int_eq(vmmfile_read(vmm_path, &buf, &len), 0);
		ck_assert_int_eq(certtable_parse(buf, len, e, ELEMENTSOF(e), &n), 0);
		ck_assert_uint_eq(n, 0); /* empty table: the VMM hands out no certificates */
	}
	ck_assert_int_lt(broker_get_rotation_stats(b)->last_result, 0);
	manager_free(m);
}
END_TEST

/* The reader: the kernel-documented protocol, and under the shared lock the blob's leaf must
 * be for the TCB the platform reports right now. Exit: 0 good, 1 mismatch, 2 no reads, 3
 * error. */
static int reader_main(int stop_fd)
{
	struct sim_state *st = NULL;
	unsigned reads = 0;

	if (sim_state_open(sim_dir, SNP_PRODUCT_UNKNOWN, &st) < 0)
		return 3;
	for (;;) {
		struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
		struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
		const struct certtable_entry *leaf;
		struct certs_amd_ext ext;
		struct sim_state_data d;
		uint8_t buf[16384];
		uint64_t tcb;
		ssize_t len;
		size_t n;
		X509 *x = NULL;
		char c;
		int fd = open(vmm_path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fcntl(fd, F_OFD_SETLKW, &fl) < 0)
			return 3;
		len = pread(fd, buf, sizeof(buf), 0);
		if (len <= 0 || sim_state_read(st, &d) < 0)
			return 3;
		close(fd); /* unlock */
		if (certtable_parse(buf, (size_t)len, e, ELEMENTSOF(e), &n) < 0)
			return 1;
		leaf = certtable_find(e, n, CERTTABLE_VCEK);
		if (!leaf || certs_parse(leaf->data, leaf->length, &x) < 0)
			return 1;
		if (certs_amd_ext_parse(x, &ext) < 0 ||
		    certs_amd_ext_tcb(&ext, SNP_PRODUCT_MILAN, &tcb) < 0 || tcb != d.reported_tcb) {
			X509_free(x);
			return 1;
		}
		X509_free(x);
		reads++;
		if (read(stop_fd, &c, 1) == 0)
			break;
	}
	sim_state_free(st);
	return reads ? 0 : 2;
}

START_TEST(test_concurrent_reader_never_mismatched)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	int pfd[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pfd[1]);
		_exit(reader_main(pfd[0]));
	}
	close(pfd[0]);
	for (unsigned i = 0; i < 40; i++) {
		struct op o = {0};
		char err[512];
		uint64_t tcb = i % 2 ? T0 : T1;
		ck_assert_int_eq(broker_tcb_set(b, tcb, op_done, &o, err, sizeof(err)), 0);
		run_until(m, &o.done);
		ck_assert_msg(o.r == 0, "%s", o.msg);
	}
	close(pfd[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "reader exit %d", WEXITSTATUS(status));
	assert_serving(b, T0, CERTTABLE_VCEK);
	manager_free(m);
}
END_TEST

/* One request over the control socket, the loop running until the reply line is complete. */
static json_t *ctl_call(struct manager *m, const char *line)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[65536];
	size_t len = 0;
	time_t give_up = time(NULL) + 60;
	json_t *reply;
	json_error_t jerr;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/control.sock", base);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0); /* as snpctl does: one request */
	while (!memchr(buf, '\n', len) && time(NULL) < give_up) {
		ssize_t n;
		ev_run(m->loop, EVRUN_NOWAIT);
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n > 0)
			len += (size_t)n;
		else if (n == 0)
			break;
		else
			ev_run(m->loop, EVRUN_ONCE);
	}
	close(fd);
	buf[len] = '\0';
	reply = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
	ck_assert_msg(reply, "reply '%s': %s", buf, jerr.text);
	return reply;
}

static const char *reply_error(json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"))
		       ? NULL
		       : json_string_value(json_object_get(reply, "error"));
}

static const struct {
	const char *request;
	bool ok;
	const char *code;  /* on error */
	uint64_t reported; /* after the call */
	enum certtable_kind leaf;
} ctl_cases[] = {
	{"{\"cmd\":\"tcb.show\",\"id\":1}\n", true, NULL, T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"bl=3,tee=0,snp=7,ucode=115\"}\n", true, NULL, T1,
	 CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"7307000000000003\",\"id\":\"x\"}\n", true, NULL, T1,
	 CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"0x7306000000000003\"}\n", false, "ENOKEY", T0,
	 CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"snp=7\"}\n", false, "EINVAL", T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"\\u0001\"}\n", false, "EINVAL", T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\"}\n", false, "EINVAL", T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.set\",\"tcb\":\"7309000000000003\"}\n", false, "ERANGE", T0,
	 CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.commit\",\"vm\":1}\n", false, "EINVAL", T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"tcb.commit\"}\n", true, NULL, T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"cert.rotate\"}\n", true, NULL, T0, CERTTABLE_VCEK},
	{"{\"cmd\":\"vlek.load\",\"hashstick\":\"00\"}\n", false, "EINVAL", T0, CERTTABLE_VCEK},
	{"VLEK", true, NULL, T0, CERTTABLE_VLEK}, /* the real hashstick, built below */
};

START_TEST(test_control_commands)
{
	struct manager *m = daemon_start_ctl(0, true);
	struct broker *b = broker_get(m);
	char line[1200];
	json_t *reply;
	const char *e;

	snprintf(line, sizeof(line), "%s", ctl_cases[_i].request);
	if (strcmp(ctl_cases[_i].request, "VLEK") == 0) {
		size_t n = (size_t)snprintf(line, sizeof(line),
					    "{\"cmd\":\"vlek.load\",\"hashstick\":\"");
		for (size_t k = 0; k < sizeof(hashstick); k++)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", hashstick[k]);
		snprintf(line + n, sizeof(line) - n, "\"}\n");
	}
	reply = ctl_call(m, line);
	e = reply_error(reply);
	if (ctl_cases[_i].ok) {
		ck_assert_msg(!e, "case %d: %s", _i, e);
		ck_assert_str_eq(
			json_string_value(
				json_object_get(json_object_get(reply, "reported_tcb"), "raw")),
			ctl_cases[_i].reported == T1 ? "0x7307000000000003" : "0x7308000000000003");
	} else {
		ck_assert_msg(e, "case %d succeeded", _i);
		ck_assert_str_eq(json_string_value(json_object_get(reply, "code")),
				 ctl_cases[_i].code);
	}
	json_decref(reply);
	assert_serving(b, ctl_cases[_i].reported, ctl_cases[_i].leaf);
	manager_free(m);
}
END_TEST

static void on_pace(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	*(bool *)w->data = true;
}

/* Lets the guests run for a while between operations (pacing only; nothing is timed). */
static void run_for(struct manager *m, double sec)
{
	bool fired = false;
	ev_timer t;

	ev_timer_init(&t, on_pace, sec, 0.);
	t.data = &fired;
	ev_timer_start(m->loop, &t);
	run_until(m, &fired);
	ev_timer_stop(m->loop, &t);
}

/* 64 guests of snp-kvmsim verify every report against the table they were given while the
 * TCB changes and the chain rotates in a loop: no verification failure, no key wipe. */
START_TEST(test_rotation_under_load)
{
	struct manager *m = daemon_start(0);
	struct broker *b = broker_get(m);
	char out[400], port[32];
	json_t *root, *totals;
	json_error_t jerr;
	unsigned ops = 0;
	int status = 0;
	pid_t pid;

	snprintf(out, sizeof(out), "%s/kvmsim.json", base);
	snprintf(port, sizeof(port), "%u", nl_port);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execl(kvmsim_path, kvmsim_path, "--state", sim_dir, "--vms", "64", "--duration",
		      "8", "--rate", "2", "--psp-delay-ms", "2", "--wait-broker", "30", "--port",
		      port, "--json", "--quiet", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		struct op o = {0};
		char err[1024];
		int r;

		switch (ops % 3) {
		case 0:
			r = broker_tcb_set(b, T1, op_done, &o, err, sizeof(err));
			break;
		case 1:
			r = broker_tcb_set(b, T0, op_done, &o, err, sizeof(err));
			break;
		default:
			r = broker_rotate(b, op_done, &o, err, sizeof(err));
			break;
		}
		ck_assert_msg(r == 0, "%s", err);
		run_until(m, &o.done);
		/* Under load the drain may exceed its bound and the rotation be abandoned: that
		 * is allowed (the old chain stays). Anything else is a failure. */
		ck_assert_msg(o.r == 0 || o.r == -ETIMEDOUT, "%s", o.msg);
		ops++;
		run_for(m, 0.2);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 127, "snp-kvmsim did not run");
	root = json_load_file(out, 0, &jerr);
	ck_assert_msg(root, "kvmsim output: %s", jerr.text);
	totals = json_object_get(root, "totals");
	ck_assert(totals);
	fprintf(stderr,
		"# %u operations; guests: %lld reports verified, %lld BUSY, %lld verify failures\n",
		ops, (long long)json_integer_value(json_object_get(totals, "reports_verified")),
		(long long)json_integer_value(json_object_get(totals, "busy")),
		(long long)json_integer_value(json_object_get(totals, "verify_failures")));
	ck_assert_int_eq(json_integer_value(json_object_get(totals, "verify_failures")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(totals, "vmpck_wipes")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(totals, "reports_verified")), 0);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	json_decref(root);
	ck_assert_uint_ge(ops, 6);
	ck_assert_uint_ge(broker_get_rotation_stats(b)->succeeded, 4);
	manager_free(m);
}
END_TEST

static Suite *rotation_suite(void)
{
	Suite *s = suite_create("rotation");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_start_serves_reported_tcb);
	tcase_add_test(tc, test_tcb_set_and_commit);
	tcase_add_loop_test(tc, test_tcb_set_refused, 0, (int)ELEMENTSOF(refusal_cases));
	tcase_add_test(tc, test_one_rotation_at_a_time);
	tcase_add_test(tc, test_vlek_load_serves_vlek_chain);
	tcase_add_test(tc, test_poll_follows_outside_change);
	tcase_add_test(tc, test_reload_rotates_or_keeps);
	tcase_add_test(tc, test_stuck_reader_bounds_pause);
	tcase_add_test(tc, test_concurrent_reader_never_mismatched);
	tcase_add_loop_test(tc, test_control_commands, 0, (int)ELEMENTSOF(ctl_cases));
	if (kvmsim_path)
		tcase_add_test(tc, test_rotation_under_load);
	if (kdssim_path)
		tcase_add_test(tc, test_kds_source);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	char cmd[400];
	int r;

	kvmsim_path = argc > 1 && argv[1][0] ? argv[1] : NULL;
	kdssim_path = argc > 2 && argv[2][0] ? argv[2] : NULL;
	nl_port = 0x52540000u | ((uint32_t)getpid() & 0xffffu);
	build_world();
	r = test_run_suite(rotation_suite());
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		r = EXIT_FAILURE;
	return r;
}
