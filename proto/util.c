/* SPDX-License-Identifier: Apache-2.0 */
/* util: hex codec and the project's error vocabulary. Pure. */
#include "util.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int hex_digit(char c)
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
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
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
 * tell failures apart without parsing strings. Only values that no file or system call
 * returns are given a meaning here (util.h). */
const char *sys_strerror(int r)
{
	const char *s = strerrordesc_np(r < 0 ? -r : r);

	return s ? s : "Unknown error";
}

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
	case EKEYEXPIRED:
		return "certificate is not valid at this time";
	default:
		return sys_strerror(r);
	}
}

const char *snp_verify_strerror(int r)
{
	switch (r < 0 ? -r : r) {
	case EXDEV:
		return "certificate chain belongs to another product";
	case EPERM:
		return "chain does not reach a trusted AMD root";
	default:
		return snp_strerror(r);
	}
}

#include <stdarg.h>
#include <stdio.h>

static bool strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t need;
	char *n;

	if (sb->failed)
		return false;
	if (extra > SIZE_MAX / 2 - sb->len - 1) {
		sb->failed = true;
		return false;
	}
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return true;
	if (need < 256)
		need = 256;
	if (need < sb->cap * 2)
		need = sb->cap * 2;
	n = realloc(sb->buf, need);
	if (!n) {
		sb->failed = true;
		return false;
	}
	sb->buf = n;
	sb->cap = need;
	return true;
}

void strbuf_append(struct strbuf *sb, const char *s)
{
	size_t l = strlen(s);

	if (!strbuf_reserve(sb, l))
		return;
	memcpy(sb->buf + sb->len, s, l + 1);
	sb->len += l;
}

void strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->failed = true;
		return;
	}
	if (!strbuf_reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *strbuf_steal(struct strbuf *sb)
{
	char *r = sb->failed ? NULL : sb->buf;

	if (sb->failed)
		free(sb->buf);
	else if (!r)
		r = strdup("");
	*sb = (struct strbuf){0};
	return r;
}

void strbuf_done(struct strbuf *sb)
{
	free(sb->buf);
	*sb = (struct strbuf){0};
}

int parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_u64_decimal(const char *s, uint64_t *ret)
{
	if (!s || !*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return parse_u64(s, ret);
}

static const struct {
	const char *suffix;
	uint64_t usec;
} duration_units[] = {
	{"us", 1}, {"ms", 1000}, {"s", 1000000}, {"min", 60000000}, {"h", 3600000000ull},
};

int parse_duration_usec(const char *s, uint64_t *ret)
{
	uint64_t whole = 0, frac = 0, frac_div = 1, mult = 1000000;
	const char *p = s;
	bool digits = false;

	if (!s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
		digits = true;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (frac_div >= 1000000000ull)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_div *= 10;
			digits = true;
		}
	}
	if (!digits)
		return -EINVAL;
	if (*p) {
		size_t i;
		for (i = 0; i < ELEMENTSOF(duration_units); i++)
			if (strcmp(p, duration_units[i].suffix) == 0)
				break;
		if (i == ELEMENTSOF(duration_units))
			return -EINVAL;
		mult = duration_units[i].usec;
	}
	if (whole > UINT64_MAX / mult)
		return -ERANGE;
	*ret = whole * mult + frac * mult / frac_div;
	return 0;
}

const char *format_duration_usec(uint64_t usec, char *buf, size_t size)
{
	size_t i = ELEMENTSOF(duration_units);

	if (usec == 0) {
		snprintf(buf, size, "0");
		return buf;
	}
	while (i-- > 0)
		if (usec % duration_units[i].usec == 0)
			break;
	snprintf(buf, size, "%llu%s", (unsigned long long)(usec / duration_units[i].usec),
		 duration_units[i].suffix);
	return buf;
}

int parse_milli(const char *s, uint64_t *ret)
{
	uint64_t whole = 0, frac = 0;
	const char *p = s;
	int fd = 0;
	bool digits = false;

	if (!s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > UINT64_MAX / 10000)
			return -ERANGE;
		whole = whole * 10 + (uint64_t)(*p - '0');
		digits = true;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, fd++) {
			if (fd >= 3)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
			digits = true;
		}
	}
	if (!digits || *p)
		return -EINVAL;
	for (; fd < 3; fd++)
		frac *= 10;
	*ret = whole * 1000 + frac;
	return 0;
}

const char *format_milli(uint64_t milli, char *buf, size_t size)
{
	if (milli % 1000 == 0)
		snprintf(buf, size, "%llu", (unsigned long long)(milli / 1000));
	else if (milli % 100 == 0)
		snprintf(buf, size, "%llu.%01llu", (unsigned long long)(milli / 1000),
			 (unsigned long long)(milli % 1000 / 100));
	else if (milli % 10 == 0)
		snprintf(buf, size, "%llu.%02llu", (unsigned long long)(milli / 1000),
			 (unsigned long long)(milli % 1000 / 10));
	else
		snprintf(buf, size, "%llu.%03llu", (unsigned long long)(milli / 1000),
			 (unsigned long long)(milli % 1000));
	return buf;
}

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(yes); i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < ELEMENTSOF(no); i++)
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}
