/* SPDX-License-Identifier: Apache-2.0 */
/* worker: one thread that runs blocking calls in submission order and hands each result back
 * to the event loop. Each user owns an instance: the broker's runs the firmware commands, the
 * KDS client's (kdsc) runs the cache's disk writes (cache_put_async), so an fsync never waits
 * behind a firmware command or the other way round. The thread touches only the job it runs;
 * completion callbacks run on the loop thread. */
#pragma once

#include <ev.h>

struct worker;
struct worker_job;

/* run: on the worker thread; done: on the loop thread, then the job is the caller's again. */
struct worker_job {
	void (*run)(struct worker_job *j);
	void (*done)(struct worker_job *j);
	struct worker_job *next; /* private */
};

int worker_new(struct ev_loop *loop, struct worker **ret);
/* Stops the thread after the queued jobs ran and delivers their completions. */
void worker_free(struct worker *w);
void worker_submit(struct worker *w, struct worker_job *j);
/* Jobs submitted and not yet completed. */
unsigned worker_pending(const struct worker *w);
