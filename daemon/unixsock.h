/* SPDX-License-Identifier: Apache-2.0 */
/* unixsock: a daemon's own listening AF_UNIX socket on a path (the control and VMM sockets when
 * systemd does not pass them): its directory made, a socket file left by a dead listener
 * removed (never a live one's, nor anything that is not a socket), bound, mode 0666 (peers are
 * authorised by SO_PEERCRED, and told why when refused), listening, non-blocking. */
#pragma once

/* The listening fd, or -errno with *ret_what naming the step that failed (static text):
 * -EADDRINUSE another listener is live on path; -EEXIST path exists and is not a socket;
 * -EINVAL path is not absolute or too long. */
int unixsock_listen(const char *path, int type, int backlog, const char **ret_what);
