/* SPDX-License-Identifier: Apache-2.0 */
/* conf: the daemon's configuration model, INI parsing from strings, validation and the
 * normalised form printed by --check-config. Pure: the daemon reads the files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_backend {
	CONF_BACKEND_SEV,
	CONF_BACKEND_SIM,
};

enum conf_transport {
	CONF_TRANSPORT_GENL,	 /* generic netlink family "snp_attest" (the KVM side) */
	CONF_TRANSPORT_USERSOCK, /* NETLINK_USERSOCK, played by snp-kvmsim */
};

struct conf {
	/* [daemon] */
	enum conf_backend backend;
	char *sev_device;    /* /dev/sev */
	char *sim_state_dir; /* simulation state (backend=sim) */
	char *state_dir;     /* quotas etc. */
	char *cache_dir;     /* certificate cache */
	enum conf_transport transport;
	uint32_t usersock_port;		  /* the simulator's port id (transport=usersock) */
	char *log_level;		  /* emerg..debug */
	uint64_t guest_log_interval_usec; /* per-VM log rate limit window */
	uint32_t guest_log_burst;
	/* [control] */
	char *control_socket;
	char *admin_group;    /* may change things; "" = root only */
	char *readonly_group; /* may look; "" = nobody but admins */
	/* A request line must arrive whole, and each batch of replies be taken, within this of its
	 * first byte (per request, not per byte: a trickle does not keep a connection). */
	uint64_t control_request_timeout_usec;
	/* [scheduler] */
	uint32_t psp_concurrency;
	uint64_t max_queue_wait_usec;
	uint64_t busy_budget_usec;
	uint64_t guest_retry_interval_usec; /* the guests' BUSY retry delay (Linux: 2 s) */
	/* [quota] defaults for every VM */
	uint64_t quota_rate_milli; /* requests per second, thousandths */
	uint32_t quota_burst;
	uint32_t quota_weight;
	/* [certs] */
	char *cert_dir; /* static chain (ark/ask/vcek files) or "" */
	char *kds_url;
	char *kds_proxy;     /* "" = none (libcurl's environment rules otherwise off) */
	char *kds_ca_bundle; /* "" = system default */
	uint64_t kds_timeout_usec;
	uint64_t tcb_poll_interval_usec;
	char *vmm_certs_file;	 /* GHCB blob for the VMM path (facts §9.2), "" = off */
	char *vmm_certs_group;	 /* its group (the VMM's), "" = the daemon's own */
	uint32_t vmm_certs_mode; /* its permission bits, e.g. 0640 */
	bool trust_sim_ark;	 /* only meaningful with backend=sim */
	/* [vmm] the VMM socket (docs/vmm-protocol.md) */
	char *vmm_socket;	  /* a path, "auto" (only a socket systemd passes) or "none" */
	char *vmm_group;	  /* may connect besides root; "" = root only */
	uint32_t vmm_max_clients; /* connections at once (one per VM) */
	uint64_t vmm_hello_timeout_usec; /* a connection must say HELLO within this */
	/* [metrics] */
	char *metrics_listen; /* "127.0.0.1:9477", "" = off; checked like the daemon binds it */
	/* Headers must arrive, and the answer be taken, within this of the request's start. */
	uint64_t metrics_request_timeout_usec;
};

/* Fills c with the built-in defaults. -ENOMEM. */
int conf_init_defaults(struct conf *c);
void conf_done(struct conf *c);
/* Applies one INI text on top of c (later texts override earlier ones, as drop-ins do).
 * name is used in error messages. On error returns -EINVAL, writes a one-line message
 * ("NAME:LINE: unknown key 'x' in [y]") into err, and leaves c unchanged. */
int conf_apply_string(struct conf *c, const char *text, const char *name, char *err,
		      size_t err_size);
/* Whole-configuration checks (design §4 rule 4: busy_budget < 60 s; quota at least one
 * request per busy_budget; ...). -EINVAL with a message. */
int conf_validate(const struct conf *c, char *err, size_t err_size);
/* The normalised configuration (every key, sections in order) as INI text; malloc'd. */
char *conf_format(const struct conf *c);
/* Deep copy (for atomic reload: parse into a copy, swap on success). */
int conf_copy(const struct conf *src, struct conf *dst);

/* The key table, for documentation tests: iterate i = 0.. until NULL. */
const char *conf_key_name(size_t i, const char **ret_section, const char **ret_default,
			  const char **ret_help);
