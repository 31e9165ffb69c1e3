/* SPDX-License-Identifier: Apache-2.0 */
/* smallfile: reads a whole small regular file (configuration, certificates, CRLs) in one
 * place, so every reader refuses the same things the same way. Blocking: for start-up,
 * reload and control requests, not for the per-request path. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Reads path (not following a final symlink is the caller's business: it is followed) into a
 * malloc'd buffer with a NUL byte after the last one (so text can be used as a string; the
 * NUL is not counted in *ret_len). -EINVAL if it is not a regular file, -EFBIG above max
 * bytes, other -errno from open/read. A file that shrinks while read gives what was read. */
int smallfile_read(const char *path, size_t max, uint8_t **ret, size_t *ret_len);
