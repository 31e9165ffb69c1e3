/* SPDX-License-Identifier: Apache-2.0 */
/* exitinfo: SW_EXITINFO2 encode/decode and firmware status names (facts §1.3, §5). Pure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EXITINFO_VMM_INVALID_LEN 1u
#define EXITINFO_VMM_BUSY 2u
#define EXITINFO_VMM_GENERIC 0xFFFFFFFFu /* KVM-private; never sent for a well-formed request */

#define EXITINFO2_INVALID_LEN 0x0000000100000000ull
#define EXITINFO2_BUSY 0x0000000200000000ull

/* Firmware status codes used by the simulator and the daemon (facts §5). */
enum sev_ret {
	SEV_RET_SUCCESS = 0x00,
	SEV_RET_INVALID_PLATFORM_STATE = 0x01,
	SEV_RET_INVALID_GUEST_STATE = 0x02,
	SEV_RET_INVALID_CONFIG = 0x03,
	SEV_RET_INVALID_LEN = 0x04,
	SEV_RET_INVALID_ADDRESS = 0x09,
	SEV_RET_BAD_SIGNATURE = 0x0A,
	SEV_RET_INVALID_GUEST = 0x10,
	SEV_RET_INVALID_COMMAND = 0x11,
	SEV_RET_UNSUPPORTED = 0x15,
	SEV_RET_INVALID_PARAM = 0x16,
	SEV_RET_RESOURCE_LIMIT = 0x17,
	SEV_RET_SECURE_DATA_INVALID = 0x18,
	SEV_RET_AEAD_OFLOW = 0x1D,
	SEV_RET_BAD_SVN = 0x21,
	SEV_RET_BAD_VERSION = 0x22,
	SEV_RET_INVALID_KEY = 0x27,
};

static inline uint64_t exitinfo2_make(uint32_t vmm, uint32_t fw)
{
	return ((uint64_t)vmm << 32) | fw;
}
static inline uint32_t exitinfo2_vmm(uint64_t v)
{
	return (uint32_t)(v >> 32);
}
static inline uint32_t exitinfo2_fw(uint64_t v)
{
	return (uint32_t)v;
}

/* "SUCCESS", "INVALID_PARAM", ... for every code of facts §5; "UNKNOWN" otherwise. */
const char *exitinfo_fw_status_name(uint32_t status);
/* "INVALID_LEN", "BUSY", "GENERIC", "NONE" (0) or "UNKNOWN". */
const char *exitinfo_vmm_error_name(uint32_t vmm);
/* "fw=INVALID_PARAM(0x16)" / "vmm=BUSY" style description into buf; returns buf. */
const char *exitinfo2_format(uint64_t v, char *buf, size_t size);
