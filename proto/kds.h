/* SPDX-License-Identifier: Apache-2.0 */
/* kds: AMD KDS URL construction and parsing (facts §7). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcb.h"

#define KDS_DEFAULT_BASE "https://kdsintf.amd.com"

enum kds_kind {
	KDS_VCEK,	/* /vcek/v1/{product}/{hwid}?[fmcSPL=&]blSPL=&teeSPL=&snpSPL=&ucodeSPL= */
	KDS_VCEK_CHAIN, /* /vcek/v1/{product}/cert_chain */
	KDS_VCEK_CRL,	/* /vcek/v1/{product}/crl */
	KDS_VLEK_CHAIN, /* /vlek/v1/{product}/cert_chain */
	KDS_VLEK_CRL,	/* /vlek/v1/{product}/crl */
};

struct kds_request {
	enum kds_kind kind;
	enum snp_product product;
	uint8_t hwid[64]; /* KDS_VCEK only */
	size_t hwid_len;  /* 64, or 8 for Turin */
	uint64_t tcb;	  /* KDS_VCEK only: the reported TCB (raw u64) */
};

/* Writes base + path (+ query) into buf. base without a trailing slash. SPLs are printed as
 * two-digit decimals (blSPL=03), hwid as lower-case hex. -ENOSPC if buf is too small,
 * -EINVAL for an unknown product or a hwid length that does not fit the product. */
int kds_url(const struct kds_request *q, const char *base, char *buf, size_t size);
/* Parses a request path with query ("/vcek/v1/Milan/abcd...?blSPL=..."), as a server sees it.
 * Strict: unknown kind/product, bad hex, missing or out-of-range SPLs give -EINVAL. */
int kds_parse_path(const char *path, struct kds_request *ret);
/* Stable cache key "Milan-<hwid hex>-<tcb 16 hex>" or "Milan-cert_chain" etc. */
int kds_cache_key(const struct kds_request *q, char *buf, size_t size);
