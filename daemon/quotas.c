/* SPDX-License-Identifier: Apache-2.0 */
/* quotas: per-VM custom quotas: validation, the runtime API, and their persistence in the
 * state directory (quotafile.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>

#include "cache.h"
#include "certs.h"
#include "certtable.h"
#include "exitinfo.h"
#include "fw.h"
#include "kdsc.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "nl.h"
#include "nlsock.h"
#include "quotafile.h"
#include "ratelimit.h"
#include "u64map.h"
#include "util.h"
#include "vmmfile.h"

#include "broker-int.h"

int load_quotas(struct broker *b)
{
	struct quotafile_entry *e = NULL;
	size_t n = 0;
	char err[512] = "";
	int r;

	r = quotafile_load(b->m->conf.state_dir, &e, &n, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "Cannot read stored quotas: %s", err);
	for (size_t i = 0; i < n; i++) {
		struct sched_quota *q = malloc(sizeof(*q));
		if (!q || u64map_put(&b->quotas, e[i].vm_id, q) < 0) {
			free(q);
			continue;
		}
		*q = e[i].q;
	}
	free(e);
	if (n)
		log_info("Restored %zu per-VM quotas from %s", n, b->m->conf.state_dir);
	return 0;
}

int save_quotas(struct broker *b)
{
	struct quotafile_entry *e;
	size_t n = 0, it = 0;
	uint64_t id;
	void *v;
	int r;

	e = calloc(u64map_size(&b->quotas) + 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	while (u64map_next(&b->quotas, &it, &id, &v)) {
		e[n].vm_id = id;
		e[n].q = *(struct sched_quota *)v;
		n++;
	}
	r = quotafile_save(b->m->conf.state_dir, e, n);
	free(e);
	if (r < 0)
		log_error_errno(r, "Cannot store quotas in %s", b->m->conf.state_dir);
	return r;
}


void broker_default_quota(const struct broker *b, struct sched_quota *ret)
{
	ret->rate_milli = b->m->conf.quota_rate_milli;
	ret->burst = b->m->conf.quota_burst;
	ret->weight = b->m->conf.quota_weight;
}

bool broker_get_quota(const struct broker *b, uint64_t vm_id, struct sched_quota *ret)
{
	const struct sched_quota *q = u64map_get(&b->quotas, vm_id);

	if (q) {
		*ret = *q;
		return true;
	}
	broker_default_quota(b, ret);
	return false;
}

size_t broker_quota_foreach(const struct broker *b,
			    void (*fn)(void *userdata, uint64_t vm_id, const struct sched_quota *q),
			    void *userdata)
{
	size_t it = 0, n = 0;
	uint64_t id;
	void *v;

	while (u64map_next(&b->quotas, &it, &id, &v)) {
		fn(userdata, id, v);
		n++;
	}
	return n;
}

int broker_set_quota(struct broker *b, uint64_t vm_id, const struct sched_quota *q,
		     const char **reason)
{
	struct sched_config sc;
	struct sched_quota *old;
	int r;

	if (q) {
		if (sched_config_from(&b->m->conf, &sc) < 0)
			return -EINVAL;
		r = sched_quota_check(&sc, q, reason);
		if (r < 0)
			return r;
	}
	if (u64map_get(&b->vms, vm_id)) {
		r = sched_vm_set_quota(b->sched, vm_id, q, now_usec(), reason);
		if (r < 0)
			return r;
	}
	old = u64map_remove(&b->quotas, vm_id);
	if (q) {
		struct sched_quota *n = old ? old : malloc(sizeof(*n));
		if (!n)
			return -ENOMEM;
		*n = *q;
		old = NULL;
		r = u64map_put(&b->quotas, vm_id, n);
		if (r < 0) {
			free(n);
			return r;
		}
	}
	free(old);
	return save_quotas(b);
}

