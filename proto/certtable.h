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

/* Builds N entries + zero terminator + the certificates packed back to back (first at
 * 24*(N+1)). *ret_buf is malloc'd. -E2BIG if the table would exceed CERTTABLE_MAX_SIZE,
 * -EINVAL for a null GUID, an empty certificate or more than CERTTABLE_MAX_ENTRIES. */
int certtable_build(const struct certtable_entry *entries, size_t n, uint8_t **ret_buf,
		    size_t *ret_len);
/* Parses with full bounds checks: terminator required, every entry's data inside the buffer
 * and after the header, no overlaps, no duplicate GUIDs, at most max entries. Entry data
 * pointers point into buf. -EBADMSG / -EMSGSIZE / -E2BIG on hostile input. An empty table
 * (just the terminator) is valid with *ret_n = 0. */
int certtable_parse(const uint8_t *buf, size_t len, struct certtable_entry *entries, size_t max,
		    size_t *ret_n);
/* Pages a guest buffer needs to hold len bytes (ceil(len / 4096)). */
size_t certtable_npages(size_t len);
