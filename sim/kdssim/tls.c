/* SPDX-License-Identifier: Apache-2.0 */
/* sim-tls: a throwaway HTTPS identity for snp-kdssim, so clients can be tested with a real
 * TLS handshake against a CA file they are told about. Not for anything but tests. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "util.h"

#define TLS_DAYS 3650

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		       long serial)
{
	X509 *x = X509_new();
	time_t now = time(NULL);
	bool ca = !issuer;
	int r = 0;

	if (!x)
		return NULL;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca ? x : issuer)) ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), TLS_DAYS, 0, &now))
		goto fail;
	if (ca)
		r = sim_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	else
		r = sim_add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
	if (r == 0)
		r = sim_add_ext(x, ca ? x : issuer, NID_key_usage,
				ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	if (r == 0)
		r = sim_add_ext(x, ca ? x : issuer, NID_subject_key_identifier, "hash");
	if (r == 0 && !ca)
		r = sim_add_ext(x, issuer, NID_subject_alt_name,
				"DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1");
	if (r == 0 && !ca)
		r = sim_add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	if (r < 0 || X509_sign(x, ca ? key : issuer_key, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	FILE *f;
	int ok;

	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		 : PEM_write_X509(f, cert);
	if (fclose(f) != 0 || !ok)
		return -EIO;
	return 0;
}

static int read_all(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > 65536 ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return -EBADMSG;
	}
	buf = malloc((size_t)n + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return -EIO;
	}
	fclose(f);
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

static int generate(const char *tdir)
{
	char path[4200];
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *srv = NULL;
	int r = -EIO;

	if (!ca_key || !key)
		goto out;
	ca = make_cert("snp-kdssim test CA", ca_key, NULL, NULL, 1);
	srv = ca ? make_cert("localhost", key, ca, ca_key, 2) : NULL;
	if (!srv)
		goto out;
	snprintf(path, sizeof(path), "%s/ca.key", tdir);
	if ((r = write_pem(path, ca_key, NULL)) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/server.key", tdir);
	if ((r = write_pem(path, key, NULL)) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/server.pem", tdir);
	if ((r = write_pem(path, NULL, srv)) < 0)
		goto out;
	/* ca.pem last: its presence means the set is complete. */
	snprintf(path, sizeof(path), "%s/ca.pem", tdir);
	r = write_pem(path, NULL, ca);
out:
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	return r;
}

int sim_tls_prepare(const char *dir, char **ret_cert_pem, char **ret_key_pem, char **ret_ca_path)
{
	char tdir[4096], path[4200];
	char *cert = NULL, *key = NULL, *ca_path;
	int r;

	if ((size_t)snprintf(tdir, sizeof(tdir), "%s/tls", dir) >= sizeof(tdir))
		return -ENAMETOOLONG;
	if (mkdir(tdir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/ca.pem", tdir);
	if (access(path, F_OK) < 0 && (r = generate(tdir)) < 0)
		return r;
	ca_path = strdup(path);
	if (!ca_path)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/server.pem", tdir);
	r = read_all(path, &cert);
	if (r >= 0) {
		snprintf(path, sizeof(path), "%s/server.key", tdir);
		r = read_all(path, &key);
	}
	if (r < 0) {
		free(cert);
		free(ca_path);
		return r;
	}
	*ret_cert_pem = cert;
	*ret_key_pem = key;
	*ret_ca_path = ca_path;
	return 0;
}
