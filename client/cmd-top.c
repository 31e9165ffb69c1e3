/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-top: 'snpctl top', a live per-VM view refreshed from status, vm.list and vm.show. The
 * numbers come from top-model.c; this file samples, draws and owns the terminal. */
#include "snpctl.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl-client.h"
#include "top-model.h"

/* vm.list has no BUSY reasons; they come from one vm.show per VM, for at most this many VMs
 * (the ones with the most BUSY answers) so that a large fleet costs the daemon little. */
#define TOP_DETAIL_MAX 64
#define TOP_INTERVAL_MIN_MSEC 100
#define TOP_INTERVAL_MAX_MSEC 3600000

struct top_sample {
	json_t *status; /* owned: the status reply */
	json_t *vms;	/* owned: top-model sample */
	uint64_t at_usec;
};

static volatile sig_atomic_t top_stop;

static void on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sample_done(struct top_sample *s)
{
	json_decref(s->status);
	json_decref(s->vms);
	*s = (struct top_sample){0};
}

static int cmp_busy_desc(const void *a, const void *b)
{
	uint64_t x = 0, y = 0;

	(void)ctl_json_get_u64(json_object_get(*(json_t *const *)a, "busy"), &x);
	(void)ctl_json_get_u64(json_object_get(*(json_t *const *)b, "busy"), &y);
	return x > y ? -1 : x < y;
}

/* The VMs that get a vm.show: those with BUSY answers, most first, at most TOP_DETAIL_MAX. */
static int add_details(const char *sock, json_t *sample)
{
	json_t *picked[TOP_DETAIL_MAX], *vm;
	size_t n = 0, i;
	const char *key;

	json_object_foreach(sample, key, vm)
	{
		uint64_t busy = 0;
		(void)ctl_json_get_u64(json_object_get(vm, "busy"), &busy);
		if (busy == 0)
			continue;
		if (n < TOP_DETAIL_MAX) {
			picked[n++] = vm;
			continue;
		}
		/* Full: replace the least busy pick if this one has more. */
		qsort(picked, n, sizeof(*picked), cmp_busy_desc);
		if (cmp_busy_desc(&vm, &picked[n - 1]) < 0)
			picked[n - 1] = vm;
	}
	for (i = 0; i < n; i++) {
		_cleanup_(snpctl_json_decrefp) json_t *b = NULL;
		struct ctl_client_error e;
		struct ctl_request q = {.cmd = CTL_CMD_VM_SHOW, .has_vm = true};
		int r;

		if (ctl_json_get_u64(json_object_get(picked[i], "vm"), &q.vm_id) < 0)
			continue;
		r = ctl_client_call(sock, &q, &b, &e);
		if (r == -ENOENT)
			continue; /* removed since vm.list */
		if (r < 0) {
			fprintf(stderr, "snpctl: top: %s\n", e.msg);
			return e.unreachable ? SNPCTL_EXIT_UNREACHABLE : SNPCTL_EXIT_FAIL;
		}
		(void)top_sample_add_detail(sample, json_object_get(b, "vm_info"));
	}
	return SNPCTL_EXIT_OK;
}

static int take_sample(const char *sock, struct top_sample *ret)
{
	struct top_sample s = {0};
	struct ctl_request q = {.cmd = CTL_CMD_STATUS};
	_cleanup_(snpctl_json_decrefp) json_t *list = NULL;
	int r;

	r = snpctl_call("top", sock, &q, &s.status);
	if (r != SNPCTL_EXIT_OK)
		return r;
	q.cmd = CTL_CMD_VM_LIST;
	r = snpctl_call("top", sock, &q, &list);
	if (r != SNPCTL_EXIT_OK)
		goto fail;
	s.at_usec = now_usec();
	s.vms = json_object();
	if (!s.vms || top_sample_add_list(s.vms, json_object_get(list, "vms")) < 0) {
		r = snpctl_fail(-ENOMEM, "top", NULL);
		goto fail;
	}
	r = add_details(sock, s.vms);
	if (r != SNPCTL_EXIT_OK)
		goto fail;
	*ret = s;
	return SNPCTL_EXIT_OK;
fail:
	sample_done(&s);
	return r;
}

static uint64_t get_num(const json_t *o, const char *path1, const char *path2)
{
	uint64_t v = 0;

	if (path2)
		o = json_object_get(o, path1);
	(void)ctl_json_get_u64(json_object_get(o, path2 ? path2 : path1), &v);
	return v;
}

static double rate(const json_t *a, const json_t *b, const char *p1, const char *p2, double dt)
{
	uint64_t x = get_num(a, p1, p2), y = get_num(b, p1, p2);

	return (double)(y >= x ? y - x : y) / dt;
}

/* One frame. max_rows limits the table (0: every VM). */
static int draw(const struct top_sample *prev, const struct top_sample *cur, bool ansi,
		unsigned max_rows)
{
	_cleanup_(freep) struct top_row *rows = NULL;
	const json_t *br = json_object_get(cur->status, "broker");
	const json_t *st = json_object_get(cur->status, "stats");
	double dt = (double)(cur->at_usec - prev->at_usec) / 1e6;
	char reasons[TOP_REASONS_MAX];
	const char *ver;
	size_t n, shown;
	int r;

	if (dt <= 0)
		dt = 1e-3;
	r = top_rows(prev->vms, cur->vms, dt, &rows, &n);
	if (r < 0)
		return snpctl_fail(r, "top", NULL);
	top_reason_rates(json_object_get(json_object_get(prev->status, "stats"), "busy_by_reason"),
			 json_object_get(st, "busy_by_reason"), dt, reasons, sizeof(reasons));
	ver = json_string_value(json_object_get(cur->status, "version"));

	if (ansi)
		fputs("\033[H\033[2J", stdout);
	printf("snp-attestd %s  VMs %llu  in flight %llu  queued %llu  admission %s  broker %s\n",
	       ver ? ver : "?", (unsigned long long)get_num(br, "vms", NULL),
	       (unsigned long long)get_num(br, "inflight", NULL),
	       (unsigned long long)get_num(br, "queued", NULL),
	       json_is_true(json_object_get(br, "paused")) ? "PAUSED" : "running",
	       json_is_true(json_object_get(br, "registered")) ? "registered" : "NOT registered");
	printf("fleet: %.1f req/s  %.1f allowed/s  %.1f BUSY/s%s%s%s  (interval %.1f s)\n",
	       rate(prev->status, cur->status, "stats", "guest_reqs", dt),
	       rate(json_object_get(prev->status, "stats"), st, "verdicts", "allow", dt),
	       rate(json_object_get(prev->status, "stats"), st, "verdicts", "busy", dt),
	       reasons[0] ? " (" : "", reasons, reasons[0] ? ")" : "", dt);
	/* p99 admission wait is a histogram on the metrics endpoint, not in the control
	 * protocol: the view does not show it rather than show something else under its name. */
	printf("\n%-20s %8s %8s %8s %-9s %8s %-18s %s\n", "VM", "REQ/S", "ADM/S", "BUSY/S", "STATE",
	       "FW-ERR", "QUOTA", "BUSY/S BY REASON");
	shown = max_rows && n > max_rows ? max_rows : n;
	for (size_t i = 0; i < shown; i++)
		printf("%-20llu %8.1f %8.1f %8.1f %-9s %8llu %-18s %s\n",
		       (unsigned long long)rows[i].vm, rows[i].req_s, rows[i].adm_s, rows[i].busy_s,
		       rows[i].state, (unsigned long long)rows[i].fw_errors, rows[i].quota,
		       rows[i].reasons[0] ? rows[i].reasons : "-");
	if (n == 0)
		printf("no VMs\n");
	else if (shown < n)
		printf("... %zu more VMs\n", n - shown);
	if (ansi)
		fputs("(q to quit)", stdout);
	else
		putchar('\n');
	fflush(stdout);
	return SNPCTL_EXIT_OK;
}

/* Waits msec, or until q (or Q) is typed when keys is set, or a signal arrives. true: quit. */
static bool wait_or_quit(unsigned msec, bool keys)
{
	uint64_t end = now_usec() + (uint64_t)msec * 1000u;

	while (!top_stop) {
		uint64_t now = now_usec();
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		char c;
		int r;

		if (now >= end)
			return false;
		r = poll(&p, keys ? 1 : 0, (int)((end - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			return true;
		if (r > 0) {
			if (read(STDIN_FILENO, &c, 1) != 1)
				keys = false; /* EOF on stdin: just keep time */
			else if (c == 'q' || c == 'Q')
				return true;
		}
	}
	return true;
}

static unsigned terminal_rows(void)
{
	struct winsize w;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_row > 6)
		return w.ws_row - 6u; /* the header, the table title and the last line */
	return 20;
}

int snpctl_top(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"once", no_argument, NULL, 'o'},
		{"iterations", required_argument, NULL, 'n'},
		{"interval", required_argument, NULL, 'i'},
		{NULL, 0, NULL, 0},
	};
	struct top_sample prev = {0}, cur = {0};
	const char *sock = ctl_client_default_socket();
	uint64_t iterations = 0, v, interval_msec = 1000;
	struct termios saved, raw;
	bool tty_in, tty_out, raw_mode = false;
	struct sigaction sa = {.sa_handler = on_signal};
	int c, r;

	optind = 1;
	while ((c = snpctl_getopt(argc, argv, ":n:", options)) > 0) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'o':
			iterations = 1;
			break;
		case 'n':
			if (parse_u64_decimal(optarg, &v) < 0 || v == 0 || v > 1000000)
				return snpctl_usage_error(argv[0], "bad -n '%s' (1 to 1000000)",
							  optarg);
			iterations = v;
			break;
		case 'i':
			if (parse_milli(optarg, &v) < 0 || v < TOP_INTERVAL_MIN_MSEC ||
			    v > TOP_INTERVAL_MAX_MSEC)
				return snpctl_usage_error(
					argv[0], "bad --interval '%s' (seconds, 0.1 to 3600)",
					optarg);
			interval_msec = v;
			break;
		}
	}
	if (c < 0)
		return SNPCTL_EXIT_USAGE;
	if (optind < argc)
		return snpctl_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);

	tty_out = isatty(STDOUT_FILENO);
	tty_in = isatty(STDIN_FILENO) && tty_out;
	/* Without a terminal and without a bound, the loop would never end on its own. */
	if (!tty_out && iterations == 0)
		iterations = 1;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	r = take_sample(sock, &prev);
	if (r != SNPCTL_EXIT_OK)
		return r;
	if (tty_in && tcgetattr(STDIN_FILENO, &saved) == 0) {
		/* Keys without Enter and without echo; signals (Ctrl-C) stay on. */
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		raw_mode = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	if (tty_out)
		fputs("\033[?25l", stdout); /* hide the cursor while drawing */

	for (uint64_t i = 0; iterations == 0 || i < iterations; i++) {
		if (wait_or_quit((unsigned)interval_msec, raw_mode))
			break;
		r = take_sample(sock, &cur);
		if (r != SNPCTL_EXIT_OK)
			break;
		r = draw(&prev, &cur, tty_out, tty_out ? terminal_rows() : 0);
		sample_done(&prev);
		prev = cur;
		cur = (struct top_sample){0};
		if (r != SNPCTL_EXIT_OK)
			break;
	}
	sample_done(&prev);
	if (raw_mode)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (tty_out) {
		fputs("\033[?25h\n", stdout);
		fflush(stdout);
	}
	return r;
}

const char snpctl_help_top[] =
	"Usage: snpctl top [--once | -n N] [--interval S] [--socket PATH]\n"
	"\n"
	"A live view of the VMs, refreshed every S seconds (default 1): per VM the guest "
	"requests,\n"
	"admissions and BUSY answers per second, BUSY per second by reason (for the 64 VMs with "
	"the\n"
	"most BUSY answers), whether a request is in flight or queued, firmware errors and the\n"
	"quota ('*': a custom one); above, the fleet's rates and the daemon's state. VMs are "
	"sorted\n"
	"by requests per second, then BUSY per second. Rates compare two samples, so the first\n"
	"frame comes after one interval. Type q or Ctrl-C to quit. Without a terminal, one frame\n"
	"is printed unless -n says otherwise, with no screen control codes.\n"
	"Needs the read-only group, the admin group or root.\n"
	"\n"
	"  --once            print one frame and exit (same as -n 1)\n"
	"  -n, --iterations N  print N frames, then exit\n"
	"  --interval S      seconds between frames, 0.1 to 3600 (up to 3 decimals)\n"
	"  --socket PATH     the daemon's control socket (default /run/snp-attestd/control.sock)\n"
	"  -h, --help        this text\n";
