/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-certs: certificate and PEM-chain input (DER or PEM) through parsing, the AMD extension
 * reader, the TCB encoder, the leaf checks and chain verification. */
#include <stdint.h>
#include <stdlib.h>

#include "certs.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise_one(X509 *x)
{
	static const uint8_t chip[64] = {0x1e, 0x55, 0x0a, 0x8e};
	struct certs_amd_ext e;
	enum snp_product p;
	uint8_t fp[32], *der = NULL;
	size_t len;
	uint64_t tcb;

	if (certs_fingerprint_sha256(x, fp) < 0)
		__builtin_trap(); /* a parsed certificate always re-encodes */
	(void)certs_ark_pinned(x, &p);
	if (certs_to_der(x, &der, &len) == 0)
		free(der);
	if (certs_amd_ext_parse(x, &e) == 0) {
		/* The parser's bounds are what the rest of the code relies on. */
		if (e.hwid_len != 0 && e.hwid_len != 8 && e.hwid_len != 64)
			__builtin_trap();
		if (memchr(e.product_name, 0, sizeof(e.product_name)) == NULL ||
		    memchr(e.csp_id, 0, sizeof(e.csp_id)) == NULL)
			__builtin_trap();
		(void)certs_product_from_name(e.product_name, &p);
		for (p = SNP_PRODUCT_UNKNOWN; p <= _SNP_PRODUCT_MAX; p++)
			(void)certs_amd_ext_tcb(&e, p, &tcb);
	}
	for (p = SNP_PRODUCT_MILAN; p < _SNP_PRODUCT_MAX; p++) {
		(void)certs_check_platform(x, p, 0x7308000000000003ull, chip, sizeof(chip));
		(void)certs_check_platform(x, p, 0, NULL, 0);
	}
	/* Self-signed as a root: never trusted unless passed explicitly. */
	if (certs_verify_chain(x, x, x, NULL, &p) == 0 && certs_ark_pinned(x, NULL) < 0)
		__builtin_trap();
	(void)certs_verify_chain(x, x, x, &(struct certs_verify_opts){.extra_ark = x, .now = 1},
				 &p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;

	if (certs_parse(data, size, &x) == 0) {
		exercise_one(x);
		X509_free(x);
	}
	if (certs_parse_pem_chain(data, size, &sk) == 0) {
		int n = sk_X509_num(sk);
		struct certs_verify_opts opts = {.extra_ark = sk_X509_value(sk, n - 1)};

		if (n < 1 || n > 8)
			__builtin_trap();
		for (int i = 0; i < n; i++)
			exercise_one(sk_X509_value(sk, i));
		if (n >= 2) {
			(void)certs_verify_chain(NULL, sk_X509_value(sk, 0), sk_X509_value(sk, 1),
						 NULL, NULL);
			(void)certs_verify_chain(NULL, sk_X509_value(sk, 0), sk_X509_value(sk, 1),
						 &opts, NULL);
		}
		if (n >= 3)
			(void)certs_verify_chain(sk_X509_value(sk, 0), sk_X509_value(sk, 1),
						 sk_X509_value(sk, 2), &opts, NULL);
		sk_X509_pop_free(sk, X509_free);
	}
	return 0;
}
