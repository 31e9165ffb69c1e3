/* SPDX-License-Identifier: Apache-2.0 */
/* Firmware backend: command encoding against a fake ioctl layer, and the sim backend. */
#include "testutil.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "fw.h"
#include "util.h"
#include "state.h"
#include "worker.h"

struct fake {
	struct sev_issue_cmd last;
	unsigned calls;
	uint32_t fw_status;    /* to report */
	int ret;	       /* to return */
	uint32_t id_len;       /* GET_ID2: the id length the fake firmware has */
	uint32_t id_len_later; /* GET_ID2: if set, the length after the first call */
	bool overrun;	       /* GET_ID2: Linux 6.12 would have written past the caller's buffer */
	int snp_errno;	       /* SNP commands: the kernel's answer while SNP is not initialised */
	struct sev_user_data_snp_config cfg;
	struct sev_user_data_snp_vlek_load vlek;
	uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE];
};

static int fake_issue(void *ctx, struct sev_issue_cmd *cmd)
{
	struct fake *f = ctx;

	f->calls++;
	f->last = *cmd;
	ck_assert(cmd->data != 0);
	if (f->snp_errno && cmd->cmd != SEV_CMD_GET_ID2) {
		cmd->error = 0; /* refused by the kernel: the firmware never saw it */
		return -f->snp_errno;
	}
	switch (cmd->cmd) {
	case SNP_CMD_PLATFORM_STATUS: {
		struct sev_user_data_snp_status *st = (void *)(uintptr_t)cmd->data;
		st->api_major = 1;
		st->api_minor = 55;
		st->current_tcb_version = 0xdb18000000000004ull;
		st->reported_tcb_version = 0x7308000000000003ull;
		st->flags = SNP_STATUS_F_VLEK_EN;
		break;
	}
	case SEV_CMD_GET_ID2: {
		/* sev_ioctl_do_get_id2 (Linux 6.12): address 0 or length 0 asks for the length;
		 * otherwise the firmware writes up to length bytes, and the kernel then copies
		 * the length the firmware reported, even past a shorter caller buffer. */
		struct sev_user_data_get_id2 *g = (void *)(uintptr_t)cmd->data;
		uint32_t have = f->id_len;
		bool query = g->address == 0 || g->length == 0;
		if (f->id_len_later && f->calls > 1)
			have = f->id_len_later;
		if (query || g->length < have) {
			if (!query)
				f->overrun =
					true; /* the kernel copies `have` bytes into `length` */
			g->length = have;
			cmd->error = 0x04;
			return -EIO;
		}
		for (uint32_t i = 0; i < have; i++)
			((uint8_t *)(uintptr_t)g->address)[i] = (uint8_t)(i + 1);
		g->length = have;
		break;
	}
	case SNP_CMD_SET_CONFIG:
		memcpy(&f->cfg, (void *)(uintptr_t)cmd->data, sizeof(f->cfg));
		break;
	case SNP_CMD_VLEK_LOAD:
		memcpy(&f->vlek, (void *)(uintptr_t)cmd->data, sizeof(f->vlek));
		memcpy(f->hashstick, (void *)(uintptr_t)f->vlek.vlek_wrapped_address,
		       sizeof(f->hashstick));
		break;
	case SNP_CMD_COMMIT:
		break;
	default:
		return -EINVAL;
	}
	cmd->error = f->fw_status;
	return f->fw_status ? -EIO : f->ret;
}

START_TEST(test_platform_status)
{
	struct fake f = {0};
	struct sev_user_data_snp_status st;
	uint32_t fs = 99;
	struct fw *fw;

	ck_assert_int_eq(fw_open_custom("fake", fake_issue, &f, &fw), 0);
	ck_assert_int_eq(fw_platform_status(fw, &st, &fs), 0);
	ck_assert_uint_eq(f.last.cmd, SNP_CMD_PLATFORM_STATUS);
	ck_assert_uint_eq(fs, 0);
	ck_assert_uint_eq(st.reported_tcb_version, 0x7308000000000003ull);
	ck_assert_uint_eq(st.api_minor, 55);
	/* A firmware refusal is -EIO with the status, and the output is untouched. */
	f.fw_status = 0x01;
	memset(&st, 0xAA, sizeof(st));
	ck_assert_int_eq(fw_platform_status(fw, &st, &fs), -EIO);
	ck_assert_uint_eq(fs, 0x01);
	ck_assert_uint_eq(st.api_major, 0xAA);
	/* A transport error without status passes through (EINVAL/ENODEV are the SNP-not-
	 * initialised state: test_snp_uninit). */
	f.fw_status = 0;
	f.ret = -ETIMEDOUT;
	ck_assert_int_eq(fw_platform_status(fw, &st, &fs), -ETIMEDOUT);
	ck_assert(!fw_is_sim(fw));
	ck_assert_int_eq(fw_committed_tcb(fw, &(uint64_t){0}), -EOPNOTSUPP);
	fw_free(fw);
}
END_TEST

static const struct {
	uint32_t id_len, id_len_later;
	size_t bufsize;
	int ret;
	unsigned calls;
	size_t len; /* what the caller gets */
} id_cases[] = {
	{64, 0, 64, 0, 2, 64},		 /* Milan/Genoa: query, then read */
	{8, 0, 64, 0, 2, 8},		 /* a short id */
	{128, 0, 4096, 0, 2, 128},	 /* 2 sockets, room for both */
	{128, 0, 64, 0, 2, 64},		 /* 2 sockets, caller keeps the first id */
	{64, 128, 64, 0, 3, 64},	 /* grew between query and read: once more */
	{8192, 0, 8192, -EBADMSG, 1, 0}, /* absurd length: refused, no huge alloc */
	{0, 0, 64, -EBADMSG, 1, 0},	 /* no id at all */
};

START_TEST(test_get_id)
{
	struct fake f = {.id_len = id_cases[_i].id_len, .id_len_later = id_cases[_i].id_len_later};
	uint8_t *buf = calloc(1, id_cases[_i].bufsize);
	size_t len = 0;
	uint32_t fs;
	struct fw *fw;
	int r;

	ck_assert_int_eq(fw_open_custom("fake", fake_issue, &f, &fw), 0);
	r = fw_get_id(fw, buf, id_cases[_i].bufsize, &len, &fs);
	ck_assert_msg(r == id_cases[_i].ret, "case %d: %d", _i, r);
	ck_assert_uint_eq(f.calls, id_cases[_i].calls);
	ck_assert_uint_eq(f.last.cmd, SEV_CMD_GET_ID2);
	/* Never a buffer shorter than what the firmware said (6.12 would overrun it), except
	 * where the id grew after the query, which the full-size buffer absorbs. */
	ck_assert_msg(!f.overrun || id_cases[_i].id_len_later, "case %d: overrun", _i);
	if (r == 0) {
		ck_assert_uint_eq(len, id_cases[_i].len);
		ck_assert_uint_eq(buf[0], 1);
		ck_assert_uint_eq(buf[len - 1], (uint8_t)len);
	}
	free(buf);
	fw_free(fw);
}
END_TEST

/* SNP not initialised: EINVAL (Linux 6.12) and ENODEV (proposed) both become the one
 * error the daemon waits out; GET_ID2 still works; a firmware refusal stays -EIO. */
START_TEST(test_snp_uninit)
{
	static const int errnos[] = {EINVAL, ENODEV};
	uint8_t id[64], hs[SNP_VLEK_HASHSTICK_SIZE] = {0};
	struct sev_user_data_snp_status st;
	size_t len;
	uint32_t fs;
	struct fw *fw;

	for (size_t i = 0; i < ELEMENTSOF(errnos); i++) {
		struct fake f = {.id_len = 64, .snp_errno = errnos[i]};
		ck_assert_int_eq(fw_open_custom("fake", fake_issue, &f, &fw), 0);
		ck_assert_int_eq(fw_platform_status(fw, &st, &fs), -FW_ERR_SNP_UNINIT);
		ck_assert_uint_eq(fs, 0);
		ck_assert(fw_error_is_snp_uninit(fw_commit(fw, &fs)));
		ck_assert(fw_error_is_snp_uninit(fw_set_config(fw, 0, 0, &fs)));
		ck_assert(fw_error_is_snp_uninit(fw_vlek_load(fw, hs, &fs)));
		ck_assert_str_eq(fw_strerror(-FW_ERR_SNP_UNINIT),
				 "SNP is not initialised (is kvm_amd loaded with sev_snp=1?)");
		ck_assert_int_eq(fw_get_id(fw, id, sizeof(id), &len, &fs), 0);
		ck_assert_uint_eq(len, 64);
		/* SNP comes up: the same calls work. */
		f.snp_errno = 0;
		ck_assert_int_eq(fw_platform_status(fw, &st, &fs), 0);
		fw_free(fw);
	}
	/* Only a kernel refusal without firmware status is the state; other errors are not. */
	struct fake g = {.fw_status = 0x16};
	ck_assert_int_eq(fw_open_custom("fake", fake_issue, &g, &fw), 0);
	ck_assert_int_eq(fw_commit(fw, &fs), -EIO);
	g.fw_status = 0;
	g.ret = -EPERM;
	ck_assert_int_eq(fw_commit(fw, &fs), -EPERM);
	ck_assert(!fw_error_is_snp_uninit(-EINVAL));
	ck_assert_str_eq(fw_strerror(-EINVAL), snp_strerror(-EINVAL));
	fw_free(fw);
}
END_TEST

START_TEST(test_set_config_commit_vlek)
{
	struct fake f = {0};
	uint8_t hs[SNP_VLEK_HASHSTICK_SIZE];
	struct fw *fw;
	uint32_t fs;

	ck_assert_int_eq(fw_open_custom("fake", fake_issue, &f, &fw), 0);
	ck_assert_int_eq(fw_set_config(fw, 0x1122334455667788ull, SNP_CONFIG_F_MASK_CHIP_ID, &fs),
			 0);
	ck_assert_uint_eq(f.last.cmd, SNP_CMD_SET_CONFIG);
	ck_assert_uint_eq(f.cfg.reported_tcb, 0x1122334455667788ull);
	ck_assert_uint_eq(f.cfg.flags, SNP_CONFIG_F_MASK_CHIP_ID);
	ck_assert(mem_is_zero(f.cfg.rsvd1, sizeof(f.cfg.rsvd1)));
	ck_assert_int_eq(fw_commit(fw, &fs), 0);
	ck_assert_uint_eq(f.last.cmd, SNP_CMD_COMMIT);
	for (size_t i = 0; i < sizeof(hs); i++)
		hs[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(fw_vlek_load(fw, hs, &fs), 0);
	ck_assert_uint_eq(f.last.cmd, SNP_CMD_VLEK_LOAD);
	ck_assert_uint_eq(f.vlek.len, 16);
	ck_assert_uint_eq(f.vlek.vlek_wrapped_version, 0);
	ck_assert_mem_eq(f.hashstick, hs, sizeof(hs));
	f.fw_status = 0x16;
	ck_assert_int_eq(fw_commit(fw, &fs), -EIO);
	ck_assert_uint_eq(fs, 0x16);
	fw_free(fw);
}
END_TEST

START_TEST(test_sev_missing_device)
{
	struct fw *fw = NULL;

	ck_assert_int_eq(fw_open_sev("/nonexistent/sev", &fw), -ENOENT);
	ck_assert_ptr_null(fw);
}
END_TEST

START_TEST(test_sim_backend)
{
	char dir[] = "/tmp/snp-test-fw-XXXXXX";
	char sub[256];
	struct sim_state *st;
	struct sev_user_data_snp_status ps;
	uint8_t id[64];
	size_t len;
	uint64_t committed;
	enum snp_product p;
	uint32_t fs;
	struct fw *fw;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/sim", dir);
	ck_assert_int_eq(fw_open_sim(sub, &fw), -ENOENT); /* never created silently */
	ck_assert_int_eq(sim_state_open(sub, SNP_PRODUCT_GENOA, &st), 0);
	sim_state_free(st);
	ck_assert_int_eq(fw_open_sim(sub, &fw), 0);
	ck_assert(fw_is_sim(fw));
	ck_assert_str_eq(fw_sim_state_dir(fw), sub);
	ck_assert_int_eq(fw_product(fw, &p), 0);
	ck_assert_int_eq(p, SNP_PRODUCT_GENOA);
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), 0);
	ck_assert_int_eq(fw_get_id(fw, id, sizeof(id), &len, &fs), 0);
	ck_assert_uint_eq(len, 64);
	ck_assert(!mem_is_zero(id, len));
	/* SET_CONFIG above the current TCB is the firmware's refusal, passed through. */
	ck_assert_int_eq(fw_set_config(fw, ps.current_tcb_version + 1, 0, &fs), -EIO);
	ck_assert_uint_eq(fs, 0x16);
	ck_assert_int_eq(fw_set_config(fw, ps.current_tcb_version, 0, &fs), 0);
	ck_assert_uint_eq(fs, 0);
	ck_assert_int_eq(fw_commit(fw, &fs), 0);
	ck_assert_int_eq(fw_committed_tcb(fw, &committed), 0);
	ck_assert_uint_eq(committed, ps.current_tcb_version);
	fw_free(fw);
	{
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* The simulated platform as a real host shows it: a 2-socket GET_ID2 answer of 128 bytes,
 * and SNP not initialised until the platform file says so. */
START_TEST(test_sim_platform)
{
	char dir[] = "/tmp/snp-test-fw-XXXXXX";
	char sub[256], path[300];
	struct sim_state *st;
	struct sim_state_data d;
	struct sim_platform pf;
	struct sev_user_data_snp_status ps;
	uint8_t id[64], both[4096];
	size_t len;
	uint32_t fs;
	struct fw *fw;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/sim", dir);
	ck_assert_int_eq(sim_state_open(sub, SNP_PRODUCT_MILAN, &st), 0);
	ck_assert_int_eq(sim_state_read(st, &d), 0);
	ck_assert_int_eq(fw_open_sim(sub, &fw), 0);

	sim_platform_defaults(&pf);
	pf.sockets = 2;
	ck_assert_int_eq(sim_state_platform_write(st, &pf), 0);
	/* The daemon's 64-byte field gets socket 0's id, which the reports carry. */
	ck_assert_int_eq(fw_get_id(fw, id, sizeof(id), &len, &fs), 0);
	ck_assert_uint_eq(len, 64);
	ck_assert_mem_eq(id, d.chip_id, 64);
	ck_assert_int_eq(fw_get_id(fw, both, sizeof(both), &len, &fs), 0);
	ck_assert_uint_eq(len, 128);
	ck_assert_mem_eq(both, d.chip_id, 64);
	ck_assert(!mem_is_zero(both + 64, 64));
	ck_assert(memcmp(both, both + 64, 64) != 0);

	/* SNP not initialised: the distinct error, in both kernel flavours; GET_ID2 works. */
	pf.snp_initialised = false;
	ck_assert_int_eq(sim_state_platform_write(st, &pf), 0);
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), -FW_ERR_SNP_UNINIT);
	ck_assert_uint_eq(fs, 0);
	ck_assert_int_eq(fw_set_config(fw, d.reported_tcb, 0, &fs), -FW_ERR_SNP_UNINIT);
	ck_assert_int_eq(fw_commit(fw, &fs), -FW_ERR_SNP_UNINIT);
	ck_assert_int_eq(fw_get_id(fw, id, sizeof(id), &len, &fs), 0);
	pf.uninit_errno = ENODEV;
	ck_assert_int_eq(sim_state_platform_write(st, &pf), 0);
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), -FW_ERR_SNP_UNINIT);
	/* kvm_amd loads: the next call works, no restart of anything. */
	pf.snp_initialised = true;
	ck_assert_int_eq(sim_state_platform_write(st, &pf), 0);
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), 0);
	ck_assert_uint_eq(ps.current_tcb_version, d.current_tcb);

	/* A platform file that is not valid is an error, never a silent default. */
	snprintf(path, sizeof(path), "%s/%s", sub, SIM_PLATFORM_FILE);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("snp = maybe\n", f);
	fclose(f);
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), -EBADMSG);
	ck_assert_int_eq(fw_get_id(fw, id, sizeof(id), &len, &fs), -EBADMSG);
	ck_assert_int_eq(unlink(path), 0); /* no file: the defaults (SNP up, one socket) */
	ck_assert_int_eq(fw_platform_status(fw, &ps, &fs), 0);
	ck_assert_int_eq(fw_get_id(fw, both, sizeof(both), &len, &fs), 0);
	ck_assert_uint_eq(len, 64);

	fw_free(fw);
	sim_state_free(st);
	{
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* --- worker --- */
struct job {
	struct worker_job j;
	int value;
	int *order;
	int *n_done;
	int slot;
};

static void job_run(struct worker_job *j)
{
	struct job *x = (struct job *)j;
	usleep(1000);
	x->value *= 2;
}

static void job_done(struct worker_job *j)
{
	struct job *x = (struct job *)j;
	x->order[(*x->n_done)++] = x->slot;
}

static void on_idle_check(struct ev_loop *loop, ev_timer *t, int revents)
{
	int *n_done = t->data;
	(void)revents;
	if (*n_done == 5)
		ev_break(loop, EVBREAK_ALL);
}

START_TEST(test_worker_fifo)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct worker *w;
	struct job jobs[5];
	int order[5], n_done = 0;
	ev_timer t;

	ck_assert_int_eq(worker_new(loop, &w), 0);
	for (int i = 0; i < 5; i++) {
		jobs[i] = (struct job){.j = {.run = job_run, .done = job_done},
				       .value = i + 1,
				       .order = order,
				       .n_done = &n_done,
				       .slot = i};
		worker_submit(w, &jobs[i].j);
	}
	ck_assert_uint_eq(worker_pending(w), 5);
	ev_timer_init(&t, on_idle_check, 0.001, 0.001);
	t.data = &n_done;
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
	ck_assert_int_eq(n_done, 5);
	ck_assert_uint_eq(worker_pending(w), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(order[i], i);		      /* completions in submission order */
		ck_assert_int_eq(jobs[i].value, 2 * (i + 1)); /* ran exactly once */
	}
	worker_free(w);
	ev_loop_destroy(loop);
}
END_TEST

static Suite *fw_suite(void)
{
	Suite *s = suite_create("fw");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_platform_status);
	tcase_add_loop_test(tc, test_get_id, 0, (int)ELEMENTSOF(id_cases));
	tcase_add_test(tc, test_snp_uninit);
	tcase_add_test(tc, test_set_config_commit_vlek);
	tcase_add_test(tc, test_sev_missing_device);
	tcase_add_test(tc, test_sim_backend);
	tcase_add_test(tc, test_sim_platform);
	tcase_add_test(tc, test_worker_fifo);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(fw_suite());
}
