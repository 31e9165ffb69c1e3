/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-vmmproto: the VMM socket codec on hostile bytes. Properties: no crash; the encoding is
 * canonical (rebuilding an accepted message gives the very same bytes); reparsing the rebuilt
 * message gives the same value in every field; an accepted table lies inside the input. */
#include <stdint.h>
#include <string.h>

#include "vmmproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct vmmproto_msg *a, const struct vmmproto_msg *b)
{
	int eq = a->type == b->type && a->version == b->version;

	switch (a->type) {
	case VMMPROTO_HELLO:
		eq = eq && !memcmp(a->hello.uuid, b->hello.uuid, 16) &&
		     a->hello.vmm_pid == b->hello.vmm_pid && !strcmp(a->hello.name, b->hello.name);
		break;
	case VMMPROTO_HELLO_ACK:
		eq = eq && a->hello_ack.vm_id == b->hello_ack.vm_id;
		break;
	case VMMPROTO_CERTS:
		eq = eq && a->certs.req_id == b->certs.req_id && a->certs.npages == b->certs.npages;
		break;
	case VMMPROTO_ALLOW:
		eq = eq && a->allow.req_id == b->allow.req_id &&
		     a->allow.table_len == b->allow.table_len &&
		     (!a->allow.table_len ||
		      !memcmp(a->allow.table, b->allow.table, a->allow.table_len));
		break;
	case VMMPROTO_BUSY:
		eq = eq && a->busy.req_id == b->busy.req_id;
		break;
	case VMMPROTO_ENOSPC:
		eq = eq && a->enospc.req_id == b->enospc.req_id &&
		     a->enospc.npages == b->enospc.npages;
		break;
	case VMMPROTO_DONE:
		eq = eq && a->done.req_id == b->done.req_id && a->done.outcome == b->done.outcome;
		break;
	case VMMPROTO_ERROR:
		eq = eq && a->error.req_id == b->error.req_id && a->error.code == b->error.code;
		break;
	default:
		eq = 0;
	}
	if (!eq)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[VMMPROTO_MSG_MAX];
	struct vmmproto_msg m, m2;
	size_t len = 0;

	(void)vmmproto_type_name((enum vmmproto_type)(size ? data[0] : 0));
	(void)vmmproto_error_name((enum vmmproto_error)(size ? data[0] : 0));
	if (vmmproto_parse(data, size, &m, NULL) < 0)
		return 0;
	if (size > VMMPROTO_MSG_MAX)
		__builtin_trap();
	if (m.type == VMMPROTO_ALLOW && m.allow.table_len &&
	    (m.allow.table < data || m.allow.table + m.allow.table_len > data + size))
		__builtin_trap();
	if (vmmproto_build(&m, out, sizeof(out), &len) < 0 || len != size ||
	    memcmp(out, data, size))
		__builtin_trap();
	if (vmmproto_parse(out, len, &m2, NULL) < 0)
		__builtin_trap();
	same(&m, &m2);
	return 0;
}
