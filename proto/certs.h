/* SPDX-License-Identifier: Apache-2.0 */
/* certs: AMD certificate parsing, chain verification against pinned ARKs, and the VCEK/VLEK
 * AMD extensions (facts §7). Pure: no I/O, time is a parameter. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "report.h"
#include "tcb.h"

/* Parse one certificate given as DER or PEM (detected). -EBADMSG if neither, for trailing bytes
 * after the DER, a second PEM block, or more than 64 KiB of input. */
int certs_parse(const uint8_t *buf, size_t len, X509 **ret);
/* Parse every PEM certificate in buf in order (e.g. KDS cert_chain: ASK then ARK).
 * -EBADMSG if none, if any block is malformed or is not a CERTIFICATE, or if anything but
 * whitespace lies between blocks. *ret is a new stack the caller frees with
 * sk_X509_pop_free(s, X509_free). At most 8 certificates and 64 KiB (-EMSGSIZE beyond). */
int certs_parse_pem_chain(const uint8_t *buf, size_t len, STACK_OF(X509) * *ret);
/* A KDS cert_chain is exactly two certificates, the ASK (ASVK for VLEK) then the ARK; this is
 * the one place that rule is written. certs_kds_chain_pair: the two of sk, borrowed (sk keeps
 * them); -EBADMSG unless sk holds exactly two. certs_parse_kds_chain: the same from PEM bytes
 * (certs_parse_pem_chain's errors, -EBADMSG for another count); ret_ask/ret_ark receive new
 * references the caller frees, and either may be NULL (a check only). */
int certs_kds_chain_pair(STACK_OF(X509) * sk, X509 **ret_ask, X509 **ret_ark);
int certs_parse_kds_chain(const uint8_t *pem, size_t len, X509 **ret_ask, X509 **ret_ark);
/* DER encoding of x (a CRL: c) into a malloc'd buffer. -EINVAL for NULL, -EBADMSG if it does
 * not encode. */
int certs_to_der(X509 *x, uint8_t **ret_buf, size_t *ret_len);
int certs_crl_to_der(X509_CRL *c, uint8_t **ret_buf, size_t *ret_len);

/* If ark is one of the three pinned AMD ARKs (SHA-256 of its DER), returns 0 and the
 * product; -ENOENT otherwise. */
int certs_ark_pinned(X509 *ark, enum snp_product *ret_product);
/* SHA-256 of the DER encoding. */
int certs_fingerprint_sha256(X509 *x, uint8_t out[32]);

/* The AMD extensions of a VCEK or VLEK (OID arc 1.3.6.1.4.1.3704.1, facts §7.2). */
struct certs_amd_ext {
	bool has_struct_version;
	long struct_version;
	char product_name[64]; /* "Milan-B0", "Genoa", "Turin"; "" if absent */
	bool has_bl, has_tee, has_snp, has_ucode, has_fmc;
	uint8_t bl, tee, snp, ucode, fmc;
	uint8_t spl[4];	     /* spl_4..spl_7 when present */
	uint8_t spl_present; /* bit i: spl_(4+i) present */
	uint8_t hwid[64];
	size_t hwid_len;  /* 0 if absent (VLEK) */
	char csp_id[256]; /* VLEK only; "" if absent */
};

/* Absent extensions are reported as absent (an ASK has none). -EBADMSG for a value that is not
 * the expected DER type, an SPL outside 0..255, a hwID not 8 or 64 bytes, a duplicate, or a
 * certificate with both hwID and csp_id. Unknown OIDs under the arc are ignored. */
int certs_amd_ext_parse(X509 *cert, struct certs_amd_ext *ret);
/* The product a productName extension names ("Milan-B0" -> Milan). -ENOENT if unknown. */
int certs_product_from_name(const char *product_name, enum snp_product *ret);
/* The reported TCB the extensions encode, in the layout of the product (spl_4..7 become the
 * reserved bytes 2..5; on Turin spl_5..7 become bytes 4..6). -EBADMSG if a component the layout
 * needs is missing (fmcSPL on Turin) or one it cannot hold is present; -EINVAL for UNKNOWN. */
int certs_amd_ext_tcb(const struct certs_amd_ext *e, enum snp_product p, uint64_t *ret);

enum certs_leaf_kind {
	CERTS_LEAF_VCEK,
	CERTS_LEAF_VLEK,
};

struct certs_verify_opts {
	X509 *extra_ark; /* borrowed; trusted in addition to the pinned ARKs, or NULL. Callers
			    must only set this on an explicit request (e.g. the sim backend). */
	time_t now;	 /* 0: validity periods are not checked */
};

/* Verifies ARK self-signature, ASK/ASVK by ARK, and (if leaf) leaf by ASK, all RSA-PSS
 * SHA-384 with salt 48; serial 0 accepted. The ARK must be pinned or equal extra_ark
 * (-EPERM otherwise). A leaf whose productName names another product than the root, or an
 * ASK not issued by the ARK, gives -EXDEV; a bad signature -EKEYREJECTED; validity
 * -EKEYEXPIRED. Returns the product of the chain.
 * The scheme is checked from the certificate's algorithm fields before verifying: any other
 * algorithm (PKCS#1 v1.5, PSS with another hash, MGF1 hash, salt or trailer) or an issuer key
 * that is not RSA of at least 2048 bits gives -EKEYREJECTED. An ARK or ASK without CA:TRUE
 * gives -EBADMSG. The product of an extra_ark comes from its CN ("ARK-Milan", as AMD's) or
 * else from the leaf's productName; -EXDEV if neither names one. */
int certs_verify_chain(X509 *leaf, X509 *ask, X509 *ark, const struct certs_verify_opts *opts,
		       enum snp_product *ret_product);

/* Whether x is valid at now: 0, -EKEYEXPIRED (before notBefore or after notAfter) or -EBADMSG
 * (a time that does not parse). With -EKEYEXPIRED, buf (if size > 0) receives which bound it
 * misses, for a person: "expired: notAfter 2025-03-01 12:00:00 UTC" or "not yet valid:
 * notBefore ...". */
int certs_check_validity(X509 *x, time_t now, char *buf, size_t size);

/* Checks a VCEK's extensions against a report: TCB parts equal the report's REPORTED_TCB,
 * hwID equals the chip id (64 bytes, or the first 8 for Turin); for a VLEK (signing key 1)
 * only the TCB. -ENOKEY on mismatch, also for a productName of another product, a VLEK given
 * for a VCEK-signed report (or the reverse) and an unsigned report. */
int certs_check_report(X509 *leaf, const struct report *r, enum snp_product p);
/* Same check against raw values (the daemon's platform status). chip_id may be NULL to skip;
 * it is ignored for a VLEK (csp_id, no hwID). */
int certs_check_platform(X509 *leaf, enum snp_product p, uint64_t reported_tcb,
			 const uint8_t *chip_id, size_t chip_id_len);

/* Full offline verification of a report: signature with the leaf's key, leaf vs. report,
 * and (if ask and ark) the chain. Returns the first failure's distinct error: report_parse's
 * and report_verify_signature's errors, then -ENOKEY, then certs_verify_chain's. The product
 * is the leaf's productName (a v3+ report naming another product gives -ENOKEY). ask and ark
 * must be both given or both NULL (-EINVAL). */
int certs_verify_report(const uint8_t *report, size_t len, X509 *leaf, X509 *ask, X509 *ark,
			const struct certs_verify_opts *opts);
