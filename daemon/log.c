/* SPDX-License-Identifier: Apache-2.0 */
/* log: journald (structured) or stderr. Owns the log level and the sink choice only. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "util.h"

static int log_level = LOG_INFO;
static int log_to_journal;

static const char *const level_names[] = { "emerg", "alert",  "crit", "err",
					   "warning", "notice", "info", "debug" };

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
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level,
					"SNP_VM_ID=%llu", (unsigned long long)vm_id,
					"SNP_REQ_ID=%llu", (unsigned long long)req_id, NULL);
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
