/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-kds: 'kds-url', the KDS URL for a VCEK, a chain or a CRL. Builds text only; never
 * fetches. */
#include "snpctl.h"

#include <getopt.h>
#include <stdio.h>

#include "kds.h"

#define KDS_URL_MAX 4096

/* The hwID KDS wants: 64 bytes, or 8 for Turin. A Turin chip id copied whole from a report
 * (64 bytes, zero after the first 8) is accepted and shortened. */
static int parse_hwid(const char *s, enum snp_product p, uint8_t out[64], size_t *ret_len)
{
	size_t len, want = snp_product_hwid_len(p);

	if (hex_decode_any(s, out, 64, &len) < 0)
		return -EINVAL;
	if (len == want) {
		*ret_len = len;
		return 0;
	}
	if (len == 64 && want < 64 && mem_is_zero(out + want, 64 - want)) {
		*ret_len = want;
		return 0;
	}
	return -EINVAL;
}

int snpctl_kds_url(int argc, char **argv)
{
	static const struct option options[] = {
		{"product", required_argument, NULL, 'p'}, {"hwid", required_argument, NULL, 'i'},
		{"tcb", required_argument, NULL, 't'},	   {"kind", required_argument, NULL, 'k'},
		{"vlek", no_argument, NULL, 'l'},	   {"base", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},	   {NULL, 0, NULL, 0},
	};
	const char *product_s = NULL, *hwid_s = NULL, *tcb_s = NULL, *kind_s = "vcek";
	const char *base_s = KDS_DEFAULT_BASE;
	struct kds_request q = {0};
	char base[1024], url[KDS_URL_MAX];
	bool vlek = false, json = false;
	size_t blen;
	int c, r;

	while ((c = snpctl_getopt(argc, argv, ":", options)) > 0) {
		switch (c) {
		case 'p':
			product_s = optarg;
			break;
		case 'i':
			hwid_s = optarg;
			break;
		case 't':
			tcb_s = optarg;
			break;
		case 'k':
			kind_s = optarg;
			break;
		case 'l':
			vlek = true;
			break;
		case 'j':
			json = true;
			break;
		case 'b':
			base_s = optarg;
			break;
		}
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (optind != argc)
		return snpctl_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (!product_s)
		return snpctl_usage_error(argv[0], "--product is required");
	if (snp_product_from_string(product_s, &q.product) < 0)
		return snpctl_usage_error(argv[0], "unknown product '%s' (Milan, Genoa, Turin)",
					  product_s);

	if (strcmp(kind_s, "vcek") == 0) {
		/* VLEK leaves need CSP credentials: --vlek means the VLEK chain. */
		q.kind = vlek ? KDS_VLEK_CHAIN : KDS_VCEK;
		if (vlek)
			fprintf(stderr,
				"snpctl: kds-url: VLEK certificates are only issued to cloud "
				"providers with KDS credentials; printing the VLEK cert_chain "
				"URL\n");
	} else if (strcmp(kind_s, "chain") == 0) {
		q.kind = vlek ? KDS_VLEK_CHAIN : KDS_VCEK_CHAIN;
	} else if (strcmp(kind_s, "crl") == 0) {
		q.kind = vlek ? KDS_VLEK_CRL : KDS_VCEK_CRL;
	} else {
		return snpctl_usage_error(argv[0], "unknown --kind '%s' (vcek, chain, crl)",
					  kind_s);
	}

	if (q.kind == KDS_VCEK) {
		if (!hwid_s || !tcb_s)
			return snpctl_usage_error(argv[0], "a VCEK URL needs --hwid and --tcb");
		if (parse_hwid(hwid_s, q.product, q.hwid, &q.hwid_len) < 0)
			return snpctl_usage_error(argv[0], "--hwid must be %zu bytes of hex for %s",
						  snp_product_hwid_len(q.product),
						  snp_product_name(q.product));
		if (tcb_parse(tcb_s, q.product, &q.tcb) < 0)
			return snpctl_usage_error(argv[0],
						  "bad --tcb '%s' (16 hex digits or "
						  "bl=N,tee=N,snp=N,ucode=N[,fmc=N])",
						  tcb_s);
	} else if (hwid_s || tcb_s)
		return snpctl_usage_error(argv[0], "--hwid and --tcb only apply to a VCEK URL");

	if (strncmp(base_s, "http://", 7) != 0 && strncmp(base_s, "https://", 8) != 0)
		return snpctl_usage_error(argv[0], "--base must start with http:// or https://");
	blen = strlen(base_s);
	while (blen > 0 && base_s[blen - 1] == '/')
		blen--;
	if (blen >= sizeof(base))
		return snpctl_usage_error(argv[0], "--base is too long");
	for (size_t i = 0; i < blen; i++)
		if ((unsigned char)base_s[i] <= 0x20 || (unsigned char)base_s[i] >= 0x7f)
			return snpctl_usage_error(argv[0], "--base contains spaces or control "
							   "characters");
	memcpy(base, base_s, blen);
	base[blen] = '\0';

	r = kds_url(&q, base, url, sizeof(url));
	if (r < 0)
		return snpctl_fail(r, "kds-url", "%s", snp_product_name(q.product));
	if (json) {
		/* "kind" is what the URL serves; "key" which KDS tree (vcek or vlek) it is in. */
		const char *kind = q.kind == KDS_VCEK					  ? "vcek"
				   : q.kind == KDS_VCEK_CHAIN || q.kind == KDS_VLEK_CHAIN ? "chain"
											  : "crl";
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "url", url, "product",
				      snp_product_name(q.product), "kind", kind, "key",
				      vlek ? "vlek" : "vcek");
		return snpctl_json_print(o) < 0 ? SNPCTL_EXIT_FAIL : SNPCTL_EXIT_OK;
	}
	puts(url);
	return SNPCTL_EXIT_OK;
}
