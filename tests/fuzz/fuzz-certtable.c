/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-certtable: the certificate table parser on hostile bytes. Properties: no crash, every
 * accepted entry lies inside the buffer after the header, and rebuilding an accepted table
 * gives one that parses to the same certificates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES], e2[CERTTABLE_MAX_ENTRIES];
	uint8_t *buf = NULL;
	size_t n = 0, n2 = 0, len = 0;

	(void)certtable_npages(size);
	if (certtable_parse(data, size, e, CERTTABLE_MAX_ENTRIES, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].offset < CERTTABLE_ENTRY_SIZE * (n + 1) ||
		    (uint64_t)e[i].offset + e[i].length > size || e[i].data != data + e[i].offset)
			__builtin_trap();
		(void)certtable_kind_name(certtable_kind_from_guid(e[i].guid));
	}
	/* A table the parser accepted is never larger once packed, so it must rebuild. */
	if (certtable_build(e, n, &buf, &len) < 0)
		__builtin_trap();
	if (len > size || certtable_parse(buf, len, e2, CERTTABLE_MAX_ENTRIES, &n2) < 0 || n2 != n)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (memcmp(e[i].guid, e2[i].guid, 16) != 0 || e[i].length != e2[i].length ||
		    memcmp(e[i].data, e2[i].data, e[i].length) != 0)
			__builtin_trap();
	free(buf);
	return 0;
}
