/* SPDX-License-Identifier: Apache-2.0 */
/* confload: file and drop-in reading for the configuration. */
#include "confload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smallfile.h"
#include "util.h"

/* The file as text: NUL bytes inside are refused (-EBADMSG). */
static int read_text(const char *path, char **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = smallfile_read(path, CONF_MAX_FILE_SIZE, &buf, &len);
	if (r < 0)
		return r;
	if (memchr(buf, '\0', len)) {
		free(buf);
		return -EBADMSG;
	}
	*ret = (char *)buf;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int apply_file(struct conf *c, const char *path, char *err, size_t err_size)
{
	_cleanup_(freep) char *text = NULL;
	int r = read_text(path, &text);

	if (r < 0) {
		snprintf(err, err_size, "%s: %s", path,
			 r == -EFBIG	 ? "file too large"
			 : r == -EBADMSG ? "contains NUL bytes"
					 : strerror(-r));
		return r;
	}
	return conf_apply_string(c, text, path, err, err_size);
}

int confload(const char *path, int required, struct conf *out, char *err, size_t err_size)
{
	struct conf c;
	char dropin[4096];
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int r;

	r = conf_init_defaults(&c);
	if (r < 0) {
		snprintf(err, err_size, "out of memory");
		return r;
	}
	if (access(path, F_OK) == 0 || required) {
		r = apply_file(&c, path, err, err_size);
		if (r < 0)
			goto fail;
	}
	snprintf(dropin, sizeof(dropin), "%s.d", path);
	d = opendir(dropin);
	if (d) {
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf"))
				continue;
			if (n == cap) {
				char **nn =
					realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
				if (!nn) {
					closedir(d);
					r = -ENOMEM;
					goto fail;
				}
				names = nn;
			}
			if (!(names[n] = strdup(de->d_name))) {
				closedir(d);
				r = -ENOMEM;
				goto fail;
			}
			n++;
		}
		closedir(d);
		if (n > 1)
			qsort(names, n, sizeof(*names), cmp_str);
		for (size_t i = 0; i < n; i++) {
			char p[4400];
			snprintf(p, sizeof(p), "%s/%s", dropin, names[i]);
			r = apply_file(&c, p, err, err_size);
			if (r < 0)
				goto fail;
		}
	}
	r = conf_validate(&c, err, err_size);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	conf_done(out);
	*out = c;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	conf_done(&c);
	return r < 0 ? r : -EINVAL;
}
