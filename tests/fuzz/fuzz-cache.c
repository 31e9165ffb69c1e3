/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the certificate cache's entry reader (a file on disk is input like any other)
 * and the KDS body checks. The target fixes up the entry checksum so the fuzzer reaches the
 * header and body parsing behind it. Invariants: never crashes; an entry that reads back has
 * a body that passes cache_body_check. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void fix_checksum(uint8_t *buf, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned n = 0;

	if (!ctx)
		return;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, buf, 44);
	EVP_DigestUpdate(ctx, buf + 76, len - 76);
	EVP_DigestFinal_ex(ctx, buf + 44, &n);
	EVP_MD_CTX_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kds_request q = {.kind = KDS_VCEK_CHAIN, .product = SNP_PRODUCT_MILAN};
	char path[256];
	uint8_t *copy, *out = NULL;
	size_t out_len = 0;
	FILE *f;

	for (int k = KDS_VCEK; k <= KDS_VLEK_CRL; k++)
		(void)cache_body_check((enum kds_kind)k, data, size);
	if (size > 2 * CACHE_BODY_MAX)
		return 0;
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-cache-%d", (int)getpid());
		(void)mkdir(dir, 0700);
	}
	if (cache_entry_path(dir, &q, path, sizeof(path)) < 0)
		return 0;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size >= 76)
		fix_checksum(copy, size);
	f = fopen(path, "wb");
	if (f) {
		fwrite(copy, 1, size, f);
		fclose(f);
		if (cache_get(dir, &q, &out, &out_len, NULL) == 0) {
			if (cache_body_check(q.kind, out, out_len) != 0)
				abort();
			free(out);
		}
		/* A corrupt entry was moved aside: clear the directory for the next input. */
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.' || strstr(de->d_name, ".tmp")) {
				char p2[512];
				snprintf(p2, sizeof(p2), "%s/%s", dir, de->d_name);
				(void)unlink(p2);
			}
		if (d)
			closedir(d);
	}
	free(copy);
	return 0;
}
