/* SPDX-License-Identifier: Apache-2.0 */
/* rotation: the served chain and the VMM certificate file. The start-up chain and READY
 * gating, the rotation state machine (pause, drain, swap on the worker under the VMM file's
 * lock), TCB set/commit, VLEK load and the expiry refresh (design §6). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#include "broker-int.h"

const uint8_t empty_table[CERTTABLE_ENTRY_SIZE];

void serve_chain(struct broker *b, struct chain *c)
{
	if (b->chain != c)
		chain_free(b->chain);
	b->chain = c;
	b->chain_since = c ? time(NULL) : 0;
	if (b->adm) {
		if (c)
			adm_set_table(b->adm, c->table, c->table_len, c->table_pages);
		else
			adm_set_table(b->adm, NULL, 0, 0);
	}
}

/* Start-up only (nothing admitted yet): the first chain, and the VMM file to match. */
void load_chain(struct broker *b)
{
	struct chain *c = NULL;
	char err[600] = "";
	int r;

	if (b->snp_uninit) {
		log_info("Certificates are loaded once SNP is initialised");
	} else if (!b->m->conf.cert_dir[0]) {
		if (b->kdsc)
			log_info("Certificates come from KDS (%s) through the cache in %s",
				 b->m->conf.kds_url, b->m->conf.cache_dir);
		else
			log_warning("No certificate source configured ([certs] cert_dir or "
				    "kds_url): extended requests get an empty certificate table");
	} else {
		r = chain_from_dir(b->m->conf.cert_dir, b->sim_ark, &b->pf, time(NULL), &c, err,
				   sizeof(err));
		if (r < 0) {
			log_error("Not serving certificates: %s", err);
		} else {
			serve_chain(b, c);
			log_info("Serving the %s %s chain from %s (%u-page table%s%s)",
				 snp_product_name(c->product), c->vlek ? "VLEK" : "VCEK", c->source,
				 c->table_pages, c->has_crl ? ", with CRL" : "",
				 c->sim_root ? ", simulator root: NOT an AMD root" : "");
		}
	}
	if (b->vmm) {
		r = vmmfile_replace(b->vmm, b->chain ? b->chain->table : empty_table,
				    b->chain ? b->chain->table_len : sizeof(empty_table));
		if (r < 0) {
			b->rstats.vmm_file_errors++;
			log_error_errno(r, "Cannot write the VMM certificate file %s",
					b->m->conf.vmm_certs_file);
		} else {
			b->rstats.vmm_file_writes++;
		}
	}
}

/* --- rotation --- */

void rot_arm_expiry(struct broker *b);
void rot_start_internal(struct broker *b, const char *why, const struct platform_facts *expect);

void rot_free(struct broker_rotation *rot)
{
	if (!rot)
		return;
	chain_free(rot->prepared);
	chain_free(rot->new_chain);
	free(rot->cert_dir);
	free(rot->fetch_chain);
	free(rot->fetch_leaf);
	free(rot);
}

static const char *op_name(enum broker_fw_op op)
{
	switch (op) {
	case BROKER_OP_SET_CONFIG:
		return "SNP_SET_CONFIG";
	case BROKER_OP_COMMIT:
		return "SNP_COMMIT";
	case BROKER_OP_VLEK_LOAD:
		return "SNP_VLEK_LOAD";
	default:
		return "none";
	}
}

/* Worker thread: everything between taking and releasing the exclusive OFD lock. Touches only
 * the job, the firmware backend (only ever used from this thread after start) and read-only
 * certificates. */
static void rot_run(struct worker_job *j)
{
	struct broker_rotation *rot = container_of(j, struct broker_rotation, job);
	char perr[256] = "";
	const uint8_t *table;
	size_t table_len;
	int r;

	rot->pf_new = rot->pf_old;
	if (rot->vmm) {
		r = vmmfile_lock_timeout(rot->vmm, BROKER_VMM_LOCK_MSEC);
		if (r < 0) {
			rot->r = r;
			snprintf(rot->err, sizeof(rot->err),
				 "cannot take the exclusive lock on the VMM certificate file: %s",
				 r == -ETIMEDOUT ? "a reader (VMM) held it too long"
						 : snp_strerror(r));
			return; /* nothing changed */
		}
	}
	switch (rot->op) {
	case BROKER_OP_SET_CONFIG:
		r = fw_set_config(rot->fw, rot->tcb, rot->config_flags, &rot->fw_status);
		break;
	case BROKER_OP_COMMIT:
		r = fw_commit(rot->fw, &rot->fw_status);
		break;
	case BROKER_OP_VLEK_LOAD:
		r = fw_vlek_load(rot->fw, rot->hashstick, &rot->fw_status);
		break;
	default:
		r = 0;
		break;
	}
	if (r < 0) {
		rot->r = r;
		snprintf(rot->err, sizeof(rot->err), "%s failed: %s (firmware status 0x%x)",
			 op_name(rot->op), fw_strerror(r), rot->fw_status);
	}
	/* Whatever the firmware answered, serve what the platform now says. */
	r = platform_read(rot->fw, &rot->pf_new, perr, sizeof(perr));
	if (r < 0) {
		/* If the change went through, the platform is what we asked for. */
		rot->pf_new = rot->r == 0 ? rot->pf_expect : rot->pf_old;
		if (rot->r == 0) {
			/* SNP gone meanwhile stays recognisable: the broker waits for it again. */
			rot->r = fw_error_is_snp_uninit(r) ? r : -EIO;
			snprintf(rot->err, sizeof(rot->err), "%s", perr);
		}
	}
	rot->committed_r = fw_committed_tcb(rot->fw, &rot->committed);

	if (chain_matches(rot->prepared, &rot->pf_new)) {
		rot->outcome = BROKER_ROT_NEW;
		rot->new_chain = TAKE_PTR(rot->prepared);
	} else if (rot->cert_dir[0] &&
		   chain_from_dir(rot->cert_dir, rot->extra_ark, &rot->pf_new, time(NULL),
				  &rot->new_chain, rot->chain_err, sizeof(rot->chain_err)) == 0) {
		rot->outcome = BROKER_ROT_NEW;
	} else if (chain_matches(rot->old_chain, &rot->pf_new)) {
		rot->outcome = BROKER_ROT_KEEP;
	} else {
		rot->outcome =
			rot->old_chain || rot->cert_dir[0] ? BROKER_ROT_NONE : BROKER_ROT_KEEP;
	}

	if (rot->vmm) {
		if (rot->outcome == BROKER_ROT_NEW) {
			table = rot->new_chain->table;
			table_len = rot->new_chain->table_len;
		} else if (rot->outcome == BROKER_ROT_KEEP && rot->old_chain) {
			table = rot->old_chain->table;
			table_len = rot->old_chain->table_len;
		} else {
			table = empty_table;
			table_len = sizeof(empty_table);
		}
		rot->vmm_r = vmmfile_write_locked(rot->vmm, table, table_len);
		rot->vmm_written = rot->vmm_r == 0;
		if (rot->vmm_r < 0) {
			/* A blob that may no longer match must not stay readable as if current:
			 * try the empty table (VMM hands out no certificates) before unlocking. */
			(void)vmmfile_write_locked(rot->vmm, empty_table, sizeof(empty_table));
		}
		(void)vmmfile_unlock(rot->vmm);
	}
}

/* The first chain decision (a chain, or running without one) lets the daemon report READY. */
void release_ready(struct broker *b, const char *why)
{
	if (!b->ready_held)
		return;
	b->ready_held = false;
	ev_timer_stop(b->m->loop, &b->ready_timer);
	log_info("Start-up chain decision: %s", why);
	manager_ready_release(b->m);
}

void on_ready_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, ready_timer);

	(void)loop;
	(void)revents;
	release_ready(b, "no chain yet: serving without certificates until one arrives");
}

void rot_finish(struct broker *b, struct broker_rotation *rot, int r, const char *msg)
{
	broker_op_done_fn cb = rot->cb;
	void *userdata = rot->userdata;
	struct broker_rotation_stats *st = &b->rstats;

	ev_timer_stop(b->m->loop, &b->rot_timeout);
	if (b->rot == rot)
		b->rot = NULL;
	if (!b->draining && adm_paused(b->adm))
		adm_resume(b->adm);
	st->in_progress = false;
	st->last_time = time(NULL);
	st->last_result = r;
	snprintf(st->last_message, sizeof(st->last_message), "%.250s", msg);
	if (r < 0) {
		st->failed++;
		log_error("Rotation (%s) failed: %s", rot->why, msg);
	} else {
		st->succeeded++;
		log_notice("Rotation (%s): %s", rot->why, msg);
	}
	if (fw_error_is_snp_uninit(r))
		snp_wait_enter(b, "The rotation's firmware call failed");
	if (b->ready_held)
		release_ready(b, b->chain ? "chain loaded" : "running without a chain for now");
	else if (b->snp_uninit)
		snp_wait_status(b);
	else
		manager_notify_status(b->m, "serving: %s", msg);
	rot_free(rot);
	if (cb)
		cb(userdata, r, msg);
	if (b->rotate_again && !b->rot && !b->draining) {
		char why[128];
		snprintf(why, sizeof(why), "%s", b->again_why);
		b->rotate_again = false;
		rot_start_internal(b, why, NULL);
	}
}

/* Loop thread: swap what the worker decided, resume admission. */
static void rot_done(struct worker_job *j)
{
	struct broker_rotation *rot = container_of(j, struct broker_rotation, job);
	struct broker *b = rot->b;
	char msg[1400], t[TCB_FORMAT_MAX];
	int r = rot->r;

	if (rot->vmm) {
		if (rot->vmm_written)
			b->rstats.vmm_file_writes++;
		else if (rot->vmm_r < 0)
			b->rstats.vmm_file_errors++;
	}
	if (rot->r < 0 && rot->outcome == BROKER_ROT_KEEP && !rot->new_chain &&
	    rot->pf_new.reported_tcb == b->pf.reported_tcb &&
	    rot->pf_new.vlek_loaded == b->pf.vlek_loaded) {
		/* Nothing changed (lock or firmware refused): the old chain stays. */
		snprintf(msg, sizeof(msg), "%s; still serving the previous chain", rot->err);
		rot_finish(b, rot, r, msg);
		return;
	}
	b->pf = rot->pf_new;
	b->committed_r = rot->committed_r;
	b->committed_tcb = rot->committed;
	tcb_format(b->pf.reported_tcb, b->pf.product, t, sizeof(t));
	switch (rot->outcome) {
	case BROKER_ROT_NEW:
		serve_chain(b, TAKE_PTR(rot->new_chain));
		snprintf(msg, sizeof(msg), "serving the %s chain for reported TCB %s from %s%s%s",
			 b->chain->vlek ? "VLEK" : "VCEK", t, b->chain->source,
			 b->chain->has_crl ? " (with CRL)" : "",
			 b->chain->sim_root ? " (simulator root, not AMD)" : "");
		break;
	case BROKER_ROT_KEEP:
		snprintf(msg, sizeof(msg), "%s for reported TCB %s (%s)",
			 b->chain ? "kept the previous chain" : "no certificate source; no chain",
			 t, rot->chain_err[0] ? rot->chain_err : "no newer chain in the source");
		break;
	case BROKER_ROT_NONE:
		serve_chain(b, NULL);
		if (r == 0)
			r = -ENOKEY;
		snprintf(msg, sizeof(msg),
			 "NOT serving certificates: no chain matches reported TCB %s%s (%s)", t,
			 b->pf.vlek_loaded ? " with the VLEK" : "",
			 rot->chain_err[0] ? rot->chain_err : "no source");
		break;
	}
	if (rot->r < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, "; %s", rot->err);
	}
	if (rot->vmm && rot->vmm_r < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l,
			 "; VMM certificate file not written (%s), left empty",
			 snp_strerror(rot->vmm_r));
		if (r == 0)
			r = rot->vmm_r;
	}
	rot_arm_expiry(b);
	rot_finish(b, rot, r, msg);
}

void rot_submit(struct broker *b)
{
	struct broker_rotation *rot = b->rot;

	if (!rot || rot->submitted)
		return;
	ev_timer_stop(b->m->loop, &b->rot_timeout);
	rot->submitted = true;
	rot->old_chain = b->chain;
	worker_submit(b->worker, &rot->job);
}

void on_rot_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, rot_timeout);
	char msg[160];

	(void)loop;
	(void)revents;
	if (!b->rot || b->rot->submitted)
		return;
	snprintf(msg, sizeof(msg),
		 "%u requests still in flight after %.0f s; rotation abandoned, still serving the "
		 "previous chain",
		 adm_inflight(b->adm), BROKER_ROTATE_DRAIN_SEC);
	rot_finish(b, b->rot, -ETIMEDOUT, msg);
}

/* The platform view expected after op. */
static struct platform_facts expected_platform(const struct broker *b, enum broker_fw_op op,
					       uint64_t tcb)
{
	struct platform_facts pf = b->pf;

	switch (op) {
	case BROKER_OP_SET_CONFIG:
		if (tcb != pf.reported_tcb)
			pf.vlek_loaded = false; /* the firmware drops the VLEK with the TCB */
		pf.reported_tcb = tcb;
		break;
	case BROKER_OP_COMMIT:
		if (pf.current_tcb != pf.reported_tcb)
			pf.vlek_loaded = false;
		pf.reported_tcb = pf.current_tcb;
		break;
	case BROKER_OP_VLEK_LOAD:
		pf.vlek_loaded = true;
		break;
	default:
		break;
	}
	return pf;
}

void rot_pause(struct broker *b)
{
	int n;

	log_info("Rotation (%s): pausing admission", b->rot->why);
	n = adm_pause(b->adm);
	if (n <= 0) {
		rot_submit(b);
	} else {
		ev_timer_set(&b->rot_timeout, BROKER_ROTATE_DRAIN_SEC, 0.);
		ev_timer_start(b->m->loop, &b->rot_timeout);
	}
}

void refusal_text(const struct broker_rotation *rot, const char *cerr, char *err, size_t err_size)
{
	char t[TCB_FORMAT_MAX];

	if (rot->op == BROKER_OP_NONE)
		snprintf(err, err_size,
			 "cannot build the new chain, still serving the previous one: %s", cerr);
	else
		snprintf(err, err_size, "refusing %s: cannot obtain the %s for reported TCB %s: %s",
			 op_name(rot->op), rot->pf_expect.vlek_loaded ? "VLEK" : "VCEK",
			 tcb_format(rot->pf_expect.reported_tcb, rot->pf_expect.product, t,
				    sizeof(t)),
			 cerr);
}

/* Both KDS answers are in (or failed): build the chain, then pause, or give up. */

int rot_start(struct broker *b, const char *why, enum broker_fw_op op, uint64_t tcb,
	      const uint8_t *hashstick, const struct platform_facts *expect, bool must_run,
	      broker_op_done_fn cb, void *userdata, char *err, size_t err_size)
{
	struct broker_rotation *rot;
	char cerr[600] = "";
	int r;

	if (b->draining) {
		snprintf(err, err_size, "the daemon is shutting down");
		return -ESHUTDOWN;
	}
	if (b->rot) {
		snprintf(err, err_size, "a rotation (%s) is under way", b->rot->why);
		return -EBUSY;
	}
	if (b->import && !must_run) {
		snprintf(err, err_size, "a certificate import is being written to the KDS cache");
		return -EBUSY;
	}
	if (b->snp_uninit) {
		snprintf(err, err_size, "%s; the daemon is waiting for it",
			 fw_strerror(-FW_ERR_SNP_UNINIT));
		return -FW_ERR_SNP_UNINIT;
	}
	rot = calloc(1, sizeof(*rot));
	if (!rot)
		return -ENOMEM;
	rot->cert_dir = strdup(b->m->conf.cert_dir);
	if (!rot->cert_dir) {
		free(rot);
		return -ENOMEM;
	}
	rot->b = b;
	rot->job.run = rot_run;
	rot->job.done = rot_done;
	snprintf(rot->why, sizeof(rot->why), "%s", why);
	rot->op = op;
	rot->tcb = tcb;
	rot->config_flags =
		b->pf.status_flags & (SNP_CONFIG_F_MASK_CHIP_ID | SNP_CONFIG_F_MASK_CHIP_KEY);
	if (hashstick)
		memcpy(rot->hashstick, hashstick, sizeof(rot->hashstick));
	rot->must_run = must_run;
	rot->fw = b->fw;
	rot->vmm = b->vmm;
	rot->extra_ark = b->sim_ark;
	rot->pf_old = b->pf;
	rot->cb = cb;
	rot->userdata = userdata;
	rot->pf_expect = expect ? *expect : expected_platform(b, op, tcb);

	/* The new chain first, before any guest waits for it (design §6): the certificate
	 * directory if configured, else KDS through the cache (asynchronous). */
	if (rot->cert_dir[0]) {
		r = chain_from_dir(rot->cert_dir, b->sim_ark, &rot->pf_expect, time(NULL),
				   &rot->prepared, cerr, sizeof(cerr));
	} else if (b->kdsc) {
		r = rot_fetch(b, rot, cerr, sizeof(cerr));
		if (r == 0) {
			b->rot = rot;
			b->rstats.started++;
			b->rstats.in_progress = true;
			log_info("Rotation (%s): fetching the chain for the new platform state",
				 why);
			return 0;
		}
	} else {
		snprintf(cerr, sizeof(cerr),
			 "no certificate source configured ([certs] cert_dir or kds_url)");
		r = -ENOKEY;
	}
	if (r < 0 && !must_run && (op != BROKER_OP_NONE || rot->cert_dir[0] || b->kdsc)) {
		refusal_text(rot, cerr, err, err_size);
		rot_free(rot);
		b->rstats.failed++;
		return r == -ENOENT ? -ENOKEY : r;
	}
	snprintf(rot->chain_err, sizeof(rot->chain_err), "%s", cerr);

	b->rot = rot;
	b->rstats.started++;
	b->rstats.in_progress = true;
	rot_pause(b);
	return 0;
}

void rot_start_internal(struct broker *b, const char *why, const struct platform_facts *expect)
{
	char err[700];
	int r;

	if (b->rot) {
		/* One more after this one: its outcome may predate the trigger. */
		b->rotate_again = true;
		snprintf(b->again_why, sizeof(b->again_why), "%.120s", why);
		return;
	}
	if (b->snp_uninit) {
		log_info("Rotation (%s) postponed: SNP is not initialised; the chain is loaded "
			 "once it is",
			 why);
		return;
	}
	r = rot_start(b, why, BROKER_OP_NONE, 0, NULL, expect, expect != NULL, NULL, NULL, err,
		      sizeof(err));
	if (r < 0) {
		b->rstats.last_time = time(NULL);
		b->rstats.last_result = r;
		snprintf(b->rstats.last_message, sizeof(b->rstats.last_message), "%.250s", err);
		log_error("Rotation (%s) refused: %s", why, err);
		release_ready(b, "no chain could be obtained: serving without certificates");
	}
}

void on_expiry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct broker *b = container_of(w, struct broker, expiry);

	(void)loop;
	(void)revents;
	rot_start_internal(b, "the chain or CRL is close to its end of validity", NULL);
	rot_arm_expiry(b); /* retry later if nothing newer came */
}

void rot_arm_expiry(struct broker *b)
{
	time_t now = time(NULL), deadline, at;

	ev_timer_stop(b->m->loop, &b->expiry);
	if (!b->chain && b->kdsc) {
		/* No chain yet: ask again (kdsc paces the requests). */
		ev_timer_set(&b->expiry, BROKER_KDS_RETRY_SEC, 0.);
		ev_timer_start(b->m->loop, &b->expiry);
		return;
	}
	if (!b->chain)
		return;
	deadline = b->chain->not_after;
	if (b->chain->has_crl && (!deadline || b->chain->crl_next_update < deadline))
		deadline = b->chain->crl_next_update;
	if (!deadline)
		return;
	at = deadline - BROKER_EXPIRY_MARGIN_SEC;
	if (at < now + BROKER_EXPIRY_RETRY_SEC)
		at = now + BROKER_EXPIRY_RETRY_SEC;
	ev_timer_set(&b->expiry, (double)(at - now), 0.);
	ev_timer_start(b->m->loop, &b->expiry);
}

/* --- rotation API (control socket) --- */

int broker_rotate(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		  size_t err_size)
{
	return rot_start(b, "snpctl cert rotate", BROKER_OP_NONE, 0, NULL, NULL, false, cb,
			 userdata, err, err_size);
}

int broker_tcb_set(struct broker *b, uint64_t reported_tcb, broker_op_done_fn cb, void *userdata,
		   char *err, size_t err_size)
{
	char a[TCB_FORMAT_MAX], c[TCB_FORMAT_MAX];

	if (!tcb_le(reported_tcb, b->pf.current_tcb, b->pf.product)) {
		snprintf(err, err_size, "reported TCB %s is newer than the current TCB %s",
			 tcb_format(reported_tcb, b->pf.product, a, sizeof(a)),
			 tcb_format(b->pf.current_tcb, b->pf.product, c, sizeof(c)));
		return -ERANGE;
	}
	return rot_start(b, "snpctl tcb set", BROKER_OP_SET_CONFIG, reported_tcb, NULL, NULL, false,
			 cb, userdata, err, err_size);
}

int broker_tcb_commit(struct broker *b, broker_op_done_fn cb, void *userdata, char *err,
		      size_t err_size)
{
	/* COMMIT with reported == current still moves the committed TCB (anti-rollback); the
	 * chain stays the same but the operation runs under the same protocol. */
	return rot_start(b, "snpctl tcb commit", BROKER_OP_COMMIT, 0, NULL, NULL, false, cb,
			 userdata, err, err_size);
}

int broker_vlek_load(struct broker *b, const uint8_t hashstick[SNP_VLEK_HASHSTICK_SIZE],
		     broker_op_done_fn cb, void *userdata, char *err, size_t err_size)
{
	if (!hashstick) {
		snprintf(err, err_size, "no hashstick");
		return -EINVAL;
	}
	return rot_start(b, "snpctl vlek load", BROKER_OP_VLEK_LOAD, 0, hashstick, NULL, false, cb,
			 userdata, err, err_size);
}

void broker_op_forget(struct broker *b, void *userdata)
{
	if (b && userdata)
		quotas_forget(b, userdata);
	if (b && b->import && b->import->userdata == userdata) {
		b->import->cb = NULL;
		b->import->userdata = NULL;
	}
	if (b && b->fetch && b->fetch->userdata == userdata) {
		b->fetch->cb = NULL;
		b->fetch->userdata = NULL;
	}
	if (b && b->rot && b->rot->userdata == userdata) {
		b->rot->cb = NULL;
		b->rot->userdata = NULL;
	}
}

int broker_committed_tcb(const struct broker *b, uint64_t *ret)
{
	if (b->committed_r < 0)
		return b->committed_r;
	*ret = b->committed_tcb;
	return 0;
}

struct kdsc *broker_kdsc(const struct broker *b)
{
	return b->kdsc;
}

time_t broker_chain_since(const struct broker *b)
{
	return b->chain ? b->chain_since : 0;
}

time_t broker_next_refresh(const struct broker *b)
{
	if (!ev_is_active(&b->expiry))
		return 0;
	return time(NULL) + (time_t)ev_timer_remaining(b->m->loop, (ev_timer *)&b->expiry);
}

const struct broker_rotation_stats *broker_get_rotation_stats(const struct broker *b)
{
	return &b->rstats;
}
