/* SPDX-License-Identifier: Apache-2.0 */
/* worker: a FIFO job thread completing into libev through ev_async. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util.h"

struct worker {
	struct ev_loop *loop; /* borrowed */
	ev_async async;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct worker_job *todo_head, *todo_tail; /* guarded by lock */
	struct worker_job *done_head, *done_tail; /* guarded by lock */
	bool stop;				  /* guarded by lock */
	unsigned pending;			  /* loop thread only */
};

static void push(struct worker_job **head, struct worker_job **tail, struct worker_job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct worker_job *j;

		while (!w->todo_head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->todo_head)
			break;
		j = w->todo_head;
		w->todo_head = j->next;
		if (!w->todo_head)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->lock);
		j->run(j);
		pthread_mutex_lock(&w->lock);
		push(&w->done_head, &w->done_tail, j);
		ev_async_send(w->loop, &w->async);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void deliver(struct worker *w)
{
	struct worker_job *j;

	pthread_mutex_lock(&w->lock);
	j = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (j) {
		struct worker_job *next = j->next;
		w->pending--;
		if (j->done)
			j->done(j);
		j = next;
	}
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	deliver(container_of(a, struct worker, async));
}

int worker_new(struct ev_loop *loop, struct worker **ret)
{
	struct worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	ev_async_init(&w->async, on_async);
	ev_async_start(loop, &w->async);
	r = pthread_create(&w->thread, NULL, thread_main, w);
	if (r != 0) {
		ev_async_stop(loop, &w->async);
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -r;
	}
	*ret = w;
	return 0;
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	deliver(w);
	ev_async_stop(w->loop, &w->async);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void worker_submit(struct worker *w, struct worker_job *j)
{
	w->pending++;
	pthread_mutex_lock(&w->lock);
	push(&w->todo_head, &w->todo_tail, j);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

unsigned worker_pending(const struct worker *w)
{
	return w->pending;
}
