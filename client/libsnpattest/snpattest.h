/* SPDX-License-Identifier: Apache-2.0 */
/* libsnpattest: answers KVM_EXIT_SNP_REQ_CERTS (Linux 7.0+) for a VMM, with the admission and
 * certificate table of snp-attestd. See snpattest(3). Depends on nothing beyond libc. */
#ifndef SNPATTEST_H
#define SNPATTEST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SNPATTEST_DEFAULT_SOCKET "/run/snp-attestd/vmm.sock"
#define SNPATTEST_DEFAULT_CERTS_FILE "/run/snp-attestd/certs.bin"
#define SNPATTEST_DEFAULT_TIMEOUT_MS 100
/* The largest table the library ever writes (the Linux guest's limit), in bytes and pages. */
#define SNPATTEST_MAX_TABLE 16384
#define SNPATTEST_MAX_PAGES 4

/* Where the answer of the last snpattest_request_certs() came from. */
enum snpattest_source {
	SNPATTEST_SOURCE_NONE = 0,   /* no request yet, or it was refused locally (EAGAIN) */
	SNPATTEST_SOURCE_DAEMON = 1, /* snp-attestd decided (ALLOW, BUSY or ENOSPC) */
	SNPATTEST_SOURCE_FILE = 2,   /* the daemon was unreachable: the certificate file */
	SNPATTEST_SOURCE_EMPTY = 3,  /* neither: an empty table, ret 0 */
};

struct snpattest;

/* Opens a handle for one VM. socket_path NULL means SNPATTEST_DEFAULT_SOCKET; uuid (16 bytes,
 * RFC 4122 byte order) NULL means the all-zero UUID; name: 1..64 printable ASCII characters
 * without spaces. The daemon need not be running: the handle connects when it can.
 * Returns 0 with *ret set, -EINVAL for a bad name, -ENOMEM. */
int snpattest_open(const char *socket_path, const uint8_t *uuid, const char *name,
		   struct snpattest **ret);

/* The certificate file used when the daemon is unreachable (default
 * SNPATTEST_DEFAULT_CERTS_FILE); NULL disables the file fallback. 0 or -ENOMEM. */
int snpattest_set_certs_file(struct snpattest *h, const char *path);

/* The timeout used when snpattest_request_certs() gets timeout_ms < 0. 0 or -EINVAL (0 ms). */
int snpattest_set_timeout(struct snpattest *h, int timeout_ms);

/* Decides one KVM_EXIT_SNP_REQ_CERTS. buf: the guest's certificate buffer, at least
 * min(*npages, SNPATTEST_MAX_PAGES) * 4096 bytes (the library writes at most
 * SNPATTEST_MAX_TABLE bytes). *npages: kvm_run->snp_req_certs.npages. timeout_ms < 0: the
 * handle's timeout (default 100 ms). Returns exactly the value for kvm_run->snp_req_certs.ret:
 *   0       the table is in buf (possibly empty); run the vCPU with immediate_exit set and
 *           call snpattest_done() when KVM_RUN returns
 *   ENOSPC  *npages is set to the pages needed (copy it to kvm_run->snp_req_certs.npages)
 *   EAGAIN  BUSY: the guest retries later
 * Never blocks longer than the timeout, never returns anything else (never EIO). */
int snpattest_request_certs(struct snpattest *h, void *buf, uint64_t *npages, int timeout_ms);

/* The firmware call of the request that got 0 is over: tells the daemon, or drops the
 * certificate file's shared lock. Harmless when nothing is outstanding. */
void snpattest_done(struct snpattest *h);

/* Closes the handle (an outstanding request counts as done). NULL is fine. */
void snpattest_close(struct snpattest *h);

enum snpattest_source snpattest_last_source(const struct snpattest *h);

#ifdef __cplusplus
}
#endif

#endif
