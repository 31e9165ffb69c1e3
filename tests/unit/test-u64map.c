/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <errno.h>

#include "u64map.h"

START_TEST(test_against_model)
{
	/* Random operations checked against a plain array model. */
	enum { KEYS = 512, OPS = 200000 };
	static void *model[KEYS];
	struct u64map m;
	uint64_t x = 88172645463325252ull;
	int vals[KEYS];

	memset(model, 0, sizeof(model));
	u64map_init(&m, 42);
	for (int op = 0; op < OPS; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		unsigned k = (unsigned)(x % KEYS);
		uint64_t key = (uint64_t)k * 0x100000001ull; /* spread, includes key 0 */
		switch ((x >> 20) % 3) {
		case 0: {
			int r = u64map_put(&m, key, &vals[k]);
			ck_assert_int_eq(r, model[k] ? -EEXIST : 0);
			model[k] = &vals[k];
			break;
		}
		case 1:
			ck_assert_ptr_eq(u64map_get(&m, key), model[k]);
			break;
		case 2:
			ck_assert_ptr_eq(u64map_remove(&m, key), model[k]);
			model[k] = NULL;
			break;
		}
	}
	size_t n = 0, it = 0;
	uint64_t k;
	void *v;
	for (int i = 0; i < KEYS; i++)
		n += model[i] != NULL;
	ck_assert_uint_eq(u64map_size(&m), n);
	size_t seen = 0;
	while (u64map_next(&m, &it, &k, &v)) {
		ck_assert_ptr_eq(model[k / 0x100000001ull], v);
		seen++;
	}
	ck_assert_uint_eq(seen, n);
	ck_assert_int_eq(u64map_put(&m, 1, NULL), -EINVAL);
	u64map_done(&m);
}
END_TEST

START_TEST(test_remove_during_iteration)
{
	struct u64map m;
	int v[100];
	size_t it = 0;
	uint64_t k;

	u64map_init(&m, 7);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(u64map_put(&m, (uint64_t)i, &v[i]), 0);
	while (u64map_next(&m, &it, &k, NULL))
		if (k % 2)
			ck_assert_ptr_nonnull(u64map_remove(&m, k));
	ck_assert_uint_eq(u64map_size(&m), 50);
	for (int i = 0; i < 100; i++)
		ck_assert_ptr_eq(u64map_get(&m, (uint64_t)i), i % 2 ? NULL : &v[i]);
	u64map_done(&m);
	ck_assert_ptr_null(u64map_get(&m, 3));
}
END_TEST

static Suite *map_suite(void)
{
	Suite *s = suite_create("u64map");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_against_model);
	tcase_add_test(tc, test_remove_during_iteration);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(map_suite());
}
