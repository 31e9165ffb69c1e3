/* SPDX-License-Identifier: Apache-2.0 */
/* util: small shared helpers for the pure core (byte order, cleanup, hex). No I/O, no clock. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

/* Hand a pointer/fd over to a new owner; the old variable no longer frees it. */
#define TAKE_PTR(p)                                                                                \
	__extension__({                                                                            \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	__extension__({                                                                            \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline bool mem_is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Value of one hex digit (either case), or -1. */
int hex_digit(char c);
/* Lower-case hex of n bytes into out (2n+1 bytes incl. NUL). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2*n hex digits (either case) from s into out; -EINVAL on anything else. */
int hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);
/* Decode a hex string of unknown length into out (at most max bytes); writes *ret_len. */
int hex_decode_any(const char *s, uint8_t *out, size_t max, size_t *ret_len);

/* The project's error convention: functions return 0 or a negative errno; where a person will
 * read the failure, the function also fills an error text (an `err` buffer) or the caller
 * names the step. These give the text for a bare errno. All are thread-safe; never NULL.
 *
 * snp_strerror: text for any errno. The values a file or system call never returns carry the
 * meaning proto/ gives them (EBADMSG "malformed input", EKEYEXPIRED "certificate is not valid
 * at this time", ...); every other value, ENOSPC, EDQUOT, EPERM and EXDEV included, reads as
 * the C library words it ("No space left on device"), so a disk error is never misread.
 * snp_verify_strerror: for the result of a certificate or report verification (certs_verify_*,
 * certs_chain_*): also EPERM "chain does not reach a trusted AMD root" and EXDEV "certificate
 * chain belongs to another product". Never use it for a file or system error.
 * sys_strerror: the C library's text only (strerror wording, without its thread hazard). */
const char *snp_strerror(int r);
const char *snp_verify_strerror(int r);
const char *sys_strerror(int r);

/* A growable string for building text without stdio (pure code). On allocation failure the
 * buffer is marked failed and further appends are ignored; check strbuf_failed(). */
struct strbuf {
	char *buf; /* owned, NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	bool failed;
};

void strbuf_append(struct strbuf *sb, const char *s);
void strbuf_appendf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
static inline bool strbuf_failed(const struct strbuf *sb)
{
	return sb->failed;
}
/* Hands the string to the caller (NULL on failure) and resets sb. */
char *strbuf_steal(struct strbuf *sb);
void strbuf_done(struct strbuf *sb);

/* Durations: "250us", "50ms", "20s", "2min", "1h"; a bare number means seconds. Result in
 * microseconds; -EINVAL on syntax, -ERANGE on overflow. */
int parse_duration_usec(const char *s, uint64_t *ret);
/* Formats usec as the shortest exact unit ("50ms", "20s"); returns buf. */
const char *format_duration_usec(uint64_t usec, char *buf, size_t size);
/* Decimal with up to 3 fraction digits ("2", "0.5", "12.125") into thousandths. */
int parse_milli(const char *s, uint64_t *ret);
const char *format_milli(uint64_t milli, char *buf, size_t size);
int parse_bool(const char *s, bool *ret);
int parse_u64(const char *s, uint64_t *ret); /* decimal or 0x-hex, whole string */
/* Decimal digits only (no sign, no 0x, no leading zeros except "0"): config values. */
int parse_u64_decimal(const char *s, uint64_t *ret);
