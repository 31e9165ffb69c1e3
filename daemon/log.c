/* SPDX-License-Identifier: Apache-2.0 */
/* log: journald (structured) or stderr. Owns the log level and the sink choice only. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "util.h"

static int log_level = LOG_INFO;
static int log_to_journal;

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
					  "warning", "notice", "info", "debug"};

void log_setup(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* Only log to the journal when stderr really is the journal stream systemd gave us. */
	log_to_journal = 0;
	if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		log_to_journal = 1;
}

int log_set_level_name(const char *name)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(name, level_names[i]) == 0) {
			log_level = i;
			return 0;
		}
	return -EINVAL;
}

static void emit(int level, uint64_t vm_id, uint64_t req_id, int has_ids, const char *msg)
{
	if (log_to_journal) {
		if (has_ids)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level, "SNP_VM_ID=%llu",
					(unsigned long long)vm_id, "SNP_REQ_ID=%llu",
					(unsigned long long)req_id, NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level, NULL);
		return;
	}
	if (has_ids)
		fprintf(stderr, "<%d>snp-attestd: vm=%llu req=%llu: %s\n", level,
			(unsigned long long)vm_id, (unsigned long long)req_id, msg);
	else
		fprintf(stderr, "<%d>snp-attestd: %s\n", level, msg);
}

static void format_msg(char *buf, size_t size, int r, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);

	/* A negative r appends its errno text, so call sites need no %m (not ISO C). */
	if (r < 0 && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ": %s", sys_strerror(r));
}

int log_full_errno(int level, int r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return r;
	va_start(ap, fmt);
	format_msg(msg, sizeof(msg), r, fmt, ap);
	va_end(ap);
	emit(level, 0, 0, 0, msg);
	return r;
}

void log_vm(int level, uint64_t vm_id, uint64_t req_id, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	format_msg(msg, sizeof(msg), 0, fmt, ap);
	va_end(ap);
	emit(level, vm_id, req_id, 1, msg);
}

void log_fields(int level, const char *const *fields, size_t n_fields, const char *fmt, ...)
{
	char msg[1024], prio[16];
	va_list ap;

	/* Not filtered by the log level: these are records (the audit trail), not chatter. */
	va_start(ap, fmt);
	format_msg(msg, sizeof(msg), 0, fmt, ap);
	va_end(ap);
	if (log_to_journal) {
		struct iovec iov[2 + 32];
		char *m = NULL;
		size_t n = 0;

		if (asprintf(&m, "MESSAGE=%s", msg) < 0)
			return;
		snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
		iov[n++] = (struct iovec){m, strlen(m)};
		iov[n++] = (struct iovec){prio, strlen(prio)};
		for (size_t i = 0; i < n_fields && n < sizeof(iov) / sizeof(iov[0]); i++)
			iov[n++] = (struct iovec){(void *)fields[i], strlen(fields[i])};
		sd_journal_sendv(iov, (int)n);
		free(m);
		return;
	}
	fprintf(stderr, "<%d>snp-attestd: %s", level, msg);
	for (size_t i = 0; i < n_fields; i++) {
		const char *eq = strchr(fields[i], '=');
		if (eq)
			fprintf(stderr, " %.*s=\"%s\"", (int)(eq - fields[i]), fields[i], eq + 1);
	}
	fputc('\n', stderr);
}
