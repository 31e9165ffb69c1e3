/* SPDX-License-Identifier: Apache-2.0 */
/* promtext: Prometheus text exposition (format 0.0.4) writer, fixed-bucket histograms and the
 * bounded per-VM series set. Pure: no I/O, no clock; the daemon feeds it numbers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "u64map.h"
#include "util.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM,
};

struct metrics_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
	const char *value; /* any bytes: escaped (\\ \" \n), other controls and non-ASCII -> '?' */
};

/* Builds one exposition text. A misuse (bad metric or label name, a sample before any family,
 * a histogram sample in a non-histogram family, the same family twice) or an
 * allocation failure marks the writer failed: metrics_writer_finish then returns the error. */
struct metrics_writer {
	struct strbuf sb;
	struct strbuf names; /* "\n"-separated family names written so far */
	char family[128];    /* current family name, "" before the first */
	enum metrics_type type;
	int error; /* first error (negative errno), 0 if none */
};

void metrics_writer_init(struct metrics_writer *w);
void metrics_writer_done(struct metrics_writer *w);
/* Writes "# HELP" and "# TYPE" for a family. Counters must be named *_total. */
void metrics_family(struct metrics_writer *w, const char *name, enum metrics_type type,
		    const char *help);
/* One sample of the current counter or gauge family. */
void metrics_sample_u64(struct metrics_writer *w, const struct metrics_label *labels,
			size_t n_labels, uint64_t value);
void metrics_sample_double(struct metrics_writer *w, const struct metrics_label *labels,
			   size_t n_labels, double value);
/* 0 and the text (caller frees) or the writer's error; the writer is reset either way. */
int metrics_writer_finish(struct metrics_writer *w, char **ret_text, size_t *ret_len);

/* Shortest decimal form that reads back as the same double; "NaN", "+Inf", "-Inf". */
const char *metrics_format_double(double v, char *buf, size_t size);

/* Histogram with fixed upper bounds in an integer unit (e.g. microseconds); rendered in the
 * family's unit by dividing by `scale` (1e6 for usec -> seconds). */
#define METRICS_HIST_MAX_BOUNDS 24

struct metrics_hist {
	uint64_t bounds[METRICS_HIST_MAX_BOUNDS]; /* strictly increasing, "le" semantics */
	size_t n_bounds;
	uint64_t counts[METRICS_HIST_MAX_BOUNDS + 1]; /* per bucket, the last is +Inf */
	uint64_t sum;				      /* saturates at UINT64_MAX */
	uint64_t count;
	double scale;
};

/* -EINVAL: no bounds, too many, not strictly increasing, scale not > 0. */
int metrics_hist_init(struct metrics_hist *h, const uint64_t *bounds, size_t n_bounds,
		      double scale);
void metrics_hist_observe(struct metrics_hist *h, uint64_t value);
/* Adds b's observations into a (same bounds required, else -EINVAL and a unchanged). */
int metrics_hist_merge(struct metrics_hist *a, const struct metrics_hist *b);
/* Writes the _bucket (cumulative, with "le" appended to labels), _sum and _count lines of the
 * current histogram family. */
void metrics_sample_hist(struct metrics_writer *w, const struct metrics_label *labels,
			 size_t n_labels, const struct metrics_hist *h);

/* The per-VM series set: bounds label cardinality. At most max_series VMs have their own
 * series (vm="<id>"); the others are summed into one "other" vector, which also keeps what
 * departed VMs had counted, so every counter stays monotonic. One round per scrape:
 * begin, update every live VM, end (VMs not updated are dropped, freeing their slot). A VM gets
 * its own series in the first round that finds a free slot. Counters only: each VM reports
 * n_counters monotonic values (a smaller value means the VM was re-created: a reset). */
struct metrics_vmset {
	struct u64map vms; /* vm_id -> struct metrics_vm (owned) */
	size_t n_counters;
	size_t max_series;
	size_t n_series;
	uint64_t round;
	uint64_t *other;    /* owned, n_counters */
	uint64_t other_vms; /* VMs counted in "other" in the last round */
};

#define METRICS_VMSET_MAX_COUNTERS 64

/* -EINVAL for 0 or too many counters, -ENOMEM. */
int metrics_vmset_init(struct metrics_vmset *s, size_t n_counters, size_t max_series,
		       uint64_t seed);
void metrics_vmset_done(struct metrics_vmset *s);
void metrics_vmset_begin(struct metrics_vmset *s);
/* counters has n_counters values. -ENOMEM (the VM is then counted nowhere this round). */
int metrics_vmset_update(struct metrics_vmset *s, uint64_t vm_id, const uint64_t *counters);
/* Drops the VMs not updated since begin. */
void metrics_vmset_end(struct metrics_vmset *s);
/* Iterates the VMs with their own series: for (size_t i = 0; metrics_vmset_next(s, &i, ...);) */
bool metrics_vmset_next(const struct metrics_vmset *s, size_t *iter, uint64_t *ret_vm_id,
			const uint64_t **ret_counters);
static inline const uint64_t *metrics_vmset_other(const struct metrics_vmset *s)
{
	return s->other;
}

/* Splits a listen address "A.B.C.D:PORT" or "[V6]:PORT" into host (without brackets) and
 * port 1..65535. Only the syntax is checked here (the caller parses the numeric host).
 * -EINVAL on anything else, "" included (the caller treats "" as "off" before calling). */
int metrics_listen_split(const char *s, char *host, size_t host_size, uint16_t *ret_port);
