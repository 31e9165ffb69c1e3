/* SPDX-License-Identifier: Apache-2.0 */
/* u64map: open-addressing hash map from any u64 key to a borrowed, non-NULL pointer.
 * Pure. O(1) expected per operation; grows by doubling, shrinks never (bounded by peak). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys;
	void **vals;   /* NULL = empty slot */
	uint8_t *tomb; /* deleted marker */
	size_t cap;    /* power of two, 0 when unallocated */
	size_t n;      /* live entries */
	size_t used;   /* live + tombstones */
	uint64_t seed;
};

void u64map_init(struct u64map *m, uint64_t seed);
void u64map_done(struct u64map *m);
/* val must be non-NULL. -EEXIST if present, -ENOMEM. */
int u64map_put(struct u64map *m, uint64_t key, void *val);
void *u64map_get(const struct u64map *m, uint64_t key);
/* Returns the removed value or NULL. */
void *u64map_remove(struct u64map *m, uint64_t key);
static inline size_t u64map_size(const struct u64map *m)
{
	return m->n;
}
/* Iteration: for (size_t i = 0; u64map_next(m, &i, &k, &v);) ... Removing the current entry
 * during iteration is allowed; adding is not. */
bool u64map_next(const struct u64map *m, size_t *iter, uint64_t *ret_key, void **ret_val);
