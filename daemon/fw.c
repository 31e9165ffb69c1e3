/* SPDX-License-Identifier: Apache-2.0 */
/* fw: command encoding for the /dev/sev SNP subset, over a pluggable issue function. */
#include "fw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "exitinfo.h"
#include "psp.h"
#include "state.h"
#include "util.h"

#define FW_ID_MAX 4096

struct fw {
	const char *name;
	fw_issue_fn issue;
	void *ctx;
	int fd;			 /* sev: owned */
	struct sim_state *state; /* sim: owned */
	struct sim_psp *psp;	 /* sim: owned */
	char *state_dir;	 /* sim: owned */
};

static int sev_issue(void *ctx, struct sev_issue_cmd *cmd)
{
	struct fw *fw = ctx;
	int r;

	do
		r = ioctl(fw->fd, SEV_ISSUE_CMD, cmd);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int sim_issue(void *ctx, struct sev_issue_cmd *cmd)
{
	struct fw *fw = ctx;

	return sim_psp_issue_cmd(fw->psp, cmd, true);
}

int fw_open_custom(const char *name, fw_issue_fn issue, void *ctx, struct fw **ret)
{
	struct fw *fw = calloc(1, sizeof(*fw));

	if (!fw)
		return -ENOMEM;
	fw->name = name;
	fw->issue = issue;
	fw->ctx = ctx;
	fw->fd = -1;
	*ret = fw;
	return 0;
}

int fw_open_sev(const char *device, struct fw **ret)
{
	struct fw *fw;
	int fd, r;

	fd = open(device, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	r = fw_open_custom("sev", sev_issue, NULL, &fw);
	if (r < 0) {
		close(fd);
		return r;
	}
	fw->fd = fd;
	fw->ctx = fw;
	*ret = fw;
	return 0;
}

int fw_open_sim(const char *state_dir, struct fw **ret)
{
	struct fw *fw;
	int r;

	r = fw_open_custom("sim", sim_issue, NULL, &fw);
	if (r < 0)
		return r;
	fw->ctx = fw;
	fw->state_dir = strdup(state_dir);
	if (!fw->state_dir) {
		fw_free(fw);
		return -ENOMEM;
	}
	r = sim_state_open(state_dir, SNP_PRODUCT_UNKNOWN, &fw->state);
	if (r < 0) {
		fw_free(fw);
		return r;
	}
	r = sim_psp_new(fw->state, &fw->psp);
	if (r < 0) {
		fw_free(fw);
		return r;
	}
	/* Platform commands are quick on real firmware; the report delay is the guest path's. */
	*ret = fw;
	return 0;
}

void fw_free(struct fw *fw)
{
	if (!fw)
		return;
	if (fw->psp)
		sim_psp_free(fw->psp);
	if (fw->state)
		sim_state_free(fw->state);
	if (fw->fd >= 0)
		close(fw->fd);
	free(fw->state_dir);
	free(fw);
}

const char *fw_name(const struct fw *fw)
{
	return fw->name;
}

bool fw_is_sim(const struct fw *fw)
{
	return fw->psp != NULL;
}

const char *fw_sim_state_dir(const struct fw *fw)
{
	return fw->state_dir;
}

static bool is_snp_cmd(uint32_t id)
{
	return id == SNP_CMD_PLATFORM_STATUS || id == SNP_CMD_COMMIT || id == SNP_CMD_SET_CONFIG ||
	       id == SNP_CMD_VLEK_LOAD;
}

static int issue(struct fw *fw, uint32_t id, void *data, uint32_t *ret_fw_status)
{
	struct sev_issue_cmd cmd = {.cmd = id, .data = (uint64_t)(uintptr_t)data};
	int r = fw->issue(fw->ctx, &cmd);

	if (ret_fw_status)
		*ret_fw_status = cmd.error;
	if (r == 0 && cmd.error != 0)
		r = -EIO; /* a firmware refusal always surfaces, whatever the transport said */
	/* An SNP command refused by the kernel itself (no firmware status) with EINVAL or
	 * ENODEV: SNP is not initialised yet (fw.h). Our arguments are always well formed, so
	 * no other EINVAL of these handlers applies. */
	if ((r == -EINVAL || r == -ENODEV) && cmd.error == 0 && is_snp_cmd(id))
		r = -FW_ERR_SNP_UNINIT;
	return r;
}

bool fw_error_is_snp_uninit(int r)
{
	return r == -FW_ERR_SNP_UNINIT;
}

const char *fw_strerror(int r)
{
	if (fw_error_is_snp_uninit(r))
		return "SNP is not initialised (is kvm_amd loaded with sev_snp=1?)";
	return snp_strerror(r);
}

int fw_platform_status(struct fw *fw, struct sev_user_data_snp_status *ret, uint32_t *ret_fw_status)
{
	struct sev_user_data_snp_status st;
	int r;

	memset(&st, 0, sizeof(st));
	r = issue(fw, SNP_CMD_PLATFORM_STATUS, &st, ret_fw_status);
	if (r < 0)
		return r;
	*ret = st;
	return 0;
}

int fw_get_id(struct fw *fw, uint8_t *buf, size_t size, size_t *ret_len, uint32_t *ret_fw_status)
{
	struct sev_user_data_get_id2 g = {0};
	uint8_t *id = NULL;
	uint32_t len, st = 0;
	int r;

	/* 1. The length query (address 0, length 0, as QEMU does): the firmware answers
	 * INVALID_LEN with the length it needs; nothing is copied anywhere. */
	r = issue(fw, SEV_CMD_GET_ID2, &g, &st);
	if (r < 0 && !(r == -EIO && st == SEV_RET_INVALID_LEN))
		goto out;
	len = g.length;
	if (len == 0 || len > FW_ID_MAX) {
		r = -EBADMSG; /* no id, or a length no firmware has */
		goto out;
	}
	/* 2. The read, with exactly that length. Linux 6.12 copies out whatever length the
	 * firmware reports even when it exceeds ours (facts §9.4), so the buffer is always
	 * FW_ID_MAX bytes: an answer that changed between the two calls stays inside it. */
	id = calloc(1, FW_ID_MAX);
	if (!id) {
		r = -ENOMEM;
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		g = (struct sev_user_data_get_id2){.address = (uint64_t)(uintptr_t)id,
						   .length = len};
		r = issue(fw, SEV_CMD_GET_ID2, &g, &st);
		if (r == 0)
			break;
		if (attempt > 0 || st != SEV_RET_INVALID_LEN || g.length <= len ||
		    g.length > FW_ID_MAX)
			goto out;
		len = g.length; /* it grew after all: once more, still within the buffer */
	}
	if (g.length == 0 || g.length > len) {
		r = -EBADMSG;
		goto out;
	}
	/* The caller keeps the start: the chip id the KDS needs is the first 64 bytes (8 on
	 * Turin); a 2-socket host's second id follows it. */
	*ret_len = MIN((size_t)g.length, size);
	memcpy(buf, id, *ret_len);
	r = 0;
out:
	free(id);
	if (ret_fw_status)
		*ret_fw_status = st;
	return r;
}

int fw_set_config(struct fw *fw, uint64_t reported_tcb, uint32_t flags, uint32_t *ret_fw_status)
{
	struct sev_user_data_snp_config c;

	memset(&c, 0, sizeof(c));
	c.reported_tcb = reported_tcb;
	c.flags = flags;
	return issue(fw, SNP_CMD_SET_CONFIG, &c, ret_fw_status);
}

int fw_commit(struct fw *fw, uint32_t *ret_fw_status)
{
	/* The kernel builds the firmware's {len} itself; the ioctl's data is unused but must be a
	 * valid pointer for some kernels. */
	uint64_t dummy = 0;

	return issue(fw, SNP_CMD_COMMIT, &dummy, ret_fw_status);
}

int fw_vlek_load(struct fw *fw, const uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE],
		 uint32_t *ret_fw_status)
{
	struct sev_user_data_snp_wrapped_vlek_hashstick hs;
	struct sev_user_data_snp_vlek_load l;
	int r;

	memcpy(hs.data, hashstick, sizeof(hs.data));
	memset(&l, 0, sizeof(l));
	l.len = sizeof(l);
	l.vlek_wrapped_version = 0;
	l.vlek_wrapped_address = (uint64_t)(uintptr_t)&hs;
	r = issue(fw, SNP_CMD_VLEK_LOAD, &l, ret_fw_status);
	explicit_bzero(&hs, sizeof(hs));
	return r;
}

/* What only the sim backend can tell: reads the simulation state, copies out the
 * public fields asked for (NULL: not wanted) and wipes the rest, which holds keys. */
static int sim_public(struct fw *fw, uint64_t *ret_committed_tcb, enum snp_product *ret_product)
{
	struct sim_state_data d;
	int r;

	if (!fw->state)
		return -EOPNOTSUPP;
	r = sim_state_read(fw->state, &d);
	if (r < 0)
		return r;
	if (ret_committed_tcb)
		*ret_committed_tcb = d.committed_tcb;
	if (ret_product)
		*ret_product = d.product;
	explicit_bzero(&d, sizeof(d));
	return 0;
}

int fw_committed_tcb(struct fw *fw, uint64_t *ret)
{
	return sim_public(fw, ret, NULL);
}

int fw_product(struct fw *fw, enum snp_product *ret)
{
	return sim_public(fw, NULL, ret);
}
