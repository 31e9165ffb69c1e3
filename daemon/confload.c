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

#include "util.h"

static int read_text(const char *path, char **ret)
{
	_cleanup_(freep) char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (st.st_size > CONF_MAX_FILE_SIZE) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		r = -EBADMSG;
		goto out;
	}
	*ret = TAKE_PTR(buf);
out:
	close(fd);
	return r;
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
			 r == -EFBIG ? "file too large" : r == -EBADMSG ? "contains NUL bytes"
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
				char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
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
