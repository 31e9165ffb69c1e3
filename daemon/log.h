/* SPDX-License-Identifier: Apache-2.0 */
/* log: the daemon's logging: journald with structured fields when running under systemd,
 * stderr otherwise. Only daemon/ code logs. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

void log_setup(void);
int log_set_level_name(const char *name); /* "info", "debug", ... */

/* Logs and returns r (a negative errno) so callers can write `return log_error_errno(r, ...)`;
 * a negative r appends ": <strerror(-r)>" to the message. */
int log_full_errno(int level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A per-request line with VM and request id as journal fields (SNP_VM_ID=, SNP_REQ_ID=). */
void log_vm(int level, uint64_t vm_id, uint64_t req_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A line with extra structured fields, each "NAME=value" (NAME of A-Z, 0-9 and _): in the
 * journal they are fields beside MESSAGE= that journalctl can filter on (NAME=value); on stderr
 * they follow the message as NAME="value" pairs. Values must be single-line. Not filtered by
 * the log level: it is for records that must be kept whatever it is (the audit trail). */
void log_fields(int level, const char *const *fields, size_t n_fields, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_full(level, ...) ((void)log_full_errno((level), 0, __VA_ARGS__))
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_full_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_WARNING, (r), __VA_ARGS__)
