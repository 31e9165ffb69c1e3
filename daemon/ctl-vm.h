/* SPDX-License-Identifier: Apache-2.0 */
/* ctl-vm: what the control commands say about a VM beyond the admission core's counters: its
 * transport, and for a VM of the VMM socket its UUID and name, by which snpctl may also name it.
 * Reads the broker; changes nothing. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "../proto/ctlproto.h"

struct broker;

/* A request naming its VM by UUID or name (q->vm_ref) gets that VM's id in q->vm_id. A UUID
 * always resolves (the id is derived from it, so a quota can be set before the VM runs); a
 * name only while a VM of that name is connected. -ENOENT or -EINVAL with a line in err. */
int ctl_vm_resolve(const struct broker *b, struct ctl_request *q, char *err, size_t err_size);
/* Adds "transport" and, for a connected VMM-socket VM, "uuid" and "name" to an object that
 * carries "vm" (a vm.list/vm.show entry, a quota entry); to every object of an array. */
void ctl_vm_annotate(const struct broker *b, json_t *o);
void ctl_vm_annotate_all(const struct broker *b, json_t *arr);
/* Adds "vmm" (the VMM socket: listening, path, connections, VMs) to a status object. */
void ctl_vm_status(const struct broker *b, json_t *status);
