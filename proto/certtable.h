/* SPDX-License-Identifier: Apache-2.0 */
/* certtable: the GHCB extended-request certificate table (facts §6). Pure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CERTTABLE_ENTRY_SIZE 24
#define CERTTABLE_MAX_SIZE 16384 /* SEV_FW_BLOB_MAX_SIZE: the Linux guest's limit */
#define CERTTABLE_MAX_ENTRIES 16
#define CERTTABLE_PAGE_SIZE 4096

enum certtable_kind {
	CERTTABLE_UNKNOWN = 0,
	CERTTABLE_ARK,
	CERTTABLE_ASK, /* also the ASVK: no separate GUID exists */
	CERTTABLE_VCEK,
	CERTTABLE_VLEK,
	CERTTABLE_CRL,
};

/* The GUID bytes (RFC 4122 string order) for kind; NULL for CERTTABLE_UNKNOWN. */
const uint8_t *certtable_guid(enum certtable_kind kind);
enum certtable_kind certtable_kind_from_guid(const uint8_t guid[16]);
const char *certtable_kind_name(enum certtable_kind kind); /* "ARK", "ASK", ... */

struct certtable_entry {
	uint8_t guid[16];
	const uint8_t *data; /* borrowed */
	uint32_t offset;     /* filled by parse; ignored by build */
	uint32_t length;
};

/* The first entry whose GUID is kind's; NULL if none (or kind is CERTTABLE_UNKNOWN). */
const struct certtable_entry *certtable_find(const struct certtable_entry *entries, size_t n,
					     enum certtable_kind kind);

/* Builds N entries + zero terminator + the certificates packed back to back (first at
 * 24*(N+1)). *ret_buf is malloc'd. -E2BIG if the table would exceed CERTTABLE_MAX_SIZE,
 * -EINVAL for a null GUID, a duplicate GUID, an empty certificate or more than
 * CERTTABLE_MAX_ENTRIES, -ENOMEM. n = 0 gives the empty table (24 zero bytes). */
int certtable_build(const struct certtable_entry *entries, size_t n, uint8_t **ret_buf,
		    size_t *ret_len);
/* Parses with full bounds checks. Entry data pointers point into buf. An empty table (just the
 * terminator) is valid with *ret_n = 0; bytes after the terminator that no entry covers
 * (padding to a page, gaps) are allowed. entries and *ret_n are written only on success.
 * Each kind of hostile input has its own code:
 *   -EMSGSIZE   len < 24: no room even for the terminator
 *   -EFBIG      len > CERTTABLE_MAX_SIZE (16 KiB)
 *   -EBADMSG    no all-zero terminator inside buf, or an entry with a null GUID that is not
 *               all zero
 *   -E2BIG      more than CERTTABLE_MAX_ENTRIES entries before the terminator
 *   -ENOSPC     more entries than max (the caller's array)
 *   -ENODATA    an entry with length 0
 *   -EOVERFLOW  offset + length does not fit in 32 bits
 *   -EFAULT     an entry's data starts inside the table header (before 24*(N+1))
 *   -ERANGE     an entry's data ends beyond len
 *   -ENOTUNIQ   two entries with the same GUID
 *   -EADDRINUSE two entries' data overlap
 * Checks run in that order, so an input with several faults reports the first listed. */
int certtable_parse(const uint8_t *buf, size_t len, struct certtable_entry *entries, size_t max,
		    size_t *ret_n);
/* Pages a guest buffer needs to hold len bytes (ceil(len / 4096)); 0 for 0. */
size_t certtable_npages(size_t len);
