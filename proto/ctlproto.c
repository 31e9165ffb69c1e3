/* SPDX-License-Identifier: Apache-2.0 */
/* ctlproto: control protocol codec. Strict: a request is one JSON object with unique, known keys of
 * the right types; everything else is refused with a reason. Pure: no I/O. */
#include "ctlproto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Keys a request may carry (bit per key), and which ones each command needs or allows. */
enum {
	K_ID = 1u << 0,
	K_CMD = 1u << 1,
	K_VM = 1u << 2,
	K_RATE = 1u << 3,
	K_BURST = 1u << 4,
	K_WEIGHT = 1u << 5,
	K_TCB = 1u << 6,
	K_HASHSTICK = 1u << 7,
	K_LEAF = 1u << 8,
	K_ASK = 1u << 9,
	K_ARK = 1u << 10,
};

static const struct {
	const char *name;
	enum ctl_role role;
	unsigned required; /* besides cmd */
	unsigned allowed;  /* besides id and cmd */
} cmds[_CTL_CMD_MAX] = {
	[CTL_CMD_STATUS] = {"status", CTL_ROLE_READER, 0, 0},
	[CTL_CMD_VM_LIST] = {"vm.list", CTL_ROLE_READER, 0, 0},
	[CTL_CMD_VM_SHOW] = {"vm.show", CTL_ROLE_READER, K_VM, K_VM},
	[CTL_CMD_QUOTA_GET] = {"quota.get", CTL_ROLE_READER, K_VM, K_VM},
	[CTL_CMD_QUOTA_LIST] = {"quota.list", CTL_ROLE_READER, 0, 0},
	[CTL_CMD_QUOTA_SET] = {"quota.set", CTL_ROLE_ADMIN, K_VM,
			       K_VM | K_RATE | K_BURST | K_WEIGHT},
	[CTL_CMD_QUOTA_RESET] = {"quota.reset", CTL_ROLE_ADMIN, K_VM, K_VM},
	[CTL_CMD_CERT_ROTATE] = {"cert.rotate", CTL_ROLE_ADMIN, 0, 0},
	[CTL_CMD_TCB_SHOW] = {"tcb.show", CTL_ROLE_READER, 0, 0},
	[CTL_CMD_TCB_SET] = {"tcb.set", CTL_ROLE_ADMIN, K_TCB, K_TCB},
	[CTL_CMD_TCB_COMMIT] = {"tcb.commit", CTL_ROLE_ADMIN, 0, 0},
	[CTL_CMD_VLEK_LOAD] = {"vlek.load", CTL_ROLE_ADMIN, K_HASHSTICK, K_HASHSTICK},
	[CTL_CMD_CERT_SHOW] = {"cert.show", CTL_ROLE_READER, 0, 0},
	[CTL_CMD_CERT_FETCH] = {"cert.fetch", CTL_ROLE_ADMIN, 0, 0},
	[CTL_CMD_CERT_IMPORT] = {"cert.import", CTL_ROLE_ADMIN, K_LEAF | K_ASK | K_ARK,
				 K_LEAF | K_ASK | K_ARK},
};

static const struct {
	const char *name;
	unsigned bit;
} keys[] = {
	{"id", K_ID},	    {"cmd", K_CMD},	  {"vm", K_VM},	  {"rate", K_RATE},
	{"burst", K_BURST}, {"weight", K_WEIGHT}, {"tcb", K_TCB}, {"hashstick", K_HASHSTICK},
	{"leaf", K_LEAF},   {"ask", K_ASK},	  {"ark", K_ARK},
};

/* The errno values that travel in "code". Anything else is sent as EIO. */
static const struct {
	int e;
	const char *name;
} errnos[] = {
	{EINVAL, "EINVAL"},
	{EBADMSG, "EBADMSG"},
	{EMSGSIZE, "EMSGSIZE"},
	{EOPNOTSUPP, "EOPNOTSUPP"},
	{EACCES, "EACCES"},
	{EPERM, "EPERM"},
	{ENOENT, "ENOENT"},
	{ENOMEM, "ENOMEM"},
	{EBUSY, "EBUSY"},
	{EAGAIN, "EAGAIN"},
	{ERANGE, "ERANGE"},
	{ENOSPC, "ENOSPC"},
	{EIO, "EIO"},
	{ENOKEY, "ENOKEY"},
	{ETIMEDOUT, "ETIMEDOUT"},
	{ESHUTDOWN, "ESHUTDOWN"},
};

const char *ctl_cmd_name(enum ctl_cmd c)
{
	if (c <= 0 || c >= _CTL_CMD_MAX)
		return NULL;
	return cmds[c].name;
}

enum ctl_role ctl_cmd_role(enum ctl_cmd c)
{
	if (c <= 0 || c >= _CTL_CMD_MAX)
		return CTL_ROLE_ADMIN;
	return cmds[c].role;
}

const char *ctl_role_name(enum ctl_role r)
{
	switch (r) {
	case CTL_ROLE_READER:
		return "reader";
	case CTL_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

const char *ctl_errno_name(int r)
{
	int e = r < 0 ? -r : r;

	for (size_t i = 0; i < ELEMENTSOF(errnos); i++)
		if (errnos[i].e == e)
			return errnos[i].name;
	return "EIO";
}

int ctl_errno_from_name(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(errnos); i++)
		if (strcmp(errnos[i].name, name) == 0)
			return -errnos[i].e;
	return -EIO;
}

json_t *ctl_json_u64(uint64_t v)
{
	char buf[24];

	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

int ctl_json_get_u64(const json_t *v, uint64_t *ret)
{
	uint64_t n = 0;
	const char *s;
	size_t len;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -EINVAL;
		*ret = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 || len > 20 || strlen(s) != len)
		return len > 20 ? -ERANGE : -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	*ret = n;
	return 0;
}

/* rate: a decimal string with up to 3 fraction digits, or a whole JSON integer (per second). */
static int get_rate(const json_t *v, uint64_t *ret)
{
	uint64_t milli;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i <= 0 || (uint64_t)i > SCHED_RATE_MILLI_MAX / 1000)
			return -EINVAL;
		milli = (uint64_t)i * 1000;
	} else if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v) ||
		    parse_milli(json_string_value(v), &milli) < 0)
			return -EINVAL;
		if (milli == 0 || milli > SCHED_RATE_MILLI_MAX)
			return -EINVAL;
	} else
		return -EINVAL;
	*ret = milli;
	return 0;
}

static int get_bounded(const json_t *v, uint32_t max, uint32_t *ret)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -EINVAL;
	i = json_integer_value(v);
	if (i < 1 || i > (json_int_t)max)
		return -EINVAL;
	*ret = (uint32_t)i;
	return 0;
}

json_t *ctl_quota_to_json(const struct sched_quota *q)
{
	char rate[32];

	format_milli(q->rate_milli, rate, sizeof(rate));
	return json_pack("{s:s, s:I, s:I}", "rate", rate, "burst", (json_int_t)q->burst, "weight",
			 (json_int_t)q->weight);
}

int ctl_quota_from_json(const json_t *o, struct sched_quota *ret, const char **reason)
{
	struct sched_quota q;

	if (!json_is_object(o)) {
		*reason = "quota is not an object";
		return -EINVAL;
	}
	if (get_rate(json_object_get(o, "rate"), &q.rate_milli) < 0) {
		*reason = "bad or missing rate";
		return -EINVAL;
	}
	if (get_bounded(json_object_get(o, "burst"), SCHED_BURST_MAX, &q.burst) < 0) {
		*reason = "bad or missing burst";
		return -EINVAL;
	}
	if (get_bounded(json_object_get(o, "weight"), SCHED_WEIGHT_MAX, &q.weight) < 0) {
		*reason = "bad or missing weight";
		return -EINVAL;
	}
	*ret = q;
	return 0;
}

static bool printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* A certificate text: printable ASCII, CR and LF (PEM or base64), 1..CTL_CERT_TEXT_MAX bytes. */
static int get_cert_text(const json_t *v, char **ret)
{
	const char *s;
	size_t len;
	char *copy;

	if (!json_is_string(v))
		return -EINVAL;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 || len > CTL_CERT_TEXT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if ((s[i] < 0x20 || s[i] > 0x7e) && s[i] != '\n' && s[i] != '\r')
			return -EINVAL;
	copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

/* A VM named by UUID or name: printable ASCII without spaces (what a VMM-socket name may be,
 * and a UUID is), not all digits (those are ids, checked as numbers). */
static bool vm_ref_ok(const json_t *v)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	bool digits = true;

	if (!s || len == 0 || len > CTL_VM_REF_MAX || strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
		if (s[i] < '0' || s[i] > '9')
			digits = false;
	}
	return !digits;
}

static int fail(struct ctl_parse_error *err, int r, const char *msg)
{
	if (err)
		err->msg = msg;
	return r;
}

/* An id is echoed only if it is a small scalar: a string of at most 128 bytes or an integer. */
static bool id_acceptable(const json_t *id)
{
	return json_is_integer(id) || (json_is_string(id) && json_string_length(id) <= 128);
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
		      struct ctl_parse_error *err)
{
	struct ctl_request q = {0};
	json_error_t je;
	json_t *root, *v, *id;
	const char *key, *name;
	unsigned seen = 0;
	int r;

	if (err) {
		err->msg = NULL;
		err->id = NULL;
	}
	if (!line || len >= CTL_REQUEST_MAX)
		return fail(err, -EMSGSIZE, "request too long");
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return fail(err, -EBADMSG,
			    strstr(je.text, "duplicate") ? "duplicate key in request"
							 : "request is not valid JSON");
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, -EBADMSG, "request is not a JSON object");
	}

	id = json_object_get(root, "id");
	if (id && err && id_acceptable(id))
		err->id = json_incref(id);

	json_object_foreach(root, key, v)
	{
		unsigned bit = 0;
		for (size_t i = 0; i < ELEMENTSOF(keys); i++)
			if (strcmp(keys[i].name, key) == 0)
				bit = keys[i].bit;
		if (!bit) {
			r = fail(err, -EINVAL, "unknown key in request");
			goto out;
		}
		seen |= bit;
	}
	if (id && !id_acceptable(id)) {
		r = fail(err, -EINVAL, "id must be an integer or a string of at most 128 bytes");
		goto out;
	}

	v = json_object_get(root, "cmd");
	if (!v) {
		r = fail(err, -EINVAL, "missing cmd");
		goto out;
	}
	if (!json_is_string(v)) {
		r = fail(err, -EINVAL, "cmd must be a string");
		goto out;
	}
	name = json_string_value(v);
	for (int c = 1; c < _CTL_CMD_MAX; c++)
		if (strlen(name) == json_string_length(v) && strcmp(cmds[c].name, name) == 0)
			q.cmd = (enum ctl_cmd)c;
	if (!q.cmd) {
		r = fail(err, -EOPNOTSUPP, "unknown command");
		goto out;
	}
	seen &= ~(unsigned)(K_ID | K_CMD);
	if ((seen & cmds[q.cmd].required) != cmds[q.cmd].required) {
		r = fail(err, -EINVAL,
			 cmds[q.cmd].required & K_TCB	      ? "missing tcb"
			 : cmds[q.cmd].required & K_HASHSTICK ? "missing hashstick"
			 : cmds[q.cmd].required & K_LEAF ? "cert.import needs leaf, ask and ark"
							 : "missing vm");
		goto out;
	}
	if (seen & ~cmds[q.cmd].allowed) {
		r = fail(err, -EINVAL, "key not allowed for this command");
		goto out;
	}

	if (seen & K_VM) {
		const json_t *vm = json_object_get(root, "vm");
		r = ctl_json_get_u64(vm, &q.vm_id);
		if (r < 0 && vm_ref_ok(vm)) {
			snprintf(q.vm_ref, sizeof(q.vm_ref), "%s", json_string_value(vm));
			r = 0;
		}
		if (r < 0) {
			r = fail(err, -EINVAL,
				 "vm must be a VM id (a non-negative integer or decimal "
				 "string below 2^64), a UUID or a VM name");
			goto out;
		}
		q.has_vm = true;
	}
	if (seen & K_RATE) {
		if (get_rate(json_object_get(root, "rate"), &q.quota.rate_milli) < 0) {
			r = fail(err, -EINVAL,
				 "rate must be a decimal string (up to 3 fraction "
				 "digits) or an integer, above 0 and at most 1000000");
			goto out;
		}
		q.quota_fields |= CTL_QUOTA_RATE;
	}
	if (seen & K_BURST) {
		if (get_bounded(json_object_get(root, "burst"), SCHED_BURST_MAX, &q.quota.burst) <
		    0) {
			r = fail(err, -EINVAL, "burst must be an integer from 1 to 1000000");
			goto out;
		}
		q.quota_fields |= CTL_QUOTA_BURST;
	}
	if (seen & K_WEIGHT) {
		if (get_bounded(json_object_get(root, "weight"), SCHED_WEIGHT_MAX,
				&q.quota.weight) < 0) {
			r = fail(err, -EINVAL, "weight must be an integer from 1 to 1000");
			goto out;
		}
		q.quota_fields |= CTL_QUOTA_WEIGHT;
	}
	if (seen & K_TCB) {
		v = json_object_get(root, "tcb");
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= sizeof(q.tcb) ||
		    !printable(json_string_value(v), json_string_length(v))) {
			r = fail(err, -EINVAL,
				 "tcb must be a non-empty printable string of at most 63 bytes");
			goto out;
		}
		memcpy(q.tcb, json_string_value(v), json_string_length(v) + 1);
	}
	if (seen & K_HASHSTICK) {
		v = json_object_get(root, "hashstick");
		if (!json_is_string(v) || json_string_length(v) != 2 * CTL_HASHSTICK_SIZE ||
		    hex_decode(json_string_value(v), json_string_length(v), q.hashstick,
			       CTL_HASHSTICK_SIZE) < 0) {
			r = fail(err, -EINVAL, "hashstick must be 864 hex digits (432 bytes)");
			goto out;
		}
		q.has_hashstick = true;
	}
	for (unsigned k = 0; k < 3; k++) {
		static const char *const names[] = {"leaf", "ask", "ark"};
		char **dst = k == 0 ? &q.leaf : k == 1 ? &q.ask : &q.ark;
		if (!(seen & (K_LEAF << k)))
			continue;
		r = get_cert_text(json_object_get(root, names[k]), dst);
		if (r == -ENOMEM) {
			r = fail(err, -ENOMEM, "out of memory");
			goto out;
		}
		if (r < 0) {
			r = fail(err, -EINVAL,
				 "leaf, ask and ark must be certificates as PEM text or "
				 "base64 DER (printable ASCII, at most 16384 bytes)");
			goto out;
		}
	}
	if (q.cmd == CTL_CMD_QUOTA_SET && !q.quota_fields) {
		r = fail(err, -EINVAL, "quota.set needs at least one of rate, burst, weight");
		goto out;
	}

	q.id = id ? json_incref(id) : NULL;
	*ret = q;
	if (err) {
		json_decref(err->id);
		err->id = NULL;
	}
	r = 0;
	json_decref(root);
	return r;
out:
	free(q.leaf);
	free(q.ask);
	free(q.ark);
	json_decref(root);
	return r;
}

void ctl_request_done(struct ctl_request *r)
{
	if (!r)
		return;
	json_decref(r->id);
	r->id = NULL;
	free(r->leaf);
	free(r->ask);
	free(r->ark);
	r->leaf = r->ask = r->ark = NULL;
}

/* Dumps o compactly with a trailing newline; a NUL-free line (jansson escapes controls). */
static char *dump_line(json_t *o)
{
	struct strbuf sb = {0};
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!s)
		return NULL;
	strbuf_append(&sb, s);
	strbuf_append(&sb, "\n");
	free(s);
	return strbuf_steal(&sb);
}

char *ctl_request_build(const struct ctl_request *r)
{
	json_t *o = json_object();
	char rate[32];
	char *line;
	int e = 0;

	if (!o || !ctl_cmd_name(r->cmd)) {
		json_decref(o);
		return NULL;
	}
	if (r->id)
		e |= json_object_set(o, "id", r->id);
	e |= json_object_set_new(o, "cmd", json_string(ctl_cmd_name(r->cmd)));
	if (r->has_vm)
		e |= json_object_set_new(
			o, "vm", r->vm_ref[0] ? json_string(r->vm_ref) : ctl_json_u64(r->vm_id));
	if (r->quota_fields & CTL_QUOTA_RATE)
		e |= json_object_set_new(
			o, "rate",
			json_string(format_milli(r->quota.rate_milli, rate, sizeof(rate))));
	if (r->quota_fields & CTL_QUOTA_BURST)
		e |= json_object_set_new(o, "burst", json_integer(r->quota.burst));
	if (r->quota_fields & CTL_QUOTA_WEIGHT)
		e |= json_object_set_new(o, "weight", json_integer(r->quota.weight));
	if (r->tcb[0])
		e |= json_object_set_new(o, "tcb", json_string(r->tcb));
	if (r->has_hashstick) {
		char hex[2 * CTL_HASHSTICK_SIZE + 1];
		for (size_t i = 0; i < CTL_HASHSTICK_SIZE; i++)
			snprintf(hex + 2 * i, 3, "%02x", r->hashstick[i]);
		e |= json_object_set_new(o, "hashstick", json_string(hex));
	}
	if (r->leaf)
		e |= json_object_set_new(o, "leaf", json_string(r->leaf));
	if (r->ask)
		e |= json_object_set_new(o, "ask", json_string(r->ask));
	if (r->ark)
		e |= json_object_set_new(o, "ark", json_string(r->ark));
	line = e ? NULL : dump_line(o);
	json_decref(o);
	return line;
}

char *ctl_reply_ok(const json_t *id, json_t *body)
{
	json_t *o = json_object();
	char *line = NULL;
	int e = 0;

	if (!o || (body && !json_is_object(body)))
		goto out;
	e |= json_object_set_new(o, "ok", json_true());
	if (id)
		e |= json_object_set(o, "id", (json_t *)id);
	if (body)
		e |= json_object_update(o, body);
	/* "ok" and "id" belong to the envelope: a body cannot override them. */
	e |= json_object_set_new(o, "ok", json_true());
	if (id)
		e |= json_object_set(o, "id", (json_t *)id);
	else
		(void)json_object_del(o, "id");
	if (!e)
		line = dump_line(o);
out:
	json_decref(body);
	json_decref(o);
	return line;
}

char *ctl_reply_error(const json_t *id, int r, const char *msg)
{
	json_t *o = json_object();
	char *line = NULL;
	int e = 0;

	if (!o)
		return NULL;
	e |= json_object_set_new(o, "ok", json_false());
	if (id)
		e |= json_object_set(o, "id", (json_t *)id);
	e |= json_object_set_new(o, "error", json_string(msg && *msg ? msg : snp_strerror(r)));
	e |= json_object_set_new(o, "code", json_string(ctl_errno_name(r)));
	if (!e)
		line = dump_line(o);
	json_decref(o);
	return line;
}

int ctl_reply_parse(const char *line, size_t len, json_t **ret_body, char *errbuf,
		    size_t errbuf_size)
{
	json_error_t je;
	json_t *root, *ok;
	int r;

	if (errbuf_size)
		errbuf[0] = '\0';
	if (len > CTL_REPLY_MAX) {
		snprintf(errbuf, errbuf_size, "reply too long");
		return -EBADMSG;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!root || !json_is_object(root)) {
		snprintf(errbuf, errbuf_size, "reply is not a JSON object%s%s", root ? "" : ": ",
			 root ? "" : je.text);
		json_decref(root);
		return -EBADMSG;
	}
	ok = json_object_get(root, "ok");
	if (json_is_true(ok)) {
		*ret_body = root;
		return 0;
	}
	if (!json_is_false(ok)) {
		snprintf(errbuf, errbuf_size, "reply has no boolean \"ok\"");
		json_decref(root);
		return -EBADMSG;
	}
	r = ctl_errno_from_name(json_string_value(json_object_get(root, "code")));
	snprintf(errbuf, errbuf_size, "%s",
		 json_is_string(json_object_get(root, "error"))
			 ? json_string_value(json_object_get(root, "error"))
			 : snp_strerror(r));
	json_decref(root);
	return r;
}
