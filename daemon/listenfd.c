/* SPDX-License-Identifier: Apache-2.0 */
/* listenfd: sockets passed by systemd, by name (listenfd.h). */
#include "listenfd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

int listenfd_by_name(const char *name)
{
	char **names = NULL;
	int n, fd = -ENOENT;

	n = sd_listen_fds_with_names(0, &names);
	for (int i = 0; i < n; i++) {
		if (fd < 0 && names && names[i] && strcmp(names[i], name) == 0)
			fd = SD_LISTEN_FDS_START + i;
		if (names)
			free(names[i]);
	}
	free(names);
	return fd;
}
