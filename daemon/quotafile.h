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
 * -EBADMSG, a symbolic link -ELOOP (its target is not read, nor named), an unreadable one its
 * errno; err gets one line. The file is left in place. *ret is malloc'd. VM ids are JSON
 * integers, or decimal strings above INT64_MAX (both read). */
int quotafile_load(const char *dir, struct quotafile_entry **ret, size_t *ret_n, char *err,
		   size_t err_size);
/* Blocking (write, fsync, rename, fsync of dir): only on the worker thread or at start-up.
 * 0 or the negative errno of the step that failed. */
int quotafile_save(const char *dir, const struct quotafile_entry *e, size_t n);
/* Renames dir/quotas.json to dir/quotas.json.unreadable-<time>[.k] (the path in ret_path), so
 * that a file the daemon cannot use is kept for the operator. 0 or -errno. */
int quotafile_set_aside(const char *dir, char *ret_path, size_t size);
