/* SPDX-License-Identifier: Apache-2.0 */
/* test-sevuapi: the /dev/sev UAPI structs match the kernel's layout (facts §8) byte for byte. */
#include <stddef.h>

#include "sevuapi.h"
#include "testutil.h"
#include "util.h"

#define FIELD(type, member, off, size)                                                             \
	{                                                                                          \
#type "." #member, offsetof(struct type, member), off,                             \
			sizeof(((struct type *)0)->member), size                                   \
	}

START_TEST(test_layouts)
{
	static const struct {
		const char *name;
		size_t off, want_off, size, want_size;
	} fields[] = {
		FIELD(sev_issue_cmd, cmd, 0, 4),
		FIELD(sev_issue_cmd, data, 4, 8),
		FIELD(sev_issue_cmd, error, 12, 4),
		FIELD(sev_user_data_get_id2, address, 0, 8),
		FIELD(sev_user_data_get_id2, length, 8, 4),
		FIELD(sev_user_data_snp_status, api_major, 0x00, 1),
		FIELD(sev_user_data_snp_status, api_minor, 0x01, 1),
		FIELD(sev_user_data_snp_status, state, 0x02, 1),
		FIELD(sev_user_data_snp_status, is_rmp_initialized, 0x03, 1),
		FIELD(sev_user_data_snp_status, build_id, 0x04, 4),
		FIELD(sev_user_data_snp_status, flags, 0x08, 4),
		FIELD(sev_user_data_snp_status, guest_count, 0x0C, 4),
		FIELD(sev_user_data_snp_status, current_tcb_version, 0x10, 8),
		FIELD(sev_user_data_snp_status, reported_tcb_version, 0x18, 8),
		FIELD(sev_user_data_snp_config, reported_tcb, 0, 8),
		FIELD(sev_user_data_snp_config, flags, 8, 4),
		FIELD(sev_user_data_snp_config, rsvd1, 0x0C, 52),
		FIELD(sev_user_data_snp_vlek_load, len, 0, 4),
		FIELD(sev_user_data_snp_vlek_load, vlek_wrapped_version, 4, 1),
		FIELD(sev_user_data_snp_vlek_load, rsvd, 5, 3),
		FIELD(sev_user_data_snp_vlek_load, vlek_wrapped_address, 8, 8),
		FIELD(sev_user_data_snp_wrapped_vlek_hashstick, data, 0, 432),
	};
	for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
		ck_assert_msg(fields[i].off == fields[i].want_off, "%s at %zu, want %zu",
			      fields[i].name, fields[i].off, fields[i].want_off);
		ck_assert_msg(fields[i].size == fields[i].want_size, "%s is %zu bytes, want %zu",
			      fields[i].name, fields[i].size, fields[i].want_size);
	}
}
END_TEST

START_TEST(test_sizes)
{
	static const struct {
		const char *name;
		size_t size, want;
	} sizes[] = {
		{"sev_issue_cmd", sizeof(struct sev_issue_cmd), 16},
		{"get_id2", sizeof(struct sev_user_data_get_id2), 12},
		{"snp_status", sizeof(struct sev_user_data_snp_status), 32},
		{"snp_config", sizeof(struct sev_user_data_snp_config), 64},
		{"vlek_load", sizeof(struct sev_user_data_snp_vlek_load), 16},
		{"hashstick", sizeof(struct sev_user_data_snp_wrapped_vlek_hashstick), 432},
	};
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
		ck_assert_msg(sizes[i].size == sizes[i].want, "%s: %zu, want %zu", sizes[i].name,
			      sizes[i].size, sizes[i].want);
}
END_TEST

START_TEST(test_ioctl_and_ids)
{
	static const struct {
		const char *name;
		unsigned long v, want;
	} consts[] = {
		{"SEV_ISSUE_CMD", SEV_ISSUE_CMD, 0xC0105300ul},
		{"SEV_CMD_PLATFORM_STATUS", SEV_CMD_PLATFORM_STATUS, 1},
		{"SEV_CMD_GET_ID2", SEV_CMD_GET_ID2, 8},
		{"SNP_CMD_PLATFORM_STATUS", SNP_CMD_PLATFORM_STATUS, 9},
		/* facts §8.1: 10/11 are COMMIT/SET_CONFIG upstream, not the old EXT_CONFIG pair */
		{"SNP_CMD_COMMIT", SNP_CMD_COMMIT, 10},
		{"SNP_CMD_SET_CONFIG", SNP_CMD_SET_CONFIG, 11},
		{"SNP_CMD_VLEK_LOAD", SNP_CMD_VLEK_LOAD, 12},
		{"SEV_CMD_MAX_ID", SEV_CMD_MAX_ID, 13},
		{"SNP_STATUS_F_VLEK_EN", SNP_STATUS_F_VLEK_EN, 1u << 2},
		{"SNP_STATUS_F_CIPHERTEXT_HIDING_EN", SNP_STATUS_F_CIPHERTEXT_HIDING_EN, 1u << 6},
		{"SNP_CONFIG_F_MASK_CHIP_KEY", SNP_CONFIG_F_MASK_CHIP_KEY, 1u << 1},
	};
	for (size_t i = 0; i < ELEMENTSOF(consts); i++)
		ck_assert_msg(consts[i].v == consts[i].want, "%s = %#lx, want %#lx", consts[i].name,
			      consts[i].v, consts[i].want);
}
END_TEST

/* The layout on the wire: fields land at the right bytes in little-endian order. */
START_TEST(test_status_bytes)
{
	static const uint8_t raw[32] = {
		1,    55, 2, 1, 0x28, 0, 0,    0,    0x05, 0, 0, 0, 3, 0, 0,	0,
		0x03, 0,  0, 0, 0,    0, 0x08, 0x73, 0x04, 0, 0, 0, 0, 0, 0x08, 0x73,
	};
	struct sev_user_data_snp_status st;

	memcpy(&st, raw, sizeof(st));
	ck_assert_uint_eq(st.api_major, 1);
	ck_assert_uint_eq(st.api_minor, 55);
	ck_assert_uint_eq(st.state, 2);
	ck_assert_uint_eq(st.is_rmp_initialized & 1, 1);
	ck_assert_uint_eq(st.build_id, 0x28);
	ck_assert_uint_eq(st.flags, SNP_STATUS_F_MASK_CHIP_ID | SNP_STATUS_F_VLEK_EN);
	ck_assert_uint_eq(st.guest_count, 3);
	ck_assert_uint_eq(st.current_tcb_version, 0x7308000000000003ull);
	ck_assert_uint_eq(st.reported_tcb_version, 0x7308000000000004ull);
}
END_TEST

static Suite *sevuapi_suite(void)
{
	Suite *s = suite_create("sevuapi");
	TCase *tc = tcase_create("layout");

	tcase_add_test(tc, test_layouts);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_ioctl_and_ids);
	tcase_add_test(tc, test_status_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(sevuapi_suite());
}
