/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"
#include "util.h"

START_TEST(test_le_roundtrip)
{
	uint8_t b[8];

	put_le64(b, 0x7308000000000003ull);
	ck_assert_uint_eq(b[0], 0x03);
	ck_assert_uint_eq(b[6], 0x08);
	ck_assert_uint_eq(b[7], 0x73);
	ck_assert_uint_eq(get_le64(b), 0x7308000000000003ull);
	put_le32(b, 0xdeadbeef);
	ck_assert_uint_eq(get_le32(b), 0xdeadbeef);
	ck_assert_uint_eq(b[0], 0xef);
	put_le16(b, 0x1234);
	ck_assert_uint_eq(get_le16(b), 0x1234);
}
END_TEST

START_TEST(test_hex)
{
	static const struct {
		const char *in;
		int ret;
		size_t len;
	} cases[] = {
		{"00ff10", 0, 3},   {"ABcd", 0, 2},
		{"", 0, 0},	    {"0", -EINVAL, 0},
		{"zz", -EINVAL, 0}, {"0011223344", -EINVAL, 0}, /* longer than max 4 */
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		uint8_t out[4];
		size_t len = 99;
		int r = hex_decode_any(cases[i].in, out, sizeof(out), &len);
		ck_assert_msg(r == cases[i].ret, "case %zu: %d", i, r);
		if (r == 0) {
			char back[16];
			ck_assert_uint_eq(len, cases[i].len);
			hex_encode(out, len, back);
			ck_assert_msg(strcasecmp(back, cases[i].in) == 0, "case %zu", i);
		} else {
			ck_assert_uint_eq(len, 99); /* untouched on failure */
		}
	}
}
END_TEST

START_TEST(test_strerror_distinct)
{
	static const int codes[] = {-EMSGSIZE, -EBADMSG, -EPROTONOSUPPORT, -EKEYREJECTED,
				    -ENOKEY,   -EXDEV,	 -EPERM,	   -EKEYEXPIRED};
	for (size_t i = 0; i < ELEMENTSOF(codes); i++)
		for (size_t j = i + 1; j < ELEMENTSOF(codes); j++)
			ck_assert_str_ne(snp_verify_strerror(codes[i]),
					 snp_verify_strerror(codes[j]));
}
END_TEST

/* Issue 11 point 6: a file error never takes a domain meaning (a full disk once read "buffer
 * too small"); the verification meanings of EPERM and EXDEV only come with snp_verify_strerror. */
START_TEST(test_strerror_file_errors)
{
	ck_assert_str_eq(snp_strerror(-ENOSPC), "No space left on device");
	ck_assert_str_eq(snp_strerror(-EDQUOT), "Disk quota exceeded");
	ck_assert_str_eq(snp_strerror(-EPERM), "Operation not permitted");
	ck_assert_str_eq(snp_strerror(-EXDEV), "Invalid cross-device link");
	ck_assert_str_eq(snp_strerror(-EACCES), "Permission denied");
	ck_assert_str_eq(sys_strerror(-EBADMSG), "Bad message");
	ck_assert_str_eq(snp_strerror(-EBADMSG), "malformed input");
	ck_assert_str_eq(snp_verify_strerror(-EPERM), "chain does not reach a trusted AMD root");
	ck_assert_str_eq(snp_verify_strerror(-EXDEV),
			 "certificate chain belongs to another product");
	ck_assert_str_eq(snp_verify_strerror(-ENOSPC), "No space left on device");
	ck_assert_str_eq(snp_verify_strerror(-EKEYEXPIRED), snp_strerror(-EKEYEXPIRED));
	ck_assert_str_eq(sys_strerror(-100000), "Unknown error");
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_le_roundtrip);
	tcase_add_test(tc, test_hex);
	tcase_add_test(tc, test_strerror_distinct);
	tcase_add_test(tc, test_strerror_file_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(util_suite());
}
