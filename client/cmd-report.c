/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-report: 'report show' and 'report verify'. Decoding and verification are proto/'s;
 * this module picks the inputs, orders the checks and names the step that failed. */
#include "snpctl.h"

#include <getopt.h>
#include <stdio.h>

#include "certs.h"
#include "report.h"

/* Layout used to decode TCBs when the product is unknown: every product before Turin shares
 * the Milan/Genoa layout, and report_product() already recognises Turin's chip id. */
#define FALLBACK_LAYOUT SNP_PRODUCT_MILAN

static json_t *tcb_json(uint64_t raw, enum snp_product p)
{
	struct tcb_version t;
	json_t *o = json_object();

	if (!o)
		return NULL;
	tcb_decode(raw, p, &t);
	json_object_set_new(o, "raw", snpctl_json_u64hex(raw));
	if (snp_product_has_fmc(p))
		json_object_set_new(o, "fmc", json_integer(t.fmc));
	json_object_set_new(o, "bootloader", json_integer(t.bootloader));
	json_object_set_new(o, "tee", json_integer(t.tee));
	json_object_set_new(o, "snp", json_integer(t.snp));
	json_object_set_new(o, "microcode", json_integer(t.microcode));
	return o;
}

struct bit_name {
	unsigned bit;
	const char *name;
};

/* POLICY and PLATFORM_INFO bits (facts §4). */
static const struct bit_name policy_bits[] = {
	{16, "smt"},
	{17, "reserved_must_be_one"},
	{18, "migrate_ma"},
	{19, "debug"},
	{20, "single_socket"},
	{21, "cxl_allow"},
	{22, "mem_aes_256_xts"},
	{23, "rapl_dis"},
	{24, "ciphertext_hiding_dram"},
	{25, "page_swap_disable"},
};

static const struct bit_name platform_bits[] = {
	{0, "smt_en"},
	{1, "tsme_en"},
	{2, "ecc_en"},
	{3, "rapl_dis"},
	{4, "ciphertext_hiding_dram_en"},
	{5, "alias_check_complete"},
	{6, "reserved_bit6"},
	{7, "sev_tio_en"},
};

static json_t *bits_json(uint64_t raw, const struct bit_name *bits, size_t n)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "raw", snpctl_json_u64hex(raw));
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, bits[i].name, json_boolean(raw >> bits[i].bit & 1));
	return o;
}

static const char *signing_key_name(uint8_t k)
{
	switch (k) {
	case REPORT_SIGNING_KEY_VCEK:
		return "VCEK";
	case REPORT_SIGNING_KEY_VLEK:
		return "VLEK";
	case REPORT_SIGNING_KEY_NONE:
		return "none";
	default:
		return "reserved";
	}
}

static json_t *version_json(uint8_t major, uint8_t minor, uint8_t build)
{
	char s[16];

	snprintf(s, sizeof(s), "%u.%u.%u", major, minor, build);
	return json_string(s);
}

#define SET_HEX(o, key, field) json_object_set_new(o, key, snpctl_json_hex(field, sizeof(field)))

static json_t *report_json(const struct report *r, enum snp_product product, bool product_known)
{
	enum snp_product layout = product_known ? product : FALLBACK_LAYOUT;
	json_t *o = json_object(), *signer, *sig, *policy;

	if (!o)
		return NULL;
	json_object_set_new(o, "product",
			    product_known ? json_string(snp_product_name(product)) : json_null());
	json_object_set_new(o, "tcb_layout",
			    json_string(snp_product_has_fmc(layout) ? "turin" : "milan/genoa"));
	json_object_set_new(o, "version", json_integer(r->version));
	json_object_set_new(o, "guest_svn", json_integer(r->guest_svn));

	policy = bits_json(r->policy, policy_bits, ELEMENTSOF(policy_bits));
	if (policy) {
		json_object_set_new(policy, "abi_major", json_integer((r->policy >> 8) & 0xff));
		json_object_set_new(policy, "abi_minor", json_integer(r->policy & 0xff));
	}
	json_object_set_new(o, "policy", policy);
	SET_HEX(o, "family_id", r->family_id);
	SET_HEX(o, "image_id", r->image_id);
	json_object_set_new(o, "vmpl", json_integer(r->vmpl));
	json_object_set_new(o, "signature_algo", json_integer(r->signature_algo));
	json_object_set_new(o, "current_tcb", tcb_json(r->current_tcb, layout));
	json_object_set_new(o, "platform_info",
			    bits_json(r->platform_info, platform_bits, ELEMENTSOF(platform_bits)));

	signer = json_object();
	if (signer) {
		json_object_set_new(signer, "raw", snpctl_json_u64hex(r->signer_info));
		json_object_set_new(signer, "author_key_en", json_boolean(r->author_key_en));
		json_object_set_new(signer, "mask_chip_key", json_boolean(r->mask_chip_key));
		json_object_set_new(signer, "signing_key",
				    json_string(signing_key_name(r->signing_key)));
	}
	json_object_set_new(o, "signer_info", signer);

	SET_HEX(o, "report_data", r->report_data);
	SET_HEX(o, "measurement", r->measurement);
	SET_HEX(o, "host_data", r->host_data);
	SET_HEX(o, "id_key_digest", r->id_key_digest);
	SET_HEX(o, "author_key_digest", r->author_key_digest);
	SET_HEX(o, "report_id", r->report_id);
	SET_HEX(o, "report_id_ma", r->report_id_ma);
	json_object_set_new(o, "reported_tcb", tcb_json(r->reported_tcb, layout));
	if (r->version >= 3) {
		json_object_set_new(o, "cpuid_fam_id", json_integer(r->cpuid_fam_id));
		json_object_set_new(o, "cpuid_mod_id", json_integer(r->cpuid_mod_id));
		json_object_set_new(o, "cpuid_step", json_integer(r->cpuid_step));
	} else {
		json_object_set_new(o, "cpuid_fam_id", json_null());
		json_object_set_new(o, "cpuid_mod_id", json_null());
		json_object_set_new(o, "cpuid_step", json_null());
	}
	SET_HEX(o, "chip_id", r->chip_id);
	json_object_set_new(o, "committed_tcb", tcb_json(r->committed_tcb, layout));
	json_object_set_new(o, "current_version",
			    version_json(r->current_major, r->current_minor, r->current_build));
	json_object_set_new(
		o, "committed_version",
		version_json(r->committed_major, r->committed_minor, r->committed_build));
	json_object_set_new(o, "launch_tcb", tcb_json(r->launch_tcb, layout));
	if (r->version >= 5) {
		json_object_set_new(o, "launch_mit_vector",
				    snpctl_json_u64hex(r->launch_mit_vector));
		json_object_set_new(o, "current_mit_vector",
				    snpctl_json_u64hex(r->current_mit_vector));
	} else {
		json_object_set_new(o, "launch_mit_vector", json_null());
		json_object_set_new(o, "current_mit_vector", json_null());
	}

	sig = json_object();
	if (sig) {
		SET_HEX(sig, "r", r->sig_r);
		SET_HEX(sig, "s", r->sig_s);
	}
	json_object_set_new(o, "signature", sig);
	return o;
}

static void print_scalar(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		fputs(json_string_value(v), stdout);
		break;
	case JSON_INTEGER:
		printf("%lld", (long long)json_integer_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", stdout);
		break;
	case JSON_FALSE:
		fputs("no", stdout);
		break;
	case JSON_NULL:
		fputs("-", stdout);
		break;
	default:
		fputs("?", stdout);
		break;
	}
}

/* The human form is rendered from the JSON object, so both list the same fields. Objects with
 * a "raw" member print it on their own line and the decoded members indented below. */
static void print_human(json_t *o)
{
	const char *key, *k2;
	json_t *v, *v2;

	json_object_foreach(o, key, v)
	{
		if (!json_is_object(v)) {
			printf("%-26s ", key);
			print_scalar(v);
			putchar('\n');
			continue;
		}
		printf("%-26s ", key);
		v2 = json_object_get(v, "raw");
		if (v2)
			print_scalar(v2);
		putchar('\n');
		json_object_foreach(v, k2, v2)
		{
			if (strcmp(k2, "raw") == 0)
				continue;
			printf("  %-24s ", k2);
			print_scalar(v2);
			putchar('\n');
		}
	}
}

int snpctl_report_show(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"product", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(freep) uint8_t *buf = NULL;
	enum snp_product product = SNP_PRODUCT_UNKNOWN;
	bool json = false, product_known = false;
	struct report r;
	json_t *o;
	size_t len;
	int c, ret;

	while ((c = snpctl_getopt(argc, argv, ":", options)) > 0) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'p':
			if (snpctl_parse_product(optarg, &product) < 0)
				return snpctl_usage_error(argv[0], "unknown product '%s'", optarg);
			product_known = true;
			break;
		}
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (argc - optind != 1)
		return snpctl_usage_error(argv[0], "expected exactly one report FILE");

	ret = snpctl_read_file(argv[optind], SNPCTL_MAX_FILE, &buf, &len);
	if (ret < 0)
		return snpctl_fail(ret, "read report", "%s", argv[optind]);
	ret = report_parse(buf, len, &r);
	if (ret < 0)
		return snpctl_fail(ret, "parse report", "%s, %zu bytes", argv[optind], len);

	if (!product_known && report_product(&r, &product) == 0)
		product_known = true;

	o = report_json(&r, product, product_known);
	if (!o)
		return snpctl_fail(-ENOMEM, "report show", NULL);
	if (json)
		ret = snpctl_json_print(o);
	else {
		print_human(o);
		json_decref(o);
		ret = 0;
	}
	if (ret < 0)
		return snpctl_fail(ret, "report show", NULL);
	return SNPCTL_EXIT_OK;
}

struct verify_args {
	const char *report, *leaf, *chain, *ark, *product;
	time_t now;
	bool json;
};

/* Loads --chain (ASK then ARK; or just the ASK when --ark supplies the root) and --ark. */
static int load_chain_args(const char *chain_path, const char *ark_path, X509 **ret_ask,
			   X509 **ret_ark, X509 **ret_extra)
{
	_cleanup_(snpctl_x509_stack_freep) STACK_OF(X509) *chain = NULL;
	_cleanup_(snpctl_x509_freep) X509 *extra = NULL;
	int r, n;

	if (ark_path) {
		r = snpctl_load_cert(ark_path, &extra);
		if (r < 0)
			return snpctl_fail(r, "load --ark", "%s", ark_path);
	}
	r = snpctl_load_chain(chain_path, &chain);
	if (r < 0)
		return snpctl_fail(r, "load --chain", "%s", chain_path);
	n = sk_X509_num(chain);
	if (n == 2 || (n == 1 && extra)) {
		*ret_ask = sk_X509_shift(chain);
		*ret_ark = n == 2 ? sk_X509_shift(chain) : X509_dup(extra);
		if (!*ret_ask || !*ret_ark) {
			X509_free(*ret_ask);
			X509_free(*ret_ark);
			return snpctl_fail(-ENOMEM, "load --chain", NULL);
		}
		*ret_extra = TAKE_PTR(extra);
		return 0;
	}
	return snpctl_fail(-EBADMSG, "load --chain",
			   "%s holds %d certificates; expected the ASK then the ARK%s", chain_path,
			   n, extra ? ", or only the ASK" : "");
}

/* After a check said -EKEYEXPIRED: names the first certificate (leaf, ASK, ARK) outside its
 * validity and the bound it misses, e.g. "VCEK 'SEV-VCEK' expired: notAfter ... UTC". */
static const char *name_invalid(X509 *leaf, X509 *ask, X509 *ark, time_t now, char *buf,
				size_t size)
{
	struct certs_amd_ext ext;
	const char *leaf_role = "leaf";
	struct {
		X509 *x;
		const char *role;
	} c[] = {{leaf, NULL}, {ask, "ASK"}, {ark, "ARK"}};
	char why[128], cn[128];

	if (leaf && certs_amd_ext_parse(leaf, &ext) == 0)
		leaf_role = ext.hwid_len == 0 ? "VLEK" : "VCEK";
	c[0].role = leaf_role;
	for (size_t i = 0; i < ELEMENTSOF(c); i++)
		if (c[i].x && certs_check_validity(c[i].x, now, why, sizeof(why)) == -EKEYEXPIRED) {
			snprintf(buf, size, "%s '%s' %s", c[i].role,
				 snpctl_subject_cn(c[i].x, cn, sizeof(cn)), why);
			return buf;
		}
	snprintf(buf, size, "no certificate names the bound");
	return buf;
}

static const char *ext_match_note(bool vlek)
{
	/* A VLEK names no chip, so only its TCB is compared. */
	return vlek ? "TCB matches" : "TCB and chip id match";
}

/* Describes the root that the successful chain check ended in. */
static const char *root_note(X509 *ark)
{
	enum snp_product p;

	if (certs_ark_pinned(ark, &p) == 0)
		return "";
	return " (trusted root: supplied --ark, not an AMD root)";
}

static int parse_verify_options(int argc, char **argv, bool need_report, struct verify_args *a)
{
	static const struct option options[] = {
		{"vcek", required_argument, NULL, 'v'},
		{"vlek", required_argument, NULL, 'v'},
		{"chain", required_argument, NULL, 'c'},
		{"ark", required_argument, NULL, 'a'},
		{"product", required_argument, NULL, 'p'},
		{"at", required_argument, NULL, 't'},
		{"no-time-check", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	bool no_time = false, have_at = false;
	enum snp_product p;
	int c;

	*a = (struct verify_args){.now = time(NULL)};
	while ((c = snpctl_getopt(argc, argv, ":", options)) > 0) {
		switch (c) {
		case 'v':
			if (a->leaf)
				return snpctl_usage_error(argv[0], "--vcek/--vlek given twice");
			a->leaf = optarg;
			break;
		case 'c':
			a->chain = optarg;
			break;
		case 'a':
			a->ark = optarg;
			break;
		case 'p':
			if (!need_report)
				return snpctl_usage_error(argv[0], "unknown option '--product'");
			if (snpctl_parse_product(optarg, &p) < 0)
				return snpctl_usage_error(argv[0], "unknown product '%s'", optarg);
			a->product = optarg;
			break;
		case 't':
			if (snpctl_parse_time(optarg, &a->now) < 0)
				return snpctl_usage_error(argv[0], "bad --at time '%s'", optarg);
			have_at = true;
			break;
		case 'n':
			no_time = true;
			break;
		case 'j':
			a->json = true;
			break;
		}
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (no_time && have_at)
		return snpctl_usage_error(argv[0], "--at and --no-time-check exclude each other");
	if (no_time)
		a->now = 0;
	if (a->ark && !a->chain)
		return snpctl_usage_error(argv[0], "--ark needs --chain (the ASK it issued)");
	if (need_report) {
		if (argc - optind != 1)
			return snpctl_usage_error(argv[0], "expected exactly one report FILE");
		a->report = argv[optind];
		if (!a->leaf)
			return snpctl_usage_error(argv[0], "--vcek CERT is required");
	} else {
		if (argc - optind != 0)
			return snpctl_usage_error(argv[0], "unexpected argument '%s'",
						  argv[optind]);
		if (!a->chain)
			return snpctl_usage_error(argv[0], "--chain PEM is required");
	}
	return 0;
}

/* "root": "amd" (a pinned AMD ARK), "supplied" (--ark, not AMD's) or null (no --chain). */
static json_t *root_json(X509 *ark)
{
	enum snp_product p;

	if (!ark)
		return json_null();
	return json_string(certs_ark_pinned(ark, &p) == 0 ? "amd" : "supplied");
}

/* --json of a successful report verify; failures go to stderr as without --json. */
static int verify_json(const struct report *r, enum snp_product product, const char *product_src,
		       bool vlek, X509 *ark)
{
	json_t *o =
		json_pack("{s:b, s:i, s:s, s:s, s:s, s:b, s:b, s:o}", "ok", 1, "version",
			  (int)r->version, "product", snp_product_name(product), "product_source",
			  product_src, "signing_key", vlek ? "VLEK" : "VCEK", "chip_id_checked",
			  !vlek, "chain_checked", ark != NULL, "root", root_json(ark));

	return snpctl_json_print(o) < 0 ? SNPCTL_EXIT_FAIL : SNPCTL_EXIT_OK;
}

int snpctl_report_verify(int argc, char **argv)
{
	_cleanup_(snpctl_x509_freep) X509 *leaf = NULL, *ask = NULL, *ark = NULL, *extra = NULL;
	_cleanup_(freep) uint8_t *buf = NULL;
	enum snp_product product, chain_product;
	struct certs_amd_ext ext;
	struct verify_args a;
	struct certs_verify_opts opts;
	struct report r;
	EVP_PKEY *pub;
	bool leaf_is_vlek;
	char product_src[64], why[256];
	size_t len;
	int ret;

	ret = parse_verify_options(argc, argv, true, &a);
	if (ret != 0)
		return ret;

	ret = snpctl_read_file(a.report, SNPCTL_MAX_FILE, &buf, &len);
	if (ret < 0)
		return snpctl_fail(ret, "read report", "%s", a.report);
	ret = report_parse(buf, len, &r);
	if (ret < 0)
		return snpctl_fail(ret, "parse report", "%s, %zu bytes", a.report, len);
	ret = snpctl_load_cert(a.leaf, &leaf);
	if (ret < 0)
		return snpctl_fail(ret, "load --vcek", "%s", a.leaf);
	if (a.chain) {
		ret = load_chain_args(a.chain, a.ark, &ask, &ark, &extra);
		if (ret != 0)
			return ret;
	}

	/* The product decides the TCB layout and the hwID length. */
	if (a.product) {
		(void)snpctl_parse_product(a.product, &product);
		snprintf(product_src, sizeof(product_src), "--product");
	} else if (report_product(&r, &product) == 0) {
		snprintf(product_src, sizeof(product_src), "report CPUID");
	} else if (snpctl_leaf_product(leaf, &product) == 0) {
		snprintf(product_src, sizeof(product_src), "certificate productName");
	} else
		return snpctl_fail(
			-ENOENT, "product",
			"neither the report nor the certificate names it; use --product");

	/* Which key signed: the report says, the certificate must agree. */
	ret = certs_amd_ext_parse(leaf, &ext);
	if (ret < 0)
		return snpctl_fail(ret, "certificate extensions", "%s", a.leaf);
	leaf_is_vlek = ext.hwid_len == 0;
	if (r.signing_key == REPORT_SIGNING_KEY_NONE)
		return snpctl_fail(-ENOKEY, "signing key", "the report is unsigned (key 'none')");
	if ((r.signing_key == REPORT_SIGNING_KEY_VLEK) != leaf_is_vlek)
		return snpctl_fail(-ENOKEY, "signing key",
				   "the report is signed by a %s but the certificate is a %s",
				   signing_key_name(r.signing_key), leaf_is_vlek ? "VLEK" : "VCEK");

	pub = X509_get0_pubkey(leaf);
	if (!pub)
		return snpctl_fail(-EBADMSG, "signature", "certificate has no usable public key");
	ret = report_verify_signature(buf, len, pub);
	if (ret < 0)
		return snpctl_fail(ret, "signature", "report %s, key from %s", a.report, a.leaf);

	ret = certs_check_report(leaf, &r, product);
	if (ret < 0)
		return snpctl_fail(ret, "certificate vs report", "%s TCB/chip id, product %s",
				   leaf_is_vlek ? "VLEK" : "VCEK", snp_product_name(product));

	if (!a.chain) {
		ret = a.now ? certs_check_validity(leaf, a.now, NULL, 0) : 0;
		if (ret < 0)
			return snpctl_fail(ret, "validity", "%s; %s", a.leaf,
					   name_invalid(leaf, NULL, NULL, a.now, why, sizeof(why)));
		if (a.json)
			return verify_json(&r, product, product_src, leaf_is_vlek, NULL);
		printf("OK: report v%u (%s, from %s) signed by the %s; %s; "
		       "no --chain, so the %s was not checked against an AMD root\n",
		       r.version, snp_product_name(product), product_src,
		       leaf_is_vlek ? "VLEK" : "VCEK", ext_match_note(leaf_is_vlek),
		       leaf_is_vlek ? "VLEK" : "VCEK");
		return SNPCTL_EXIT_OK;
	}

	opts = (struct certs_verify_opts){.extra_ark = extra, .now = a.now};
	ret = certs_verify_chain(leaf, ask, ark, &opts, &chain_product);
	if (ret == -EKEYEXPIRED)
		return snpctl_fail(ret, "chain", "%s; chain file %s",
				   name_invalid(leaf, ask, ark, a.now, why, sizeof(why)), a.chain);
	if (ret < 0)
		return snpctl_fail_verify(ret, "chain", "%s", a.chain);
	if (chain_product != product)
		return snpctl_fail_verify(-EXDEV, "chain", "chain is for %s, report is for %s",
					  snp_product_name(chain_product),
					  snp_product_name(product));

	if (a.json)
		return verify_json(&r, product, product_src, leaf_is_vlek, ark);
	printf("OK%s: report v%u (%s) signed by the %s; %s; chain to %s\n", root_note(ark),
	       r.version, snp_product_name(product), leaf_is_vlek ? "VLEK" : "VCEK",
	       ext_match_note(leaf_is_vlek),
	       certs_ark_pinned(ark, &chain_product) == 0 ? "the pinned AMD ARK"
							  : "the supplied --ark");
	return SNPCTL_EXIT_OK;
}

int snpctl_cert_verify(int argc, char **argv)
{
	_cleanup_(snpctl_x509_freep) X509 *leaf = NULL, *ask = NULL, *ark = NULL, *extra = NULL;
	struct certs_verify_opts opts;
	enum snp_product product, pinned;
	struct verify_args a;
	char ask_cn[128], ark_cn[128], leaf_cn[128], why[256];
	int ret;

	ret = parse_verify_options(argc, argv, false, &a);
	if (ret != 0)
		return ret;
	ret = load_chain_args(a.chain, a.ark, &ask, &ark, &extra);
	if (ret != 0)
		return ret;
	if (a.leaf) {
		ret = snpctl_load_cert(a.leaf, &leaf);
		if (ret < 0)
			return snpctl_fail(ret, "load --vcek", "%s", a.leaf);
	}

	opts = (struct certs_verify_opts){.extra_ark = extra, .now = a.now};
	ret = certs_verify_chain(leaf, ask, ark, &opts, &product);
	if (ret == -EKEYEXPIRED)
		return snpctl_fail(ret, "chain", "%s; chain file %s%s%s",
				   name_invalid(leaf, ask, ark, a.now, why, sizeof(why)), a.chain,
				   a.leaf ? " with " : "", a.leaf ? a.leaf : "");
	if (ret < 0)
		return snpctl_fail_verify(ret, "chain", "%s%s%s", a.chain, a.leaf ? " with " : "",
					  a.leaf ? a.leaf : "");

	if (a.json) {
		json_t *o = json_pack(
			"{s:b, s:s, s:s, s:s, s:o, s:o}", "ok", 1, "product",
			snp_product_name(product), "ask_cn",
			snpctl_subject_cn(ask, ask_cn, sizeof(ask_cn)), "ark_cn",
			snpctl_subject_cn(ark, ark_cn, sizeof(ark_cn)), "root", root_json(ark),
			"leaf_cn",
			leaf ? json_string(snpctl_subject_cn(leaf, leaf_cn, sizeof(leaf_cn)))
			     : json_null());
		return snpctl_json_print(o) < 0 ? SNPCTL_EXIT_FAIL : SNPCTL_EXIT_OK;
	}
	printf("OK%s: %s chain %s -> %s", root_note(ark), snp_product_name(product),
	       snpctl_subject_cn(ask, ask_cn, sizeof(ask_cn)),
	       snpctl_subject_cn(ark, ark_cn, sizeof(ark_cn)));
	printf(" (%s)", certs_ark_pinned(ark, &pinned) == 0 ? "pinned AMD root" : "supplied --ark");
	if (leaf)
		printf("; %s issued by %s", snpctl_subject_cn(leaf, leaf_cn, sizeof(leaf_cn)),
		       ask_cn);
	putchar('\n');
	return SNPCTL_EXIT_OK;
}
