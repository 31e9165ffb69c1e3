/* SPDX-License-Identifier: Apache-2.0 */
/* util: hex codec and the project's error vocabulary. Pure. */
#include "util.h"

#include <ctype.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (!s || slen != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int hex_decode_any(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t len;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len % 2 || len / 2 > max)
		return -EINVAL;
	if (hex_decode(s, len, out, len / 2) < 0)
		return -EINVAL;
	*ret_len = len / 2;
	return 0;
}

/* The errno values below carry a fixed meaning across proto/ so that callers and tests can
 * tell failures apart without parsing strings. */
const char *snp_strerror(int r)
{
	switch (r < 0 ? -r : r) {
	case 0:
		return "success";
	case EMSGSIZE:
		return "wrong size (truncated or oversized input)";
	case EBADMSG:
		return "malformed input";
	case EPROTONOSUPPORT:
		return "unsupported version";
	case EKEYREJECTED:
		return "signature does not verify";
	case ENOKEY:
		return "certificate does not match the report (TCB, chip id or product)";
	case EXDEV:
		return "certificate chain belongs to another product";
	case EPERM:
		return "chain does not reach a trusted AMD root";
	case EKEYEXPIRED:
		return "certificate is not valid at this time";
	case ENOENT:
		return "not found";
	case ENOSPC:
		return "buffer too small";
	case EINVAL:
		return "invalid argument";
	case ENOMEM:
		return "out of memory";
	default:
		return strerror(r < 0 ? -r : r);
	}
}
