/* SPDX-License-Identifier: Apache-2.0 */
/* vmmfile: the GHCB-format certificate blob that VMMs read for KVM_EXIT_SNP_REQ_CERTS (facts
 * §9.2), under the kernel-documented OFD lock protocol: writers hold an exclusive lock for the
 * whole key/TCB change and rewrite the file in place (the lock is per inode, so never rename a
 * new inode over it); readers take a shared lock. Blocking calls: run them off the loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define VMMFILE_MAX_SIZE (64 * 1024) /* readers refuse anything larger (a table is <= 16 KiB) */

struct vmmfile;

/* Opens (creating with mode 0644 if missing) the blob file. It must be a regular file: a
 * directory, FIFO or device gives -EINVAL; a symlink as the last component -ELOOP. */
int vmmfile_open(const char *path, struct vmmfile **ret);
/* Gives the open file the group and the permission bits the VMM's user needs to read it
 * ([certs] vmm_certs_group and vmm_certs_mode): chgrp to group (unless "" or already so)
 * and chmod to mode, explicitly, so the caller's umask does not matter. mode must keep the
 * owner's rw and may not make the file world-writable or set-id (-EINVAL); a group that
 * does not exist is -ESRCH; a group the caller may not give the file -EPERM. */
int vmmfile_set_access(struct vmmfile *f, const char *group, unsigned mode);
/* vmmfile_open, then vmmfile_set_access (closing again if that fails). A group that does not
 * exist is logged as a warning and the file keeps its group (the mode is still applied). */
int vmmfile_open_access(const char *path, const char *group, unsigned mode, struct vmmfile **ret);
/* Releases the lock if held and closes. Accepts NULL. */
void vmmfile_free(struct vmmfile *f);

/* Takes the exclusive OFD lock on the whole file, waiting for readers (F_OFD_SETLKW). */
int vmmfile_lock(struct vmmfile *f);
/* Bounded variant: retries for up to timeout_msec, then -ETIMEDOUT (a VMM that never lets go
 * of its shared lock must not keep admission paused). */
int vmmfile_lock_timeout(struct vmmfile *f, unsigned timeout_msec);
/* Non-blocking variant: -EAGAIN if a reader or another writer holds a lock. */
int vmmfile_trylock(struct vmmfile *f);
int vmmfile_unlock(struct vmmfile *f);

/* With the exclusive lock held (-ENOLCK otherwise): writes table at offset 0, truncates the
 * file to len and fsyncs it. len 0 is refused (-EINVAL): an empty table is 24 zero bytes. */
int vmmfile_write_locked(struct vmmfile *f, const uint8_t *table, size_t len);

/* Convenience for writers that change nothing else: lock, write, unlock. */
int vmmfile_replace(struct vmmfile *f, const uint8_t *table, size_t len);

/* The reader side of the protocol (for tests and tools): opens path read-only, takes a shared
 * OFD lock (waiting), reads the whole file, unlocks, closes. *ret is malloc'd. -EFBIG above
 * VMMFILE_MAX_SIZE, -ENODATA for an empty file, -EINVAL if not a regular file. */
int vmmfile_read(const char *path, uint8_t **ret, size_t *ret_len);
