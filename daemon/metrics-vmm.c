/* SPDX-License-Identifier: Apache-2.0 */
/* metrics-vmm: the VMM socket's series (metrics-vmm.h). */
#include "metrics-vmm.h"

#include <stdio.h>

#include "broker.h"
#include "../proto/promtext.h"
#include "util.h"
#include "vmmproto.h"
#include "vmmtransport.h"

static void one(struct metrics_writer *w, const char *name, enum metrics_type type,
		const char *help, double v)
{
	metrics_family(w, name, type, help);
	metrics_sample_double(w, NULL, 0, v);
}

static void labelled(struct metrics_writer *w, const char *name, const char *help,
		     const char *label, const char *const *values, const uint64_t *counts, size_t n)
{
	metrics_family(w, name, METRICS_COUNTER, help);
	for (size_t i = 0; i < n; i++) {
		struct metrics_label l = {label, values[i]};
		metrics_sample_u64(w, &l, 1, counts[i]);
	}
}

void metrics_vmm_render(struct metrics_writer *w, const struct broker *b,
			const struct metrics_vmset *set)
{
	const struct vmmtransport *v = b ? broker_vmmtransport(b) : NULL;
	const struct vmmtransport_stats *s;
	static const char *const answers[] = {"allow", "busy", "enospc"};
	static const char *const outcomes[] = {"firmware", "abandoned"};
	const char *reasons[_VMMT_REFUSE_MAX];
	uint64_t n[3];
	size_t it = 0;
	uint64_t id;
	const uint64_t *c;

	if (!v)
		return;
	s = vmmtransport_stats(v);
	one(w, "snp_attestd_vmm_socket_listening", METRICS_GAUGE,
	    "1 while the VMM socket listens ([vmm] socket).", s->listening ? 1 : 0);
	one(w, "snp_attestd_vmm_connections", METRICS_GAUGE,
	    "VMM socket connections open now (before and after HELLO).", (double)s->connections);
	one(w, "snp_attestd_vmm_vms", METRICS_GAUGE, "VMs connected through the VMM socket now.",
	    (double)s->vms);
	one(w, "snp_attestd_vmm_connections_accepted_total", METRICS_COUNTER,
	    "VMM socket connections accepted (authorised or not).", (double)s->accepted);
	one(w, "snp_attestd_vmm_hellos_total", METRICS_COUNTER,
	    "VMs announced on the VMM socket (HELLO acknowledged).", (double)s->hellos);
	one(w, "snp_attestd_vmm_certs_requests_total", METRICS_COUNTER,
	    "CERTS requests (KVM_EXIT_SNP_REQ_CERTS) received.", (double)s->certs);
	n[0] = s->allow;
	n[1] = s->busy;
	n[2] = s->enospc;
	labelled(w, "snp_attestd_vmm_answers_total", "Answers sent on the VMM socket.", "answer",
		 answers, n, ELEMENTSOF(answers));
	n[0] = s->done_firmware;
	n[1] = s->done_abandoned;
	labelled(w, "snp_attestd_vmm_done_total",
		 "DONE received: after the firmware call, or the VMM did not use the ALLOW.",
		 "outcome", outcomes, n, ELEMENTSOF(outcomes));
	for (size_t i = 0; i < _VMMT_REFUSE_MAX; i++)
		reasons[i] = vmmtransport_refusal_name((enum vmmt_refusal)i);
	labelled(w, "snp_attestd_vmm_refused_total",
		 "VMM socket connections ended by the daemon, by reason (each got ERROR).",
		 "reason", reasons, s->refused, _VMMT_REFUSE_MAX);
	/* Per-VM series carry the numeric vm label; this names the VMM-socket ones. */
	metrics_family(w, "snp_attestd_vmm_vm_info", METRICS_GAUGE,
		       "A VMM-socket VM with its own per-VM series: its UUID and name (value 1).");
	while (set && metrics_vmset_next(set, &it, &id, &c)) {
		struct vmmt_vm vm;
		char sid[24], uuid[VMMPROTO_UUID_STR];
		if (vmmtransport_vm(v, id, &vm) < 0)
			continue;
		snprintf(sid, sizeof(sid), "%llu", (unsigned long long)id);
		vmmproto_uuid_format(vm.uuid, uuid);
		struct metrics_label l[3] = {{"vm", sid}, {"uuid", uuid}, {"name", vm.name}};
		metrics_sample_u64(w, l, 3, 1);
	}
}
