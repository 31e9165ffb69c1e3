/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-report: report parse/serialise/product/verify and TCB decode/format/parse on arbitrary
 * bytes. Must never crash; a broken codec invariant aborts so the fuzzer reports it. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "report.h"
#include "tcb.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "invariant broken: %s\n", what);
		abort();
	}
}

static EVP_PKEY *fuzz_key(void)
{
	static EVP_PKEY *key; /* one key for the whole run, deliberately kept */

	if (!key)
		key = EVP_EC_gen("P-384");
	return key;
}

static void fuzz_report_bytes(const uint8_t *buf, size_t len)
{
	struct report r;
	uint8_t out[REPORT_SIZE];
	enum snp_product p;
	int ret, v;

	ret = report_parse(buf, len, &r);
	check(ret == 0 || ret == -EMSGSIZE || ret == -EPROTONOSUPPORT || ret == -EBADMSG,
	      "parse error code");
	check(ret != -EMSGSIZE || len != REPORT_SIZE, "EMSGSIZE on a full-size buffer");

	/* A fresh key nobody signed the corpus with: a report can never verify with it. */
	if (fuzz_key()) {
		v = report_verify_signature(buf, len, fuzz_key());
		check(v == -EKEYREJECTED || v == -EMSGSIZE || v == -EBADMSG || v == -ENOMEM,
		      "verify result");
	}

	if (ret < 0)
		return;
	check(report_serialise(&r, out) == 0, "serialise of a parsed report");
	check(memcmp(out, buf, REPORT_SIZE) == 0, "byte-exact round trip");
	if (report_product(&r, &p) == 0)
		check(p > SNP_PRODUCT_UNKNOWN && p < _SNP_PRODUCT_MAX, "product range");
}

static void fuzz_tcb(const uint8_t *data, size_t size)
{
	static const enum snp_product products[] = {SNP_PRODUCT_UNKNOWN, SNP_PRODUCT_MILAN,
						    SNP_PRODUCT_GENOA, SNP_PRODUCT_TURIN};
	uint8_t raw8[8] = {0};
	char text[80];
	uint64_t raw;

	memcpy(raw8, data, MIN(size, sizeof(raw8)));
	raw = get_le64(raw8);
	/* the input also read as a string, bounded and NUL-terminated */
	memcpy(text, data, MIN(size, sizeof(text) - 1));
	text[MIN(size, sizeof(text) - 1)] = '\0';

	for (size_t i = 0; i < ELEMENTSOF(products); i++) {
		struct tcb_version t;
		char buf[TCB_FORMAT_MAX];
		uint64_t parsed, back;

		tcb_decode(raw, products[i], &t);
		check(tcb_encode(&t, products[i]) == raw, "tcb round trip");
		check(tcb_le(raw, raw, products[i]), "tcb_le reflexive");
		tcb_format(raw, products[i], buf, sizeof(buf));
		check(strlen(buf) < sizeof(buf), "format bounded");

		if (tcb_parse(text, products[i], &parsed) == 0) {
			/* named components survive format + parse */
			tcb_format(parsed, products[i], buf, sizeof(buf));
			check(tcb_parse(buf, products[i], &back) == 0, "reparse formatted tcb");
			check(tcb_le(back, parsed, products[i]) &&
				      tcb_le(parsed, back, products[i]),
			      "formatted tcb equal");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_report_bytes(data, size);
	/* Reach the deep parser paths even for inputs of the wrong size. */
	if (size > REPORT_SIZE)
		fuzz_report_bytes(data, REPORT_SIZE);
	else if (size < REPORT_SIZE && size > 0) {
		uint8_t padded[REPORT_SIZE] = {0};

		memcpy(padded, data, size);
		fuzz_report_bytes(padded, REPORT_SIZE);
	}
	fuzz_tcb(data, size);
	return 0;
}
