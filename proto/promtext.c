/* SPDX-License-Identifier: Apache-2.0 */
/* promtext: exposition writer, histograms, per-VM series set. Pure: strings and numbers only;
 * the daemon decides when to render and where the text goes. */
#include "promtext.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- names and escaping --- */

static bool name_char(char c, bool first, bool colon_ok)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':' && colon_ok)
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon_ok)
{
	if (!s || !*s)
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!name_char(s[i], i == 0, colon_ok))
			return false;
	return true;
}

static bool valid_label_name(const char *s)
{
	return valid_name(s, false) && strncmp(s, "__", 2) != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void fail(struct metrics_writer *w, int r)
{
	if (w->error == 0)
		w->error = r;
}

/* Label values: the three escapes the format defines; anything else that is not printable
 * ASCII becomes '?', so hostile strings (paths, versions) cannot break a line or emit
 * invalid UTF-8. */
static void append_label_value(struct strbuf *sb, const char *v)
{
	char out[2] = {0, 0};

	for (; v && *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '\\')
			strbuf_append(sb, "\\\\");
		else if (c == '"')
			strbuf_append(sb, "\\\"");
		else if (c == '\n')
			strbuf_append(sb, "\\n");
		else {
			out[0] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
			strbuf_append(sb, out);
		}
	}
}

/* HELP text: only backslash and newline are escaped by the format. */
static void append_help(struct strbuf *sb, const char *v)
{
	char out[2] = {0, 0};

	for (; v && *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '\\')
			strbuf_append(sb, "\\\\");
		else if (c == '\n')
			strbuf_append(sb, "\\n");
		else {
			out[0] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
			strbuf_append(sb, out);
		}
	}
}

const char *metrics_format_double(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return buf;
	}
	if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
		return buf;
	}
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
		/* Integers exactly, without an exponent ("70", not "7e+01"). */
		snprintf(buf, size, "%lld", (long long)v);
		return buf;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* --- writer --- */

void metrics_writer_init(struct metrics_writer *w)
{
	memset(w, 0, sizeof(*w));
	strbuf_append(&w->names, "\n");
}

void metrics_writer_done(struct metrics_writer *w)
{
	strbuf_done(&w->sb);
	strbuf_done(&w->names);
	memset(w, 0, sizeof(*w));
}

void metrics_family(struct metrics_writer *w, const char *name, enum metrics_type type,
		    const char *help)
{
	static const char *const type_names[] = {
		[METRICS_COUNTER] = "counter",
		[METRICS_GAUGE] = "gauge",
		[METRICS_HISTOGRAM] = "histogram",
	};
	char key[sizeof(w->family) + 2];

	w->family[0] = '\0';
	if (!valid_name(name, true) || strlen(name) >= sizeof(w->family) ||
	    (unsigned)type >= ELEMENTSOF(type_names) ||
	    (type == METRICS_COUNTER && !ends_with(name, "_total"))) {
		fail(w, -EINVAL);
		return;
	}
	snprintf(key, sizeof(key), "\n%s\n", name);
	if (w->names.buf && strstr(w->names.buf, key)) {
		fail(w, -EEXIST);
		return;
	}
	strbuf_append(&w->names, key + 1);
	strbuf_appendf(&w->sb, "# HELP %s ", name);
	append_help(&w->sb, help);
	strbuf_appendf(&w->sb, "\n# TYPE %s %s\n", name, type_names[type]);
	snprintf(w->family, sizeof(w->family), "%s", name);
	w->type = type;
}

static void write_labels(struct metrics_writer *w, const struct metrics_label *labels,
			 size_t n_labels, const char *le)
{
	bool any = false;

	for (size_t i = 0; i < n_labels; i++) {
		if (!valid_label_name(labels[i].name) ||
		    (le && strcmp(labels[i].name, "le") == 0)) {
			fail(w, -EINVAL);
			return;
		}
		strbuf_append(&w->sb, any ? "," : "{");
		strbuf_appendf(&w->sb, "%s=\"", labels[i].name);
		append_label_value(&w->sb, labels[i].value);
		strbuf_append(&w->sb, "\"");
		any = true;
	}
	if (le) {
		strbuf_append(&w->sb, any ? "," : "{");
		strbuf_appendf(&w->sb, "le=\"%s\"", le);
		any = true;
	}
	if (any)
		strbuf_append(&w->sb, "}");
}

static bool sample_ok(struct metrics_writer *w, bool histogram)
{
	if (w->error)
		return false;
	if (!w->family[0] || (w->type == METRICS_HISTOGRAM) != histogram) {
		fail(w, -EINVAL);
		return false;
	}
	return true;
}

void metrics_sample_u64(struct metrics_writer *w, const struct metrics_label *labels,
			size_t n_labels, uint64_t value)
{
	if (!sample_ok(w, false))
		return;
	strbuf_append(&w->sb, w->family);
	write_labels(w, labels, n_labels, NULL);
	strbuf_appendf(&w->sb, " %llu\n", (unsigned long long)value);
}

void metrics_sample_double(struct metrics_writer *w, const struct metrics_label *labels,
			   size_t n_labels, double value)
{
	char num[64];

	if (!sample_ok(w, false))
		return;
	strbuf_append(&w->sb, w->family);
	write_labels(w, labels, n_labels, NULL);
	strbuf_appendf(&w->sb, " %s\n", metrics_format_double(value, num, sizeof(num)));
}

int metrics_writer_finish(struct metrics_writer *w, char **ret_text, size_t *ret_len)
{
	int r = w->error;
	size_t len = w->sb.len;
	char *text;

	if (r == 0 && (strbuf_failed(&w->sb) || strbuf_failed(&w->names)))
		r = -ENOMEM;
	if (r == 0 && !w->sb.buf)
		strbuf_append(&w->sb, ""); /* an empty exposition is still a string */
	text = r == 0 ? strbuf_steal(&w->sb) : NULL;
	if (r == 0 && !text)
		r = -ENOMEM;
	metrics_writer_done(w);
	metrics_writer_init(w);
	if (r < 0)
		return r;
	*ret_text = text;
	if (ret_len)
		*ret_len = len;
	return 0;
}

/* --- histograms --- */

int metrics_hist_init(struct metrics_hist *h, const uint64_t *bounds, size_t n_bounds, double scale)
{
	if (!bounds || n_bounds == 0 || n_bounds > METRICS_HIST_MAX_BOUNDS || !(scale > 0) ||
	    isinf(scale))
		return -EINVAL;
	for (size_t i = 1; i < n_bounds; i++)
		if (bounds[i] <= bounds[i - 1])
			return -EINVAL;
	memset(h, 0, sizeof(*h));
	memcpy(h->bounds, bounds, n_bounds * sizeof(bounds[0]));
	h->n_bounds = n_bounds;
	h->scale = scale;
	return 0;
}

void metrics_hist_observe(struct metrics_hist *h, uint64_t value)
{
	size_t i = 0;

	/* Few buckets: a linear scan is as fast as a binary search here. */
	while (i < h->n_bounds && value > h->bounds[i])
		i++;
	h->counts[i]++;
	h->count++;
	h->sum = h->sum > UINT64_MAX - value ? UINT64_MAX : h->sum + value;
}

int metrics_hist_merge(struct metrics_hist *a, const struct metrics_hist *b)
{
	if (a->n_bounds != b->n_bounds || a->scale != b->scale ||
	    memcmp(a->bounds, b->bounds, a->n_bounds * sizeof(a->bounds[0])) != 0)
		return -EINVAL;
	for (size_t i = 0; i <= a->n_bounds; i++)
		a->counts[i] += b->counts[i];
	a->count += b->count;
	a->sum = a->sum > UINT64_MAX - b->sum ? UINT64_MAX : a->sum + b->sum;
	return 0;
}

void metrics_sample_hist(struct metrics_writer *w, const struct metrics_label *labels,
			 size_t n_labels, const struct metrics_hist *h)
{
	char le[64], num[64];
	uint64_t cum = 0;

	if (!sample_ok(w, true))
		return;
	for (size_t i = 0; i <= h->n_bounds; i++) {
		cum += h->counts[i];
		if (i < h->n_bounds)
			metrics_format_double((double)h->bounds[i] / h->scale, le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		strbuf_appendf(&w->sb, "%s_bucket", w->family);
		write_labels(w, labels, n_labels, le);
		strbuf_appendf(&w->sb, " %llu\n", (unsigned long long)cum);
	}
	strbuf_appendf(&w->sb, "%s_sum", w->family);
	write_labels(w, labels, n_labels, NULL);
	strbuf_appendf(&w->sb, " %s\n",
		       metrics_format_double((double)h->sum / h->scale, num, sizeof(num)));
	strbuf_appendf(&w->sb, "%s_count", w->family);
	write_labels(w, labels, n_labels, NULL);
	strbuf_appendf(&w->sb, " %llu\n", (unsigned long long)h->count);
}

/* --- per-VM series set --- */

struct metrics_vm {
	uint64_t round;	 /* last round that updated it */
	bool own;	 /* has its own series; else counted in "other" */
	uint64_t last[]; /* n_counters: values seen in the last update */
};

int metrics_vmset_init(struct metrics_vmset *s, size_t n_counters, size_t max_series, uint64_t seed)
{
	if (n_counters == 0 || n_counters > METRICS_VMSET_MAX_COUNTERS)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->other = calloc(n_counters, sizeof(uint64_t));
	if (!s->other)
		return -ENOMEM;
	u64map_init(&s->vms, seed);
	s->n_counters = n_counters;
	s->max_series = max_series;
	return 0;
}

void metrics_vmset_done(struct metrics_vmset *s)
{
	size_t it = 0;
	void *v;

	if (!s->other)
		return;
	while (u64map_next(&s->vms, &it, NULL, &v))
		free(v);
	u64map_done(&s->vms);
	free(s->other);
	memset(s, 0, sizeof(*s));
}

void metrics_vmset_begin(struct metrics_vmset *s)
{
	s->round++;
	s->other_vms = 0;
}

static void add_sat(uint64_t *a, uint64_t b)
{
	*a = *a > UINT64_MAX - b ? UINT64_MAX : *a + b;
}

int metrics_vmset_update(struct metrics_vmset *s, uint64_t vm_id, const uint64_t *counters)
{
	struct metrics_vm *vm = u64map_get(&s->vms, vm_id);
	int r;

	if (!vm) {
		vm = calloc(1, sizeof(*vm) + s->n_counters * sizeof(uint64_t));
		if (!vm)
			return -ENOMEM;
		r = u64map_put(&s->vms, vm_id, vm);
		if (r < 0) {
			free(vm);
			return r;
		}
	}
	vm->round = s->round;
	if (!vm->own && s->n_series < s->max_series) {
		/* What "other" has counted for this VM stays there; the new series starts from
		 * the VM's full count (Prometheus sees a new series, not a jump). */
		vm->own = true;
		s->n_series++;
	}
	if (!vm->own) {
		bool reset = false;
		/* A value below the last one means the VM was re-created between rounds:
		 * everything it reports now is new. */
		for (size_t i = 0; i < s->n_counters; i++)
			reset |= counters[i] < vm->last[i];
		for (size_t i = 0; i < s->n_counters; i++)
			add_sat(&s->other[i], reset ? counters[i] : counters[i] - vm->last[i]);
		s->other_vms++;
	}
	memcpy(vm->last, counters, s->n_counters * sizeof(uint64_t));
	return 0;
}

void metrics_vmset_end(struct metrics_vmset *s)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	while (u64map_next(&s->vms, &it, &id, &v)) {
		struct metrics_vm *vm = v;
		if (vm->round == s->round)
			continue;
		if (vm->own)
			s->n_series--;
		free(u64map_remove(&s->vms, id));
	}
}

bool metrics_vmset_next(const struct metrics_vmset *s, size_t *iter, uint64_t *ret_vm_id,
			const uint64_t **ret_counters)
{
	uint64_t id;
	void *v;

	while (u64map_next(&s->vms, iter, &id, &v)) {
		const struct metrics_vm *vm = v;
		if (!vm->own)
			continue;
		*ret_vm_id = id;
		*ret_counters = vm->last;
		return true;
	}
	return false;
}

/* --- listen address --- */

int metrics_listen_split(const char *s, char *host, size_t host_size, uint16_t *ret_port)
{
	const char *h, *colon;
	size_t hlen;
	uint64_t port;
	char pbuf[8];

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* a bare IPv6 address needs brackets */
		h = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= host_size)
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') ||
		      (h[i] >= 'A' && h[i] <= 'F') || h[i] == '.' || h[i] == ':'))
			return -EINVAL; /* numeric addresses only: no name lookups in the daemon */
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(pbuf))
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (parse_u64(colon + 1, &port) < 0 || port == 0 || port > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*ret_port = (uint16_t)port;
	return 0;
}
