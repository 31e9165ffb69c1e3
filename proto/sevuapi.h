/* SPDX-License-Identifier: Apache-2.0 */
/* sevuapi: the /dev/sev UAPI subset this project uses (facts §8), as our own header because
 * the system headers lack the SNP parts (and old AMD trees mis-number them, facts §8.1). */
#pragma once

#include <assert.h>
#include <stdint.h>

#include <linux/ioctl.h>

enum sev_cmd_id {
	SEV_CMD_PLATFORM_STATUS = 1,
	SEV_CMD_GET_ID2 = 8,
	SNP_CMD_PLATFORM_STATUS = 9,
	SNP_CMD_COMMIT = 10,
	SNP_CMD_SET_CONFIG = 11,
	SNP_CMD_VLEK_LOAD = 12,
	SEV_CMD_MAX_ID = 13,
};

struct sev_issue_cmd {
	uint32_t cmd;
	uint64_t data;
	uint32_t error; /* firmware status out */
} __attribute__((packed));

#define SEV_ISSUE_CMD _IOWR('S', 0x0, struct sev_issue_cmd)

struct sev_user_data_get_id2 {
	uint64_t address;
	uint32_t length;
} __attribute__((packed));

struct sev_user_data_snp_status {
	uint8_t api_major;
	uint8_t api_minor;
	uint8_t state;
	uint8_t is_rmp_initialized; /* bit 0; bits 7:1 reserved */
	uint32_t build_id;
	uint32_t flags; /* SNP_STATUS_F_* */
	uint32_t guest_count;
	uint64_t current_tcb_version;
	uint64_t reported_tcb_version;
} __attribute__((packed));

#define SNP_STATUS_F_MASK_CHIP_ID (1u << 0)
#define SNP_STATUS_F_MASK_CHIP_KEY (1u << 1)
#define SNP_STATUS_F_VLEK_EN (1u << 2)
#define SNP_STATUS_F_FEATURE_INFO (1u << 3)
#define SNP_STATUS_F_RAPL_DIS (1u << 4)
#define SNP_STATUS_F_CIPHERTEXT_HIDING_CAP (1u << 5)
#define SNP_STATUS_F_CIPHERTEXT_HIDING_EN (1u << 6)

struct sev_user_data_snp_config {
	uint64_t reported_tcb;
	uint32_t flags; /* bit 0 mask_chip_id, bit 1 mask_chip_key */
	uint8_t rsvd1[52];
} __attribute__((packed));

#define SNP_CONFIG_F_MASK_CHIP_ID (1u << 0)
#define SNP_CONFIG_F_MASK_CHIP_KEY (1u << 1)

struct sev_user_data_snp_vlek_load {
	uint32_t len;		      /* must be sizeof(struct sev_user_data_snp_vlek_load) = 16 */
	uint8_t vlek_wrapped_version; /* must be 0 */
	uint8_t rsvd[3];
	uint64_t vlek_wrapped_address;
} __attribute__((packed));

#define SNP_VLEK_HASHSTICK_SIZE 432
struct sev_user_data_snp_wrapped_vlek_hashstick {
	uint8_t data[SNP_VLEK_HASHSTICK_SIZE];
} __attribute__((packed));

static_assert(sizeof(struct sev_issue_cmd) == 16, "sev_issue_cmd layout");
static_assert(sizeof(struct sev_user_data_get_id2) == 12, "get_id2 layout");
static_assert(sizeof(struct sev_user_data_snp_status) == 32, "snp_status layout");
static_assert(sizeof(struct sev_user_data_snp_config) == 64, "snp_config layout");
static_assert(sizeof(struct sev_user_data_snp_vlek_load) == 16, "vlek_load layout");
static_assert(sizeof(struct sev_user_data_snp_wrapped_vlek_hashstick) == 432, "hashstick layout");
static_assert(SEV_ISSUE_CMD == 0xC0105300u, "SEV_ISSUE_CMD value (facts §8)");
