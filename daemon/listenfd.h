/* SPDX-License-Identifier: Apache-2.0 */
/* listenfd: the sockets systemd passes (LISTEN_FDS), found by their FileDescriptorName. */
#pragma once

/* The fd systemd passed with this name, or -ENOENT. The caller checks its kind. */
int listenfd_by_name(const char *name);
