/* SPDX-License-Identifier: Apache-2.0 */
/* mkfixture: writes a simulated (non-AMD) chain, a VCEK, a signed report and a CRL for the snpctl
 * tests, using the KDS simulator's CA. Usage: snpctl-mkfixture DIR PRODUCT. Test helper only. */
#include <stdio.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ca.h"
#include "certs.h"
#include "report.h"
#include "util.h"

static int write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	ok = fwrite(buf, 1, len, f) == len;
	if (fclose(f) != 0 || !ok)
		return -EIO;
	return 0;
}

static int write_x509_der(const char *dir, const char *name, X509 *x)
{
	_cleanup_(freep) uint8_t *der = NULL;
	size_t len;
	int r;

	r = certs_to_der(x, &der, &len);
	if (r < 0)
		return r;
	return write_file(dir, name, der, len);
}

static int fail(const char *what, int r)
{
	fprintf(stderr, "mkfixture: %s: %s\n", what, snp_strerror(r));
	return 1;
}

int main(int argc, char **argv)
{
	struct sim_ca *ca = NULL;
	enum snp_product p;
	EVP_PKEY *key = NULL;
	X509 *vcek = NULL;
	X509_CRL *crl = NULL;
	struct report rep = {0};
	uint8_t buf[REPORT_SIZE], *crl_der = NULL;
	char cadir[4096], *chain = NULL;
	size_t chain_len, hwid_len;
	time_t now = time(NULL);
	int r, n, ret = 1;

	if (argc != 3 || snp_product_from_string(argv[2], &p) < 0) {
		fprintf(stderr, "usage: snpctl-mkfixture DIR milan|genoa|turin\n");
		return 2;
	}
	snprintf(cadir, sizeof(cadir), "%s/ca", argv[1]);
	r = sim_ca_open(cadir, p, &ca);
	if (r < 0)
		return fail("sim_ca_open", r);

	key = EVP_EC_gen("P-384");
	if (!key) {
		ret = fail("EVP_EC_gen", -ENOMEM);
		goto out;
	}

	/* A report shaped like real firmware's for the product (facts §4). */
	rep.version = p == SNP_PRODUCT_TURIN ? 5 : 3;
	rep.guest_svn = 7;
	rep.policy = 0x30000; /* SMT allowed, reserved bit 17 */
	rep.signature_algo = REPORT_SIG_ALGO_ECDSA_P384_SHA384;
	rep.signing_key = REPORT_SIGNING_KEY_VCEK;
	rep.platform_info = 0x25;
	for (size_t i = 0; i < sizeof(rep.report_data); i++)
		rep.report_data[i] = (uint8_t)i;
	memset(rep.measurement, 0xa5, sizeof(rep.measurement));
	switch (p) {
	case SNP_PRODUCT_MILAN:
		rep.cpuid_fam_id = 0x19, rep.cpuid_mod_id = 0x01;
		rep.reported_tcb = 0xdb18000000000004ull;
		break;
	case SNP_PRODUCT_GENOA:
		rep.cpuid_fam_id = 0x19, rep.cpuid_mod_id = 0x11;
		rep.reported_tcb = 0x1516000000000007ull;
		break;
	default:
		rep.cpuid_fam_id = 0x1a, rep.cpuid_mod_id = 0x02;
		rep.reported_tcb = 0x5100000004010101ull; /* fmc=1 bl=1 tee=1 snp=4 ucode=0x51 */
		rep.launch_mit_vector = rep.current_mit_vector = 0x3f;
		break;
	}
	rep.cpuid_step = 1;
	rep.current_tcb = rep.committed_tcb = rep.launch_tcb = rep.reported_tcb;
	rep.current_major = rep.committed_major = 1;
	rep.current_minor = rep.committed_minor = 55;
	rep.current_build = rep.committed_build = 40;
	hwid_len = snp_product_hwid_len(p);
	for (size_t i = 0; i < hwid_len; i++)
		rep.chip_id[i] = (uint8_t)(0x10 + i);

	r = report_serialise(&rep, buf);
	if (r >= 0)
		r = report_sign(buf, key);
	if (r < 0) {
		ret = fail("report", r);
		goto out;
	}
	r = sim_ca_issue_vcek(ca, key, rep.chip_id, hwid_len, rep.reported_tcb, now, &vcek);
	if (r < 0) {
		ret = fail("issue vcek", r);
		goto out;
	}
	r = sim_ca_chain_pem(ca, SIM_CA_VCEK, &chain, &chain_len);
	if (r < 0) {
		ret = fail("chain", r);
		goto out;
	}
	r = sim_ca_issue_crl(ca, SIM_CA_VCEK, now, &crl);
	if (r < 0) {
		ret = fail("crl", r);
		goto out;
	}
	n = i2d_X509_CRL(crl, &crl_der);
	if (n <= 0) {
		ret = fail("crl der", -EBADMSG);
		goto out;
	}

	if ((r = write_file(argv[1], "report.bin", buf, sizeof(buf))) < 0 ||
	    (r = write_x509_der(argv[1], "vcek.der", vcek)) < 0 ||
	    (r = write_x509_der(argv[1], "ark.der", sim_ca_ark(ca))) < 0 ||
	    (r = write_file(argv[1], "chain.pem", chain, chain_len)) < 0 ||
	    (r = write_file(argv[1], "crl.der", crl_der, (size_t)n)) < 0) {
		ret = fail("write", r);
		goto out;
	}
	ret = 0;
out:
	OPENSSL_free(crl_der);
	X509_CRL_free(crl);
	free(chain);
	X509_free(vcek);
	EVP_PKEY_free(key);
	sim_ca_free(ca);
	return ret;
}
