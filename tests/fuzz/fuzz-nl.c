/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-nl: nl_parse on arbitrary bytes; whatever it accepts must rebuild to a message that
 * parses back to the same content (and nl_parse_ack/nl_msg_class must never misbehave). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct snpa_msg *a, const struct snpa_msg *b)
{
	if (a->cmd != b->cmd || a->present != b->present || a->vm_id != b->vm_id ||
	    a->req_id != b->req_id || a->exit_code != b->exit_code ||
	    a->msg_seqno != b->msg_seqno || a->msg_size != b->msg_size ||
	    a->verdict != b->verdict || a->exitinfo2 != b->exitinfo2 ||
	    a->npages != b->npages || a->outcome != b->outcome || a->fw_status != b->fw_status ||
	    a->fw_time_ns != b->fw_time_ns || a->inflight_req != b->inflight_req ||
	    a->cert_table_len != b->cert_table_len ||
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
