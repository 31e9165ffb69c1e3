/* SPDX-License-Identifier: Apache-2.0 */
/* quotafile: JSON load/save of per-VM quotas with atomic replacement. */
#include "quotafile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../proto/ctlproto.h"
#include "util.h"

#define QUOTAFILE_MAX_ENTRIES 100000

/* The VM id as stored: a JSON integer up to INT64_MAX, a decimal string above (as the control
 * protocol writes it), so that every 64-bit id round-trips exactly. */
static json_t *vm_id_json(uint64_t v)
{
	return ctl_json_u64(v);
}

int quotafile_load(const char *dir, struct quotafile_entry **ret, size_t *ret_n, char *err,
		   size_t err_size)
{
	char path[4096];
	json_error_t je;
	json_t *root, *list, *it;
	struct quotafile_entry *e;
	struct stat st;
	size_t n, i;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, QUOTAFILE_NAME);
	/* Never follow a link: the daemon would read (and echo) whatever it points to. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (fd < 0 && errno == ELOOP) {
		snprintf(err, err_size, "%s is a symbolic link; refused", path);
		return -ELOOP;
	}
	if (fd < 0) {
		int r = -errno;
		snprintf(err, err_size, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, err_size, "%s is not a regular file; refused", path);
		return -EBADMSG;
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	close(fd);
	if (!root) {
		snprintf(err, err_size, "%s:%d: %s", path, je.line, je.text);
		return -EBADMSG;
	}
	list = json_object_get(root, "vms");
	if (json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(list) ||
	    json_array_size(list) > QUOTAFILE_MAX_ENTRIES) {
		snprintf(err, err_size, "%s: not a version 1 quota file", path);
		json_decref(root);
		return -EBADMSG;
	}
	n = json_array_size(list);
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e) {
		json_decref(root);
		return -ENOMEM;
	}
	json_array_foreach(list, i, it)
	{
		json_t *vm = json_object_get(it, "vm"), *rate = json_object_get(it, "rate_milli"),
		       *burst = json_object_get(it, "burst"),
		       *weight = json_object_get(it, "weight");
		uint64_t vm_id = 0;
		if (ctl_json_get_u64(vm, &vm_id) < 0 || !json_is_integer(rate) ||
		    !json_is_integer(burst) || !json_is_integer(weight) ||
		    json_integer_value(rate) <= 0 || json_integer_value(burst) <= 0 ||
		    json_integer_value(burst) > UINT32_MAX || json_integer_value(weight) <= 0 ||
		    json_integer_value(weight) > UINT32_MAX) {
			snprintf(err, err_size, "%s: entry %zu is malformed", path, i);
			free(e);
			json_decref(root);
			return -EBADMSG;
		}
		e[i].vm_id = vm_id;
		e[i].q.rate_milli = (uint64_t)json_integer_value(rate);
		e[i].q.burst = (uint32_t)json_integer_value(burst);
		e[i].q.weight = (uint32_t)json_integer_value(weight);
	}
	json_decref(root);
	*ret = e;
	*ret_n = n;
	return 0;
}

int quotafile_save(const char *dir, const struct quotafile_entry *e, size_t n)
{
	char path[4096], tmp[4200];
	json_t *root, *list;
	char *text;
	size_t len, off = 0;
	int fd, dfd, r = 0;

	root = json_object();
	list = json_array();
	if (!root || !list) {
		json_decref(root);
		json_decref(list);
		return -ENOMEM;
	}
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "vms", list);
	for (size_t i = 0; i < n; i++) {
		json_t *o =
			json_pack("{s:o,s:I,s:I,s:I}", "vm", vm_id_json(e[i].vm_id), "rate_milli",
				  (json_int_t)e[i].q.rate_milli, "burst", (json_int_t)e[i].q.burst,
				  "weight", (json_int_t)e[i].q.weight);
		if (!o || json_array_append_new(list, o) < 0) {
			json_decref(root);
			return -ENOMEM;
		}
	}
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	snprintf(path, sizeof(path), "%s/%s", dir, QUOTAFILE_NAME);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, QUOTAFILE_NAME, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(text);
		return -errno;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	free(text);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int quotafile_set_aside(const char *dir, char *ret_path, size_t size)
{
	char path[4096];
	time_t now = time(NULL);

	snprintf(path, sizeof(path), "%s/%s", dir, QUOTAFILE_NAME);
	for (unsigned k = 0; k < 100; k++) {
		struct stat st;
		if (k == 0)
			snprintf(ret_path, size, "%s.unreadable-%lld", path, (long long)now);
		else
			snprintf(ret_path, size, "%s.unreadable-%lld.%u", path, (long long)now, k);
		if (lstat(ret_path, &st) == 0)
			continue;
		if (errno != ENOENT)
			return -errno;
		/* rename() moves a link itself, never its target. */
		if (rename(path, ret_path) < 0)
			return -errno;
		return 0;
	}
	return -EEXIST;
}
