/* SPDX-License-Identifier: Apache-2.0 */
/* output: snpctl's file I/O, error reporting and JSON helpers. The only place the tool touches
 * the file system; everything it reads is treated as hostile and size-capped. */
#include "snpctl.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/objects.h>

#include "certs.h"

int snpctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "snpctl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'snpctl %s --help'.\n", cmd);
	return SNPCTL_EXIT_USAGE;
}

int snpctl_getopt(int argc, char **argv, const char *optstring, const struct option *options)
{
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, optstring, options, NULL);
	if (c == -1)
		return 0;
	if (c == ':') {
		snpctl_usage_error(argv[0], "option '%s' needs a value", argv[optind - 1]);
		return -1;
	}
	if (c == '?') {
		snpctl_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
		return -1;
	}
	return c;
}

static int vfail(const char *text, const char *step, const char *fmt, va_list ap)
{
	fprintf(stderr, "snpctl: %s: %s", step, text);
	if (fmt) {
		fputs(" (", stderr);
		vfprintf(stderr, fmt, ap);
		fputc(')', stderr);
	}
	fputc('\n', stderr);
	return SNPCTL_EXIT_FAIL;
}

int snpctl_fail(int r, const char *step, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(snp_strerror(r), step, fmt, ap);
	va_end(ap);
	return ret;
}

int snpctl_fail_verify(int r, const char *step, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(snp_verify_strerror(r), step, fmt, ap);
	va_end(ap);
	return ret;
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

int snpctl_read_file(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	_cleanup_(closep) int fd = -1;
	_cleanup_(freep) uint8_t *buf = NULL;
	struct stat st;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	/* Read up to max + 1 bytes whatever st_size says: pipes have none and files change. */
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EMSGSIZE;
	}
	*ret_buf = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int snpctl_write_file_atomic(const char *path, const uint8_t *buf, size_t len)
{
	_cleanup_(freep) char *dircopy = NULL, *tmp = NULL;
	_cleanup_(closep) int fd = -1, dfd = -1;
	const char *dir;
	size_t off = 0;
	int r;

	dircopy = strdup(path);
	if (!dircopy || asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	dir = dirname(dircopy);

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(TAKE_FD(fd)) < 0) {
		r = -errno;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	/* Make the rename itself durable; failure here does not undo a complete write. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
fail:
	(void)unlink(tmp);
	return r;
}

int snpctl_load_cert(const char *path, X509 **ret)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	size_t len;
	int r;

	r = snpctl_read_file(path, SNPCTL_MAX_FILE, &buf, &len);
	if (r < 0)
		return r;
	return certs_parse(buf, len, ret);
}

static bool looks_like_pem(const uint8_t *buf, size_t len)
{
	static const char marker[] = "-----BEGIN";

	return memmem(buf, len, marker, sizeof(marker) - 1) != NULL;
}

int snpctl_load_chain(const char *path, STACK_OF(X509) * *ret)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	_cleanup_(snpctl_x509_freep) X509 *one = NULL;
	STACK_OF(X509) * s;
	size_t len;
	int r;

	r = snpctl_read_file(path, SNPCTL_MAX_FILE, &buf, &len);
	if (r < 0)
		return r;
	if (looks_like_pem(buf, len))
		return certs_parse_pem_chain(buf, len, ret);

	/* A single DER certificate is a chain of one. */
	r = certs_parse(buf, len, &one);
	if (r < 0)
		return r;
	s = sk_X509_new_null();
	if (!s)
		return -ENOMEM;
	if (!sk_X509_push(s, one)) {
		sk_X509_free(s);
		return -ENOMEM;
	}
	one = NULL;
	*ret = s;
	return 0;
}

const char *snpctl_subject_cn(X509 *x, char *buf, size_t size)
{
	const X509_NAME *name = X509_get_subject_name(x);
	const ASN1_STRING *data;
	const X509_NAME_ENTRY *e;
	int idx, n;

	buf[0] = '\0';
	if (!name)
		return buf;
	idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (idx < 0)
		return buf;
	e = X509_NAME_get_entry(name, idx);
	data = e ? X509_NAME_ENTRY_get_data(e) : NULL;
	if (!data)
		return buf;
	n = ASN1_STRING_length(data);
	if (n < 0)
		return buf;
	/* Copy printable ASCII only: the CN comes from a file and is echoed to a terminal. */
	size_t j = 0;
	const unsigned char *p = ASN1_STRING_get0_data(data);
	for (int i = 0; i < n && j + 1 < size; i++)
		buf[j++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	buf[j] = '\0';
	return buf;
}

int snpctl_leaf_product(X509 *leaf, enum snp_product *ret)
{
	struct certs_amd_ext ext;
	int r;

	r = certs_amd_ext_parse(leaf, &ext);
	if (r < 0)
		return r;
	if (!ext.product_name[0])
		return -ENOENT;
	return certs_product_from_name(ext.product_name, ret);
}

json_t *snpctl_json_hex(const uint8_t *p, size_t n)
{
	_cleanup_(freep) char *s = malloc(2 * n + 1);

	if (!s)
		return NULL;
	hex_encode(p, n, s);
	return json_string(s);
}

json_t *snpctl_json_u64hex(uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "0x%016llx", (unsigned long long)v);
	return json_string(s);
}

int snpctl_json_print(json_t *obj)
{
	_cleanup_(snpctl_json_decrefp) json_t *o = obj;
	_cleanup_(freep) char *s = NULL;

	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		return -ENOMEM;
	puts(s);
	return 0;
}

int snpctl_parse_time(const char *s, time_t *ret)
{
	struct tm tm = {0};
	unsigned long long v;
	const char *end;
	char *e;

	if (!s || !*s)
		return -EINVAL;
	if (strchr(s, '-')) {
		end = strptime(s, "%Y-%m-%d", &tm);
		if (!end || *end)
			return -EINVAL;
		*ret = timegm(&tm);
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno || *e || v > (unsigned long long)INT64_MAX / 2)
		return -EINVAL;
	*ret = (time_t)v;
	return 0;
}

int snpctl_parse_product(const char *s, enum snp_product *ret)
{
	return snp_product_from_string(s, ret);
}
