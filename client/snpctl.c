/* SPDX-License-Identifier: Apache-2.0 */
/* snpctl: command-line entry point and the command table. Offline commands only need files;
 * online ones talk to snp-attestd over the control socket. */
#include "snpctl.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "cmd-rotation.h"
#include "ctl-client.h"
#include "kds.h"

/* The help texts are laid out as they print. */
/* clang-format off */
#define EXIT_CODES_HELP                                                                            \
	"Exit status: 0 success; 1 verification or operation failed, or was refused (the reason is\n"\
	"printed on stderr); 2 usage error; 3 snp-attestd is not running or cannot be reached.\n"

const struct snpctl_command snpctl_commands[] = {
	{
		"report", "show", snpctl_report_show,
		"print every field of an attestation report",
		"Usage: snpctl report show FILE [--json] [--product NAME]\n"
		"\n"
		"Prints every field of the ATTESTATION_REPORT in FILE (1184 bytes, as returned by the\n"
		"firmware). Byte arrays are printed in hex; TCB values are decoded in the layout of the\n"
		"report's product (from CPUID, version 3 and later).\n"
		"\n"
		"  --json            print one JSON object with the same fields\n"
		"  --product NAME    Milan, Genoa or Turin: the product for decoding TCBs, needed for\n"
		"                    version 2 reports, which carry no CPUID (default: guess, else the\n"
		"                    Milan/Genoa layout)\n"
		"  -h, --help        this text\n",
		false,
	},
	{
		"report", "verify", snpctl_report_verify,
		"verify a report's signature, its VCEK/VLEK and optionally the chain",
		"Usage: snpctl report verify FILE --vcek CERT [--chain PEM] [--ark PEM] [options]\n"
		"                            [--json]\n"
		"\n"
		"Checks that the report in FILE is signed by CERT (a VCEK or a VLEK, DER or PEM), that\n"
		"CERT's TCB and hwID extensions match the report's REPORTED_TCB and CHIP_ID, and with\n"
		"--chain that CERT is issued by the ASK/ASVK in PEM, which is issued by a pinned AMD\n"
		"ARK (Milan, Genoa or Turin). Prints a line starting with 'OK' only when all of this\n"
		"holds; otherwise the failed step and the reason on stderr.\n"
		"\n"
		"  --vcek CERT       the signing certificate (--vlek is accepted as a synonym)\n"
		"  --chain PEM       the KDS cert_chain file: ASK (or ASVK) then ARK; the ARK may be\n"
		"                    left out when --ark is given\n"
		"  --ark PEM         an extra trusted root (e.g. the simulator's ARK); the output says\n"
		"                    when this non-AMD root was the one used\n"
		"  --product NAME    product for version 2 reports (default: from the certificate)\n"
		"  --at TIME         check certificate validity at TIME (seconds since the epoch or\n"
		"                    YYYY-MM-DD) instead of now\n"
		"  --no-time-check   do not check certificate validity periods\n"
		"  --json            on success print a JSON object (ok, version, product,\n"
		"                    product_source, signing_key, chip_id_checked, chain_checked,\n"
		"                    root: \"amd\", \"supplied\" or null)\n"
		"  -h, --help        this text\n",
		false,
	},
	{
		"cert", "verify", snpctl_cert_verify,
		"verify a KDS certificate chain and optionally a VCEK/VLEK",
		"Usage: snpctl cert verify --chain PEM [--vcek CERT] [--ark PEM] [--at TIME]\n"
		"                          [--no-time-check] [--json]\n"
		"\n"
		"Checks that the ASK/ASVK in PEM is signed by the ARK and that the ARK is one of the\n"
		"pinned AMD roots (or the --ark root); with --vcek, also that CERT is issued by the\n"
		"ASK/ASVK and names the same product. Prints 'OK' and the product on success.\n"
		"\n"
		"  --chain PEM       KDS cert_chain: ASK (or ASVK) then ARK\n"
		"  --vcek CERT       a VCEK or VLEK, DER or PEM (--vlek is a synonym)\n"
		"  --ark PEM         an extra trusted root (e.g. the simulator's ARK)\n"
		"  --at TIME         check validity at TIME (epoch seconds or YYYY-MM-DD), not now\n"
		"  --no-time-check   do not check validity periods\n"
		"  --json            on success print a JSON object (ok, product, ask_cn, ark_cn,\n"
		"                    leaf_cn, root: \"amd\" or \"supplied\")\n"
		"  -h, --help        this text\n",
		false,
	},
	{
		"certs", "build", snpctl_certs_build,
		"write a GHCB certificate table from certificate files",
		"Usage: snpctl certs build (--ark F --ask F | --chain PEM) (--vcek F | --vlek F)...\n"
		"                          [--crl F] -o TABLE\n"
		"\n"
		"Builds the certificate table served with extended guest requests: one 24-byte entry\n"
		"(GUID, offset, length) per item, a zero terminator, then the items back to back.\n"
		"Certificates may be DER or PEM and are stored as DER; the CRL likewise. The table may\n"
		"not exceed 16 KiB (the Linux guest's limit). TABLE is written atomically.\n"
		"\n"
		"  --ark F, --ask F  the root and the intermediate (ASK, or ASVK for a VLEK)\n"
		"  --chain PEM       instead of --ask and --ark: the KDS cert_chain (ASK then ARK)\n"
		"  --vcek F          the VCEK (at least one of --vcek and --vlek)\n"
		"  --vlek F          the VLEK\n"
		"  --crl F           the KDS CRL (DER or PEM)\n"
		"  -o, --output TABLE  the file to write\n"
		"  -h, --help        this text\n",
		false,
	},
	{
		"certs", "show", snpctl_certs_show,
		"list the entries of a GHCB certificate table",
		"Usage: snpctl certs show TABLE [--json]\n"
		"\n"
		"Lists each entry of the certificate table: its kind (from the GUID), the GUID, offset\n"
		"and length, and for certificates the subject CN and the SHA-256 of the DER.\n"
		"\n"
		"  --json            print a JSON object {\"size\":..,\"entries\":[..]}\n"
		"  -h, --help        this text\n",
		false,
	},
	{
		"kds-url", NULL, snpctl_kds_url,
		"print the AMD KDS URL for a VCEK, chain or CRL",
		"Usage: snpctl kds-url --product NAME [--hwid HEX --tcb TCB] [--kind KIND] [--vlek]\n"
		"                      [--base URL] [--json]\n"
		"\n"
		"Prints the KDS URL for a certificate. Nothing is fetched.\n"
		"\n"
		"  --product NAME    Milan, Genoa or Turin\n"
		"  --kind KIND       vcek (default), chain (the cert_chain: ASK then ARK) or crl\n"
		"  --hwid HEX        chip id: 64 bytes (128 hex digits), or 8 bytes for Turin (a full\n"
		"                    64-byte Turin chip id with zero tail is accepted); kind vcek only\n"
		"  --tcb TCB         reported TCB as 16 hex digits (the u64 value, optional 0x) or as\n"
		"                    bl=N,tee=N,snp=N,ucode=N[,fmc=N]; kind vcek only\n"
		"  --vlek            the VLEK variants: with kind vcek or chain, the VLEK cert_chain URL\n"
		"                    (ASVK then ARK); with kind crl, the VLEK CRL. VLEK leaf\n"
		"                    certificates themselves need CSP credentials and are not offered.\n"
		"  --base URL        KDS base URL, e.g. a mirror or the simulator; a trailing '/' is\n"
		"                    ignored (default " KDS_DEFAULT_BASE ")\n"
		"  --json            print a JSON object (url, product, kind, key)\n"
		"  -h, --help        this text\n",
		false,
	},
	{ "status", NULL, snpctl_status, "show the daemon's state", snpctl_help_status, true },
	{ "vm", "list", snpctl_vm_list, "list the VMs the daemon knows", snpctl_help_vm_list, true },
	{ "vm", "show", snpctl_vm_show, "show one VM's counters and quota", snpctl_help_vm_show, true },
	{ "quota", "get", snpctl_quota_get, "show a VM's quota", snpctl_help_quota_get, true },
	{ "quota", "set", snpctl_quota_set, "set a VM's quota (persisted)", snpctl_help_quota_set, true },
	{ "quota", "reset", snpctl_quota_reset, "put a VM back on the default quota",
	  snpctl_help_quota_reset, true },
	{ "quota", "list", snpctl_quota_list, "list the default and per-VM quotas",
	  snpctl_help_quota_list, true },
	{ "cert", "rotate", snpctl_cert_rotate, "rebuild the served chain and swap it in",
	  snpctl_help_cert_rotate, true },
	{ "cert", "show", snpctl_cert_show, "show the served chain", snpctl_help_cert_show, true },
	{ "cert", "export", snpctl_cert_export, "write the served chain into a directory",
	  snpctl_help_cert_export, true },
	{ "cert", "import", snpctl_cert_import, "import a chain from a directory (air-gapped)",
	  snpctl_help_cert_import, true },
	{ "cert", "fetch", snpctl_cert_fetch, "revalidate the chain with KDS now",
	  snpctl_help_cert_fetch, true },
	{ "tcb", "show", snpctl_tcb_show, "show the current, reported and committed TCB",
	  snpctl_help_tcb_show, true },
	{ "tcb", "set", snpctl_tcb_set, "set the reported TCB (as a rotation)", snpctl_help_tcb_set,
	  true },
	{ "tcb", "commit", snpctl_tcb_commit, "commit the current TCB (as a rotation)",
	  snpctl_help_tcb_commit, true },
	{ "vlek", "load", snpctl_vlek_load, "load a wrapped VLEK hashstick (as a rotation)",
	  snpctl_help_vlek_load, true },
	{ "top", NULL, snpctl_top, "live per-VM view of requests, BUSY answers and quotas",
	  snpctl_help_top, true },
};

/* clang-format on */

const size_t snpctl_n_commands = ELEMENTSOF(snpctl_commands);

static void command_full_name(const struct snpctl_command *c, char *buf, size_t size)
{
	if (c->sub)
		snprintf(buf, size, "%s %s", c->name, c->sub);
	else
		snprintf(buf, size, "%s", c->name);
}

static void list_commands(FILE *f, bool online)
{
	char name[64];

	for (size_t i = 0; i < snpctl_n_commands; i++) {
		if (snpctl_commands[i].online != online)
			continue;
		command_full_name(&snpctl_commands[i], name, sizeof(name));
		fprintf(f, "  %-16s %s\n", name, snpctl_commands[i].summary);
	}
}

static void print_overview(FILE *f)
{
	fprintf(f,
		"Usage: snpctl [--socket PATH] [--json] COMMAND [ARGS...]\n"
		"       snpctl COMMAND --help\n"
		"       snpctl help COMMAND\n"
		"\n"
		"SEV-SNP attestation tool (snp-attestd %s).\n"
		"\nOffline commands (files only, no daemon needed):\n",
		PACKAGE_VERSION);
	list_commands(f, false);
	fprintf(f, "\nOnline commands (talk to snp-attestd over its control socket):\n");
	list_commands(f, true);
	fprintf(f,
		"\nGlobal options (also accepted after the command):\n"
		"  --socket PATH     the daemon's control socket (online commands; default from\n"
		"                    snp-attestd.conf, else /run/snp-attestd/control.sock)\n"
		"  --json            JSON output instead of text (every command that prints data,\n"
		"                    online or offline; not top or certs build)\n"
		"  -h, --help        this text; COMMAND --help for one command\n"
		"  --version         print the version\n"
		"\n" EXIT_CODES_HELP);
}

int snpctl_help_for(const char *full_name)
{
	char name[64];

	for (size_t i = 0; i < snpctl_n_commands; i++) {
		command_full_name(&snpctl_commands[i], name, sizeof(name));
		if (strcmp(name, full_name) == 0) {
			fputs(snpctl_commands[i].help, stdout);
			fputs("\n" EXIT_CODES_HELP, stdout);
			return SNPCTL_EXIT_OK;
		}
	}
	fprintf(stderr, "snpctl: help: unknown command '%s'\n\n", full_name);
	print_overview(stderr);
	return SNPCTL_EXIT_USAGE;
}

static bool is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

/* "snpctl report --help": the subcommands of one group. */
static int group_help(const char *group, FILE *f)
{
	char name[64];

	fprintf(f, "Usage: snpctl %s SUBCOMMAND [ARGS...]\n\nSubcommands:\n", group);
	for (size_t i = 0; i < snpctl_n_commands; i++) {
		if (strcmp(snpctl_commands[i].name, group) != 0)
			continue;
		command_full_name(&snpctl_commands[i], name, sizeof(name));
		fprintf(f, "  %-16s %s\n", name, snpctl_commands[i].summary);
	}
	fprintf(f, "\nRun 'snpctl %s SUBCOMMAND --help' for details.\n\n" EXIT_CODES_HELP, group);
	return SNPCTL_EXIT_OK;
}

/* Moves global options given before the command ("snpctl --json vm list") to just after the
 * command words, where the command's own parser reads them. Returns the new argc; usage errors
 * print and return -1. */
static int hoist_globals(int argc, char **argv, char **out)
{
	char *globals[4];
	int ng = 0, i = 1, n = 0, words;
	bool online = false;

	while (i < argc && argv[i][0] == '-' && ng < 3) {
		if (strcmp(argv[i], "--json") == 0) {
			globals[ng++] = argv[i++];
		} else if (strcmp(argv[i], "--socket") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "snpctl: option '--socket' needs a value\n"
						"Try 'snpctl --help'.\n");
				return -1;
			}
			globals[ng++] = argv[i++];
			globals[ng++] = argv[i++];
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			globals[ng++] = argv[i++];
		} else
			break;
	}
	out[n++] = argv[0];
	if (ng == 0) {
		for (int j = 1; j < argc; j++)
			out[n++] = argv[j];
		return n;
	}
	if (i >= argc) {
		fprintf(stderr, "snpctl: missing command after the global options\n"
				"Try 'snpctl --help'.\n");
		return -1;
	}
	/* The command words: one, or two when the first is a group ("vm list"). */
	words = 1;
	for (size_t k = 0; k < snpctl_n_commands; k++) {
		const struct snpctl_command *c = &snpctl_commands[k];
		if (strcmp(c->name, argv[i]) != 0)
			continue;
		if (!c->sub) {
			online = c->online;
		} else if (i + 1 < argc && strcmp(c->sub, argv[i + 1]) == 0) {
			words = 2;
			online = c->online;
		}
	}
	for (int w = 0; w < words; w++)
		out[n++] = argv[i++];
	/* --socket means nothing to an offline command: dropped there, not an error. */
	for (int g = 0; g < ng; g++) {
		if (strcmp(globals[g], "--socket") == 0 && !online)
			g++;
		else if (strncmp(globals[g], "--socket=", 9) == 0 && !online)
			continue;
		else
			out[n++] = globals[g];
	}
	while (i < argc)
		out[n++] = argv[i++];
	return n;
}

static char **main_args;

int main(int argc, char **argv)
{
	const struct snpctl_command *c;
	bool group_known = false;
	char name[64];
	int skip;

	/* A global, so that it lives until exit (the handlers keep pointers into it). */
	main_args = calloc((size_t)argc + 1, sizeof(*main_args));
	if (!main_args)
		return snpctl_fail(-ENOMEM, "snpctl", NULL);
	argc = hoist_globals(argc, argv, main_args);
	if (argc < 0)
		return SNPCTL_EXIT_USAGE;
	argv = main_args;

	if (argc < 2) {
		print_overview(stderr);
		return SNPCTL_EXIT_USAGE;
	}
	if (is_help(argv[1])) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			/* "snpctl help report verify" */
			snprintf(name, sizeof(name), "%s%s%s", argv[2], argc > 3 ? " " : "",
				 argc > 3 ? argv[3] : "");
			for (size_t i = 0; argc == 3 && i < snpctl_n_commands; i++)
				if (snpctl_commands[i].sub &&
				    strcmp(snpctl_commands[i].name, name) == 0)
					return group_help(name, stdout);
			return snpctl_help_for(name);
		}
		print_overview(stdout);
		return SNPCTL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("snpctl (snp-attestd) %s\n", PACKAGE_VERSION);
		return SNPCTL_EXIT_OK;
	}

	for (size_t i = 0; i < snpctl_n_commands; i++) {
		c = &snpctl_commands[i];
		if (strcmp(c->name, argv[1]) != 0)
			continue;
		group_known = true;
		if (!c->sub) {
			skip = 1;
		} else if (argc > 2 && strcmp(c->sub, argv[2]) == 0) {
			skip = 2;
		} else
			continue;

		command_full_name(c, name, sizeof(name));
		for (int j = skip + 1; j < argc; j++) {
			if (strcmp(argv[j], "--") == 0)
				break;
			if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
				return snpctl_help_for(name);
		}
		/* The handler sees argv[0] = the command's full name, then its own arguments. */
		argv[skip] = name;
		return c->run(argc - skip, argv + skip);
	}

	if (group_known) {
		if (argc > 2 && is_help(argv[2]))
			return group_help(argv[1], stdout);
		if (argc == 2) {
			fprintf(stderr, "snpctl: %s: missing subcommand\n\n", argv[1]);
			group_help(argv[1], stderr);
			return SNPCTL_EXIT_USAGE;
		}
		fprintf(stderr, "snpctl: %s: unknown subcommand '%s'\n", argv[1], argv[2]);
		fprintf(stderr, "Try 'snpctl %s --help'.\n", argv[1]);
		return SNPCTL_EXIT_USAGE;
	}
	fprintf(stderr, "snpctl: unknown command '%s'\nTry 'snpctl --help'.\n", argv[1]);
	return SNPCTL_EXIT_USAGE;
}
