/* SPDX-License-Identifier: Apache-2.0 */
/* snp-attestd: command line, configuration, and the manager's module list. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "confload.h"
#include "daemon-modules.h"
#include "log.h"
#include "manager.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: snp-attestd [OPTIONS]\n"
		"\n"
		"SEV-SNP attestation broker: serves KVM's guest requests over netlink, holds the\n"
		"certificate chain, administers the PSP.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s; drop-ins in FILE.d/*.conf)\n"
		"      --check-config  validate the configuration, print its normalised form, "
		"exit\n"
		"  -f, --foreground    log to stderr (the daemon never forks; for systemd parity)\n"
		"  -h, --help          this text\n"
		"      --version       print the version\n"
		"\n"
		"Exit codes: 0 clean stop, 1 runtime failure, 2 usage or configuration error.\n"
		"Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT drain and stop.\n",
		CONF_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 0x100, OPT_VERSION };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, OPT_CHECK},
		{"foreground", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{0},
	};
	const char *path = CONF_DEFAULT_PATH;
	bool required = false, check = false;
	struct manager *m = NULL;
	struct conf conf = {0};
	char err[512] = "";
	int c, r;

	while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			path = optarg;
			required = true;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case 'f':
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("snp-attestd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "snp-attestd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	log_setup();
	r = confload(path, required, &conf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "snp-attestd: configuration error: %s\n", err);
		return 2;
	}
	if (check) {
		char *text = conf_format(&conf);
		if (!text) {
			conf_done(&conf);
			return 1;
		}
		fputs(text, stdout);
		free(text);
		conf_done(&conf);
		return 0;
	}
	log_set_level_name(conf.log_level);

	r = manager_new(path, required, &conf, daemon_modules, &m);
	conf_done(&conf);
	if (r < 0) {
		log_error_errno(r, "Failed to set up");
		return 1;
	}
	r = manager_run(m);
	manager_free(m);
	return r;
}
