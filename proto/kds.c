/* SPDX-License-Identifier: Apache-2.0 */
/* kds: builds AMD KDS request URLs, parses request paths strictly (for the KDS simulator) and
 * names cache entries (facts §7). Pure: no network, no I/O. */
#include "kds.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

/* Longest path a well-formed request can have is ~250 bytes; anything far beyond is hostile. */
#define KDS_MAX_PATH 1024

static bool product_ok(enum snp_product p)
{
	return p > SNP_PRODUCT_UNKNOWN && p < _SNP_PRODUCT_MAX;
}

static const char *kind_family(enum kds_kind k)
{
	return k == KDS_VLEK_CHAIN || k == KDS_VLEK_CRL ? "vlek" : "vcek";
}

static const char *kind_leafname(enum kds_kind k)
{
	return k == KDS_VCEK_CRL || k == KDS_VLEK_CRL ? "crl" : "cert_chain";
}

static bool kind_ok(enum kds_kind k)
{
	return k == KDS_VCEK || k == KDS_VCEK_CHAIN || k == KDS_VCEK_CRL || k == KDS_VLEK_CHAIN ||
	       k == KDS_VLEK_CRL;
}

/* A VCEK request must name a TCB that KDS can express: the reserved bytes are not part of the
 * query, so a TCB with any of them set would fetch a certificate for another TCB. */
static int check_vcek_request(const struct kds_request *q)
{
	struct tcb_version t;

	if (q->hwid_len != snp_product_hwid_len(q->product))
		return -EINVAL;
	tcb_decode(q->tcb, q->product, &t);
	if (!mem_is_zero(t.reserved, sizeof(t.reserved)))
		return -EINVAL;
	if (!snp_product_has_fmc(q->product) && t.fmc)
		return -EINVAL;
	return 0;
}

static int append(char *buf, size_t size, size_t *pos, const char *fmt, ...) _printf_(4, 5);

static int append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= size)
		return -ENOSPC;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size - *pos)
		return -ENOSPC;
	*pos += (size_t)n;
	return 0;
}

int kds_url(const struct kds_request *q, const char *base, char *buf, size_t size)
{
	const char *pname;
	size_t pos = 0, blen;
	int r;

	if (!q || !buf || size == 0)
		return -EINVAL;
	if (!base)
		base = KDS_DEFAULT_BASE;
	blen = strlen(base);
	if (blen == 0 || base[blen - 1] == '/')
		return -EINVAL;
	if (!product_ok(q->product) || !kind_ok(q->kind))
		return -EINVAL;
	pname = snp_product_name(q->product);

	if (q->kind != KDS_VCEK) {
		r = append(buf, size, &pos, "%s/%s/v1/%s/%s", base, kind_family(q->kind), pname,
			   kind_leafname(q->kind));
	} else {
		char hex[2 * sizeof(q->hwid) + 1];
		struct tcb_version t;

		r = check_vcek_request(q);
		if (r < 0)
			return r;
		tcb_decode(q->tcb, q->product, &t);
		hex_encode(q->hwid, q->hwid_len, hex);
		r = append(buf, size, &pos, "%s/vcek/v1/%s/%s?", base, pname, hex);
		if (r == 0 && snp_product_has_fmc(q->product))
			r = append(buf, size, &pos, "fmcSPL=%02u&", t.fmc);
		if (r == 0)
			r = append(buf, size, &pos,
				   "blSPL=%02u&teeSPL=%02u&snpSPL=%02u&ucodeSPL=%02u", t.bootloader,
				   t.tee, t.snp, t.microcode);
	}
	if (r < 0)
		buf[0] = '\0'; /* never hand out a truncated URL */
	return r;
}

/* One SPL value: 1 to 3 decimal digits, at most 255. */
static int parse_spl(const char *s, size_t len, uint8_t *ret)
{
	unsigned v = 0;

	if (len == 0 || len > 3)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 255)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

/* The VCEK query: every SPL of the product exactly once (any order), nothing else. */
static int parse_vcek_query(const char *qs, enum snp_product p, uint64_t *ret_tcb)
{
	static const char *const names[] = {"fmcSPL", "blSPL", "teeSPL", "snpSPL", "ucodeSPL"};
	uint8_t vals[ELEMENTSOF(names)] = {0};
	unsigned seen = 0, need;
	const char *s = qs;

	need = snp_product_has_fmc(p) ? 0x1f : 0x1e;
	for (;;) {
		size_t len = strcspn(s, "&"), klen;
		const char *eq = memchr(s, '=', len);
		size_t i;
		int r;

		if (!eq)
			return -EINVAL;
		klen = (size_t)(eq - s);
		for (i = 0; i < ELEMENTSOF(names); i++)
			if (strlen(names[i]) == klen && memcmp(s, names[i], klen) == 0)
				break;
		if (i == ELEMENTSOF(names) || !(need & (1u << i)) || (seen & (1u << i)))
			return -EINVAL;
		r = parse_spl(eq + 1, len - klen - 1, &vals[i]);
		if (r < 0)
			return r;
		seen |= 1u << i;
		if (s[len] == '\0')
			break;
		s += len + 1; /* a trailing '&' leaves an empty parameter, refused above */
	}
	if (seen != need)
		return -EINVAL;
	*ret_tcb = tcb_encode_components(vals, p);
	return 0;
}

int kds_parse_path(const char *path, struct kds_request *ret)
{
	struct kds_request q = {0};
	const char *s, *slash, *qm;
	bool vlek;
	char pname[16];
	size_t len, n;
	int r;

	if (!path || !ret)
		return -EINVAL;
	len = strnlen(path, KDS_MAX_PATH + 1);
	if (len > KDS_MAX_PATH)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f)
			return -EINVAL;

	if (strncmp(path, "/vcek/v1/", 9) == 0)
		vlek = false;
	else if (strncmp(path, "/vlek/v1/", 9) == 0)
		vlek = true;
	else
		return -EINVAL;
	s = path + 9;

	/* The product, spelled exactly as KDS does. */
	slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(pname))
		return -EINVAL;
	memcpy(pname, s, n);
	pname[n] = '\0';
	for (q.product = SNP_PRODUCT_UNKNOWN + 1; q.product < _SNP_PRODUCT_MAX; q.product++)
		if (strcmp(pname, snp_product_name(q.product)) == 0)
			break;
	if (q.product == _SNP_PRODUCT_MAX)
		return -EINVAL;
	s = slash + 1;

	if (strcmp(s, "cert_chain") == 0) {
		q.kind = vlek ? KDS_VLEK_CHAIN : KDS_VCEK_CHAIN;
	} else if (strcmp(s, "crl") == 0) {
		q.kind = vlek ? KDS_VLEK_CRL : KDS_VCEK_CRL;
	} else {
		/* Only the VCEK itself remains: /vcek/v1/{product}/{hwid}?{SPLs}. */
		if (vlek)
			return -EINVAL;
		q.kind = KDS_VCEK;
		qm = strchr(s, '?');
		if (!qm)
			return -EINVAL;
		q.hwid_len = snp_product_hwid_len(q.product);
		if (q.hwid_len == 0 || q.hwid_len > sizeof(q.hwid))
			return -EINVAL;
		r = hex_decode(s, (size_t)(qm - s), q.hwid, q.hwid_len);
		if (r < 0)
			return -EINVAL;
		r = parse_vcek_query(qm + 1, q.product, &q.tcb);
		if (r < 0)
			return r;
	}
	*ret = q;
	return 0;
}

int kds_cache_key(const struct kds_request *q, char *buf, size_t size)
{
	char hex[2 * sizeof(q->hwid) + 1];
	size_t pos = 0;
	int r;

	if (!q || !buf || size == 0)
		return -EINVAL;
	if (!product_ok(q->product) || !kind_ok(q->kind))
		return -EINVAL;
	switch (q->kind) {
	case KDS_VCEK:
		if (q->hwid_len != snp_product_hwid_len(q->product))
			return -EINVAL;
		hex_encode(q->hwid, q->hwid_len, hex);
		r = append(buf, size, &pos, "%s-%s-%016llx", snp_product_name(q->product), hex,
			   (unsigned long long)q->tcb);
		break;
	case KDS_VCEK_CHAIN:
	case KDS_VCEK_CRL:
		r = append(buf, size, &pos, "%s-%s", snp_product_name(q->product),
			   kind_leafname(q->kind));
		break;
	default: /* VLEK chain/CRL: keep them apart from the VCEK ones */
		r = append(buf, size, &pos, "%s-vlek_%s", snp_product_name(q->product),
			   kind_leafname(q->kind));
		break;
	}
	if (r < 0)
		buf[0] = '\0';
	return r;
}
