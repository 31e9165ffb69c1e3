/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-online: the commands that talk to snp-attestd over the control socket (status, vm,
 * quota). Arguments are checked here; the daemon checks them again and has the last word. */
#include "cmd-online.h"

#include <getopt.h>
#include <stdio.h>

#include "snpctl.h"
#include "util.h"

enum {
	OPT_JSON = ONLINE_OPT_JSON,
	OPT_QUOTA = ONLINE_OPT_QUOTA,
	OPT_VM = ONLINE_OPT_VM,
};

int online_parse(int argc, char **argv, unsigned allowed, const char *arg_name,
		 struct online_args *a)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"rate", required_argument, NULL, 'r'},
		{"burst", required_argument, NULL, 'b'},
		{"weight", required_argument, NULL, 'w'},
		{"force", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	a->socket = ctl_client_default_socket();
	optind = 1;
	while ((c = snpctl_getopt(argc, argv, ":", options)) > 0) {
		switch (c) {
		case 's':
			a->socket = optarg;
			break;
		case 'j':
			if (!(allowed & OPT_JSON))
				return snpctl_usage_error(argv[0], "unknown option '--json'");
			a->json = true;
			break;
		case 'f':
			if (!(allowed & ONLINE_OPT_FORCE))
				return snpctl_usage_error(argv[0], "unknown option '%s'",
							  argv[optind - 1]);
			a->force = true;
			break;
		case 'r':
		case 'b':
		case 'w':
			if (!(allowed & OPT_QUOTA))
				return snpctl_usage_error(argv[0], "unknown option '%s'",
							  argv[optind - 1]);
			if (c == 'r') {
				if (parse_milli(optarg, &v) < 0 || v == 0 ||
				    v > SCHED_RATE_MILLI_MAX)
					return snpctl_usage_error(argv[0],
								  "bad --rate '%s' (requests per "
								  "second, above 0 and at "
								  "most 1000000, up to 3 decimals)",
								  optarg);
				a->q.quota.rate_milli = v;
				a->q.quota_fields |= CTL_QUOTA_RATE;
			} else if (c == 'b') {
				if (parse_u64(optarg, &v) < 0 || v == 0 || v > SCHED_BURST_MAX)
					return snpctl_usage_error(argv[0],
								  "bad --burst '%s' (1 to %u)",
								  optarg, SCHED_BURST_MAX);
				a->q.quota.burst = (uint32_t)v;
				a->q.quota_fields |= CTL_QUOTA_BURST;
			} else {
				if (parse_u64(optarg, &v) < 0 || v == 0 || v > SCHED_WEIGHT_MAX)
					return snpctl_usage_error(argv[0],
								  "bad --weight '%s' (1 to %u)",
								  optarg, SCHED_WEIGHT_MAX);
				a->q.quota.weight = (uint32_t)v;
				a->q.quota_fields |= CTL_QUOTA_WEIGHT;
			}
			break;
		}
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (arg_name) {
		if (optind >= argc)
			return snpctl_usage_error(argv[0], "missing %s", arg_name);
		a->arg = argv[optind];
		if (allowed & OPT_VM) {
			/* Not a number: a VMM-socket VM's UUID or name, which the daemon resolves
			 * (and refuses with the reason if it cannot). */
			if (parse_u64(a->arg, &a->q.vm_id) < 0 &&
			    snprintf(a->q.vm_ref, sizeof(a->q.vm_ref), "%s", a->arg) >=
				    (int)sizeof(a->q.vm_ref))
				return snpctl_usage_error(argv[0],
							  "bad VM '%s' (an id, a UUID or a name "
							  "of at most %d bytes)",
							  a->arg, CTL_VM_REF_MAX);
			a->q.has_vm = true;
		}
		optind++;
	}
	if (optind < argc)
		return snpctl_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if ((allowed & OPT_QUOTA) && !a->q.quota_fields)
		return snpctl_usage_error(argv[0],
					  "give at least one of --rate, --burst, --weight");
	return SNPCTL_EXIT_OK;
}

int online_call(const char *cmd_name, const struct online_args *a, json_t **ret_body)
{
	json_t *b = NULL;
	int r;

	*ret_body = NULL;
	r = snpctl_call(cmd_name, a->socket, &a->q, &b);
	if (r != SNPCTL_EXIT_OK) {
		json_decref(b);
		return r;
	}
	if (a->json)
		return snpctl_print_reply_json(b);
	*ret_body = b;
	return SNPCTL_EXIT_OK;
}

/* online_parse then online_call. */
static int online_request(int argc, char **argv, unsigned allowed, const char *arg_name,
			  struct online_args *a, json_t **ret_body)
{
	int r;

	*ret_body = NULL;
	r = online_parse(argc, argv, allowed, arg_name, a);
	if (r != SNPCTL_EXIT_OK)
		return r;
	return online_call(argv[0], a, ret_body);
}

/* Accessors that never fail: the reply comes from the daemon but is still only data. */

static unsigned long long jnum(const json_t *o, const char *k)
{
	uint64_t v = 0;

	(void)ctl_json_get_u64(json_object_get(o, k), &v);
	return (unsigned long long)v;
}

static const char *jstr_or(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : dflt;
}

static const char *jstr(const json_t *o, const char *k)
{
	return jstr_or(o, k, "?");
}

static bool jbool(const json_t *o, const char *k)
{
	return json_is_true(json_object_get(o, k));
}

static const char *tcb_text(const json_t *tcb, enum snp_product p, char *buf, size_t size)
{
	uint64_t raw;

	if (parse_u64(jstr(tcb, "raw"), &raw) < 0)
		return "?";
	tcb_format(raw, p, buf, size);
	return buf;
}

static void print_counters(const char *title, const json_t *o)
{
	const char *k;
	json_t *v;
	bool first = true;

	printf("  %-16s", title);
	json_object_foreach((json_t *)o, k, v)
	{
		printf("%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
		first = false;
	}
	printf("%s\n", first ? "-" : "");
}

static void quota_text(const json_t *q, char *buf, size_t size)
{
	snprintf(buf, size, "rate %s/s, burst %llu, weight %llu", jstr(q, "rate"), jnum(q, "burst"),
		 jnum(q, "weight"));
}

int snpctl_status(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_STATUS};
	const json_t *br, *ch, *pf, *st;
	enum snp_product p = SNP_PRODUCT_UNKNOWN;
	char t1[TCB_FORMAT_MAX], t2[TCB_FORMAT_MAX];
	int r;

	r = online_request(argc, argv, OPT_JSON, NULL, &a, &b);
	if (r != SNPCTL_EXIT_OK || !b)
		return r; /* an error, or the reply already printed as JSON */

	br = json_object_get(b, "broker");
	ch = json_object_get(b, "chain");
	pf = json_object_get(b, "platform");
	st = json_object_get(b, "stats");
	(void)snp_product_from_string(jstr(pf, "product"), &p);

	printf("snp-attestd %s\n", jstr(b, "version"));
	printf("  %-16s%s%s\n", "backend:", jstr(b, "backend"),
	       jbool(b, "simulated") ? " (simulated platform)" : "");
	if (jbool(b, "sim_root_trusted"))
		printf("  %-16s%s\n", "root:", "trusting the simulator's ARK, not an AMD root");
	printf("  %-16s%s\n", "broker:",
	       jbool(br, "registered") ? "registered" : "not registered (retrying REGISTER)");
	if (json_is_object(json_object_get(b, "vmm"))) {
		const json_t *v = json_object_get(b, "vmm");
		if (jbool(v, "listening"))
			printf("  %-16slistening on %s%s: %llu VMs (%llu connections)\n",
			       "VMM socket:", jstr(v, "path"),
			       jbool(v, "activated") ? " (from systemd)" : "", jnum(v, "vms"),
			       jnum(v, "connections"));
		else
			printf("  %-16s%s\n", "VMM socket:", "off");
	}
	printf("  %-16s%s\n", "admission:", jbool(br, "paused") ? "paused" : "running");
	printf("  %-16s%llu (in flight %llu, queued %llu)\n", "VMs:", jnum(br, "vms"),
	       jnum(br, "inflight"), jnum(br, "queued"));
	printf("  %-16s%s\n", "your role:", jstr(b, "role"));

	printf("chain:\n");
	if (json_is_object(ch)) {
		enum snp_product cp = SNP_PRODUCT_UNKNOWN;
		(void)snp_product_from_string(jstr(ch, "product"), &cp);
		printf("  %-16s%s%s\n", "product:", jstr(ch, "product"),
		       jbool(ch, "vlek") ? " (VLEK)" : " (VCEK)");
		printf("  %-16s%s\n", "source:", jstr(ch, "source"));
		printf("  %-16s%s\n", "root:",
		       strcmp(jstr(ch, "root"), "simulator") == 0
			       ? "simulator's ARK (not an AMD root)"
			       : "AMD root (pinned)");
		printf("  %-16s%s\n", "notAfter:", jstr(ch, "not_after_text"));
		printf("  %-16s%llu pages (%llu bytes)\n", "table:", jnum(ch, "table_pages"),
		       jnum(ch, "table_bytes"));
		printf("  %-16s%s\n",
		       "TCB:", tcb_text(json_object_get(ch, "tcb"), cp, t1, sizeof(t1)));
	} else
		printf("  none served (extended requests get an empty certificate table)\n");

	printf("platform:\n");
	{
		const json_t *sn = json_object_get(b, "snp");
		if (json_is_object(sn) && !jbool(sn, "initialized"))
			printf("  %-16sNOT initialised: %s (%llu probes so far)\n",
			       "SNP:", jstr(sn, "state"), jnum(sn, "probes"));
		else if (json_is_object(sn))
			printf("  %-16sinitialised\n", "SNP:");
	}
	printf("  %-16s%s\n", "product:", jstr(pf, "product"));
	printf("  %-16s%.16s...\n", "chip id:", jstr(pf, "chip_id"));
	printf("  %-16s%s (%s)\n",
	       "current TCB:", tcb_text(json_object_get(pf, "current_tcb"), p, t1, sizeof(t1)),
	       jstr(json_object_get(pf, "current_tcb"), "raw"));
	printf("  %-16s%s (%s)\n",
	       "reported TCB:", tcb_text(json_object_get(pf, "reported_tcb"), p, t2, sizeof(t2)),
	       jstr(json_object_get(pf, "reported_tcb"), "raw"));

	printf("stats:\n");
	printf("  %-16s%llu\n", "guest requests:", jnum(st, "guest_reqs"));
	printf("  %-16sallow %llu, busy %llu, invalid_len %llu; done %llu\n",
	       "verdicts:", jnum(json_object_get(st, "verdicts"), "allow"),
	       jnum(json_object_get(st, "verdicts"), "busy"),
	       jnum(json_object_get(st, "verdicts"), "invalid_len"), jnum(st, "done"));
	print_counters("BUSY by reason:", json_object_get(st, "busy_by_reason"));
	print_counters("anomalies:", json_object_get(st, "anomalies"));
	return SNPCTL_EXIT_OK;
}

int snpctl_vm_list(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_VM_LIST};
	json_t *vm;
	size_t i;
	int r;

	r = online_request(argc, argv, OPT_JSON, NULL, &a, &b);
	if (r != SNPCTL_EXIT_OK || !b)
		return r; /* an error, or the reply already printed as JSON */
	if (json_array_size(json_object_get(b, "vms")) == 0) {
		printf("no VMs\n");
		return SNPCTL_EXIT_OK;
	}
	printf("%-20s %-9s %-16s %8s %6s %10s %10s %8s %-9s %s\n", "VM", "TRANSPORT", "NAME",
	       "VMM-PID", "ASID", "REQUESTS", "ADMITTED", "BUSY", "STATE", "QUOTA");
	json_array_foreach(json_object_get(b, "vms"), i, vm)
	{
		char q[128];
		quota_text(json_object_get(vm, "quota"), q, sizeof(q));
		printf("%-20llu %-9s %-16s %8llu %6llu %10llu %10llu %8llu %-9s %s%s\n",
		       jnum(vm, "vm"), jstr_or(vm, "transport", "-"), jstr_or(vm, "name", "-"),
		       jnum(vm, "vmm_pid"), jnum(vm, "asid"), jnum(vm, "requests"),
		       jnum(vm, "admitted"), jnum(vm, "busy"),
		       jbool(vm, "inflight") ? "in-flight"
		       : jbool(vm, "queued") ? "queued"
					     : "idle",
		       q, jbool(vm, "custom_quota") ? " (custom)" : "");
	}
	return SNPCTL_EXIT_OK;
}

int snpctl_vm_show(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_VM_SHOW};
	const json_t *vm;
	char q[128];
	int r;

	r = online_request(argc, argv, OPT_JSON | OPT_VM, "VM id", &a, &b);
	if (r != SNPCTL_EXIT_OK || !b)
		return r; /* an error, or the reply already printed as JSON */
	vm = json_object_get(b, "vm_info");
	quota_text(json_object_get(vm, "quota"), q, sizeof(q));
	printf("VM %llu\n", jnum(vm, "vm"));
	printf("  %-22s%s\n", "transport:", jstr_or(vm, "transport", "-"));
	if (json_object_get(vm, "uuid")) {
		printf("  %-22s%s\n", "UUID:", jstr(vm, "uuid"));
		printf("  %-22s%s\n", "name:", jstr(vm, "name"));
	}
	printf("  %-22s%llu\n", "VMM pid:", jnum(vm, "vmm_pid"));
	printf("  %-22s%llu\n", "ASID:", jnum(vm, "asid"));
	printf("  %-22s%s\n", "policy:", jstr(vm, "policy"));
	printf("  %-22s%s\n", "state:",
	       jbool(vm, "inflight") ? "request in flight"
	       : jbool(vm, "queued") ? "queued"
				     : "idle");
	printf("  %-22s%s (%s)\n", "quota:", q, jbool(vm, "custom_quota") ? "custom" : "default");
	printf("  %-22s%s\n", "tokens:", jstr(vm, "tokens"));
	printf("  %-22s%llu (report %llu, key %llu, other %llu)\n",
	       "requests:", jnum(vm, "requests"), jnum(vm, "req_report"), jnum(vm, "req_key"),
	       jnum(vm, "req_other"));
	printf("  %-22s%llu (forced by the BUSY budget: %llu)\n", "admitted:", jnum(vm, "admitted"),
	       jnum(vm, "forced"));
	printf("  %-22s%llu (firmware ok %llu, errors %llu, expired %llu)\n",
	       "done:", jnum(vm, "done"), jnum(vm, "fw_ok"), jnum(vm, "fw_errors"),
	       jnum(vm, "expired"));
	printf("  %-22s%llu\n", "INVALID_LEN answers:", jnum(vm, "invalid_len"));
	printf("  %-22s%llu\n", "BUSY answers:", jnum(vm, "busy"));
	print_counters("  BUSY by reason:", json_object_get(vm, "busy_by_reason"));
	print_counters("  anomalies:", json_object_get(vm, "anomalies"));
	printf("  %-22s%.3f s (longest %.3f s)\n",
	       "BUSY streak:", (double)jnum(vm, "busy_streak_usec") / 1e6,
	       (double)jnum(vm, "max_busy_streak_usec") / 1e6);
	return SNPCTL_EXIT_OK;
}

static int print_quota_entry(const json_t *b)
{
	char q[128], d[128];

	quota_text(json_object_get(b, "quota"), q, sizeof(q));
	quota_text(json_object_get(b, "default"), d, sizeof(d));
	if (jbool(b, "custom"))
		printf("VM %llu: %s (custom; default %s)\n", jnum(b, "vm"), q, d);
	else
		printf("VM %llu: %s (default)\n", jnum(b, "vm"), q);
	return SNPCTL_EXIT_OK;
}

static int quota_one(int argc, char **argv, enum ctl_cmd cmd, unsigned allowed)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = cmd};
	int r;

	r = online_request(argc, argv, allowed | OPT_VM, "VM id", &a, &b);
	if (r != SNPCTL_EXIT_OK || !b)
		return r; /* an error, or the reply already printed as JSON */
	return print_quota_entry(b);
}

int snpctl_quota_get(int argc, char **argv)
{
	return quota_one(argc, argv, CTL_CMD_QUOTA_GET, OPT_JSON);
}

int snpctl_quota_set(int argc, char **argv)
{
	return quota_one(argc, argv, CTL_CMD_QUOTA_SET, OPT_JSON | OPT_QUOTA);
}

int snpctl_quota_reset(int argc, char **argv)
{
	return quota_one(argc, argv, CTL_CMD_QUOTA_RESET, OPT_JSON);
}

int snpctl_quota_list(int argc, char **argv)
{
	_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
	struct online_args a = {.q.cmd = CTL_CMD_QUOTA_LIST};
	json_t *e;
	size_t i;
	char q[128];
	int r;

	r = online_request(argc, argv, OPT_JSON, NULL, &a, &b);
	if (r != SNPCTL_EXIT_OK || !b)
		return r; /* an error, or the reply already printed as JSON */
	quota_text(json_object_get(b, "default"), q, sizeof(q));
	printf("default: %s\n", q);
	if (json_array_size(json_object_get(b, "quotas")) == 0) {
		printf("no custom quotas\n");
		return SNPCTL_EXIT_OK;
	}
	printf("%-20s %10s %8s %8s\n", "VM", "RATE/S", "BURST", "WEIGHT");
	json_array_foreach(json_object_get(b, "quotas"), i, e)
		printf("%-20llu %10s %8llu %8llu\n", jnum(e, "vm"), jstr(e, "rate"),
		       jnum(e, "burst"), jnum(e, "weight"));
	return SNPCTL_EXIT_OK;
}

#define SOCKET_HELP                                                                                \
	"  --socket PATH     the daemon's control socket (default "                                \
	"/run/snp-attestd/control.sock)\n"                                                         \
	"  -h, --help        this text\n"

const char snpctl_help_status[] =
	"Usage: snpctl status [--json] [--socket PATH]\n"
	"\n"
	"Shows the daemon's state: version, firmware backend (and whether the platform is\n"
	"simulated and the simulator's ARK trusted), whether the broker is registered with the\n"
	"kernel, VMs, requests in flight and queued, admission paused or not, the certificate "
	"chain\n"
	"served (product, source, notAfter, table pages, AMD or simulator root), the platform's\n"
	"current and reported TCB, and verdict, BUSY-by-reason and anomaly counters.\n"
	"Needs the read-only group, the admin group or root.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_vm_list[] =
	"Usage: snpctl vm list [--json] [--socket PATH]\n"
	"\n"
	"Lists the VMs the daemon knows with their transport (netlink or\n"
	"vmm), name, request counters, state and quota.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_vm_show[] =
	"Usage: snpctl vm show VM [--json] [--socket PATH]\n"
	"\n"
	"Shows one VM: transport (and UUID and name for a VM of the VMM\n"
	"socket), VMM pid, ASID, policy, request and firmware counters,\n"
	"BUSY answers by reason, sequence anomalies, its quota, bucket level\n"
	"and BUSY streaks. Fails if the daemon does not know the VM.\n"
	"VM: the VM's id, or a VMM-socket VM's UUID or name.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_quota_get[] =
	"Usage: snpctl quota get VM [--json] [--socket PATH]\n"
	"\n"
	"Shows the quota VM gets (its own, or the configured default). The VM need not be "
	"running.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_quota_set[] =
	"Usage: snpctl quota set VM [--rate R] [--burst B] [--weight W] [--json] [--socket PATH]\n"
	"\n"
	"Sets VM's quota; options not given keep their current value. The daemon refuses a quota\n"
	"that would cost guests their keys (slower than one request per busy_budget), applies it\n"
	"at once, and stores it in its state directory so that it survives a restart.\n"
	"VM: the VM's id, or a VMM-socket VM's UUID (also before the VM runs; the quota follows\n"
	"the UUID across VM restarts) or name (while it is connected).\n"
	"Needs the admin group or root.\n"
	"\n"
	"  --rate R          requests per second (up to 3 decimals, e.g. 0.5)\n"
	"  --burst B         token bucket size, 1 to 1000000\n"
	"  --weight W        fair-share weight, 1 to 1000\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_quota_reset[] =
	"Usage: snpctl quota reset VM [--json] [--socket PATH]\n"
	"\n"
	"Puts VM back on the configured default quota (and forgets the stored one).\n"
	"Needs the admin group or root.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
const char snpctl_help_quota_list[] =
	"Usage: snpctl quota list [--json] [--socket PATH]\n"
	"\n"
	"Lists the default quota and every VM's own quota.\n"
	"\n"
	"  --json            print the daemon's JSON object\n" SOCKET_HELP;
