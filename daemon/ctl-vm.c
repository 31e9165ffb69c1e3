/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-vm: VMs by UUID and name for the control commands (ctl-vm.h). */
#include "ctl-vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "vmmproto.h"
#include "vmmtransport.h"

int ctl_vm_resolve(const struct broker *b, struct ctl_request *q, char *err, size_t err_size)
{
	const struct vmmtransport *v = broker_vmmtransport(b);
	uint8_t uuid[16];
	struct vmmt_vm vm;

	if (!q->vm_ref[0])
		return 0;
	if (vmmproto_uuid_parse(q->vm_ref, uuid) == 0) {
		static const uint8_t zero[16];
		if (memcmp(uuid, zero, sizeof(zero)) == 0) {
			snprintf(err, err_size, "a VM without a UUID (all zero) is named by its name");
			return -EINVAL;
		}
		q->vm_id = vmmproto_vm_key(uuid, "");
		return 0;
	}
	if (!v || vmmtransport_vm_by_name(v, q->vm_ref, &vm) < 0) {
		snprintf(err, err_size,
			 "no connected VM is named '%s' (name a VM that is not running by its UUID)",
			 q->vm_ref);
		return -ENOENT;
	}
	q->vm_id = vm.vm_id;
	return 0;
}

void ctl_vm_annotate(const struct broker *b, json_t *o)
{
	const struct vmmtransport *v = broker_vmmtransport(b);
	struct adm_vm_info info;
	struct vmmt_vm vm;
	char uuid[VMMPROTO_UUID_STR];
	uint64_t id;

	if (!json_is_object(o) || ctl_json_get_u64(json_object_get(o, "vm"), &id) < 0)
		return;
	if (broker_vm_info(b, id, &info) == 0)
		json_object_set_new(o, "transport", json_string(info.transport));
	else if (id & VMMPROTO_VM_KEY_BIT)
		json_object_set_new(o, "transport", json_string("vmm")); /* not connected now */
	if (v && vmmtransport_vm(v, id, &vm) == 0) {
		vmmproto_uuid_format(vm.uuid, uuid);
		json_object_set_new(o, "uuid", json_string(uuid));
		json_object_set_new(o, "name", json_string(vm.name));
	}
}

void ctl_vm_annotate_all(const struct broker *b, json_t *arr)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
		ctl_vm_annotate(b, o);
}
