/* SPDX-License-Identifier: Apache-2.0 */
/* vmm-test-server: the codec-built VMM-socket test server as a program, for tests that run a
 * VMM in another process (the installed-header program, snp-kvmsim --kernel upstream).
 * Serves until SIGTERM/SIGINT, then prints its counters as one line of key=value pairs. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testserver.h"

static uint8_t *read_all(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*ret_len = len;
	return buf;
}

int main(int argc, char **argv)
{
	static const uint8_t empty[24];
	enum ts_mode mode = TS_ALLOW;
	const uint8_t *table = empty;
	uint8_t *owned = NULL;
	size_t table_len = sizeof(empty);
	unsigned busy_every = 0;
	struct ts_counts c;
	struct ts s;
	sigset_t set;
	int sig, r;

	if (argc < 2) {
		fprintf(stderr, "usage: vmm-test-server SOCKET [allow|busy|hold|deny|garbage] "
				"[TABLE-FILE] [BUSY-EVERY]\n");
		return 2;
	}
	if (argc > 2) {
		static const char *const names[] = {"allow", "busy", "hold", "deny", "garbage"};
		mode = (enum ts_mode) - 1;
		for (size_t i = 0; i < 5; i++)
			if (!strcmp(argv[2], names[i]))
				mode = (enum ts_mode)i;
		if ((int)mode < 0)
			return 2;
	}
	if (argc > 3 && strcmp(argv[3], "-") != 0) {
		owned = read_all(argv[3], &table_len);
		if (!owned) {
			fprintf(stderr, "vmm-test-server: cannot read %s\n", argv[3]);
			return 1;
		}
		table = owned;
	}
	if (argc > 4) {
		busy_every = (unsigned)strtoul(argv[4], NULL, 10);
		if (busy_every && mode == TS_ALLOW)
			mode = TS_BUSY_EVERY;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	r = ts_start(&s, argv[1], mode, table, table_len);
	if (r < 0) {
		fprintf(stderr, "vmm-test-server: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	pthread_mutex_lock(&s.mtx);
	s.busy_every = busy_every;
	pthread_mutex_unlock(&s.mtx);
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	c = ts_counts(&s);
	ts_stop(&s);
	printf("conns=%llu hellos=%llu certs=%llu allows=%llu busys=%llu enospcs=%llu "
	       "done_fw=%llu done_abandoned=%llu malformed=%llu errors=%llu\n",
	       (unsigned long long)c.conns, (unsigned long long)c.hellos,
	       (unsigned long long)c.certs, (unsigned long long)c.allows,
	       (unsigned long long)c.busys, (unsigned long long)c.enospcs,
	       (unsigned long long)c.done_fw, (unsigned long long)c.done_abandoned,
	       (unsigned long long)c.malformed, (unsigned long long)c.errors_sent);
	free(owned);
	return 0;
}
