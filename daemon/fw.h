/* SPDX-License-Identifier: Apache-2.0 */
/* fw: the firmware backends behind one interface. `sev` issues the /dev/sev ioctl (facts §8);
 * `sim` sends the same commands to the software PSP on a simulation state directory. Both go
 * through one issue function, so the command encoding is shared and unit-tested against a
 * fake. Calls block (the PSP is serial): the daemon runs them on its worker thread (worker.h). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sevuapi.h"
#include "tcb.h"

struct fw;

/* Issues one SEV_ISSUE_CMD. Returns 0 or -errno; cmd->error receives the firmware status. */
typedef int (*fw_issue_fn)(void *ctx, struct sev_issue_cmd *cmd);

/* Opens the device O_RDWR (writes need it, facts §11.6). -ENOENT/-EACCES etc. */
int fw_open_sev(const char *device, struct fw **ret);
/* Opens the simulation state in dir (must exist: created by snp-kvmsim/snp-kdssim or
 * `snp-kvmsim --state DIR --product P`), with the software PSP's platform commands. */
int fw_open_sim(const char *state_dir, struct fw **ret);
/* For tests: any issue function. ctx is borrowed. */
int fw_open_custom(const char *name, fw_issue_fn issue, void *ctx, struct fw **ret);
void fw_free(struct fw *fw);

const char *fw_name(const struct fw *fw);
bool fw_is_sim(const struct fw *fw);
/* The simulation state directory (sim backend), else NULL. */
const char *fw_sim_state_dir(const struct fw *fw);

/*
 * SNP not initialised yet. Since about Linux 6.15 SNP is initialised when kvm_amd loads
 * with sev_snp=1, not when the ccp driver probes (facts §9.4); until then the kernel refuses
 * SNP_PLATFORM_STATUS, SNP_COMMIT, SNP_SET_CONFIG and SNP_VLEK_LOAD without calling the
 * firmware: -EINVAL in Linux 6.12, -ENODEV as proposed in 2026 (firmware status 0 in both).
 * The functions below report either as -FW_ERR_SNP_UNINIT, an errno nothing else here
 * produces, so a caller can treat it as a state to wait out (retry with backoff) rather than
 * a failure. The mapping cannot tell a kernel too old to know these ioctls (also -EINVAL)
 * from one where SNP is not up yet; both mean "no SNP through /dev/sev now". GET_ID2 is a
 * legacy SEV command and works either way. fw_strerror names the condition.
 */
#define FW_ERR_SNP_UNINIT EHOSTDOWN
bool fw_error_is_snp_uninit(int r);
/* snp_strerror, plus the text for -FW_ERR_SNP_UNINIT. */
const char *fw_strerror(int r);

/* Each returns 0, -EIO with *ret_fw_status set when the firmware refused, -FW_ERR_SNP_UNINIT
 * (the SNP commands), or -errno. ret_fw_status may be NULL. */
int fw_platform_status(struct fw *fw, struct sev_user_data_snp_status *ret,
		       uint32_t *ret_fw_status);
/* Chip id: asks the firmware for the length first (address 0, length 0), reads exactly
 * that much (at most 4096 bytes) and copies the first min(length, size) bytes to buf;
 * *ret_len is that count. A 2-socket host answers 128 bytes: a 64-byte buf keeps the first
 * socket's id, which is the one the KDS and the reports use. -EBADMSG for a firmware
 * length of 0 or above 4096. */
int fw_get_id(struct fw *fw, uint8_t *buf, size_t size, size_t *ret_len, uint32_t *ret_fw_status);
int fw_set_config(struct fw *fw, uint64_t reported_tcb, uint32_t flags, uint32_t *ret_fw_status);
int fw_commit(struct fw *fw, uint32_t *ret_fw_status);
int fw_vlek_load(struct fw *fw, const uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE],
		 uint32_t *ret_fw_status);
/* The committed TCB when the backend can tell (sim); -EOPNOTSUPP for sev, where only a report
 * shows it. */
int fw_committed_tcb(struct fw *fw, uint64_t *ret);
/* The product: sim from its state; sev: -EOPNOTSUPP (the caller uses CPUID). */
int fw_product(struct fw *fw, enum snp_product *ret);
