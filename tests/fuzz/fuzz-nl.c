/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-nl: nl_parse on arbitrary bytes; whatever it accepts must rebuild to a message that
 * parses back to the same content (and nl_parse_ack/nl_msg_class must never misbehave). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every field of struct snpa_msg, one by one: the header fields nl_build takes as arguments,
 * every attribute value (also those of absent attributes, which both sides leave zero) and
 * the certificate table's bytes. The size check below fails the build when a field is added
 * to struct snpa_msg without being compared here. */
_Static_assert(sizeof(struct snpa_msg) == 144,
	       "struct snpa_msg changed: compare the new field in check_same()");

#define SAME(f)                                                                                    \
	do {                                                                                       \
		if (a->f != b->f)                                                                  \
			__builtin_trap();                                                          \
	} while (0)

static void check_same(const struct snpa_msg *a, const struct snpa_msg *b)
{
	SAME(cmd);
	SAME(version);
	SAME(present);
	SAME(abi_version);
	SAME(features);
	SAME(vm_id);
	SAME(vmm_pid);
	SAME(asid);
	SAME(policy);
	SAME(req_id);
	SAME(exit_code);
	SAME(msg_seqno);
	SAME(msg_type);
	SAME(msg_version);
	SAME(msg_vmpck);
	SAME(msg_size);
	SAME(data_npages);
	SAME(verdict);
	SAME(exitinfo2);
	SAME(cert_table_len);
	SAME(npages);
	SAME(outcome);
	SAME(fw_status);
	SAME(fw_time_ns);
	SAME(inflight_req);
	SAME(vm_count);
	SAME(nlmsg_flags);
	SAME(nlmsg_seq);
	SAME(nlmsg_pid);
	if ((a->cert_table == NULL) != (b->cert_table == NULL) ||
	    (a->cert_table_len && memcmp(a->cert_table, b->cert_table, a->cert_table_len)))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static _Alignas(8) uint8_t out[SNPA_MSG_MAX];
	struct snpa_msg m, m2;
	uint8_t *buf;
	uint32_t seq;
	int err, r;

	/* An exact-size heap copy, so reads past the end are caught by ASan. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	(void)nl_msg_class(buf, size, SNPA_USERSOCK_FAMILY);
	(void)nl_parse_ack(buf, size, &seq, &err);
	if (nl_parse(buf, size, SNPA_USERSOCK_FAMILY, &m) == 0) {
		if (nl_validate(&m, NULL) != 0)
			__builtin_trap();
		r = nl_build(out, sizeof(out), SNPA_USERSOCK_FAMILY, m.nlmsg_flags, m.nlmsg_seq,
			     m.nlmsg_pid, &m);
		if (r < 0 || nl_parse(out, (size_t)r, SNPA_USERSOCK_FAMILY, &m2) != 0)
			__builtin_trap();
		check_same(&m, &m2);
	}
	free(buf);
	return 0;
}
