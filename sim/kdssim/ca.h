/* SPDX-License-Identifier: Apache-2.0 */
/* sim-ca: the simulated AMD key hierarchy (ARK, ASK, ASVK kept in a directory) and issuance of
 * VCEKs, VLEKs and CRLs shaped like KDS's (facts §7.1, §7.2). File I/O only; never logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tcb.h"

struct sim_ca;

enum sim_ca_line {
	SIM_CA_VCEK, /* ARK -> ASK -> VCEK */
	SIM_CA_VLEK, /* ARK -> ASVK -> VLEK */
};

/* Loads the product's ARK, ASK and ASVK (keys and certificates) from dir, generating and
 * storing any that are missing (RSA-4096; files mode 0600; takes seconds). dir is created
 * (0700) if absent. -EINVAL for an unknown product, -EBADMSG for a corrupt file, -EXDEV if the
 * stored certificates do not form a chain with their keys. */
int sim_ca_open(const char *dir, enum snp_product p, struct sim_ca **ret);
void sim_ca_free(struct sim_ca *ca);

/* Adds the extension nid given in OpenSSL's configuration syntax ("critical,CA:TRUE") to x,
 * issued by issuer (x itself for a self-signed one). -EINVAL if the value does not parse. */
int sim_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/* Borrowed; valid as long as ca. */
X509 *sim_ca_ark(const struct sim_ca *ca);
X509 *sim_ca_signer(const struct sim_ca *ca, enum sim_ca_line line);

/* The KDS cert_chain body: signer (ASK or ASVK) then ARK, PEM. Malloc'd, NUL-terminated. */
int sim_ca_chain_pem(const struct sim_ca *ca, enum sim_ca_line line, char **ret_buf,
		     size_t *ret_len);

/* Issues a VCEK for the P-384 public key pub: serial 0, CN=SEV-VCEK, 7 years from now,
 * AMD extensions for tcb (raw REPORTED_TCB) and hwid (64 bytes, or 8 for Turin).
 * -EINVAL for a wrong hwid length or a key that is not P-384. */
int sim_ca_issue_vcek(const struct sim_ca *ca, EVP_PKEY *pub, const uint8_t *hwid, size_t hwid_len,
		      uint64_t tcb, time_t now, X509 **ret);
/* Issues a VLEK (CN=SEV-VLEK, 1 year, signed by the ASVK) carrying csp_id instead of hwID. */
int sim_ca_issue_vlek(const struct sim_ca *ca, EVP_PKEY *pub, const char *csp_id, uint64_t tcb,
		      time_t now, X509 **ret);
/* An empty CRL for the line, signed by the ARK (RSA-PSS), valid 7 days from now. */
int sim_ca_issue_crl(const struct sim_ca *ca, enum sim_ca_line line, time_t now, X509_CRL **ret);

/* "Milan-B0" / "Genoa" / "Turin" for VCEKs, the plain KDS name for VLEKs (facts §7.2). */
const char *sim_ca_product_name(enum snp_product p, enum sim_ca_line line);
