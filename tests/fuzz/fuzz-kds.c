/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-kds: KDS request paths as a server (the KDS simulator) receives them. Whatever parses
 * must build back into a URL that parses to the same request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char base[] = "http://127.0.0.1:8443";
	struct kds_request q, back;
	char url[1024], key[256];
	char *path;

	if (size > 4096)
		return 0;
	path = malloc(size + 1);
	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';

	if (kds_parse_path(path, &q) == 0) {
		if (kds_url(&q, base, url, sizeof(url)) != 0)
			__builtin_trap();
		if (strncmp(url, base, strlen(base)) != 0)
			__builtin_trap();
		if (kds_parse_path(url + strlen(base), &back) != 0)
			__builtin_trap();
		if (back.kind != q.kind || back.product != q.product)
			__builtin_trap();
		if (q.kind == KDS_VCEK && (back.tcb != q.tcb || back.hwid_len != q.hwid_len ||
					   memcmp(back.hwid, q.hwid, q.hwid_len) != 0))
			__builtin_trap();
		if (kds_cache_key(&q, key, sizeof(key)) != 0)
			__builtin_trap();
	}
	free(path);
	return 0;
}
