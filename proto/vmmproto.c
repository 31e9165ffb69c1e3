/* SPDX-License-Identifier: Apache-2.0 */
/* vmmproto: encode and decode the VMM socket's messages. Every length and field is checked
 * here, so the daemon and libsnpattest see only well-formed messages. */
#include "vmmproto.h"

#include <errno.h>
#include <string.h>

#include "util.h"

/* Body sizes of the fixed-size messages (HELLO and ALLOW add a variable tail). */
#define HELLO_FIXED 24
#define ALLOW_FIXED 16
#define EMPTY_TABLE 24 /* the terminator alone */

static size_t fixed_body(enum vmmproto_type t)
{
	switch (t) {
	case VMMPROTO_HELLO:
		return HELLO_FIXED;
	case VMMPROTO_HELLO_ACK:
	case VMMPROTO_BUSY:
		return 8;
	case VMMPROTO_CERTS:
	case VMMPROTO_ALLOW:
	case VMMPROTO_ENOSPC:
	case VMMPROTO_DONE:
	case VMMPROTO_ERROR:
		return 16;
	}
	return 0;
}

static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len > VMMPROTO_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e) /* printable, no space: it ends up in logs/labels */
			return false;
	return true;
}

static bool table_len_ok(uint32_t len)
{
	return len == 0 || (len >= EMPTY_TABLE && len <= VMMPROTO_TABLE_MAX);
}

/* The per-type field rules, shared by parse and build. */
static int check_fields(const struct vmmproto_msg *m)
{
	switch (m->type) {
	case VMMPROTO_HELLO:
		return name_ok(m->hello.name, strnlen(m->hello.name, VMMPROTO_NAME_MAX + 1))
			       ? 0
			       : -EINVAL;
	case VMMPROTO_HELLO_ACK:
		return 0;
	case VMMPROTO_CERTS:
		return m->certs.req_id ? 0 : -EINVAL;
	case VMMPROTO_ALLOW:
		if (!m->allow.req_id || !table_len_ok(m->allow.table_len))
			return -EINVAL;
		return m->allow.table_len && !m->allow.table ? -EINVAL : 0;
	case VMMPROTO_BUSY:
		return m->busy.req_id ? 0 : -EINVAL;
	case VMMPROTO_ENOSPC:
		return m->enospc.req_id && m->enospc.npages ? 0 : -EINVAL;
	case VMMPROTO_DONE:
		return m->done.req_id && (unsigned)m->done.outcome <= VMMPROTO__DONE_MAX ? 0
											 : -EINVAL;
	case VMMPROTO_ERROR:
		return m->error.code >= 1 && (unsigned)m->error.code <= VMMPROTO__E_MAX ? 0
											: -EINVAL;
	}
	return -EOPNOTSUPP;
}

int vmmproto_parse(const uint8_t *buf, size_t len, struct vmmproto_msg *ret, uint16_t *ret_version)
{
	struct vmmproto_msg m;
	const uint8_t *b;
	size_t blen, fixed;
	uint16_t version, type;

	if (!buf || len < VMMPROTO_HDR_SIZE || get_le32(buf) != VMMPROTO_MAGIC ||
	    get_le32(buf + 8) != len)
		return -EBADMSG;
	version = get_le16(buf + 4);
	type = get_le16(buf + 6);
	if (ret_version)
		*ret_version = version;
	if (version != VMMPROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (type < VMMPROTO_HELLO || type > VMMPROTO__TYPE_MAX)
		return -EOPNOTSUPP;

	memset(&m, 0, sizeof(m));
	m.version = version;
	m.type = (enum vmmproto_type)type;
	b = buf + VMMPROTO_HDR_SIZE;
	blen = len - VMMPROTO_HDR_SIZE;
	fixed = fixed_body(m.type);
	if (blen < fixed)
		return -EMSGSIZE;

	switch (m.type) {
	case VMMPROTO_HELLO: {
		uint16_t nlen = get_le16(b + 20);
		if (blen != fixed + nlen)
			return -EMSGSIZE;
		if (get_le16(b + 22) != 0 || nlen > VMMPROTO_NAME_MAX)
			return -EINVAL;
		memcpy(m.hello.uuid, b, 16);
		m.hello.vmm_pid = get_le32(b + 16);
		memcpy(m.hello.name, b + HELLO_FIXED, nlen);
		m.hello.name[nlen] = '\0';
		if (strlen(m.hello.name) != nlen) /* an embedded NUL */
			return -EINVAL;
		break;
	}
	case VMMPROTO_ALLOW:
		m.allow.req_id = get_le64(b);
		m.allow.table_len = get_le32(b + 8);
		if (blen != fixed + (size_t)m.allow.table_len)
			return -EMSGSIZE;
		if (get_le32(b + 12) != 0)
			return -EINVAL;
		m.allow.table = m.allow.table_len ? b + ALLOW_FIXED : NULL;
		break;
	default:
		if (blen != fixed)
			return -EMSGSIZE;
		switch (m.type) {
		case VMMPROTO_HELLO_ACK:
			m.hello_ack.vm_id = get_le64(b);
			break;
		case VMMPROTO_BUSY:
			m.busy.req_id = get_le64(b);
			break;
		case VMMPROTO_CERTS:
		case VMMPROTO_ENOSPC:
		case VMMPROTO_DONE:
		case VMMPROTO_ERROR:
			/* All four: request id, one u32, a reserved u32 that must be zero. */
			if (get_le32(b + 12) != 0)
				return -EINVAL;
			m.certs.req_id = get_le64(b); /* same offset in every member */
			if (m.type == VMMPROTO_CERTS)
				m.certs.npages = get_le32(b + 8);
			else if (m.type == VMMPROTO_ENOSPC)
				m.enospc.npages = get_le32(b + 8);
			else if (m.type == VMMPROTO_DONE)
				m.done.outcome = (enum vmmproto_done_outcome)get_le32(b + 8);
			else
				m.error.code = (enum vmmproto_error)get_le32(b + 8);
			break;
		default:
			return -EOPNOTSUPP;
		}
	}
	if (check_fields(&m) < 0)
		return -EINVAL;
	*ret = m;
	return 0;
}

int vmmproto_build(const struct vmmproto_msg *m, uint8_t *buf, size_t size, size_t *ret_len)
{
	size_t len, nlen = 0;
	uint8_t *b;
	int r;

	if (!m || !buf || !ret_len)
		return -EINVAL;
	r = check_fields(m);
	if (r < 0)
		return r == -EOPNOTSUPP ? -EINVAL : r;
	len = VMMPROTO_HDR_SIZE + fixed_body(m->type);
	if (m->type == VMMPROTO_HELLO) {
		nlen = strlen(m->hello.name);
		len += nlen;
	} else if (m->type == VMMPROTO_ALLOW) {
		len += m->allow.table_len;
	}
	if (len > size)
		return -ENOBUFS;

	memset(buf, 0, len);
	put_le32(buf, VMMPROTO_MAGIC);
	put_le16(buf + 4, VMMPROTO_VERSION);
	put_le16(buf + 6, (uint16_t)m->type);
	put_le32(buf + 8, (uint32_t)len);
	b = buf + VMMPROTO_HDR_SIZE;
	switch (m->type) {
	case VMMPROTO_HELLO:
		memcpy(b, m->hello.uuid, 16);
		put_le32(b + 16, m->hello.vmm_pid);
		put_le16(b + 20, (uint16_t)nlen);
		memcpy(b + HELLO_FIXED, m->hello.name, nlen);
		break;
	case VMMPROTO_HELLO_ACK:
		put_le64(b, m->hello_ack.vm_id);
		break;
	case VMMPROTO_CERTS:
		put_le64(b, m->certs.req_id);
		put_le32(b + 8, m->certs.npages);
		break;
	case VMMPROTO_ALLOW:
		put_le64(b, m->allow.req_id);
		put_le32(b + 8, m->allow.table_len);
		if (m->allow.table_len)
			memcpy(b + ALLOW_FIXED, m->allow.table, m->allow.table_len);
		break;
	case VMMPROTO_BUSY:
		put_le64(b, m->busy.req_id);
		break;
	case VMMPROTO_ENOSPC:
		put_le64(b, m->enospc.req_id);
		put_le32(b + 8, m->enospc.npages);
		break;
	case VMMPROTO_DONE:
		put_le64(b, m->done.req_id);
		put_le32(b + 8, (uint32_t)m->done.outcome);
		break;
	case VMMPROTO_ERROR:
		put_le64(b, m->error.req_id);
		put_le32(b + 8, (uint32_t)m->error.code);
		break;
	}
	*ret_len = len;
	return 0;
}

bool vmmproto_from_vmm(enum vmmproto_type t)
{
	return t == VMMPROTO_HELLO || t == VMMPROTO_CERTS || t == VMMPROTO_DONE ||
	       t == VMMPROTO_ERROR;
}

const char *vmmproto_type_name(enum vmmproto_type t)
{
	static const char *const names[] = {
		[VMMPROTO_HELLO] = "HELLO", [VMMPROTO_HELLO_ACK] = "HELLO_ACK",
		[VMMPROTO_CERTS] = "CERTS", [VMMPROTO_ALLOW] = "ALLOW",
		[VMMPROTO_BUSY] = "BUSY",   [VMMPROTO_ENOSPC] = "ENOSPC",
		[VMMPROTO_DONE] = "DONE",   [VMMPROTO_ERROR] = "ERROR",
	};
	if ((unsigned)t >= ELEMENTSOF(names) || !names[t])
		return "UNKNOWN";
	return names[t];
}

const char *vmmproto_error_name(enum vmmproto_error e)
{
	static const char *const names[] = {
		[VMMPROTO_E_MALFORMED] = "malformed", [VMMPROTO_E_VERSION] = "version",
		[VMMPROTO_E_STATE] = "state",	      [VMMPROTO_E_DENIED] = "denied",
		[VMMPROTO_E_DUPLICATE] = "duplicate", [VMMPROTO_E_UNKNOWN_REQ] = "unknown-request",
		[VMMPROTO_E_LIMIT] = "limit",	      [VMMPROTO_E_SHUTDOWN] = "shutdown",
		[VMMPROTO_E_INTERNAL] = "internal",
	};
	if ((unsigned)e >= ELEMENTSOF(names) || !names[e])
		return "unknown";
	return names[e];
}

/* --- VM identity --- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t vmmproto_vm_key(const uint8_t uuid[16], const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	/* A tag byte keeps a UUID and a name that happen to share bytes apart. */
	if (!mem_is_zero(uuid, 16))
		h = fnv1a(fnv1a(h, "U", 1), uuid, 16);
	else
		h = fnv1a(fnv1a(h, "N", 1), name, strlen(name));
	/* splitmix64's finaliser spreads FNV's weak high bits over the whole word. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return VMMPROTO_VM_KEY_BIT | (h & ~VMMPROTO_VM_KEY_BIT);
}

/* util.c's hex_digit is not linked into libsnpattest, which compiles this file alone. */
static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int vmmproto_uuid_parse(const char *s, uint8_t ret[16])
{
	uint8_t u[16];
	size_t k = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36;) {
		int hi, lo;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = nibble(s[i]);
		lo = nibble(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		u[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(ret, u, sizeof(u));
	return 0;
}

void vmmproto_uuid_format(const uint8_t uuid[16], char ret[VMMPROTO_UUID_STR])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			ret[o++] = '-';
		ret[o++] = hex[uuid[i] >> 4];
		ret[o++] = hex[uuid[i] & 15];
	}
	ret[o] = '\0';
}
