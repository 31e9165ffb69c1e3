/* SPDX-License-Identifier: Apache-2.0 */
/* u64map: linear probing with tombstones, keys mixed with a seeded splitmix64. Pure. */
#include "u64map.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t mix(uint64_t x, uint64_t seed)
{
	x += seed + 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void u64map_init(struct u64map *m, uint64_t seed)
{
	*m = (struct u64map){.seed = seed};
}

void u64map_done(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->tomb);
	*m = (struct u64map){.seed = m->seed};
}

static int rehash(struct u64map *m, size_t cap)
{
	struct u64map n = {.seed = m->seed, .cap = cap};

	n.keys = calloc(cap, sizeof(*n.keys));
	n.vals = calloc(cap, sizeof(*n.vals));
	n.tomb = calloc(cap, 1);
	if (!n.keys || !n.vals || !n.tomb) {
		free(n.keys);
		free(n.vals);
		free(n.tomb);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->vals[i])
			continue;
		size_t j = mix(m->keys[i], n.seed) & (cap - 1);
		while (n.vals[j])
			j = (j + 1) & (cap - 1);
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
		n.n++;
		n.used++;
	}
	free(m->keys);
	free(m->vals);
	free(m->tomb);
	*m = n;
	return 0;
}

static size_t find(const struct u64map *m, uint64_t key, bool *found)
{
	size_t i = mix(key, m->seed) & (m->cap - 1), first_tomb = SIZE_MAX;

	for (;;) {
		if (m->vals[i]) {
			if (m->keys[i] == key) {
				*found = true;
				return i;
			}
		} else if (m->tomb[i]) {
			if (first_tomb == SIZE_MAX)
				first_tomb = i;
		} else {
			*found = false;
			return first_tomb != SIZE_MAX ? first_tomb : i;
		}
		i = (i + 1) & (m->cap - 1);
	}
}

int u64map_put(struct u64map *m, uint64_t key, void *val)
{
	bool found;
	size_t i;

	if (!val)
		return -EINVAL;
	if (m->cap == 0 || (m->used + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap : 16;
		if ((m->n + 1) * 2 > cap)
			cap *= 2;
		if (rehash(m, cap) < 0)
			return -ENOMEM;
	}
	i = find(m, key, &found);
	if (found)
		return -EEXIST;
	if (!m->tomb[i])
		m->used++;
	m->tomb[i] = 0;
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

void *u64map_get(const struct u64map *m, uint64_t key)
{
	bool found;
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = find(m, key, &found);
	return found ? m->vals[i] : NULL;
}

void *u64map_remove(struct u64map *m, uint64_t key)
{
	bool found;
	size_t i;
	void *v;

	if (m->cap == 0)
		return NULL;
	i = find(m, key, &found);
	if (!found)
		return NULL;
	v = m->vals[i];
	m->vals[i] = NULL;
	m->tomb[i] = 1;
	m->n--;
	return v;
}

bool u64map_next(const struct u64map *m, size_t *iter, uint64_t *ret_key, void **ret_val)
{
	for (size_t i = *iter; i < m->cap; i++)
		if (m->vals[i]) {
			*iter = i + 1;
			if (ret_key)
				*ret_key = m->keys[i];
			if (ret_val)
				*ret_val = m->vals[i];
			return true;
		}
	*iter = m->cap;
	return false;
}
