/* SPDX-License-Identifier: Apache-2.0 */
/* confload: reads the configuration file and its drop-in directory into a struct conf.
 * The parsing and validation rules live in proto/conf.c. */
#pragma once

#include <stddef.h>

#include "conf.h"

#define CONF_DEFAULT_PATH SYSCONFDIR "/snp-attestd.conf"
#define CONF_MAX_FILE_SIZE (256 * 1024)

/* Loads defaults, then path (a missing file is fine only if !required), then every
 * "*.conf" in "<path>.d/" in lexical order, then validates. On failure *c is untouched and
 * err holds one line naming the file and line. */
int confload(const char *path, int required, struct conf *c, char *err, size_t err_size);
