/* SPDX-License-Identifier: Apache-2.0 */
/* snpctl: the command table and helpers shared by the command modules. Only the tool does I/O
 * here; parsing and verification live in proto/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "tcb.h"
#include "util.h"

/* Exit codes (documented in --help and snpctl(8)). */
#define SNPCTL_EXIT_OK 0
#define SNPCTL_EXIT_FAIL 1	  /* verification or the operation failed, or was refused */
#define SNPCTL_EXIT_USAGE 2	  /* bad arguments */
#define SNPCTL_EXIT_UNREACHABLE 3 /* snp-attestd is not running / cannot be connected to */

/* Largest input file snpctl reads: every file it handles is a few KiB at most. */
#define SNPCTL_MAX_FILE (1024 * 1024)

/* One row of the command table. sub is NULL for single-word commands ("kds-url").
 * Online commands (status, vm, quota, ...) set online. */
struct snpctl_command {
	const char *name;
	const char *sub;
	int (*run)(int argc, char **argv); /* argv[0] is "name sub"; returns an exit code */
	const char *summary;		   /* one line for the overview */
	const char *help;		   /* full text for COMMAND --help */
	bool online;			   /* talks to snp-attestd (listed apart in --help) */
};

extern const struct snpctl_command snpctl_commands[];
extern const size_t snpctl_n_commands;

/* Command handlers. */
int snpctl_report_show(int argc, char **argv);
int snpctl_report_verify(int argc, char **argv);
int snpctl_cert_verify(int argc, char **argv);
int snpctl_certs_build(int argc, char **argv);
int snpctl_certs_show(int argc, char **argv);
int snpctl_kds_url(int argc, char **argv);

/* Prints the help of the command named by argv[0] to stdout; returns SNPCTL_EXIT_OK. */
int snpctl_help_for(const char *full_name);
struct option;
/* getopt_long for a command (optstring starts with ':'): the next option's value (> 0), 0
 * after the last option, or -1 once it has printed the usage error for a missing value or an
 * unknown option (the caller returns SNPCTL_EXIT_USAGE). */
int snpctl_getopt(int argc, char **argv, const char *optstring, const struct option *options);
/* Prints "snpctl: <cmd>: <msg>" and a hint to stderr; returns SNPCTL_EXIT_USAGE. */
int snpctl_usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
/* Prints "snpctl: <step>: <snp_strerror(r)>" (plus detail) to stderr; returns SNPCTL_EXIT_FAIL. */
int snpctl_fail(int r, const char *step, const char *fmt, ...) _printf_(3, 4);
/* The same for the result of a chain or report verification (snp_verify_strerror: EPERM and
 * EXDEV read as an untrusted root and another product's chain). */
int snpctl_fail_verify(int r, const char *step, const char *fmt, ...) _printf_(3, 4);

/* Reads a whole regular file of at most max bytes. -EMSGSIZE if larger, -errno on I/O errors. */
int snpctl_read_file(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len);
/* Writes path atomically: temporary file in the same directory, fsync, rename. */
int snpctl_write_file_atomic(const char *path, const uint8_t *buf, size_t len);
/* Loads one certificate (DER or PEM) from a file. */
int snpctl_load_cert(const char *path, X509 **ret);
/* Loads every certificate of a PEM file (or a single DER certificate). */
int snpctl_load_chain(const char *path, STACK_OF(X509) * *ret);

/* --at TIME: seconds since the epoch or YYYY-MM-DD (UTC midnight). -EINVAL otherwise. */
int snpctl_parse_time(const char *s, time_t *ret);
/* --product NAME; -EINVAL for an unknown name. */
int snpctl_parse_product(const char *s, enum snp_product *ret);

/* Subject CN of x into buf ("" if none). */
const char *snpctl_subject_cn(X509 *x, char *buf, size_t size);
/* The leaf's product from its productName extension; -ENOENT if absent or unknown. */
int snpctl_leaf_product(X509 *leaf, enum snp_product *ret);

/* Hex string of n bytes as a new JSON string (NULL on allocation failure). */
json_t *snpctl_json_hex(const uint8_t *p, size_t n);
/* "0x%016llx" as a new JSON string. */
json_t *snpctl_json_u64hex(uint64_t v);
/* Dumps obj (stolen) to stdout with a newline; -ENOMEM on failure. */
int snpctl_json_print(json_t *obj);

static inline void snpctl_x509_freep(X509 **p)
{
	X509_free(*p);
}

static inline void snpctl_x509_stack_freep(STACK_OF(X509) * *p)
{
	if (*p)
		sk_X509_pop_free(*p, X509_free);
}

static inline void snpctl_json_decrefp(json_t **p)
{
	json_decref(*p);
}
