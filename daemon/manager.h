/* SPDX-License-Identifier: Apache-2.0 */
/* manager: the root of the daemon's object tree. Owns the libev loop, the configuration,
 * signals, sd_notify/watchdog, and the list of modules (broker, metrics, control socket: see
 * daemon-modules.c), which it starts in order and stops in reverse. What each module holds is
 * the module's own. */
#pragma once

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct manager;

/* A module plugged into the manager: created in order, torn down in reverse. start either
 * succeeds or releases everything it took before it returns its error (stop is called only for
 * modules that started); it may describe the failure with manager_start_error, which the
 * manager logs once. reload is called after a successful configuration reload with the old
 * configuration for comparison. */
struct manager_module {
	const char *name;
	int (*start)(struct manager *m);
	void (*stop)(struct manager *m);
	int (*reload)(struct manager *m, const struct conf *old);
	/* Called on SIGTERM: return true when the module has drained (no request in flight). */
	bool (*drained)(struct manager *m);
};

struct manager {
	struct ev_loop *loop; /* owned */
	struct conf conf;     /* owned; replaced atomically on reload */
	char *config_path;    /* owned */
	bool config_required;

	ev_signal sig_hup;
	ev_signal sig_term;
	ev_signal sig_int;
	ev_timer watchdog;
	ev_timer drain_timer;
	unsigned drain_polls;
	bool ready;
	bool started;	      /* every module started */
	unsigned ready_holds; /* READY=1 waits until these are released */
	bool stopping;
	uint64_t reloads;
	uint64_t reload_failures;

	const struct manager_module *const *modules; /* borrowed, NULL-terminated */
	size_t n_started;
	char start_error[512];	  /* the failing module's description of its start failure */
	char reload_skipped[512]; /* keys a reload changed and could not apply, ", "-separated */

	/* The modules' state: each owned by its module (set by start, cleared by stop). */
	void *broker;  /* struct broker * */
	void *ctl;     /* struct ctl * */
	void *metrics; /* struct metrics * */
};

int manager_new(const char *config_path, bool required, const struct conf *conf,
		const struct manager_module *const *modules, struct manager **ret);
void manager_free(struct manager *m);
/* Runs the loop until SIGTERM/SIGINT has drained; returns the exit code. */
int manager_run(struct manager *m);
/* Re-reads the configuration; a bad file leaves the running one in place. */
int manager_reload(struct manager *m);
/* Status line for sd_notify STATUS= and snpctl status. */
void manager_notify_status(struct manager *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* READY=1 is sent once every module has started and every hold is released (design §7: only
 * once the chain is loaded or the daemon has decided to run without one). */
void manager_ready_hold(struct manager *m);
void manager_ready_release(struct manager *m);
/* A module's reload names a changed key it cannot apply without a restart ("[section] key");
 * the reload's log line lists them (never "reloaded" alone while a change was ignored). */
void manager_reload_skipped(struct manager *m, const char *key);
/* A module's start describes why it fails (one line; logged once by the manager). */
void manager_start_error(struct manager *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Test-only fault injection: with SNP_ATTESTD_TEST_FAIL_START=module[:step] in the
 * environment, the named module's start fails at that step (at its very start when no step
 * is given) with -ECANCELED, after taking what the steps before took. Returns 0 otherwise.
 * tests/daemon/startfail.sh uses it to check that every failure unwinds. */
int manager_test_fail(struct manager *m, const char *module, const char *step);
/* CLOCK_MONOTONIC in usec (the one clock the daemon uses for policy). */
uint64_t manager_now_usec(void);
