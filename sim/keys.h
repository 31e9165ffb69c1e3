/* SPDX-License-Identifier: Apache-2.0 */
/* keys: deterministic key derivation of the simulated chip (VCEK, VLEK, VMPCKs, KEY_REQ keys)
 * from its secret. Pure functions: no I/O, no state; only OpenSSL 3 non-deprecated calls. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tcb.h"

#define SIM_SECRET_LEN 32
#define SIM_CHIP_ID_LEN 64
#define SIM_VMPCK_LEN 32
#define SIM_DERIVED_KEY_LEN 32
#define SIM_VLEK_SEED_LEN 48
#define SIM_HASHSTICK_SIZE 432

/* VCEK private key (ECDSA P-384) of a simulated chip at a reported TCB, as the hardware
 * derives it: HKDF-SHA-384 over the chip secret with (product, TCB) as info, reduced to a
 * scalar in [1, n-1]. Same inputs → same key, any other TCB → another key. The public key
 * the KDS simulator certifies is the public half of the returned key. -EINVAL for an unknown
 * product; -ENOMEM/-EIO if OpenSSL fails. *ret is a new reference (EVP_PKEY_free). */
int sim_keys_vcek(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
		  uint64_t reported_tcb, EVP_PKEY **ret);

/* VLEK private key: the same construction over the seed carried in a hashstick. */
int sim_keys_vlek(const uint8_t seed[SIM_VLEK_SEED_LEN], enum snp_product product,
		  uint64_t reported_tcb, EVP_PKEY **ret);

/* VMPCKn of a VM (the secrets-page key, facts §2.5), derived from the chip secret and the
 * VM id: the guest side (KVM simulator) and the PSP compute the same value. index 0..3,
 * -EINVAL otherwise. */
int sim_keys_vmpck(const uint8_t secret[SIM_SECRET_LEN], uint64_t vm_id, unsigned index,
		   uint8_t out[SIM_VMPCK_LEN]);

/* MSG_KEY_REQ derived key: HMAC-SHA-256 keyed with a root key from the chip secret and
 * context (the PSP serialises the selected guest fields, VMPL, SVN, TCB into context). */
int sim_keys_derived(const uint8_t secret[SIM_SECRET_LEN], const uint8_t *context, size_t len,
		     uint8_t out[SIM_DERIVED_KEY_LEN]);

/* Simulated wrapped-VLEK hashstick (432 bytes, facts §8). Real hashsticks are opaque and
 * wrapped by AMD for one chip; ours has this layout, authenticated with a wrap key derived
 * from the target chip's secret:
 *   0x000  8  magic "SNPSIMVK"
 *   0x008  4  layout version (1), LE
 *   0x00C  4  product (enum snp_product), LE
 *   0x010  8  reported TCB the VLEK is issued for, LE
 *   0x018 64  chip id of the target chip
 *   0x058 48  VLEK seed (input of sim_keys_vlek)
 *   0x088 ..  zero
 *   0x190 32  HMAC-SHA-256 over bytes 0x000..0x18F
 * wrap: builds one (used by the KDS simulator, which reads the chip's state directory). */
int sim_keys_hashstick_wrap(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
			    const uint8_t chip_id[SIM_CHIP_ID_LEN], uint64_t reported_tcb,
			    const uint8_t seed[SIM_VLEK_SEED_LEN], uint8_t out[SIM_HASHSTICK_SIZE]);
/* unwrap: checks magic, version, MAC, product and chip id; -EBADMSG for a malformed or
 * foreign hashstick, -EKEYREJECTED if the MAC does not verify. Writes *ret_tcb and seed only
 * on success. */
int sim_keys_hashstick_unwrap(const uint8_t secret[SIM_SECRET_LEN], enum snp_product product,
			      const uint8_t chip_id[SIM_CHIP_ID_LEN],
			      const uint8_t hashstick[SIM_HASHSTICK_SIZE], uint64_t *ret_tcb,
			      uint8_t seed[SIM_VLEK_SEED_LEN]);

/* Public half of a key as a new EVP_PKEY (for handing to verifiers). */
int sim_keys_public(EVP_PKEY *priv, EVP_PKEY **ret);
