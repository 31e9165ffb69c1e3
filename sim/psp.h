/* SPDX-License-Identifier: Apache-2.0 */
/* psp: the software PSP. Executes SNP_GUEST_REQUEST (REPORT, KEY, TSC_INFO) like the firmware
 * and the /dev/sev platform commands, against a simulation state. Thread-safe (one mutex: the
 * PSP is a serial resource); does not log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sevuapi.h"
#include "state.h"

/*
 * Firmware status for a bad guest request (decided here; the ABI spec's choices for some of
 * these are not public). "No advance" means the VMPCK's expected sequence number is
 * unchanged and the response page is zeroed, so the same seqno works next time.
 *
 *   request shorter than the header, or msg_sz > 4000 or beyond req_len   INVALID_LEN
 *   response buffer smaller than the response message                     INVALID_LEN
 *   algo != AES-256-GCM, hdr_version != 1, hdr_sz != 0x60                  INVALID_PARAM
 *   msg_vmpck > 3                                                          INVALID_PARAM
 *   seqno != expected (replay, gap, 0)                                     INVALID_PARAM
 *   msg_type not REPORT_REQ/KEY_REQ/TSC_INFO_REQ                           INVALID_PARAM
 *   expected seqno would not fit the guest's 32-bit counter                AEAD_OFLOW
 *   tag does not verify (wrong key, tampered header or payload)            BAD_SIGNATURE
 *   unsupported msg_version for the type                                   BAD_VERSION
 *   payload size wrong for the type                                        INVALID_LEN
 * All of the above give no advance. A well-formed message whose *content* is refused
 * (REPORT_REQ VMPL < the VMPCK index or > 3, KEY_SEL 3, non-zero reserved bytes, KEY_REQ
 * bad root/fields/VMPL, SVN above the VM's, TCB above the committed one) succeeds
 * at the message level (status SUCCESS, sequence advanced) and carries INVALID_PARAM (or
 * INVALID_KEY for KEY_SEL = VLEK with no VLEK loaded) in the response payload's STATUS,
 * as the real firmware does (facts §3.2, §3.4).
 */

/* Per-command latency knobs (PSP time, slept under the PSP mutex). */
enum sim_psp_op {
	SIM_PSP_OP_REPORT,
	SIM_PSP_OP_KEY,
	SIM_PSP_OP_TSC_INFO,
	SIM_PSP_OP_BAD_REQUEST, /* a guest request refused with a firmware status */
	SIM_PSP_OP_PLATFORM_STATUS,
	SIM_PSP_OP_GET_ID2,
	SIM_PSP_OP_SET_CONFIG,
	SIM_PSP_OP_COMMIT,
	SIM_PSP_OP_VLEK_LOAD,
	_SIM_PSP_OP_MAX,
};
/* Default of SIM_PSP_OP_REPORT: ~8 ms, as measured for a report on real hardware. */
#define SIM_PSP_REPORT_DELAY_USEC 8000u

struct sim_vm_config {
	uint64_t vm_id;
	uint64_t policy;
	uint32_t guest_svn;
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
};

struct sim_psp;
struct sim_psp_vm;

/* state is borrowed and must outlive the PSP. Latencies start at their defaults. */
int sim_psp_new(struct sim_state *state, struct sim_psp **ret);
struct sim_psp *sim_psp_free(struct sim_psp *psp);
static inline void sim_psp_freep(struct sim_psp **p)
{
	sim_psp_free(*p);
}
int sim_psp_set_delay(struct sim_psp *psp, enum sim_psp_op op, uint32_t usec);
uint32_t sim_psp_get_delay(struct sim_psp *psp, enum sim_psp_op op);

/* A VM's guest context: its launch data, VMPCK0..3 (from the chip secret and vm_id),
 * the firmware's sequence counters and a random REPORT_ID. LAUNCH_TCB := current TCB now.
 * -EEXIST if vm_id is already live on this PSP. Freed with sim_psp_vm_free (before the PSP). */
int sim_psp_vm_new(struct sim_psp *psp, const struct sim_vm_config *cfg, struct sim_psp_vm **ret);
struct sim_psp_vm *sim_psp_vm_free(struct sim_psp_vm *vm);
/* The guest's copy of VMPCKn (what the secrets page would hold). */
int sim_psp_vm_vmpck(const struct sim_psp_vm *vm, unsigned index, uint8_t out[SIM_VMPCK_LEN]);
/* The sequence number the firmware expects next on VMPCKn (1, 3, 5, ...). */
uint64_t sim_psp_vm_expected_seqno(struct sim_psp_vm *vm, unsigned index);
void sim_psp_vm_report_id(const struct sim_psp_vm *vm, uint8_t out[32]);

/* SNP_GUEST_REQUEST: req is the guest's request page (req_len bytes, usually 4096), resp the
 * response page (resp_size bytes). Returns 0 when the firmware ran, with *ret_fw_status the
 * SEV_RET_* status (non-zero for the cases above; resp is then zeroed); -errno if it could not
 * run at all (state unreadable or corrupt: -EUCLEAN etc., -ENOMEM, -EIO). */
int sim_psp_guest_request(struct sim_psp *psp, struct sim_psp_vm *vm, const uint8_t *req,
			  size_t req_len, uint8_t *resp, size_t resp_size, uint32_t *ret_fw_status);

/* Platform commands (facts §8): 0 with a firmware status, or -errno. */
int sim_psp_platform_status(struct sim_psp *psp, struct sev_user_data_snp_status *ret,
			    uint32_t *ret_fw_status);
/* id: buffer of *len_inout bytes (may be NULL with 0). Too small → INVALID_LEN with the
 * needed length in *len_inout; else the ids and their length: 64 bytes per socket
 * (`sockets` in the platform file, state.h), the first being the chip id the reports carry
 * (Turin: 8 significant bytes, zero padded; all zero if MASK_CHIP_ID is set). */
int sim_psp_get_id2(struct sim_psp *psp, uint8_t *id, uint32_t *len_inout, uint32_t *ret_fw_status);
/* SNP_CONFIG: reported TCB must be <= current (tcb_le) and rsvd zero / flags known, else
 * INVALID_PARAM. A changed reported TCB drops a loaded VLEK (it was issued for the old one). */
int sim_psp_set_config(struct sim_psp *psp, const struct sev_user_data_snp_config *cfg,
		       uint32_t *ret_fw_status);
/* SNP_COMMIT: committed := current (TCB and firmware), reported := current. */
int sim_psp_commit(struct sim_psp *psp, uint32_t *ret_fw_status);
/* SNP_VLEK_LOAD: hdr->len must be 16 and version 0 (else INVALID_PARAM); the hashstick must
 * be ours (sim_keys_hashstick_unwrap) for the current reported TCB, else INVALID_PARAM
 * (BAD_SIGNATURE if its MAC fails). */
int sim_psp_vlek_load(struct sim_psp *psp, const struct sev_user_data_snp_vlek_load *hdr,
		      const uint8_t hashstick[SIM_HASHSTICK_SIZE], uint32_t *ret_fw_status);

/* The /dev/sev ioctl in-process: dispatches cmd->cmd with cmd->data as a pointer in this
 * process (GET_ID2's and VLEK_LOAD's inner addresses too), sets cmd->error. Mirrors the
 * kernel: -EINVAL for an unknown command or NULL data, -EPERM for SET_CONFIG/VLEK_LOAD
 * without writable, -EIO when the firmware status is not SUCCESS. While the platform file
 * says `snp = off`, PLATFORM_STATUS, COMMIT, SET_CONFIG and VLEK_LOAD fail with
 * -uninit_errno (EINVAL or ENODEV) and error 0, as the kernel does before SNP is
 * initialised. GET_ID2 with address 0 or length 0 is the length query (INVALID_LEN, -EIO,
 * length = what the firmware needs); with a buffer shorter than that, Linux 6.12 would copy
 * the full length into it: here the call fails with -EFAULT (error INVALID_LEN, length set)
 * and nothing is written past the buffer. */
int sim_psp_issue_cmd(struct sim_psp *psp, struct sev_issue_cmd *cmd, bool writable);

/* Public key that signs reports right now (VCEK for the reported TCB, or the VLEK when loaded). */
int sim_psp_signing_key(struct sim_psp *psp, bool vlek, EVP_PKEY **ret_pub);
