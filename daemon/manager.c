/* SPDX-License-Identifier: Apache-2.0 */
/* manager: loop, signals, reload, drain, sd_notify and the watchdog. Modules are started in
 * the order given and stopped in reverse. */
#include "manager.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "confload.h"
#include "log.h"
#include "util.h"

#define DRAIN_POLL_SEC 0.01
#define DRAIN_MAX_SEC 5.0

uint64_t manager_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

void manager_notify_status(struct manager *m, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
	(void)m;
}

void manager_start_error(struct manager *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->start_error, sizeof(m->start_error), fmt, ap);
	va_end(ap);
}

void manager_reload_skipped(struct manager *m, const char *key)
{
	size_t l = strlen(m->reload_skipped);

	snprintf(m->reload_skipped + l, sizeof(m->reload_skipped) - l, "%s%s", l ? ", " : "", key);
}

int manager_test_fail(struct manager *m, const char *module, const char *step)
{
	const char *e = getenv("SNP_ATTESTD_TEST_FAIL_START");
	size_t l = strlen(module);

	if (!e || strncmp(e, module, l) != 0)
		return 0;
	if (step ? e[l] != ':' || strcmp(e + l + 1, step) != 0 : e[l] != '\0')
		return 0;
	manager_start_error(m, "start failure injected by SNP_ATTESTD_TEST_FAIL_START=%s", e);
	return -ECANCELED;
}

int manager_reload(struct manager *m)
{
	struct conf n = {0}, old;
	char err[512] = "";
	int r;

	r = confload(m->config_path, m->config_required, &n, err, sizeof(err));
	if (r < 0) {
		m->reload_failures++;
		log_error("Reload refused, keeping the running configuration: %s", err);
		return r;
	}
	if (m->ready)
		sd_notify(0, "RELOADING=1");
	old = m->conf;
	m->conf = n;
	log_set_level_name(m->conf.log_level);
	m->reload_skipped[0] = '\0';
	for (size_t i = 0; i < m->n_started; i++)
		if (m->modules[i]->reload) {
			r = m->modules[i]->reload(m, &old);
			if (r < 0)
				log_warning_errno(r,
						  "Module %s did not apply the new configuration",
						  m->modules[i]->name);
		}
	conf_done(&old);
	m->reloads++;
	if (m->reload_skipped[0])
		log_warning("Configuration reloaded from %s, except what needs a restart: %s",
			    m->config_path, m->reload_skipped);
	else
		log_info("Configuration reloaded from %s", m->config_path);
	if (m->ready)
		sd_notify(0, "READY=1");
	return 0;
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct manager *m = container_of(w, struct manager, sig_hup);

	(void)loop;
	(void)revents;
	manager_reload(m);
}

static bool all_drained(struct manager *m)
{
	for (size_t i = 0; i < m->n_started; i++)
		if (m->modules[i]->drained && !m->modules[i]->drained(m))
			return false;
	return true;
}

static void on_drain_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct manager *m = container_of(w, struct manager, drain_timer);

	(void)revents;
	if (all_drained(m) || ++m->drain_polls > (unsigned)(DRAIN_MAX_SEC / DRAIN_POLL_SEC)) {
		if (!all_drained(m))
			log_warning("Stopping with requests still in flight after %.0fs",
				    DRAIN_MAX_SEC);
		ev_timer_stop(loop, w);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void on_sigterm(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct manager *m = w->signum == SIGTERM ? container_of(w, struct manager, sig_term)
						 : container_of(w, struct manager, sig_int);

	(void)revents;
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("Received %s, draining", strsignal(w->signum));
	sd_notify(0, "STOPPING=1");
	ev_timer_init(&m->drain_timer, on_drain_timer, 0., DRAIN_POLL_SEC);
	m->drain_polls = 0;
	ev_timer_start(loop, &m->drain_timer);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* The loop is alive if we get here; each module's liveness shows in its own work. */
	sd_notify(0, "WATCHDOG=1");
}

int manager_new(const char *config_path, bool required, const struct conf *conf,
		const struct manager_module *const *modules, struct manager **ret)
{
	struct manager *m;
	uint64_t wd = 0;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->config_path = strdup(config_path);
	if (!m->config_path) {
		free(m);
		return -ENOMEM;
	}
	m->config_required = required;
	r = conf_copy(conf, &m->conf);
	if (r < 0) {
		free(m->config_path);
		free(m);
		return r;
	}
	m->modules = modules;
	m->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (!m->loop) {
		manager_free(m);
		return -ENOMEM;
	}
	ev_set_userdata(m->loop, m);
	ev_signal_init(&m->sig_hup, on_sighup, SIGHUP);
	ev_signal_init(&m->sig_term, on_sigterm, SIGTERM);
	ev_signal_init(&m->sig_int, on_sigterm, SIGINT);
	ev_signal_start(m->loop, &m->sig_hup);
	ev_signal_start(m->loop, &m->sig_term);
	ev_signal_start(m->loop, &m->sig_int);
	if (sd_watchdog_enabled(0, &wd) > 0 && wd > 0) {
		ev_timer_init(&m->watchdog, on_watchdog, 0., (double)wd / 2e6);
		ev_timer_start(m->loop, &m->watchdog);
	}
	*ret = m;
	return 0;
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	while (m->n_started > 0) {
		const struct manager_module *mod = m->modules[--m->n_started];
		if (mod->stop)
			mod->stop(m);
	}
	if (m->loop)
		ev_loop_destroy(m->loop);
	conf_done(&m->conf);
	free(m->config_path);
	free(m);
}

static void announce_ready(struct manager *m)
{
	if (m->ready)
		return;
	m->ready = true;
	sd_notify(0, "READY=1");
	manager_notify_status(m, "serving");
	log_info("snp-attestd ready (backend %s)",
		 m->conf.backend == CONF_BACKEND_SIM ? "sim" : "sev");
}

void manager_ready_hold(struct manager *m)
{
	m->ready_holds++;
}

void manager_ready_release(struct manager *m)
{
	if (m->ready_holds == 0)
		return;
	if (--m->ready_holds == 0 && m->started)
		announce_ready(m);
}

int manager_run(struct manager *m)
{
	int r;

	signal(SIGPIPE, SIG_IGN);
	for (; m->modules && m->modules[m->n_started]; m->n_started++) {
		const struct manager_module *mod = m->modules[m->n_started];
		m->start_error[0] = '\0';
		r = manager_test_fail(m, mod->name, NULL);
		if (r == 0 && mod->start)
			r = mod->start(m);
		if (r < 0) {
			/* The module released what it took; manager_free stops the started ones
			 * in reverse order. */
			if (m->start_error[0])
				log_error("Failed to start %s: %s", mod->name, m->start_error);
			else
				log_error_errno(r, "Failed to start %s", mod->name);
			return 1;
		}
	}
	m->started = true;
	if (m->ready_holds == 0)
		announce_ready(m);
	else
		manager_notify_status(m, "starting: waiting for the certificate chain");
	/* Runs until SIGTERM/SIGINT has drained and breaks the loop. */
	ev_run(m->loop, 0);
	return 0;
}
