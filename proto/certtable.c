/* SPDX-License-Identifier: Apache-2.0 */
/* certtable: GUIDs, builder and strict parser for the extended-request certificate table.
 * Pure; the table comes from files and guest memory, so every offset is treated as hostile. */
#include "certtable.h"

#include "util.h"

/* Facts §6: the bytes of the RFC 4122 string, in string order. */
static const uint8_t certtable_guids[][16] = {
	[CERTTABLE_ARK] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6,
			   0x01, 0x4c, 0xd0, 0xae},
	[CERTTABLE_ASK] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae,
			   0xf3, 0x27, 0xc7, 0x82},
	[CERTTABLE_VCEK] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9,
			    0x3b, 0xe8, 0xac, 0xcd},
	[CERTTABLE_VLEK] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0,
			    0x45, 0xa0, 0xb8, 0xa1},
	[CERTTABLE_CRL] = {0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f,
			   0x88, 0xdc, 0x67, 0xea},
};

static const char *const certtable_names[] = {
	[CERTTABLE_UNKNOWN] = "UNKNOWN", [CERTTABLE_ARK] = "ARK",   [CERTTABLE_ASK] = "ASK",
	[CERTTABLE_VCEK] = "VCEK",	 [CERTTABLE_VLEK] = "VLEK", [CERTTABLE_CRL] = "CRL",
};

const uint8_t *certtable_guid(enum certtable_kind kind)
{
	if (kind <= CERTTABLE_UNKNOWN || (size_t)kind >= ELEMENTSOF(certtable_guids))
		return NULL;
	return certtable_guids[kind];
}

enum certtable_kind certtable_kind_from_guid(const uint8_t guid[16])
{
	for (size_t k = CERTTABLE_ARK; k < ELEMENTSOF(certtable_guids); k++)
		if (memcmp(guid, certtable_guids[k], 16) == 0)
			return (enum certtable_kind)k;
	return CERTTABLE_UNKNOWN;
}

const char *certtable_kind_name(enum certtable_kind kind)
{
	if ((size_t)kind >= ELEMENTSOF(certtable_names))
		return "UNKNOWN";
	return certtable_names[kind];
}

const struct certtable_entry *certtable_find(const struct certtable_entry *entries, size_t n,
					     enum certtable_kind kind)
{
	const uint8_t *guid = certtable_guid(kind);

	if (!guid || !entries)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (memcmp(entries[i].guid, guid, 16) == 0)
			return &entries[i];
	return NULL;
}

size_t certtable_npages(size_t len)
{
	/* Written so that len near SIZE_MAX cannot wrap. */
	return len / CERTTABLE_PAGE_SIZE + (len % CERTTABLE_PAGE_SIZE != 0);
}

int certtable_build(const struct certtable_entry *entries, size_t n, uint8_t **ret_buf,
		    size_t *ret_len)
{
	size_t hdr_len, total, off;
	uint8_t *buf;

	if (n > CERTTABLE_MAX_ENTRIES || (n && !entries))
		return -EINVAL;
	hdr_len = CERTTABLE_ENTRY_SIZE * (n + 1);
	total = hdr_len;
	for (size_t i = 0; i < n; i++) {
		if (mem_is_zero(entries[i].guid, 16) || entries[i].length == 0 || !entries[i].data)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (memcmp(entries[i].guid, entries[j].guid, 16) == 0)
				return -EINVAL;
		/* Each length is < 2^32 and n <= 16, so total cannot wrap a 64-bit size_t; the
		 * early exit keeps it exact on 32-bit hosts too. */
		if (entries[i].length > CERTTABLE_MAX_SIZE - MIN(total, (size_t)CERTTABLE_MAX_SIZE))
			return -E2BIG;
		total += entries[i].length;
	}
	if (total > CERTTABLE_MAX_SIZE)
		return -E2BIG;

	buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	off = hdr_len;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = buf + CERTTABLE_ENTRY_SIZE * i;

		memcpy(e, entries[i].guid, 16);
		put_le32(e + 16, (uint32_t)off);
		put_le32(e + 20, entries[i].length);
		memcpy(buf + off, entries[i].data, entries[i].length);
		off += entries[i].length;
	}
	/* The terminator is already zero from calloc. */
	*ret_buf = buf;
	*ret_len = total;
	return 0;
}

int certtable_parse(const uint8_t *buf, size_t len, struct certtable_entry *entries, size_t max,
		    size_t *ret_n)
{
	struct certtable_entry tmp[CERTTABLE_MAX_ENTRIES];
	size_t n = 0, hdr_len;
	bool terminated = false;

	if (!buf || len < CERTTABLE_ENTRY_SIZE)
		return -EMSGSIZE;
	if (len > CERTTABLE_MAX_SIZE)
		return -EFBIG;

	/* Walk the header up to the terminator; stop early on a count no guest could use. */
	for (size_t pos = 0; pos + CERTTABLE_ENTRY_SIZE <= len; pos += CERTTABLE_ENTRY_SIZE) {
		const uint8_t *e = buf + pos;

		if (mem_is_zero(e, CERTTABLE_ENTRY_SIZE)) {
			terminated = true;
			break;
		}
		if (mem_is_zero(e, 16))
			return -EBADMSG;
		if (n == CERTTABLE_MAX_ENTRIES)
			return -E2BIG;
		memcpy(tmp[n].guid, e, 16);
		tmp[n].offset = get_le32(e + 16);
		tmp[n].length = get_le32(e + 20);
		tmp[n].data = NULL;
		n++;
	}
	if (!terminated)
		return -EBADMSG;
	if (n > max || (n && !entries))
		return -ENOSPC;

	hdr_len = CERTTABLE_ENTRY_SIZE * (n + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t end = (uint64_t)tmp[i].offset + tmp[i].length;

		if (tmp[i].length == 0)
			return -ENODATA;
		if (end > UINT32_MAX)
			return -EOVERFLOW;
		if (tmp[i].offset < hdr_len)
			return -EFAULT;
		if (end > len)
			return -ERANGE;
		tmp[i].data = buf + tmp[i].offset;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (memcmp(tmp[i].guid, tmp[j].guid, 16) == 0)
				return -ENOTUNIQ;
	/* Two ranges [a, a+la) and [b, b+lb) overlap iff each starts before the other ends. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if ((uint64_t)tmp[i].offset < (uint64_t)tmp[j].offset + tmp[j].length &&
			    (uint64_t)tmp[j].offset < (uint64_t)tmp[i].offset + tmp[i].length)
				return -EADDRINUSE;

	if (n)
		memcpy(entries, tmp, n * sizeof(tmp[0]));
	*ret_n = n;
	return 0;
}
