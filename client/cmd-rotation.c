/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-rotation: cert rotate, tcb show|set|commit and vlek load over the control socket. The
 * daemon does the work (design §6: the chain for the new TCB first, then a paused swap); this
 * file checks arguments and prints the outcome. */
#include "cmd-rotation.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl-client.h"
#include "snpctl.h"
#include "util.h"

struct rot_args {
	const char *socket;
	bool json;
	const char *arg; /* the positional argument, if the command takes one */
	struct ctl_request q;
};

static int parse(int argc, char **argv, const char *arg_name, struct rot_args *a)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	int c;

	a->socket = ctl_client_default_socket();
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			a->socket = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case ':':
			return snpctl_usage_error(argv[0], "option '%s' needs a value",
						  argv[optind - 1]);
		default:
			return snpctl_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (arg_name) {
		if (optind >= argc)
			return snpctl_usage_error(argv[0], "missing %s", arg_name);
		a->arg = argv[optind++];
	}
	if (optind < argc)
		return snpctl_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	return SNPCTL_EXIT_OK;
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "?";
}

static void print_tcb(const char *title, const json_t *t)
{
	if (t)
		printf("%-15s %s (%s)\n", title, jstr(t, "text"), jstr(t, "raw"));
}

static int print_reply(json_t *b, bool json)
{
	const json_t *last = json_object_get(b, "last_rotation");

	if (json)
		return snpctl_print_reply_json(json_incref(b));
	if (json_object_get(b, "message"))
		printf("%s\n", jstr(b, "message"));
	printf("%-15s %s\n", "product", jstr(b, "product"));
	print_tcb("current TCB", json_object_get(b, "current_tcb"));
	print_tcb("reported TCB", json_object_get(b, "reported_tcb"));
	print_tcb("committed TCB", json_object_get(b, "committed_tcb"));
	printf("%-15s %s\n", "VLEK loaded",
	       json_is_true(json_object_get(b, "vlek_loaded")) ? "yes" : "no");
	if (json_is_true(json_object_get(b, "rotation_in_progress")))
		printf("%-15s %s\n", "rotation", "in progress");
	if (last)
		printf("%-15s %s: %s\n", "last rotation",
		       json_is_true(json_object_get(last, "ok")) ? "ok" : "FAILED",
		       jstr(last, "message"));
	return SNPCTL_EXIT_OK;
}

static int run(int argc, char **argv, enum ctl_cmd cmd, const char *arg_name)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct rot_args a = {.q.cmd = cmd};
	int r;

	r = parse(argc, argv, arg_name, &a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	if (cmd == CTL_CMD_TCB_SET) {
		/* The daemon parses it for its product; here only the wire limits. */
		if (strlen(a.arg) >= sizeof(a.q.tcb))
			return snpctl_usage_error(argv[0], "TCB '%s' is too long", a.arg);
		snprintf(a.q.tcb, sizeof(a.q.tcb), "%s", a.arg);
	} else if (cmd == CTL_CMD_VLEK_LOAD) {
		_cleanup_(freep) uint8_t *buf = NULL;
		size_t len;
		r = snpctl_read_file(a.arg, CTL_HASHSTICK_SIZE + 1, &buf, &len);
		if (r < 0)
			return snpctl_fail(r, "vlek load", "cannot read the hashstick %s", a.arg);
		if (len != CTL_HASHSTICK_SIZE)
			return snpctl_usage_error(argv[0],
						  "%s is %zu bytes; a wrapped VLEK hashstick is %d",
						  a.arg, len, CTL_HASHSTICK_SIZE);
		memcpy(a.q.hashstick, buf, CTL_HASHSTICK_SIZE);
		a.q.has_hashstick = true;
	}
	r = snpctl_call(argv[0], a.socket, &a.q, &b);
	if (r != SNPCTL_EXIT_OK)
		return r;
	return print_reply(b, a.json);
}

int snpctl_cert_rotate(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_CERT_ROTATE, NULL);
}

int snpctl_tcb_show(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_SHOW, NULL);
}

int snpctl_tcb_set(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_SET, "TCB");
}

int snpctl_tcb_commit(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_TCB_COMMIT, NULL);
}

int snpctl_vlek_load(int argc, char **argv)
{
	return run(argc, argv, CTL_CMD_VLEK_LOAD, "HASHSTICK file");
}

#define COMMON_HELP                                                                                \
	"  --json            print the daemon's JSON object\n"                                     \
	"  --socket PATH     the daemon's control socket (default "                                \
	"/run/snp-attestd/control.sock)\n"                                                         \
	"  -h, --help        this text\n"

#define ROTATION_TEXT                                                                              \
	"The daemon first obtains the chain for the new state (certificate directory, or cache\n"  \
	"then KDS) and refuses if it cannot; then it pauses admission (guests get BUSY), waits "   \
	"for\n"                                                                                    \
	"requests in flight, changes the firmware and rewrites the VMM certificate file under "    \
	"its\n"                                                                                    \
	"exclusive lock, swaps the chain and resumes. The answer comes when all that is done.\n"   \
	"Needs the admin group or root.\n"

const char snpctl_help_cert_rotate[] =
	"Usage: snpctl cert rotate [--json] [--socket PATH]\n"
	"\n"
	"Rebuilds the served chain from its source and swaps it in.\n" ROTATION_TEXT
	"\n" COMMON_HELP;
const char snpctl_help_tcb_show[] =
	"Usage: snpctl tcb show [--json] [--socket PATH]\n"
	"\n"
	"Shows the platform's current, reported and (simulator) committed TCB, whether a VLEK is\n"
	"loaded, and the outcome of the last rotation.\n"
	"\n" COMMON_HELP;
const char snpctl_help_tcb_set[] =
	"Usage: snpctl tcb set TCB [--json] [--socket PATH]\n"
	"\n"
	"Sets the reported TCB (SNP_SET_CONFIG). TCB: 16 hex digits, 0x..., or\n"
	"bl=N,tee=N,snp=N,ucode=N (with fmc=N on Turin); not newer than the current "
	"TCB.\n" ROTATION_TEXT "\n" COMMON_HELP;
const char snpctl_help_tcb_commit[] =
	"Usage: snpctl tcb commit [--json] [--socket PATH]\n"
	"\n"
	"Commits the current TCB (SNP_COMMIT): committed and reported TCB become the current one,\n"
	"and older firmware can no longer be loaded.\n" ROTATION_TEXT "\n" COMMON_HELP;
const char snpctl_help_vlek_load[] =
	"Usage: snpctl vlek load HASHSTICK [--json] [--socket PATH]\n"
	"\n"
	"Loads a wrapped VLEK hashstick (the 432-byte file from KDS; SNP_VLEK_LOAD). The VLEK\n"
	"chain (vlek-<TCB>.der and cert_chain_vlek.pem in the certificate directory) is served\n"
	"afterwards.\n" ROTATION_TEXT "\n" COMMON_HELP;
