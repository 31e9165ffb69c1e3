/* SPDX-License-Identifier: Apache-2.0 */
/* quotas: per-VM custom quotas as an operator sets them: validation, persistence in the state
 * directory (quotafile.c, written on the worker thread so the loop never waits on the disk)
 * and, once stored, their application in the admission core (which holds the quotas in
 * force). A quota that could not be stored is not applied. One write at a time; later
 * changes wait their turn in order, each snapshot taken when its write starts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "quotafile.h"
#include "util.h"

#include "broker-int.h"

struct quota_change {
	struct worker_job job;
	struct broker *b; /* borrowed */
	uint64_t vm_id;
	bool reset;
	struct sched_quota q;
	broker_op_done_fn cb;
	void *userdata;
	struct quota_change *next;
	bool submitted;
	/* the write (worker) */
	char *dir;		   /* owned copy */
	struct quotafile_entry *e; /* owned: the file's new content */
	size_t n;
	int r;
	char err[512];
};

static void change_free(struct quota_change *c)
{
	if (!c)
		return;
	free(c->dir);
	free(c->e);
	free(c);
}

int load_quotas(struct broker *b)
{
	struct quotafile_entry *e = NULL;
	size_t n = 0, applied = 0;
	char err[768] = "", aside[4096] = "";
	int r;

	r = quotafile_load(b->m->conf.state_dir, &e, &n, err, sizeof(err));
	if (r < 0) {
		/* Guests are served with the default quotas rather than not at all; the file
		 * is kept under another name for the operator. */
		int k = quotafile_set_aside(b->m->conf.state_dir, aside, sizeof(aside));
		log_error("Cannot read the stored quotas (%s): every VM gets the default quota; "
			  "%s%s",
			  err,
			  k < 0 ? "the file could not be moved aside: " : "the file was kept as ",
			  k < 0 ? snp_strerror(k) : aside);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;
		if (adm_quota_set(b->adm, e[i].vm_id, &e[i].q, &why) < 0)
			log_warning("Stored quota for VM %llu ignored: %s",
				    (unsigned long long)e[i].vm_id, why ? why : "out of memory");
		else
			applied++;
	}
	free(e);
	if (applied)
		log_info("Restored %zu per-VM quotas from %s", applied, b->m->conf.state_dir);
	return 0;
}

struct snap {
	struct quotafile_entry *e;
	size_t n;
	uint64_t skip;
	bool skipping;
};

static void snap_add(void *userdata, uint64_t vm_id, const struct sched_quota *q)
{
	struct snap *s = userdata;

	if (s->skipping && vm_id == s->skip)
		return;
	s->e[s->n].vm_id = vm_id;
	s->e[s->n].q = *q;
	s->n++;
}

static void save_run(struct worker_job *j)
{
	struct quota_change *c = container_of(j, struct quota_change, job);

	if (c->e && c->dir)
		c->r = quotafile_save(c->dir, c->e, c->n);
}

static void save_next(struct broker *b);

static void save_done(struct worker_job *j)
{
	struct quota_change *c = container_of(j, struct quota_change, job);
	struct broker *b = c->b;
	const char *why = NULL;
	char msg[768];
	int r = c->r;

	b->quota_head = c->next;
	if (!b->quota_head)
		b->quota_tail = NULL;
	if (r == 0) {
		r = adm_quota_set(b->adm, c->vm_id, c->reset ? NULL : &c->q, &why);
		if (r < 0)
			snprintf(msg, sizeof(msg), "quota stored but not applied: %s",
				 why ? why : snp_strerror(r));
		else
			snprintf(msg, sizeof(msg), "quota %s for VM %llu",
				 c->reset ? "reset" : "set", (unsigned long long)c->vm_id);
	} else {
		/* The file's errno means what it means for a file (never a PSP meaning). */
		snprintf(msg, sizeof(msg), "quota not stored, nothing changed: %s/%s: %s",
			 b->m->conf.state_dir, QUOTAFILE_NAME, strerror(-r));
		log_error("Cannot store quotas in %s: %s; the change is not applied",
			  b->m->conf.state_dir, strerror(-r));
	}
	if (c->cb)
		c->cb(c->userdata, r, msg);
	change_free(c);
	if (!b->stopping)
		save_next(b);
}

/* Starts the write of the change at the head of the queue (if none is running). */
static void save_next(struct broker *b)
{
	struct quota_change *c = b->quota_head;
	struct snap s;

	if (!c || c->submitted)
		return; /* nothing queued, or its write runs */
	c->submitted = true;
	s = (struct snap){.skip = c->vm_id, .skipping = true};
	s.e = calloc(adm_quota_count(b->adm) + 1, sizeof(*s.e));
	c->dir = strdup(b->m->conf.state_dir);
	if (!s.e || !c->dir) {
		free(s.e);
		c->r = -ENOMEM; /* answered through the worker like any other outcome */
		worker_submit(b->worker, &c->job);
		return;
	}
	adm_quota_foreach(b->adm, snap_add, &s);
	if (!c->reset) {
		s.e[s.n].vm_id = c->vm_id;
		s.e[s.n].q = c->q;
		s.n++;
	}
	c->e = s.e;
	c->n = s.n;
	worker_submit(b->worker, &c->job);
}

int broker_set_quota(struct broker *b, uint64_t vm_id, const struct sched_quota *q,
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size)
{
	struct quota_change *c;
	const char *why = NULL;
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (q) {
		r = adm_quota_check(b->adm, q, &why);
		if (r < 0) {
			snprintf(err, err_size, "quota refused: %s", why ? why : "invalid");
			return r;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	c->b = b;
	c->vm_id = vm_id;
	c->reset = !q;
	if (q)
		c->q = *q;
	c->cb = cb;
	c->userdata = userdata;
	c->job.run = save_run;
	c->job.done = save_done;
	if (b->quota_tail)
		b->quota_tail->next = c;
	else
		b->quota_head = c;
	b->quota_tail = c;
	save_next(b);
	return 0;
}

void quotas_forget(struct broker *b, void *userdata)
{
	for (struct quota_change *c = b->quota_head; c; c = c->next)
		if (!userdata || c->userdata == userdata) {
			c->cb = NULL;
			c->userdata = NULL;
		}
}

void quotas_stop(struct broker *b)
{
	/* The worker has completed every submitted write; what is left never started. */
	while (b->quota_head) {
		struct quota_change *c = b->quota_head;
		b->quota_head = c->next;
		change_free(c);
	}
	b->quota_tail = NULL;
}

/* --- read side --- */

void broker_default_quota(const struct broker *b, struct sched_quota *ret)
{
	adm_quota_default(b->adm, ret);
}

bool broker_get_quota(const struct broker *b, uint64_t vm_id, struct sched_quota *ret)
{
	return adm_quota_get(b->adm, vm_id, ret);
}

size_t broker_quota_foreach(const struct broker *b,
			    void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			    void *userdata)
{
	return adm_quota_foreach(b->adm, fn, userdata);
}
