/* SPDX-License-Identifier: Apache-2.0 */
/* kvmsim verify: checks every report as a relying party would: signature with the VCEK from
 * the certificate table (or the one the simulated KDS issues), chain to the trusted ARK,
 * TCB and chip id. Holds no secrets beyond what KDS would hand out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "ca.h"
#include "certs.h"
#include "certtable.h"
#include "keys.h"
#include "kvmsim.h"
#include "report.h"
#include "util.h"

struct kvs_verifier {
	struct sim_state *state; /* borrowed */
	struct sim_ca *ca;	 /* owned */
	X509 *trust_ark;	 /* owned */
	enum snp_product product;
	X509 *vcek; /* owned: issued for vcek_tcb */
	uint64_t vcek_tcb;
};

static int load_pem(const char *path, X509 **ret)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f)
		return -errno;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return -EBADMSG;
	*ret = x;
	return 0;
}

int kvs_verifier_new(struct sim_state *state, const char *state_dir, enum snp_product p,
		     const char *trust_ark_pem, struct kvs_verifier **ret)
{
	struct kvs_verifier *v;
	char dir[4096];
	int r;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->state = state;
	v->product = p;
	/* snp-kdssim keeps its CA in STATE/kds: the same ARK/ASK a relying party gets. */
	snprintf(dir, sizeof(dir), "%s/kds", state_dir);
	r = sim_ca_open(dir, p, &v->ca);
	if (r < 0) {
		free(v);
		return r;
	}
	if (trust_ark_pem) {
		r = load_pem(trust_ark_pem, &v->trust_ark);
		if (r < 0) {
			kvs_verifier_free(v);
			return r;
		}
	} else {
		v->trust_ark = X509_dup(sim_ca_ark(v->ca));
		if (!v->trust_ark) {
			kvs_verifier_free(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	return 0;
}

void kvs_verifier_free(struct kvs_verifier *v)
{
	if (!v)
		return;
	X509_free(v->vcek);
	X509_free(v->trust_ark);
	if (v->ca)
		sim_ca_free(v->ca);
	free(v);
}

/* The VCEK KDS would hand out for this chip at tcb (what a relying party fetches when the
 * guest got no certificates). It is issued at now, the verification's own clock: a notBefore
 * read from a later second would make the new VCEK "not yet valid" to this very check. */
static int vcek_for(struct kvs_verifier *v, uint64_t tcb, time_t now, X509 **ret)
{
	struct sim_state_data d;
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *x = NULL;
	int r;

	if (v->vcek && v->vcek_tcb == tcb) {
		*ret = v->vcek;
		return 0;
	}
	r = sim_state_read(v->state, &d);
	if (r < 0)
		return r;
	r = sim_keys_vcek(d.secret, d.product, tcb, &priv);
	OPENSSL_cleanse(d.secret, sizeof(d.secret));
	if (r >= 0)
		r = sim_keys_public(priv, &pub);
	if (r >= 0)
		r = sim_ca_issue_vcek(v->ca, pub, d.chip_id, snp_product_hwid_len(d.product), tcb,
				      now, &x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(priv);
	if (r < 0)
		return r;
	X509_free(v->vcek);
	v->vcek = x;
	v->vcek_tcb = tcb;
	*ret = x;
	return 0;
}

static int parse_entry(const struct certtable_entry *e, X509 **ret)
{
	if (!e)
		return 0;
	return certs_parse(e->data, e->length, ret);
}

int kvs_verify_report(struct kvs_verifier *v, const uint8_t *report, size_t len,
		      const uint8_t *table, size_t table_len, const uint8_t nonce[64],
		      const char **ret_why)
{
	struct certs_verify_opts opts = {.extra_ark = v->trust_ark, .now = time(NULL)};
	struct certtable_entry e[CERTTABLE_MAX_ENTRIES];
	X509 *leaf = NULL, *ask = NULL, *ark = NULL;
	struct report rep;
	size_t n = 0;
	int r;

	r = report_parse(report, len, &rep);
	if (r < 0) {
		*ret_why = "report does not parse";
		return r;
	}
	if (memcmp(rep.report_data, nonce, sizeof(rep.report_data)) != 0) {
		*ret_why = "REPORT_DATA is not the guest's nonce";
		return -EBADMSG;
	}
	if (table) {
		r = certtable_parse(table, table_len, e, ELEMENTSOF(e), &n);
		if (r < 0) {
			*ret_why = "certificate table does not parse";
			return r;
		}
	}
	if (n == 0) {
		/* No certificates: fetch the VCEK for the reported TCB, as from KDS. */
		X509 *vcek;
		r = vcek_for(v, rep.reported_tcb, opts.now, &vcek);
		if (r < 0) {
			*ret_why = "cannot obtain the VCEK from the simulated KDS";
			return r;
		}
		r = certs_verify_report(report, len, vcek, sim_ca_signer(v->ca, SIM_CA_VCEK),
					sim_ca_ark(v->ca), &opts);
		if (r < 0)
			*ret_why = "report vs. the KDS VCEK chain";
		return r;
	}

	const struct certtable_entry *el = certtable_find(e, n, CERTTABLE_VCEK);
	enum sim_ca_line line = SIM_CA_VCEK;
	if (!el) {
		el = certtable_find(e, n, CERTTABLE_VLEK);
		line = SIM_CA_VLEK;
	}
	if (!el) {
		*ret_why = "certificate table has no VCEK or VLEK";
		return -ENOKEY;
	}
	r = parse_entry(el, &leaf);
	if (r >= 0)
		r = parse_entry(certtable_find(e, n, CERTTABLE_ASK), &ask);
	if (r >= 0)
		r = parse_entry(certtable_find(e, n, CERTTABLE_ARK), &ark);
	if (r < 0) {
		*ret_why = "certificate in the table does not parse";
		goto out;
	}
	/* Whatever the table leaves out, the relying party takes from KDS / its trust root. */
	r = certs_verify_report(report, len, leaf, ask ? ask : sim_ca_signer(v->ca, line),
				ark ? ark : v->trust_ark, &opts);
	if (r < 0)
		*ret_why = "report vs. the table's chain to the trusted ARK";
out:
	X509_free(leaf);
	X509_free(ask);
	X509_free(ark);
	return r;
}
