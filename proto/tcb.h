/* SPDX-License-Identifier: Apache-2.0 */
/* tcb: products and the TCB_VERSION encodings (facts §4.1). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum snp_product {
	SNP_PRODUCT_UNKNOWN = 0,
	SNP_PRODUCT_MILAN,
	SNP_PRODUCT_GENOA, /* also Bergamo and Siena: KDS calls them "Genoa" */
	SNP_PRODUCT_TURIN,
	_SNP_PRODUCT_MAX,
};

/* KDS spelling: "Milan", "Genoa", "Turin"; "unknown" otherwise. */
const char *snp_product_name(enum snp_product p);
/* Case-insensitive; accepts the KDS names. -EINVAL for anything else. */
int snp_product_from_string(const char *s, enum snp_product *ret);
/* From CPUID family/model (facts §4 "Product identification"); -ENOENT if unknown. */
int snp_product_from_cpuid(uint8_t family, uint8_t model, enum snp_product *ret);
/* Chip-id length used by KDS and the VCEK hwID extension: 64, or 8 for Turin; 0 for
 * SNP_PRODUCT_UNKNOWN or an out-of-range value. */
size_t snp_product_hwid_len(enum snp_product p);
/* Turin and later use the FMC-aware TCB layout. */
bool snp_product_has_fmc(enum snp_product p);

/* A decoded TCB_VERSION. reserved[] keeps the bytes the layout does not name so that
 * decode + encode is lossless: legacy layout bytes 2..5 (KDS spl_4..spl_7) in [0..3];
 * Turin bytes 4..6 in [0..2] and [3] = 0. */
struct tcb_version {
	uint8_t fmc; /* Turin only; 0 for Milan/Genoa */
	uint8_t bootloader;
	uint8_t tee;
	uint8_t snp;
	uint8_t microcode;
	uint8_t reserved[4];
};

/* Longest tcb_format output including the NUL ("fmc=255 bl=255 tee=255 snp=255 ucode=255"). */
#define TCB_FORMAT_MAX 48

/* raw is the TCB_VERSION as a little-endian u64 (byte 0 = least significant). Products other
 * than Turin (including UNKNOWN) use the Milan/Genoa layout. encode(decode(x)) == x for all x;
 * encode ignores the fields the product's layout does not have (fmc, or reserved[3] on Turin). */
void tcb_decode(uint64_t raw, enum snp_product p, struct tcb_version *ret);
uint64_t tcb_encode(const struct tcb_version *t, enum snp_product p);
/* tcb_encode of the named components given in the order fmc, bootloader, tee, snp,
 * microcode (the order of the KDS SPL parameters and of tcb_parse's keys); reserved zero. */
uint64_t tcb_encode_components(const uint8_t v[5], enum snp_product p);
/* True if every named component of a is <= the one in b (for "not newer than committed").
 * Reserved bytes are not compared. */
bool tcb_le(uint64_t a, uint64_t b, enum snp_product p);
/* "fmc=1 bl=3 tee=0 snp=8 ucode=115" (fmc only for Turin; decimal) into buf, truncated to
 * size; returns buf. Reserved bytes are not shown: use the hex value for a lossless form. */
const char *tcb_format(uint64_t raw, enum snp_product p, char *buf, size_t size);
/* Parses a TCB given as 16 hex digits, or 1..16 hex digits after "0x" (the u64 value), or as
 * "bl=3,tee=0,snp=8,ucode=115[,fmc=1]": separators ',' or spaces (so tcb_format output parses
 * back), values decimal or 0x-hex 0..255, every component of the product's layout exactly once
 * (fmc required for Turin, refused for the others), reserved bytes zero.
 * -EINVAL on anything else (ret untouched). */
int tcb_parse(const char *s, enum snp_product p, uint64_t *ret);
