/* SPDX-License-Identifier: Apache-2.0 */
/* exitinfo: names for firmware statuses and VMM errors, SW_EXITINFO2 text. Pure. */
#include "exitinfo.h"

#include <stdio.h>

#include "util.h"

static const char *const fw_status_names[] = {
	[SEV_RET_SUCCESS] = "SUCCESS",
	[SEV_RET_INVALID_PLATFORM_STATE] = "INVALID_PLATFORM_STATE",
	[SEV_RET_INVALID_GUEST_STATE] = "INVALID_GUEST_STATE",
	[SEV_RET_INVALID_CONFIG] = "INVALID_CONFIG",
	[SEV_RET_INVALID_LEN] = "INVALID_LEN",
	[SEV_RET_ALREADY_OWNED] = "ALREADY_OWNED",
	[SEV_RET_INVALID_CERTIFICATE] = "INVALID_CERTIFICATE",
	[SEV_RET_POLICY_FAILURE] = "POLICY_FAILURE",
	[SEV_RET_INACTIVE] = "INACTIVE",
	[SEV_RET_INVALID_ADDRESS] = "INVALID_ADDRESS",
	[SEV_RET_BAD_SIGNATURE] = "BAD_SIGNATURE",
	[SEV_RET_BAD_MEASUREMENT] = "BAD_MEASUREMENT",
	[SEV_RET_ASID_OWNED] = "ASID_OWNED",
	[SEV_RET_INVALID_ASID] = "INVALID_ASID",
	[SEV_RET_WBINVD_REQUIRED] = "WBINVD_REQUIRED",
	[SEV_RET_DFFLUSH_REQUIRED] = "DFFLUSH_REQUIRED",
	[SEV_RET_INVALID_GUEST] = "INVALID_GUEST",
	[SEV_RET_INVALID_COMMAND] = "INVALID_COMMAND",
	[SEV_RET_ACTIVE] = "ACTIVE",
	[SEV_RET_HWSEV_RET_PLATFORM] = "HWSEV_RET_PLATFORM",
	[SEV_RET_HWSEV_RET_UNSAFE] = "HWSEV_RET_UNSAFE",
	[SEV_RET_UNSUPPORTED] = "UNSUPPORTED",
	[SEV_RET_INVALID_PARAM] = "INVALID_PARAM",
	[SEV_RET_RESOURCE_LIMIT] = "RESOURCE_LIMIT",
	[SEV_RET_SECURE_DATA_INVALID] = "SECURE_DATA_INVALID",
	[SEV_RET_INVALID_PAGE_SIZE] = "INVALID_PAGE_SIZE",
	[SEV_RET_INVALID_PAGE_STATE] = "INVALID_PAGE_STATE",
	[SEV_RET_INVALID_MDATA_ENTRY] = "INVALID_MDATA_ENTRY",
	[SEV_RET_INVALID_PAGE_OWNER] = "INVALID_PAGE_OWNER",
	[SEV_RET_AEAD_OFLOW] = "AEAD_OFLOW",
	/* 0x1E is unused */
	[SEV_RET_EXIT_RING_BUFFER] = "EXIT_RING_BUFFER",
	[SEV_RET_RMP_INIT_REQUIRED] = "RMP_INIT_REQUIRED",
	[SEV_RET_BAD_SVN] = "BAD_SVN",
	[SEV_RET_BAD_VERSION] = "BAD_VERSION",
	[SEV_RET_SHUTDOWN_REQUIRED] = "SHUTDOWN_REQUIRED",
	[SEV_RET_UPDATE_FAILED] = "UPDATE_FAILED",
	[SEV_RET_RESTORE_REQUIRED] = "RESTORE_REQUIRED",
	[SEV_RET_RMP_INITIALIZATION_FAILED] = "RMP_INITIALIZATION_FAILED",
	[SEV_RET_INVALID_KEY] = "INVALID_KEY",
	[SEV_RET_SHUTDOWN_INCOMPLETE] = "SHUTDOWN_INCOMPLETE",
	/* 0x29..0x2F are not assigned */
	[SEV_RET_INCORRECT_BUFFER_LENGTH] = "INCORRECT_BUFFER_LENGTH",
	[SEV_RET_EXPAND_BUFFER_LENGTH_REQUEST] = "EXPAND_BUFFER_LENGTH_REQUEST",
	[SEV_RET_SPDM_REQUEST] = "SPDM_REQUEST",
	[SEV_RET_SPDM_ERROR] = "SPDM_ERROR",
	/* 0x34 is not assigned */
	[SEV_RET_ERR_IN_DEV_CONN] = "ERR_IN_DEV_CONN",
	[0x36] = "SEV_TIO_STATUS",
	[0x37] = "SEV_TIO_STATUS",
	[0x38] = "SEV_TIO_STATUS",
	[0x39] = "SEV_TIO_STATUS",
	[SEV_RET_IN_USE] = "IN_USE",
	[0x3B] = "SEV_TIO_STATUS",
	[0x3C] = "SEV_TIO_STATUS",
	[0x3D] = "SEV_TIO_STATUS",
	[0x3E] = "SEV_TIO_STATUS",
	[SEV_RET_RESPONSE_TOO_LARGE] = "RESPONSE_TOO_LARGE",
};

const char *exitinfo_fw_status_name(uint32_t status)
{
	if (status == SEV_RET_NO_FW_CALL)
		return "NO_FW_CALL";
	if (status >= ELEMENTSOF(fw_status_names) || !fw_status_names[status])
		return "UNKNOWN";
	return fw_status_names[status];
}

const char *exitinfo_vmm_error_name(uint32_t vmm)
{
	switch (vmm) {
	case 0:
		return "NONE";
	case EXITINFO_VMM_INVALID_LEN:
		return "INVALID_LEN";
	case EXITINFO_VMM_BUSY:
		return "BUSY";
	case EXITINFO_VMM_GENERIC:
		return "GENERIC";
	default:
		return "UNKNOWN";
	}
}

const char *exitinfo2_format(uint64_t v, char *buf, size_t size)
{
	uint32_t vmm = exitinfo2_vmm(v), fw = exitinfo2_fw(v);
	const char *vname = exitinfo_vmm_error_name(vmm);
	char vtext[32];

	if (!buf || size == 0)
		return buf;
	if (strcmp(vname, "UNKNOWN") == 0)
		snprintf(vtext, sizeof(vtext), "vmm=UNKNOWN(0x%x)", vmm);
	else
		snprintf(vtext, sizeof(vtext), "vmm=%s", vname);

	if (vmm == 0)
		snprintf(buf, size, "fw=%s(0x%02x)", exitinfo_fw_status_name(fw), fw);
	else if (fw == 0)
		snprintf(buf, size, "%s", vtext);
	else
		snprintf(buf, size, "%s fw=%s(0x%02x)", vtext, exitinfo_fw_status_name(fw), fw);
	return buf;
}

int exitinfo2_guest_result(uint64_t v, bool extended)
{
	if (v == 0)
		return 0;
	if (v == EXITINFO2_BUSY)
		return -EAGAIN;
	if (v == EXITINFO2_INVALID_LEN && extended)
		return -ENOSPC;
	return -EIO;
}
