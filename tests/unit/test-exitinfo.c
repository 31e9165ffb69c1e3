/* SPDX-License-Identifier: Apache-2.0 */
/* test-exitinfo: SW_EXITINFO2 encode/decode, status and VMM error names, formatting. */
#include "exitinfo.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_fw_status_names)
{
	/* Every code of facts §5, spelled as there. */
	static const struct {
		uint32_t code;
		const char *name;
	} cases[] = {
		{0x00, "SUCCESS"},
		{0x01, "INVALID_PLATFORM_STATE"},
		{0x02, "INVALID_GUEST_STATE"},
		{0x03, "INVALID_CONFIG"},
		{0x04, "INVALID_LEN"},
		{0x05, "ALREADY_OWNED"},
		{0x06, "INVALID_CERTIFICATE"},
		{0x07, "POLICY_FAILURE"},
		{0x08, "INACTIVE"},
		{0x09, "INVALID_ADDRESS"},
		{0x0A, "BAD_SIGNATURE"},
		{0x0B, "BAD_MEASUREMENT"},
		{0x0C, "ASID_OWNED"},
		{0x0D, "INVALID_ASID"},
		{0x0E, "WBINVD_REQUIRED"},
		{0x0F, "DFFLUSH_REQUIRED"},
		{0x10, "INVALID_GUEST"},
		{0x11, "INVALID_COMMAND"},
		{0x12, "ACTIVE"},
		{0x13, "HWSEV_RET_PLATFORM"},
		{0x14, "HWSEV_RET_UNSAFE"},
		{0x15, "UNSUPPORTED"},
		{0x16, "INVALID_PARAM"},
		{0x17, "RESOURCE_LIMIT"},
		{0x18, "SECURE_DATA_INVALID"},
		{0x19, "INVALID_PAGE_SIZE"},
		{0x1A, "INVALID_PAGE_STATE"},
		{0x1B, "INVALID_MDATA_ENTRY"},
		{0x1C, "INVALID_PAGE_OWNER"},
		{0x1D, "AEAD_OFLOW"},
		{0x1E, "UNKNOWN"}, /* unused */
		{0x1F, "EXIT_RING_BUFFER"},
		{0x20, "RMP_INIT_REQUIRED"},
		{0x21, "BAD_SVN"},
		{0x22, "BAD_VERSION"},
		{0x23, "SHUTDOWN_REQUIRED"},
		{0x24, "UPDATE_FAILED"},
		{0x25, "RESTORE_REQUIRED"},
		{0x26, "RMP_INITIALIZATION_FAILED"},
		{0x27, "INVALID_KEY"},
		{0x28, "SHUTDOWN_INCOMPLETE"},
		{0x29, "UNKNOWN"},
		{0x2F, "UNKNOWN"},
		{0x30, "INCORRECT_BUFFER_LENGTH"},
		{0x31, "EXPAND_BUFFER_LENGTH_REQUEST"},
		{0x32, "SPDM_REQUEST"},
		{0x33, "SPDM_ERROR"},
		{0x34, "UNKNOWN"},
		{0x35, "ERR_IN_DEV_CONN"},
		{0x36, "SEV_TIO_STATUS"},
		{0x39, "SEV_TIO_STATUS"},
		{0x3A, "IN_USE"},
		{0x3E, "SEV_TIO_STATUS"},
		{0x3F, "RESPONSE_TOO_LARGE"},
		{0x40, "UNKNOWN"},
		{0x100, "UNKNOWN"},
		{0x7fffffff, "UNKNOWN"},
		{0xfffffffe, "UNKNOWN"},
		{0xffffffff, "NO_FW_CALL"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_msg(strcmp(exitinfo_fw_status_name(cases[i].code), cases[i].name) == 0,
			      "0x%x: %s", cases[i].code, exitinfo_fw_status_name(cases[i].code));
	/* The enum carries the explicit (post-2025) values, not the old implicit ones. */
	ck_assert_int_eq(SEV_RET_INVALID_PAGE_SIZE, 0x19);
	ck_assert_int_eq(SEV_RET_INVALID_KEY, 0x27);
	ck_assert_int_eq(SEV_RET_EXPAND_BUFFER_LENGTH_REQUEST, 0x31);
}
END_TEST

START_TEST(test_vmm_names)
{
	static const struct {
		uint32_t vmm;
		const char *name;
	} cases[] = {
		{0, "NONE"},
		{1, "INVALID_LEN"},
		{2, "BUSY"},
		{3, "UNKNOWN"},
		{0x80000000u, "UNKNOWN"}, /* rejected uapi GENERIC = BIT(31) */
		{0xfffffffeu, "UNKNOWN"},
		{0xffffffffu, "GENERIC"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_str_eq(exitinfo_vmm_error_name(cases[i].vmm), cases[i].name);
}
END_TEST

START_TEST(test_encode_decode)
{
	static const struct {
		uint32_t vmm, fw;
		uint64_t v;
	} cases[] = {
		{0, 0, 0},
		{EXITINFO_VMM_INVALID_LEN, 0, 0x0000000100000000ull},
		{EXITINFO_VMM_BUSY, 0, 0x0000000200000000ull},
		{EXITINFO_VMM_GENERIC, 0, 0xFFFFFFFF00000000ull},
		{0, SEV_RET_INVALID_PARAM, 0x16},
		{0, SEV_RET_NO_FW_CALL, 0x00000000FFFFFFFFull},
		{7, 0x27, 0x0000000700000027ull},
		{0xffffffffu, 0xffffffffu, UINT64_MAX},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ck_assert_uint_eq(exitinfo2_make(cases[i].vmm, cases[i].fw), cases[i].v);
		ck_assert_uint_eq(exitinfo2_vmm(cases[i].v), cases[i].vmm);
		ck_assert_uint_eq(exitinfo2_fw(cases[i].v), cases[i].fw);
	}
	ck_assert_uint_eq(EXITINFO2_INVALID_LEN, exitinfo2_make(EXITINFO_VMM_INVALID_LEN, 0));
	ck_assert_uint_eq(EXITINFO2_BUSY, exitinfo2_make(EXITINFO_VMM_BUSY, 0));
}
END_TEST

START_TEST(test_format)
{
	static const struct {
		uint64_t v;
		const char *text;
	} cases[] = {
		{0, "fw=SUCCESS(0x00)"},
		{0x16, "fw=INVALID_PARAM(0x16)"},
		{0x1e, "fw=UNKNOWN(0x1e)"},
		{0xffffffffull, "fw=NO_FW_CALL(0xffffffff)"},
		{EXITINFO2_BUSY, "vmm=BUSY"},
		{EXITINFO2_INVALID_LEN, "vmm=INVALID_LEN"},
		{0xFFFFFFFF00000000ull, "vmm=GENERIC"},
		{0x0000000500000000ull, "vmm=UNKNOWN(0x5)"},
		{0xFFFFFFFF0000001eull, "vmm=GENERIC fw=UNKNOWN(0x1e)"},
		{0x0000000200000027ull, "vmm=BUSY fw=INVALID_KEY(0x27)"},
		{UINT64_MAX, "vmm=GENERIC fw=NO_FW_CALL(0xffffffff)"},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[EXITINFO2_FORMAT_MAX];
		ck_assert_ptr_eq(exitinfo2_format(cases[i].v, buf, sizeof(buf)), buf);
		ck_assert_str_eq(buf, cases[i].text);
	}
	/* Short buffers truncate and stay terminated; a zero-size buffer is left alone. */
	{
		char small[9], guard[4] = "xyz";
		memset(small, 'Q', sizeof(small));
		exitinfo2_format(0x16, small, sizeof(small));
		ck_assert_str_eq(small, "fw=INVAL");
		exitinfo2_format(0x16, guard, 0);
		ck_assert_str_eq(guard, "xyz");
		ck_assert_ptr_null(exitinfo2_format(0x16, NULL, 10));
	}
}
END_TEST

START_TEST(test_guest_result)
{
	/* Linux's mapping (facts §1.5). */
	static const struct {
		uint64_t v;
		bool ext;
		int ret;
	} cases[] = {
		{0, false, 0},
		{0, true, 0},
		{EXITINFO2_BUSY, false, -EAGAIN},
		{EXITINFO2_BUSY, true, -EAGAIN},
		{EXITINFO2_INVALID_LEN, true, -ENOSPC},
		{EXITINFO2_INVALID_LEN, false, -EIO}, /* plain request: falls to default */
		{0x16, true, -EIO},
		{0xFFFFFFFF00000000ull, true, -EIO},
		{EXITINFO2_BUSY | 0x16, true, -EIO},
		{EXITINFO2_INVALID_LEN | 1, true, -EIO},
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		ck_assert_msg(exitinfo2_guest_result(cases[i].v, cases[i].ext) == cases[i].ret,
			      "case %zu", i);
}
END_TEST

static Suite *exitinfo_suite(void)
{
	Suite *s = suite_create("exitinfo");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_fw_status_names);
	tcase_add_test(tc, test_vmm_names);
	tcase_add_test(tc, test_encode_decode);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_guest_result);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(exitinfo_suite());
}
