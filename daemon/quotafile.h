/* SPDX-License-Identifier: Apache-2.0 */
/* quotafile: per-VM quotas persisted in the state directory as JSON, written atomically
 * (temp file, fsync, rename, fsync of the directory). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sched-policy.h"

#define QUOTAFILE_NAME "quotas.json"

struct quotafile_entry {
	uint64_t vm_id;
	struct sched_quota q;
};

/* Reads dir/quotas.json. A missing file is an empty list (0 entries). A malformed file is
 * -EBADMSG with a message; it is left in place (never silently reset). *ret is malloc'd. */
int quotafile_load(const char *dir, struct quotafile_entry **ret, size_t *ret_n, char *err,
		   size_t err_size);
int quotafile_save(const char *dir, const struct quotafile_entry *e, size_t n);
