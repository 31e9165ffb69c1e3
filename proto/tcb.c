/* SPDX-License-Identifier: Apache-2.0 */
/* tcb: product identification and TCB_VERSION layouts (facts §4, §4.1). Pure: no I/O. */
#include "tcb.h"

#include <stdio.h>
#include <strings.h>

#include "util.h"

static const char *const product_names[_SNP_PRODUCT_MAX] = {
	[SNP_PRODUCT_MILAN] = "Milan",
	[SNP_PRODUCT_GENOA] = "Genoa",
	[SNP_PRODUCT_TURIN] = "Turin",
};

const char *snp_product_name(enum snp_product p)
{
	if ((unsigned)p >= _SNP_PRODUCT_MAX || !product_names[p])
		return "unknown";
	return product_names[p];
}

int snp_product_from_string(const char *s, enum snp_product *ret)
{
	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < _SNP_PRODUCT_MAX; i++)
		if (product_names[i] && strcasecmp(s, product_names[i]) == 0) {
			*ret = (enum snp_product)i;
			return 0;
		}
	return -EINVAL;
}

int snp_product_from_cpuid(uint8_t family, uint8_t model, enum snp_product *ret)
{
	enum snp_product p = SNP_PRODUCT_UNKNOWN;

	/* family is extended family + base family; model is (extended model << 4) | model. */
	if (family == 0x19) {
		if (model <= 0x0f)
			p = SNP_PRODUCT_MILAN;
		else if (model <= 0x1f || (model >= 0xa0 && model <= 0xaf))
			p = SNP_PRODUCT_GENOA; /* 0xA0..0xAF: Bergamo/Siena, "Genoa" at KDS */
	} else if (family == 0x1a) {
		if (model <= 0x11)
			p = SNP_PRODUCT_TURIN;
		/* Venice and later: no KDS product known to us yet. */
	}
	if (p == SNP_PRODUCT_UNKNOWN)
		return -ENOENT;
	*ret = p;
	return 0;
}

size_t snp_product_hwid_len(enum snp_product p)
{
	switch (p) {
	case SNP_PRODUCT_MILAN:
	case SNP_PRODUCT_GENOA:
		return 64;
	case SNP_PRODUCT_TURIN:
		return 8;
	default:
		return 0;
	}
}

bool snp_product_has_fmc(enum snp_product p)
{
	return p == SNP_PRODUCT_TURIN;
}

void tcb_decode(uint64_t raw, enum snp_product p, struct tcb_version *ret)
{
	uint8_t b[8];
	struct tcb_version t = {0};

	put_le64(b, raw);
	if (snp_product_has_fmc(p)) {
		t.fmc = b[0];
		t.bootloader = b[1];
		t.tee = b[2];
		t.snp = b[3];
		memcpy(t.reserved, b + 4, 3);
	} else {
		t.bootloader = b[0];
		t.tee = b[1];
		memcpy(t.reserved, b + 2, 4);
		t.snp = b[6];
	}
	t.microcode = b[7];
	*ret = t;
}

uint64_t tcb_encode(const struct tcb_version *t, enum snp_product p)
{
	uint8_t b[8];

	if (snp_product_has_fmc(p)) {
		b[0] = t->fmc;
		b[1] = t->bootloader;
		b[2] = t->tee;
		b[3] = t->snp;
		memcpy(b + 4, t->reserved, 3);
	} else {
		b[0] = t->bootloader;
		b[1] = t->tee;
		memcpy(b + 2, t->reserved, 4);
		b[6] = t->snp;
	}
	b[7] = t->microcode;
	return get_le64(b);
}

bool tcb_le(uint64_t a, uint64_t b, enum snp_product p)
{
	struct tcb_version ta, tb;

	tcb_decode(a, p, &ta);
	tcb_decode(b, p, &tb);
	/* fmc is 0 on both sides for the legacy layout, so comparing it is harmless there. */
	return ta.fmc <= tb.fmc && ta.bootloader <= tb.bootloader && ta.tee <= tb.tee &&
	       ta.snp <= tb.snp && ta.microcode <= tb.microcode;
}

const char *tcb_format(uint64_t raw, enum snp_product p, char *buf, size_t size)
{
	struct tcb_version t;

	if (!buf || size == 0)
		return buf;
	tcb_decode(raw, p, &t);
	if (snp_product_has_fmc(p))
		snprintf(buf, size, "fmc=%u bl=%u tee=%u snp=%u ucode=%u", t.fmc, t.bootloader,
			 t.tee, t.snp, t.microcode);
	else
		snprintf(buf, size, "bl=%u tee=%u snp=%u ucode=%u", t.bootloader, t.tee, t.snp,
			 t.microcode);
	return buf;
}

/* The u64 in hex: exactly 16 digits, or 1..16 digits after 0x. Nothing else in s. */
static int tcb_parse_hex(const char *s, uint64_t *ret)
{
	bool prefixed = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	size_t n;
	uint64_t v = 0;

	if (prefixed)
		s += 2;
	n = strlen(s);
	if (n == 0 || n > 16 || (!prefixed && n != 16))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int d = hex_digit(s[i]);
		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*ret = v;
	return 0;
}

/* One component value: decimal or 0x-hex, 0..255, exactly len characters. */
static int tcb_parse_component(const char *s, size_t len, uint8_t *ret)
{
	unsigned base = 10, v = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (len == 0 || len > 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int d = hex_digit(s[i]);
		if (d < 0 || (unsigned)d >= base)
			return -EINVAL;
		v = v * base + (unsigned)d;
	}
	if (v > 255)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

static bool is_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

uint64_t tcb_encode_components(const uint8_t v[5], enum snp_product p)
{
	const struct tcb_version t = {
		.fmc = v[0],
		.bootloader = v[1],
		.tee = v[2],
		.snp = v[3],
		.microcode = v[4],
	};

	return tcb_encode(&t, p);
}

int tcb_parse(const char *s, enum snp_product p, uint64_t *ret)
{
	static const char *const keys[] = {"fmc", "bl", "tee", "snp", "ucode"};
	bool fmc_layout = snp_product_has_fmc(p);
	bool seen[ELEMENTSOF(keys)] = {0};
	uint8_t val[ELEMENTSOF(keys)] = {0};
	const char *c;

	if (!s)
		return -EINVAL;
	if (!strchr(s, '='))
		return tcb_parse_hex(s, ret);

	c = s;
	for (;;) {
		const char *eq, *end;
		size_t klen, k;

		while (is_sep(*c))
			c++;
		if (!*c)
			break;
		eq = c;
		while (*eq && *eq != '=' && !is_sep(*eq))
			eq++;
		if (*eq != '=')
			return -EINVAL;
		klen = (size_t)(eq - c);
		for (k = 0; k < ELEMENTSOF(keys); k++)
			if (strlen(keys[k]) == klen && strncasecmp(c, keys[k], klen) == 0)
				break;
		if (k == ELEMENTSOF(keys) || seen[k])
			return -EINVAL;
		end = eq + 1;
		while (*end && !is_sep(*end))
			end++;
		if (tcb_parse_component(eq + 1, (size_t)(end - eq - 1), &val[k]) < 0)
			return -EINVAL;
		seen[k] = true;
		c = end;
	}

	/* Every component of the layout exactly once; fmc only where the layout has it. */
	if (seen[0] != fmc_layout)
		return -EINVAL;
	for (size_t k = 1; k < ELEMENTSOF(keys); k++)
		if (!seen[k])
			return -EINVAL;
	*ret = tcb_encode_components(val, p);
	return 0;
}
