/* SPDX-License-Identifier: Apache-2.0 */
/* conf: configuration keys, defaults, INI parsing from strings, validation, normal form.
 * Pure: no file access; the daemon hands us the text of each file. */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promtext.h"
#include "util.h"

enum conf_type {
	T_STR,
	T_U32,
	T_DURATION,
	T_MILLI,
	T_BOOL,
	T_BACKEND,
	T_TRANSPORT,
	T_LOGLEVEL,
	T_LISTEN, /* "" or ADDRESS:PORT / [IPV6]:PORT, numeric (what the metrics socket binds) */
	T_MODE,	  /* octal permission bits, printed as 0NNN */
};

struct conf_key {
	const char *section;
	const char *key;
	enum conf_type type;
	size_t offset;
	const char *def;
	uint64_t min, max; /* numeric range (inclusive), 0/0 = unchecked */
	const char *help;
};

#define K(sec, name, type, field, def, min, max, help)                                             \
	{                                                                                          \
		sec, name, type, offsetof(struct conf, field), def, min, max, help                 \
	}

static const struct conf_key conf_keys[] = {
	K("daemon", "backend", T_BACKEND, backend, "sev", 0, 0,
	  "firmware backend: sev (/dev/sev) or sim (the simulated platform)"),
	K("daemon", "sev_device", T_STR, sev_device, "/dev/sev", 0, 0, "the PSP device"),
	K("daemon", "sim_state_dir", T_STR, sim_state_dir, "/var/lib/snp-attestd/sim", 0, 0,
	  "simulation state directory (backend=sim)"),
	K("daemon", "state_dir", T_STR, state_dir, "/var/lib/snp-attestd", 0, 0,
	  "persistent state: quotas, weights"),
	K("daemon", "cache_dir", T_STR, cache_dir, "/var/cache/snp-attestd", 0, 0,
	  "certificate cache"),
	K("daemon", "transport", T_TRANSPORT, transport, "genl", 0, 0,
	  "genl (kernel generic netlink) or usersock (snp-kvmsim)"),
	K("daemon", "usersock_port", T_U32, usersock_port, "1397641265", 1, UINT32_MAX,
	  "port id of the simulated kernel (transport=usersock)"),
	K("daemon", "log_level", T_LOGLEVEL, log_level, "info", 0, 0,
	  "emerg, alert, crit, err, warning, notice, info or debug"),
	K("daemon", "guest_log_interval", T_DURATION, guest_log_interval_usec, "10s", 1000,
	  3600000000ull, "per-VM window for rate-limiting log lines a guest can trigger"),
	K("daemon", "guest_log_burst", T_U32, guest_log_burst, "5", 1, 100000,
	  "log lines per VM per window"),
	K("control", "socket", T_STR, control_socket, "/run/snp-attestd/control.sock", 0, 0,
	  "control socket path (ignored when socket-activated)"),
	K("control", "admin_group", T_STR, admin_group, "snp-admin", 0, 0,
	  "group whose members may change things (root always may)"),
	K("control", "readonly_group", T_STR, readonly_group, "snp-monitor", 0, 0,
	  "group whose members may look"),
	K("control", "request_timeout", T_DURATION, control_request_timeout_usec, "10s", 100000,
	  600000000ull,
	  "time a client has to send a whole request line, and to take a reply, from its first "
	  "byte"),
	K("scheduler", "psp_concurrency", T_U32, psp_concurrency, "1", 1, 64,
	  "guest requests admitted to the PSP at once"),
	K("scheduler", "max_queue_wait", T_DURATION, max_queue_wait_usec, "50ms", 1000, 90000,
	  "longest a request waits for a PSP slot before BUSY (the kernel waits 100 ms)"),
	K("scheduler", "busy_budget", T_DURATION, busy_budget_usec, "20s", 2000000, 3600000000ull,
	  "longest a VM is answered BUSY continuously (must be < 60 s)"),
	K("scheduler", "guest_retry_interval", T_DURATION, guest_retry_interval_usec, "2s", 1000,
	  59000000ull, "how long a guest waits before re-sending after BUSY (Linux: 2 s)"),
	K("quota", "rate", T_MILLI, quota_rate_milli, "2", 1, 1000000000ull,
	  "default per-VM requests per second (fractions allowed)"),
	K("quota", "burst", T_U32, quota_burst, "4", 1, 1000000, "default per-VM burst"),
	K("quota", "weight", T_U32, quota_weight, "1", 1, 1000, "default per-VM fairness weight"),
	K("certs", "cert_dir", T_STR, cert_dir, "", 0, 0,
	  "directory with a static chain (ark.pem, ask.pem, vcek.der/pem)"),
	K("certs", "kds_url", T_STR, kds_url, "https://kdsintf.amd.com", 0, 0,
	  "KDS base URL (or a mirror)"),
	K("certs", "kds_proxy", T_STR, kds_proxy, "", 0, 0, "HTTP proxy for KDS"),
	K("certs", "kds_ca_bundle", T_STR, kds_ca_bundle, "", 0, 0, "CA bundle for KDS TLS"),
	K("certs", "kds_timeout", T_DURATION, kds_timeout_usec, "30s", 100000, 600000000ull,
	  "per-request KDS timeout"),
	K("certs", "tcb_poll_interval", T_DURATION, tcb_poll_interval_usec, "60s", 100000,
	  86400000000ull, "how often platform status is polled for a reported-TCB change"),
	K("certs", "vmm_certs_file", T_STR, vmm_certs_file, "", 0, 0,
	  "GHCB certificate blob for the VMM (KVM_EXIT_SNP_REQ_CERTS), empty = off"),
	K("certs", "vmm_certs_group", T_STR, vmm_certs_group, "kvm", 0, 0,
	  "group of vmm_certs_file (the VMM's group), empty = the daemon's own"),
	K("certs", "vmm_certs_mode", T_MODE, vmm_certs_mode, "0640", 0, 0,
	  "permission bits of vmm_certs_file (octal; owner rw, never world-writable)"),
	K("certs", "trust_sim_ark", T_BOOL, trust_sim_ark, "yes", 0, 0,
	  "trust the simulator's ARK (only with backend=sim)"),
	K("vmm", "socket", T_STR, vmm_socket, "/run/snp-attestd/vmm.sock", 0, 0,
	  "VMM socket path, auto (only when systemd passes it) or none"),
	K("vmm", "group", T_STR, vmm_group, "kvm", 0, 0,
	  "group whose members may connect a VMM (root always may), empty = root only"),
	K("vmm", "max_clients", T_U32, vmm_max_clients, "1024", 1, 65536,
	  "VMM connections at once (one per VM)"),
	K("vmm", "hello_timeout", T_DURATION, vmm_hello_timeout_usec, "5s", 10000, 600000000ull,
	  "time a VMM connection has to say HELLO"),
	K("metrics", "listen", T_LISTEN, metrics_listen, "127.0.0.1:9477", 0, 0,
	  "Prometheus endpoint address, empty = off"),
	K("metrics", "request_timeout", T_DURATION, metrics_request_timeout_usec, "10s", 100000,
	  600000000ull,
	  "time an HTTP client has to send its request headers, and to take the answer"),
};

static const char *const log_levels[] = {"emerg",   "alert",  "crit", "err",
					 "warning", "notice", "info", "debug"};

const char *conf_key_name(size_t i, const char **ret_section, const char **ret_default,
			  const char **ret_help)
{
	if (i >= ELEMENTSOF(conf_keys))
		return NULL;
	if (ret_section)
		*ret_section = conf_keys[i].section;
	if (ret_default)
		*ret_default = conf_keys[i].def;
	if (ret_help)
		*ret_help = conf_keys[i].help;
	return conf_keys[i].key;
}

/* What the metrics endpoint will bind, checked here so that --check-config and a reload refuse
 * what the daemon could not use: empty (off), or a numeric IPv4 address or a bracketed numeric
 * IPv6 address, a colon and a port 1..65535. No name lookups: "localhost" is refused. */
static int conf_listen_check(const char *v, char *why, size_t why_size)
{
	char host[64];
	uint16_t port;
	struct in6_addr a6;
	struct in_addr a4;

	if (!*v)
		return 0;
	if (metrics_listen_split(v, host, sizeof(host), &port) < 0 ||
	    (v[0] != '[' && inet_pton(AF_INET, host, &a4) != 1) ||
	    (v[0] == '[' && inet_pton(AF_INET6, host, &a6) != 1)) {
		snprintf(why, why_size,
			 "'%s' is not ADDRESS:PORT or [IPV6]:PORT with a numeric address and a "
			 "port 1..65535",
			 v);
		return -EINVAL;
	}
	return 0;
}

/* v must be one of two words; *second tells which. The key's name goes in the message. */
static int parse_choice(const char *v, const char *key, const char *first_word,
			const char *second_word, bool *second, char *why, size_t why_size)
{
	if (strcmp(v, first_word) == 0 || strcmp(v, second_word) == 0) {
		*second = strcmp(v, second_word) == 0;
		return 0;
	}
	snprintf(why, why_size, "%s must be %s or %s, not '%s'", key, first_word, second_word, v);
	return -EINVAL;
}

static int set_value(struct conf *c, const struct conf_key *k, const char *v, char *why,
		     size_t why_size)
{
	void *field = (char *)c + k->offset;
	uint64_t u = 0;
	bool b, second;
	int r;

	switch (k->type) {
	case T_LISTEN:
		r = conf_listen_check(v, why, why_size);
		if (r < 0)
			return r;
		__attribute__((fallthrough));
	case T_STR: {
		char *d;
		/* What --check-config prints must parse back to the same value: a value that
		 * starts like a comment, or holds " ;" (an inline comment to inih), could not. */
		if (v[0] == ';' || v[0] == '#' || strstr(v, " ;") || strstr(v, "\t;")) {
			snprintf(why, why_size, "'%s' contains a comment marker (';' or '#')", v);
			return -EINVAL;
		}
		/* Nor could a value whose printed line "key = value\n" (plus the NUL) is longer
		 * than inih reads in one line. */
		if (strlen(k->key) + strlen(v) + 5 > (size_t)ini_max_line) {
			snprintf(why, why_size, "value is too long (%zu bytes; at most %zu for %s)",
				 strlen(v),
				 (size_t)ini_max_line > strlen(k->key) + 5
					 ? (size_t)ini_max_line - strlen(k->key) - 5
					 : 0,
				 k->key);
			return -EINVAL;
		}
		d = strdup(v);
		if (!d)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = d;
		return 0;
	}
	case T_LOGLEVEL:
		for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
			if (strcasecmp(v, log_levels[i]) == 0) {
				char *d = strdup(log_levels[i]);
				if (!d)
					return -ENOMEM;
				free(*(char **)field);
				*(char **)field = d;
				return 0;
			}
		snprintf(why, why_size, "unknown log level '%s'", v);
		return -EINVAL;
	case T_U32:
		r = parse_u64_decimal(v, &u);
		if (r < 0 || u > UINT32_MAX) {
			snprintf(why, why_size, "'%s' is not a number", v);
			return -EINVAL;
		}
		break;
	case T_MODE: {
		/* Octal digits only (a leading 0 optional), at most 0777: the owner (the daemon)
		 * must be able to rewrite the file and nobody else may. */
		size_t n = strlen(v);
		u = 0;
		if (n == 0 || n > 4 || strspn(v, "01234567") != n) {
			snprintf(why, why_size, "'%s' is not an octal mode (e.g. 0640)", v);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			u = u * 8 + (uint64_t)(v[i] - '0');
		if (u > 0777 || (u & 0600) != 0600 || (u & 0002)) {
			snprintf(why, why_size,
				 "mode '%s' must keep the owner's read and write bits, and not be "
				 "world-writable or above 0777",
				 v);
			return -ERANGE;
		}
		*(uint32_t *)field = (uint32_t)u;
		return 0;
	}
	case T_DURATION:
		r = parse_duration_usec(v, &u);
		if (r < 0) {
			snprintf(why, why_size, "'%s' is not a duration (e.g. 50ms, 20s)", v);
			return -EINVAL;
		}
		break;
	case T_MILLI:
		r = parse_milli(v, &u);
		if (r < 0) {
			snprintf(why, why_size, "'%s' is not a decimal number (at most 3 decimals)",
				 v);
			return -EINVAL;
		}
		break;
	case T_BOOL:
		if (parse_bool(v, &b) < 0) {
			snprintf(why, why_size, "'%s' is not a boolean", v);
			return -EINVAL;
		}
		*(bool *)field = b;
		return 0;
	case T_BACKEND:
		if (parse_choice(v, "backend", "sev", "sim", &second, why, why_size) < 0)
			return -EINVAL;
		*(enum conf_backend *)field = second ? CONF_BACKEND_SIM : CONF_BACKEND_SEV;
		return 0;
	case T_TRANSPORT:
		if (parse_choice(v, "transport", "genl", "usersock", &second, why, why_size) < 0)
			return -EINVAL;
		*(enum conf_transport *)field =
			second ? CONF_TRANSPORT_USERSOCK : CONF_TRANSPORT_GENL;
		return 0;
	}

	if ((k->min || k->max) && (u < k->min || u > k->max)) {
		char lo[32], hi[32];
		if (k->type == T_DURATION) {
			format_duration_usec(k->min, lo, sizeof(lo));
			format_duration_usec(k->max, hi, sizeof(hi));
		} else if (k->type == T_MILLI) {
			format_milli(k->min, lo, sizeof(lo));
			format_milli(k->max, hi, sizeof(hi));
		} else {
			snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min);
			snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
		}
		snprintf(why, why_size, "'%s' is out of range [%s, %s]", v, lo, hi);
		return -ERANGE;
	}
	if (k->type == T_U32)
		*(uint32_t *)field = (uint32_t)u;
	else
		*(uint64_t *)field = u;
	return 0;
}

static bool key_is_string(const struct conf_key *k)
{
	return k->type == T_STR || k->type == T_LOGLEVEL || k->type == T_LISTEN;
}

int conf_init_defaults(struct conf *c)
{
	char why[128];

	*c = (struct conf){0};
	for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
		if (set_value(c, &conf_keys[i], conf_keys[i].def, why, sizeof(why)) < 0) {
			conf_done(c);
			return -ENOMEM;
		}
	return 0;
}

void conf_done(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
		if (key_is_string(&conf_keys[i])) {
			char **p = (char **)((char *)c + conf_keys[i].offset);
			free(*p);
			*p = NULL;
		}
}

int conf_copy(const struct conf *src, struct conf *dst)
{
	struct conf n = *src;

	for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++)
		if (key_is_string(&conf_keys[i])) {
			char **p = (char **)((char *)&n + conf_keys[i].offset);
			const char *s = *(char *const *)((const char *)src + conf_keys[i].offset);
			*p = NULL;
			if (s && !(*p = strdup(s))) {
				conf_done(&n);
				return -ENOMEM;
			}
		}
	*dst = n;
	return 0;
}

struct apply_ctx {
	struct conf *c;
	const char *name;
	char *err;
	size_t err_size;
	bool seen[ELEMENTSOF(conf_keys)];
	bool failed;
};

static int apply_one(void *user, const char *section, const char *key, const char *value)
{
	struct apply_ctx *ctx = user;
	char why[192] = "";
	size_t i;
	int r;

	if (ctx->failed)
		return 0;
	for (i = 0; i < ELEMENTSOF(conf_keys); i++)
		if (strcmp(section, conf_keys[i].section) == 0 &&
		    strcmp(key, conf_keys[i].key) == 0)
			break;
	if (i == ELEMENTSOF(conf_keys)) {
		bool known_section = false;
		for (size_t j = 0; j < ELEMENTSOF(conf_keys); j++)
			if (strcmp(section, conf_keys[j].section) == 0)
				known_section = true;
		if (known_section)
			snprintf(why, sizeof(why), "unknown key '%s' in [%s]", key, section);
		else
			snprintf(why, sizeof(why), "unknown section [%s] (key '%s')", section, key);
		r = -EINVAL;
	} else if (ctx->seen[i]) {
		snprintf(why, sizeof(why), "key '%s' in [%s] given twice", key, section);
		r = -EINVAL;
	} else {
		ctx->seen[i] = true;
		r = set_value(ctx->c, &conf_keys[i], value, why, sizeof(why));
		if (r < 0 && !why[0])
			snprintf(why, sizeof(why), "cannot set '%s': %s", key, snp_strerror(r));
		if (r < 0 && i < ELEMENTSOF(conf_keys)) {
			char tmp[192];
			snprintf(tmp, sizeof(tmp), "[%s] %s: %s", section, key, why);
			memcpy(why, tmp, sizeof(why));
		}
	}
	if (r < 0) {
		snprintf(ctx->err, ctx->err_size, "%s", why);
		ctx->failed = true;
		return 0; /* makes inih report this line */
	}
	return 1;
}

int conf_apply_string(struct conf *c, const char *text, const char *name, char *err,
		      size_t err_size)
{
	struct apply_ctx ctx = {.name = name, .err = err, .err_size = err_size};
	struct conf work;
	char msg[256] = "";
	int line, r;

	r = conf_copy(c, &work);
	if (r < 0)
		return r;
	ctx.c = &work;
	ctx.err = msg;
	ctx.err_size = sizeof(msg);
	line = ini_parse_string(text, apply_one, &ctx);
	if (line != 0) {
		if (line < 0)
			snprintf(err, err_size, "%s: cannot parse", name);
		else if (msg[0])
			snprintf(err, err_size, "%s:%d: %s", name, line, msg);
		else
			snprintf(err, err_size,
				 "%s:%d: syntax error (expected [section] or key = value)", name,
				 line);
		conf_done(&work);
		return -EINVAL;
	}
	conf_done(c);
	*c = work;
	return 0;
}

int conf_validate(const struct conf *c, char *err, size_t err_size)
{
	char a[32], b[32];

	if (c->busy_budget_usec >= 60000000ull) {
		snprintf(err, err_size,
			 "[scheduler] busy_budget %s must be below 60s: the Linux guest wipes its "
			 "VMPCK after 60s of BUSY",
			 format_duration_usec(c->busy_budget_usec, a, sizeof(a)));
		return -EINVAL;
	}
	/* rate (per s) * budget (s) must allow at least one request inside the budget. */
	if (c->quota_rate_milli * (c->busy_budget_usec / 1000) < 1000ull * 1000) {
		snprintf(err, err_size,
			 "[quota] rate %s/s is slower than one request per busy_budget %s: guests "
			 "would lose their keys",
			 format_milli(c->quota_rate_milli, a, sizeof(a)),
			 format_duration_usec(c->busy_budget_usec, b, sizeof(b)));
		return -EINVAL;
	}
	if (c->max_queue_wait_usec >= 100000ull) {
		snprintf(err, err_size,
			 "[scheduler] max_queue_wait must be below the kernel's 100ms verdict "
			 "timeout");
		return -EINVAL;
	}
	/* A VM must get at least one retry before its BUSY streak reaches the budget. */
	if (c->guest_retry_interval_usec + c->max_queue_wait_usec >= c->busy_budget_usec) {
		snprintf(err, err_size,
			 "[scheduler] busy_budget %s must exceed guest_retry_interval %s + "
			 "max_queue_wait",
			 format_duration_usec(c->busy_budget_usec, a, sizeof(a)),
			 format_duration_usec(c->guest_retry_interval_usec, b, sizeof(b)));
		return -EINVAL;
	}
	if (c->backend == CONF_BACKEND_SIM && (!c->sim_state_dir || !c->sim_state_dir[0])) {
		snprintf(err, err_size, "[daemon] backend=sim needs sim_state_dir");
		return -EINVAL;
	}
	if (!c->state_dir[0] || c->state_dir[0] != '/' || !c->cache_dir[0] ||
	    c->cache_dir[0] != '/') {
		snprintf(err, err_size, "[daemon] state_dir and cache_dir must be absolute paths");
		return -EINVAL;
	}
	if (!c->control_socket[0] || c->control_socket[0] != '/' ||
	    strlen(c->control_socket) >= 108) {
		snprintf(err, err_size,
			 "[control] socket must be an absolute path shorter than 108 bytes");
		return -EINVAL;
	}
	if (strcmp(c->vmm_socket, "auto") != 0 && strcmp(c->vmm_socket, "none") != 0 &&
	    (c->vmm_socket[0] != '/' || strlen(c->vmm_socket) >= 108)) {
		snprintf(err, err_size,
			 "[vmm] socket must be auto, none or an absolute path "
			 "shorter than 108 bytes");
		return -EINVAL;
	}
	if (strcmp(c->vmm_socket, c->control_socket) == 0) {
		snprintf(err, err_size, "[vmm] socket and [control] socket must differ");
		return -EINVAL;
	}
	return 0;
}

char *conf_format(const struct conf *c)
{
	struct strbuf sb = {0};
	const char *section = NULL;

	for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
		const struct conf_key *k = &conf_keys[i];
		const void *field = (const char *)c + k->offset;
		char v[64];
		const char *s = v;

		if (!section || strcmp(section, k->section) != 0) {
			strbuf_appendf(&sb, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		switch (k->type) {
		case T_STR:
		case T_LOGLEVEL:
		case T_LISTEN:
			s = *(char *const *)field;
			break;
		case T_U32:
			snprintf(v, sizeof(v), "%u", *(const uint32_t *)field);
			break;
		case T_MODE:
			snprintf(v, sizeof(v), "%04o", *(const uint32_t *)field);
			break;
		case T_DURATION:
			format_duration_usec(*(const uint64_t *)field, v, sizeof(v));
			break;
		case T_MILLI:
			format_milli(*(const uint64_t *)field, v, sizeof(v));
			break;
		case T_BOOL:
			s = *(const bool *)field ? "yes" : "no";
			break;
		case T_BACKEND:
			s = *(const enum conf_backend *)field == CONF_BACKEND_SIM ? "sim" : "sev";
			break;
		case T_TRANSPORT:
			s = *(const enum conf_transport *)field == CONF_TRANSPORT_USERSOCK
				    ? "usersock"
				    : "genl";
			break;
		}
		strbuf_appendf(&sb, "%s = %s\n", k->key, s ? s : "");
	}
	return strbuf_steal(&sb);
}
