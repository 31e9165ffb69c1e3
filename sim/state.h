/* SPDX-License-Identifier: Apache-2.0 */
/* state: the simulated platform's persistent state (chip secret, chip id, product, firmware
 * version, TCBs, config, VLEK) in a directory shared by the simulator processes. Atomic writes,
 * a checksum that turns corruption into an error (never a silent reset), an flock around
 * read-modify-write, and a cheap change check. Does not log: callers print sim_state_strerror. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "sevuapi.h"
#include "tcb.h"

#define SIM_STATE_FILE "state"
#define SIM_STATE_LOCK_FILE "state.lock"

struct sim_state_data {
	uint64_t generation; /* +1 on every write */
	enum snp_product product;
	uint8_t secret[SIM_SECRET_LEN];
	uint8_t chip_id[SIM_CHIP_ID_LEN]; /* Turin: only bytes 0..7 non-zero */
	uint8_t fw_major, fw_minor, fw_build;
	uint8_t committed_major, committed_minor, committed_build;
	uint64_t current_tcb;
	uint64_t reported_tcb;
	uint64_t committed_tcb;
	uint32_t config_flags; /* SNP_CONFIG_F_MASK_CHIP_ID / _KEY */
	bool vlek_loaded;
	uint8_t vlek_hashstick[SIM_HASHSTICK_SIZE];
};

struct sim_state;

/* Opens the state in dir. dir is created (mode 0700) if missing; its parent must exist.
 * If the state file is missing it is created for create_product (random secret and chip
 * id, that product's default firmware and TCB), or -ENOENT if create_product is
 * SNP_PRODUCT_UNKNOWN. An existing state for another product than a known create_product
 * gives -EEXIST. A corrupt state gives -EUCLEAN (checksum) / -EBADMSG (malformed) /
 * -EPROTONOSUPPORT (newer format) and the file is left untouched. */
int sim_state_open(const char *dir, enum snp_product create_product, struct sim_state **ret);
struct sim_state *sim_state_free(struct sim_state *s);
static inline void sim_state_freep(struct sim_state **s)
{
	sim_state_free(*s);
}

/* The current state: re-reads the file only if it changed since the last read (stat of the
 * file: inode, size, mtime, ctime — every write is a rename of a new file and the cached one
 * is held open, so its inode cannot be reused).
 * Thread-safe. Errors as for sim_state_open (a state corrupted later is reported, the
 * cached copy is not used). */
int sim_state_read(struct sim_state *s, struct sim_state_data *ret);

/* Read-modify-write under the lock (a thread mutex and an exclusive flock on the lock file,
 * so concurrent writers in any process never lose an update). fn gets the freshly read state:
 * it returns < 0 to abort (returned as is), 0 to write the modified state (generation is
 * bumped), > 0 to leave the file unchanged. On success returns fn's result. */
typedef int (*sim_state_update_fn)(struct sim_state_data *d, void *userdata);
int sim_state_update(struct sim_state *s, sim_state_update_fn fn, void *userdata);

/*
 * The simulated host's kernel and board, as opposed to the chip's persistent state: an
 * optional plain-text file DIR/platform (no checksum: an operator or a test edits it while
 * the simulators run). Lines are `key = value`; blank lines and lines starting with '#' are
 * ignored; an unknown key, a bad value or a duplicate makes the whole file invalid (-EBADMSG,
 * never a silent default). A missing file means the defaults.
 *
 *   snp = on | off          off: SNP is not initialised yet (since about Linux 6.15 that
 *                           happens when kvm_amd loads with sev_snp=1). The SNP ioctls
 *                           (PLATFORM_STATUS, COMMIT, SET_CONFIG, VLEK_LOAD) then fail
 *                           without reaching the firmware. Default on.
 *   uninit_errno = EINVAL | ENODEV
 *                           what they fail with: EINVAL as in Linux 6.12, ENODEV as the 2026
 *                           series proposes. Default EINVAL.
 *   sockets = 1 | 2         GET_ID2 answers 64 bytes per socket (a 2-socket host: 128).
 *                           Default 1.
 *
 * Switching `snp` from off to on is the simulated `modprobe kvm_amd`.
 */
#define SIM_PLATFORM_FILE "platform"
#define SIM_PLATFORM_MAX_SIZE 4096
#define SIM_PLATFORM_MAX_SOCKETS 2

struct sim_platform {
	bool snp_initialised;
	int uninit_errno; /* positive: EINVAL or ENODEV */
	unsigned sockets;
};

void sim_platform_defaults(struct sim_platform *ret);
/* Parses the file's text; -EBADMSG (or -EFBIG) and *ret untouched on any error. */
int sim_platform_parse(const char *buf, size_t len, struct sim_platform *ret);
/* Reads DIR/platform now (no cache: it is read only by platform commands, which are rare).
 * The file must be a regular file (not a symlink). */
int sim_state_platform(struct sim_state *s, struct sim_platform *ret);
/* Writes DIR/platform atomically (for tools and tests). */
int sim_state_platform_write(struct sim_state *s, const struct sim_platform *p);

/* Text for the errors above, in the state's words ("state file is corrupt: checksum ..."). */
const char *sim_state_strerror(int r);

/* Serialise / parse the file format (exposed for tests and tools). parse: -EUCLEAN,
 * -EBADMSG, -EPROTONOSUPPORT as above; writes *ret only on success. serialise returns the
 * length written or -ENOSPC. */
int sim_state_format(const struct sim_state_data *d, char *buf, size_t size);
int sim_state_parse(const char *buf, size_t len, struct sim_state_data *ret);
