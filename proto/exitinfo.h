/* SPDX-License-Identifier: Apache-2.0 */
/* exitinfo: SW_EXITINFO2 encode/decode and firmware status names (facts §1.3, §5). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXITINFO_VMM_INVALID_LEN 1u
#define EXITINFO_VMM_BUSY 2u
#define EXITINFO_VMM_GENERIC 0xFFFFFFFFu /* KVM-private; never sent for a well-formed request */

#define EXITINFO2_INVALID_LEN 0x0000000100000000ull
#define EXITINFO2_BUSY 0x0000000200000000ull

/* Firmware status codes (facts §5, explicit values as fixed upstream in 2025; older headers
 * mis-number everything above 0x18). */
enum sev_ret {
	SEV_RET_SUCCESS = 0x00,
	SEV_RET_INVALID_PLATFORM_STATE = 0x01,
	SEV_RET_INVALID_GUEST_STATE = 0x02,
	SEV_RET_INVALID_CONFIG = 0x03,
	SEV_RET_INVALID_LEN = 0x04,
	SEV_RET_ALREADY_OWNED = 0x05,
	SEV_RET_INVALID_CERTIFICATE = 0x06,
	SEV_RET_POLICY_FAILURE = 0x07,
	SEV_RET_INACTIVE = 0x08,
	SEV_RET_INVALID_ADDRESS = 0x09,
	SEV_RET_BAD_SIGNATURE = 0x0A,
	SEV_RET_BAD_MEASUREMENT = 0x0B,
	SEV_RET_ASID_OWNED = 0x0C,
	SEV_RET_INVALID_ASID = 0x0D,
	SEV_RET_WBINVD_REQUIRED = 0x0E,
	SEV_RET_DFFLUSH_REQUIRED = 0x0F,
	SEV_RET_INVALID_GUEST = 0x10,
	SEV_RET_INVALID_COMMAND = 0x11,
	SEV_RET_ACTIVE = 0x12,
	SEV_RET_HWSEV_RET_PLATFORM = 0x13,
	SEV_RET_HWSEV_RET_UNSAFE = 0x14,
	SEV_RET_UNSUPPORTED = 0x15,
	SEV_RET_INVALID_PARAM = 0x16,
	SEV_RET_RESOURCE_LIMIT = 0x17,
	SEV_RET_SECURE_DATA_INVALID = 0x18,
	SEV_RET_INVALID_PAGE_SIZE = 0x19,
	SEV_RET_INVALID_PAGE_STATE = 0x1A,
	SEV_RET_INVALID_MDATA_ENTRY = 0x1B,
	SEV_RET_INVALID_PAGE_OWNER = 0x1C,
	SEV_RET_AEAD_OFLOW = 0x1D,
	SEV_RET_EXIT_RING_BUFFER = 0x1F,
	SEV_RET_RMP_INIT_REQUIRED = 0x20,
	SEV_RET_BAD_SVN = 0x21,
	SEV_RET_BAD_VERSION = 0x22,
	SEV_RET_SHUTDOWN_REQUIRED = 0x23,
	SEV_RET_UPDATE_FAILED = 0x24,
	SEV_RET_RESTORE_REQUIRED = 0x25,
	SEV_RET_RMP_INITIALIZATION_FAILED = 0x26,
	SEV_RET_INVALID_KEY = 0x27,
	SEV_RET_SHUTDOWN_INCOMPLETE = 0x28,
	SEV_RET_INCORRECT_BUFFER_LENGTH = 0x30,
	SEV_RET_EXPAND_BUFFER_LENGTH_REQUEST = 0x31,
	SEV_RET_SPDM_REQUEST = 0x32,
	SEV_RET_SPDM_ERROR = 0x33,
	/* 0x35..0x3F: SEV-TIO statuses; only these three names are known (facts §5). */
	SEV_RET_ERR_IN_DEV_CONN = 0x35,
	SEV_RET_IN_USE = 0x3A,
	SEV_RET_RESPONSE_TOO_LARGE = 0x3F,
};
/* Linux-only: the guest driver's "no firmware call was made" marker, (u32)-1. */
#define SEV_RET_NO_FW_CALL 0xFFFFFFFFu

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

/* "SUCCESS", "INVALID_PARAM", ... for every code of facts §5 (0x36..0x39 and 0x3B..0x3E as
 * "SEV_TIO_STATUS", 0xFFFFFFFF as "NO_FW_CALL"); "UNKNOWN" otherwise. */
const char *exitinfo_fw_status_name(uint32_t status);
/* "INVALID_LEN", "BUSY", "GENERIC", "NONE" (0) or "UNKNOWN". */
const char *exitinfo_vmm_error_name(uint32_t vmm);
/* Describes v into buf (truncated to size, always NUL-terminated if size > 0); returns buf.
 * 0 -> "fw=SUCCESS(0x00)"; fw only -> "fw=INVALID_PARAM(0x16)"; vmm only -> "vmm=BUSY";
 * both -> "vmm=GENERIC fw=UNKNOWN(0x1e)"; unknown VMM codes -> "vmm=UNKNOWN(0x5)". */
#define EXITINFO2_FORMAT_MAX 64
const char *exitinfo2_format(uint64_t v, char *buf, size_t size);

/* What a Linux guest makes of SW_EXITINFO2 after the GHCB call (facts §1.5): 0 success,
 * -EAGAIN for BUSY, -ENOSPC for INVALID_LEN on an extended request, -EIO for the rest. */
int exitinfo2_guest_result(uint64_t v, bool extended);
