/* SPDX-License-Identifier: Apache-2.0 */
/* testutil: shared helpers for the Check unit tests (suite runner, test data files). */
#pragma once

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs one suite; the environment (set by meson) selects TAP output. */
static inline int test_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Absolute path of a file under ../shared/testdata (SNP_TESTDATA set by meson). */
static inline const char *test_data_path(const char *rel, char *buf, size_t size)
{
	const char *dir = getenv("SNP_TESTDATA");

	ck_assert_msg(dir, "SNP_TESTDATA not set");
	snprintf(buf, size, "%s/%s", dir, rel);
	return buf;
}

/* Reads a whole file (test data) into a malloc'd buffer; fails the test if unreadable. */
static inline uint8_t *test_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0, n;

	ck_assert_msg(f, "cannot open %s", path);
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			ck_assert(buf);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*ret_len = len;
	return buf;
}

static inline uint8_t *test_read_data(const char *rel, size_t *ret_len)
{
	char path[4096];
	return test_read_file(test_data_path(rel, path, sizeof(path)), ret_len);
}
