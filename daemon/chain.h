/* SPDX-License-Identifier: Apache-2.0 */
/* chain: the certificate chain the daemon serves and the GHCB table built from it. Every
 * chain is verified (proto/certs.c) against the pinned AMD ARKs — or the simulator's ARK, only
 * with the sim backend and trust_sim_ark — and checked against the platform's chip id and
 * reported TCB before it is used. The table is immutable once built: a new chain means a new
 * struct chain, swapped in by the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "tcb.h"

struct platform_facts {
	enum snp_product product;
	uint8_t chip_id[64];
	size_t chip_id_len;
	uint64_t current_tcb;
	uint64_t reported_tcb;
	bool vlek_loaded;
	uint32_t status_flags; /* SNP_STATUS_F_* as last read */
};

struct chain {
	X509 *leaf; /* owned: VCEK or VLEK */
	X509 *ask;  /* owned: ASK or ASVK */
	X509 *ark;  /* owned */
	bool vlek;
	bool sim_root; /* verified against the simulator's ARK, not an AMD one */
	uint64_t tcb;  /* reported TCB the leaf is for */
	enum snp_product product;
	time_t not_after;	/* earliest notAfter in the chain */
	bool has_crl;		/* a CRL verified by the ARK is in the table */
	time_t crl_next_update; /* with has_crl */
	char source[256];	/* "dir:/etc/...", "cache", "kds", "import" */
	uint8_t *table;		/* owned: GHCB certificate table (ARK, ASK, VCEK/VLEK[, CRL]) */
	size_t table_len;
	uint32_t table_pages;
};

void chain_free(struct chain *c);

/* The extra trusted ARK for the sim backend: <sim_state_dir>/kds/ark-<product>.pem. NULL
 * result (return 0) if not present. */
int chain_load_sim_ark(const char *sim_state_dir, enum snp_product p, X509 **ret);

/* Builds a chain from certificates (ownership of leaf/ask/ark taken only on success): verifies
 * it with extra_ark (may be NULL), checks it against the platform, builds the table.
 * -EPERM/-EXDEV/-EKEYREJECTED/-ENOKEY/-EKEYEXPIRED as proto/certs.h; err gets one line. */
int chain_build(X509 *leaf, X509 *ask, X509 *ark, X509 *extra_ark, const struct platform_facts *pf,
		const char *source, time_t now, struct chain **ret, char *err, size_t err_size);

/* Optional CRL for the chain (DER or PEM): kept only if the ARK's signature verifies and it is
 * current at now; -EKEYREJECTED / -EKEYEXPIRED / -EBADMSG otherwise (the chain is unchanged).
 * Rebuilds the table with the CRL entry. The CRL is not consulted for revocation here. */
int chain_add_crl(struct chain *c, const uint8_t *crl, size_t len, time_t now, char *err,
		  size_t err_size);

/* True if c is the chain for pf: the key kind (VCEK/VLEK) and the reported TCB it was built for
 * (c NULL: false). */
bool chain_matches(const struct chain *c, const struct platform_facts *pf);

/* Finds in dir the chain for the platform's reported TCB and key. VCEK: ASK+ARK from
 * cert_chain.pem (ASK then ARK) or ask.pem + ark.pem; leaf candidates vcek-<TCB>.der|.pem
 * (<TCB> = the raw reported TCB as 16 lowercase hex digits), then vcek.der|.pem|.crt. VLEK
 * (pf->vlek_loaded): ASVK+ARK from cert_chain_vlek.pem or asvk.pem + ark.pem; leaves
 * vlek-<TCB>.der|.pem, vlek.der|.pem. Each candidate goes through chain_build; the first
 * that verifies and matches the platform wins; else the first candidate's error (-ENOENT if
 * none exists). crl.der|crl.pem (crl-vlek.* for VLEK) is added if it verifies. */
int chain_from_dir(const char *dir, X509 *extra_ark, const struct platform_facts *pf, time_t now,
		   struct chain **ret, char *err, size_t err_size);
