/* SPDX-License-Identifier: Apache-2.0 */
/* simtest: helpers shared by the sim Check tests (scratch state directories). */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* A fresh directory under $TMPDIR; the state directory goes inside it as "st". */
static inline char *simtest_mkdtemp(void)
{
	const char *tmp = getenv("TMPDIR");
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/snpsim-test-XXXXXX", tmp ? tmp : "/tmp") > 0);
	ck_assert_msg(mkdtemp(p), "mkdtemp failed");
	return p;
}

/* Removes the files of one level of directories below root (the layout the tests create). */
static inline void simtest_rmtree(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *path = NULL;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ck_assert(asprintf(&path, "%s/%s", root, de->d_name) > 0);
		if (unlink(path) < 0)
			simtest_rmtree(path);
		free(path);
	}
	closedir(d);
	rmdir(root);
}

static inline char *simtest_path(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}
