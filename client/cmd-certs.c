/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-certs: 'certs build' and 'certs show' for the GHCB certificate table file. The table
 * codec is proto/certtable; this module converts inputs to DER and writes files. */
#include "snpctl.h"

#include <getopt.h>
#include <stdio.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certs.h"
#include "certtable.h"

struct der_blob {
	uint8_t *data; /* owned */
	size_t len;
};

static void der_blob_done(struct der_blob *b)
{
	free(b->data);
	*b = (struct der_blob){NULL, 0};
}

static void x509_crl_freep(X509_CRL **p)
{
	X509_CRL_free(*p);
}

/* A CRL given as DER or PEM, re-encoded as DER (which also proves it parses). */
static int load_crl_der(const char *path, struct der_blob *ret)
{
	_cleanup_(freep) uint8_t *buf = NULL;
	_cleanup_(x509_crl_freep) X509_CRL *crl = NULL;
	unsigned char *der = NULL;
	size_t len;
	int r, n;

	r = snpctl_read_file(path, SNPCTL_MAX_FILE, &buf, &len);
	if (r < 0)
		return r;
	if (len > INT_MAX)
		return -EMSGSIZE;
	if (memmem(buf, len, "-----BEGIN", 10)) {
		BIO *bio = BIO_new_mem_buf(buf, (int)len);
		if (!bio)
			return -ENOMEM;
		crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		const unsigned char *p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		if (crl && p != buf + len) /* trailing garbage */
			return -EBADMSG;
	}
	if (!crl)
		return -EBADMSG;
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0)
		return -EBADMSG;
	ret->data = malloc((size_t)n);
	if (!ret->data) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	memcpy(ret->data, der, (size_t)n);
	ret->len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static int load_cert_der(const char *path, enum certtable_kind kind, struct der_blob *ret)
{
	_cleanup_(snpctl_x509_freep) X509 *x = NULL;
	struct certs_amd_ext ext;
	int r;

	r = snpctl_load_cert(path, &x);
	if (r < 0)
		return r;
	/* Catch swapped arguments: a VCEK names its chip, a VLEK does not. */
	if (kind == CERTTABLE_VCEK || kind == CERTTABLE_VLEK) {
		r = certs_amd_ext_parse(x, &ext);
		if (r < 0)
			return r;
		if ((kind == CERTTABLE_VCEK) != (ext.hwid_len > 0))
			return -ENOKEY;
	}
	return certs_to_der(x, &ret->data, &ret->len);
}

/* The KDS cert_chain file: exactly two certificates, the ASK (or ASVK) then the ARK. */
static int load_chain_der(const char *path, struct der_blob *ret_ask, struct der_blob *ret_ark)
{
	_cleanup_(snpctl_x509_stack_freep) STACK_OF(X509) *chain = NULL;
	X509 *ask, *ark;
	int r;

	r = snpctl_load_chain(path, &chain);
	if (r < 0)
		return r;
	r = certs_kds_chain_pair(chain, &ask, &ark);
	if (r < 0)
		return r;
	r = certs_to_der(ask, &ret_ask->data, &ret_ask->len);
	if (r < 0)
		return r;
	return certs_to_der(ark, &ret_ark->data, &ret_ark->len);
}

int snpctl_certs_build(int argc, char **argv)
{
	static const struct option options[] = {
		{"ark", required_argument, NULL, 'A'},	  {"ask", required_argument, NULL, 'S'},
		{"vcek", required_argument, NULL, 'V'},	  {"vlek", required_argument, NULL, 'L'},
		{"crl", required_argument, NULL, 'C'},	  {"chain", required_argument, NULL, 'c'},
		{"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0},
	};
	/* Leaf first, then the issuers, then the CRL. */
	static const struct {
		enum certtable_kind kind;
		const char *option;
	} order[] = {
		{CERTTABLE_VCEK, "--vcek"}, {CERTTABLE_VLEK, "--vlek"}, {CERTTABLE_ASK, "--ask"},
		{CERTTABLE_ARK, "--ark"},   {CERTTABLE_CRL, "--crl"},
	};
	const char *paths[ELEMENTSOF(order)] = {0}, *out = NULL, *chain = NULL;
	struct der_blob blobs[ELEMENTSOF(order)] = {0};
	struct certtable_entry entries[ELEMENTSOF(order)];
	_cleanup_(freep) uint8_t *table = NULL;
	size_t n = 0, table_len;
	int c, r, ret = SNPCTL_EXIT_FAIL;

	while ((c = snpctl_getopt(argc, argv, ":o:", options)) > 0) {
		size_t slot;

		switch (c) {
		case 'V':
			slot = 0;
			break;
		case 'L':
			slot = 1;
			break;
		case 'S':
			slot = 2;
			break;
		case 'A':
			slot = 3;
			break;
		case 'C':
			slot = 4;
			break;
		case 'o':
			out = optarg;
			continue;
		case 'c':
			chain = optarg;
			continue;
		default:
			continue; /* not in the table */
		}
		if (paths[slot])
			return snpctl_usage_error(argv[0], "%s given twice", order[slot].option);
		paths[slot] = optarg;
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (optind != argc)
		return snpctl_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (!out)
		return snpctl_usage_error(argv[0], "-o TABLE is required");
	if (chain && (paths[2] || paths[3]))
		return snpctl_usage_error(argv[0], "--chain replaces --ask and --ark");
	if (!chain && (!paths[3] || !paths[2]))
		return snpctl_usage_error(argv[0], "--ark and --ask (or --chain) are required");
	if (!paths[0] && !paths[1])
		return snpctl_usage_error(argv[0], "--vcek or --vlek is required");

	if (chain) {
		r = load_chain_der(chain, &blobs[2], &blobs[3]);
		if (r < 0) {
			snpctl_fail(r, "load --chain", "%s: expected the ASK then the ARK", chain);
			goto out;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		if (!paths[i] && !blobs[i].data)
			continue;
		if (blobs[i].data)
			r = 0; /* from --chain */
		else if (order[i].kind == CERTTABLE_CRL)
			r = load_crl_der(paths[i], &blobs[i]);
		else
			r = load_cert_der(paths[i], order[i].kind, &blobs[i]);
		if (r < 0) {
			char step[32];
			snprintf(step, sizeof(step), "load %s", order[i].option);
			snpctl_fail(r, step, "%s", paths[i]);
			goto out;
		}
		entries[n] = (struct certtable_entry){.data = blobs[i].data,
						      .length = (uint32_t)blobs[i].len};
		memcpy(entries[n].guid, certtable_guid(order[i].kind), 16);
		n++;
	}

	r = certtable_build(entries, n, &table, &table_len);
	if (r < 0) {
		if (r == -E2BIG)
			snpctl_fail(r, "build table", "the table would exceed %d bytes",
				    CERTTABLE_MAX_SIZE);
		else
			snpctl_fail(r, "build table", NULL);
		goto out;
	}
	r = snpctl_write_file_atomic(out, table, table_len);
	if (r < 0) {
		snpctl_fail(r, "write table", "%s", out);
		goto out;
	}
	printf("wrote %s: %zu entries, %zu bytes (%zu pages)\n", out, n, table_len,
	       certtable_npages(table_len));
	ret = SNPCTL_EXIT_OK;
out:
	for (size_t i = 0; i < ELEMENTSOF(blobs); i++)
		der_blob_done(&blobs[i]);
	return ret;
}

static void guid_format(const uint8_t g[16], char out[37])
{
	static const char digits[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = digits[g[i] >> 4];
		out[j++] = digits[g[i] & 0xf];
	}
	out[j] = '\0';
}

static json_t *entry_json(const struct certtable_entry *e)
{
	_cleanup_(snpctl_x509_freep) X509 *x = NULL;
	enum certtable_kind kind = certtable_kind_from_guid(e->guid);
	uint8_t sha[32];
	char guid[37], cn[256];
	json_t *o = json_object();

	if (!o)
		return NULL;
	guid_format(e->guid, guid);
	json_object_set_new(o, "kind", json_string(certtable_kind_name(kind)));
	json_object_set_new(o, "guid", json_string(guid));
	json_object_set_new(o, "offset", json_integer(e->offset));
	json_object_set_new(o, "length", json_integer(e->length));

	if (kind != CERTTABLE_CRL && certs_parse(e->data, e->length, &x) == 0 &&
	    certs_fingerprint_sha256(x, sha) == 0) {
		json_object_set_new(o, "subject_cn",
				    json_string(snpctl_subject_cn(x, cn, sizeof(cn))));
		json_object_set_new(o, "sha256", snpctl_json_hex(sha, sizeof(sha)));
	} else {
		unsigned int n = sizeof(sha);
		json_object_set_new(o, "subject_cn", json_null());
		if (EVP_Digest(e->data, e->length, sha, &n, EVP_sha256(), NULL) == 1)
			json_object_set_new(o, "sha256", snpctl_json_hex(sha, sizeof(sha)));
		if (kind != CERTTABLE_CRL)
			json_object_set_new(o, "note", json_string("not a parsable certificate"));
	}
	return o;
}

int snpctl_certs_show(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	struct certtable_entry entries[CERTTABLE_MAX_ENTRIES];
	_cleanup_(freep) uint8_t *buf = NULL;
	_cleanup_(snpctl_json_decrefp) json_t *list = NULL;
	json_t *o, *e, *v;
	bool json = false;
	size_t len, n, i;
	int c, r;

	while ((c = snpctl_getopt(argc, argv, ":", options)) > 0) {
		if (c == 'j')
			json = true;
		else
			return snpctl_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (argc - optind != 1)
		return snpctl_usage_error(argv[0], "expected exactly one TABLE file");

	r = snpctl_read_file(argv[optind], SNPCTL_MAX_FILE, &buf, &len);
	if (r < 0)
		return snpctl_fail(r, "read table", "%s", argv[optind]);
	r = certtable_parse(buf, len, entries, ELEMENTSOF(entries), &n);
	if (r < 0)
		return snpctl_fail(r, "parse table", "%s, %zu bytes", argv[optind], len);

	list = json_array();
	if (!list)
		return snpctl_fail(-ENOMEM, "certs show", NULL);
	for (i = 0; i < n; i++) {
		e = entry_json(&entries[i]);
		if (!e || json_array_append_new(list, e) < 0)
			return snpctl_fail(-ENOMEM, "certs show", NULL);
	}

	if (json) {
		o = json_object();
		if (!o)
			return snpctl_fail(-ENOMEM, "certs show", NULL);
		json_object_set_new(o, "size", json_integer((json_int_t)len));
		json_object_set_new(o, "pages", json_integer((json_int_t)certtable_npages(len)));
		json_object_set(o, "entries", list);
		r = snpctl_json_print(o);
		if (r < 0)
			return snpctl_fail(r, "certs show", NULL);
		return SNPCTL_EXIT_OK;
	}

	printf("%s: %zu bytes (%zu pages), %zu entries\n", argv[optind], len, certtable_npages(len),
	       n);
	json_array_foreach(list, i, e)
	{
		printf("%-4s %s offset %lld length %lld\n",
		       json_string_value(json_object_get(e, "kind")),
		       json_string_value(json_object_get(e, "guid")),
		       (long long)json_integer_value(json_object_get(e, "offset")),
		       (long long)json_integer_value(json_object_get(e, "length")));
		v = json_object_get(e, "subject_cn");
		if (json_is_string(v))
			printf("     CN=%s\n", json_string_value(v));
		v = json_object_get(e, "note");
		if (json_is_string(v))
			printf("     %s\n", json_string_value(v));
		v = json_object_get(e, "sha256");
		if (json_is_string(v))
			printf("     sha256 %s\n", json_string_value(v));
	}
	return SNPCTL_EXIT_OK;
}
