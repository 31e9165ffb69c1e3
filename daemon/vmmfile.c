/* SPDX-License-Identifier: Apache-2.0 */
/* vmmfile: OFD-locked, in-place rewrite of the VMM certificate blob (facts §9.2). */
#include "vmmfile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

struct vmmfile {
	int fd;
	bool locked;
};

static int ofd_lock(int fd, short type, bool wait)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* the whole file, however long it grows */
	};

	/* OFD locks need l_pid = 0 (memset by the initialiser). */
	for (;;) {
		if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EACCES)
			return -EAGAIN;
		return -errno;
	}
}

static int check_regular(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return 0;
}

int vmmfile_open(const char *path, struct vmmfile **ret)
{
	struct vmmfile *f;
	int fd, r;

	if (!path || !path[0])
		return -EINVAL;
	/* O_NONBLOCK so that a FIFO planted at the path cannot hang the open. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0)
		return errno == EISDIR ? -EINVAL : -errno;
	r = check_regular(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	*ret = f;
	return 0;
}

/* Looks up a group by name without trusting the name: only the characters a group name
 * may hold, and a bounded buffer that grows on ERANGE. */
static int lookup_gid(const char *name, gid_t *ret)
{
	struct group grp, *res = NULL;
	size_t size = 1024;
	char *buf = NULL;
	int r;

	if (!name[0] || strlen(name) > 64)
		return -EINVAL;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.'))
			return -EINVAL;
	for (;;) {
		char *n = realloc(buf, size);
		if (!n) {
			free(buf);
			return -ENOMEM;
		}
		buf = n;
		r = getgrnam_r(name, &grp, buf, size, &res);
		if (r != ERANGE || size >= 1024 * 1024)
			break;
		size *= 2;
	}
	if (r == 0 && res)
		*ret = res->gr_gid;
	free(buf);
	if (r > 0)
		return -r;
	return res ? 0 : -ESRCH;
}

int vmmfile_set_access(struct vmmfile *f, const char *group, unsigned mode)
{
	struct stat st;
	gid_t gid = 0;
	int r;

	if (!f || !group || mode > 0777 || (mode & 0600) != 0600 || (mode & 0002))
		return -EINVAL;
	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (group[0]) {
		r = lookup_gid(group, &gid);
		if (r < 0)
			return r;
		/* The owner may hand the file to a group it is a member of (the unit's user is
		 * put in it by sysusers); nothing else is tried. */
		if (st.st_gid != gid && fchown(f->fd, (uid_t)-1, gid) < 0)
			return -errno;
	}
	/* Explicitly, whatever the umask (the unit's UMask=0027 would drop "other" bits). */
	if ((st.st_mode & 07777) != mode && fchmod(f->fd, (mode_t)mode) < 0)
		return -errno;
	return 0;
}

int vmmfile_open_access(const char *path, const char *group, unsigned mode, struct vmmfile **ret)
{
	struct vmmfile *f = NULL;
	int r;

	r = vmmfile_open(path, &f);
	if (r < 0)
		return r;
	r = vmmfile_set_access(f, group, mode);
	if (r == -ESRCH) {
		/* A host without the VMM's group has no VMM to serve either: say so, keep the
		 * daemon's group and still apply the mode, rather than refusing to start. */
		log_warning("Group '%s' ([certs] vmm_certs_group) does not exist; %s keeps the "
			    "daemon's group",
			    group, path);
		r = vmmfile_set_access(f, "", mode);
	}
	if (r < 0) {
		vmmfile_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

void vmmfile_free(struct vmmfile *f)
{
	if (!f)
		return;
	if (f->locked)
		(void)vmmfile_unlock(f);
	close(f->fd);
	free(f);
}

int vmmfile_lock(struct vmmfile *f)
{
	int r;

	if (f->locked)
		return 0;
	r = ofd_lock(f->fd, F_WRLCK, true);
	if (r == 0)
		f->locked = true;
	return r;
}

int vmmfile_lock_timeout(struct vmmfile *f, unsigned timeout_msec)
{
	struct timespec start, now, pause = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		r = vmmfile_trylock(f);
		if (r != -EAGAIN)
			return r;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((uint64_t)(now.tv_sec - start.tv_sec) * 1000 +
			    (uint64_t)((now.tv_nsec - start.tv_nsec) / 1000000) >=
		    timeout_msec)
			return -ETIMEDOUT;
		/* Readers hold the lock for one request (milliseconds); poll gently. */
		nanosleep(&pause, NULL);
	}
}

int vmmfile_trylock(struct vmmfile *f)
{
	int r;

	if (f->locked)
		return 0;
	r = ofd_lock(f->fd, F_WRLCK, false);
	if (r == 0)
		f->locked = true;
	return r;
}

int vmmfile_unlock(struct vmmfile *f)
{
	int r;

	if (!f->locked)
		return 0;
	r = ofd_lock(f->fd, F_UNLCK, false);
	if (r == 0)
		f->locked = false;
	return r;
}

int vmmfile_write_locked(struct vmmfile *f, const uint8_t *table, size_t len)
{
	size_t done = 0;

	if (!f->locked)
		return -ENOLCK;
	if (!table || len == 0 || len > VMMFILE_MAX_SIZE)
		return -EINVAL;
	while (done < len) {
		ssize_t n = pwrite(f->fd, table + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	/* Shrinking after the write: a reader (who needs the lock) never sees either state. */
	if (ftruncate(f->fd, (off_t)len) < 0)
		return -errno;
	if (fsync(f->fd) < 0)
		return -errno;
	return 0;
}

int vmmfile_replace(struct vmmfile *f, const uint8_t *table, size_t len)
{
	int r, q;

	r = vmmfile_lock(f);
	if (r < 0)
		return r;
	r = vmmfile_write_locked(f, table, len);
	q = vmmfile_unlock(f);
	return r < 0 ? r : q;
}

int vmmfile_read(const char *path, uint8_t **ret, size_t *ret_len)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == EISDIR ? -EINVAL : -errno;
	r = check_regular(fd);
	if (r < 0)
		goto out;
	r = ofd_lock(fd, F_RDLCK, true);
	if (r < 0)
		goto out;
	/* Size under the lock: the writer may have changed it while we waited. */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size == 0) {
		r = -ENODATA;
		goto out;
	}
	if (st.st_size > VMMFILE_MAX_SIZE) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		len += (size_t)n;
	}
	r = 0;
out:
	close(fd); /* drops the OFD lock with the last reference */
	if (r < 0)
		return r;
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}
