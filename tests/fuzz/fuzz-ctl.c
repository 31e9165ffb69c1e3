/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the control protocol codec (request lines from any local user, reply lines
 * from the daemon). Invariants: never crashes; a request that parses rebuilds into a line that
 * parses again to the same command, VM and quota. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctlproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request a, b;
	struct ctl_parse_error err = {0};
	json_t *body = NULL;
	char msg[256];
	char *line;

	if (ctl_request_parse((const char *)data, size, &a, &err) == 0) {
		line = ctl_request_build(&a);
		if (line) {
			struct ctl_parse_error err2 = {0};
			if (ctl_request_parse(line, strlen(line) - 1, &b, &err2) != 0)
				abort();
			if (a.cmd != b.cmd || a.has_vm != b.has_vm ||
			    (a.has_vm && a.vm_id != b.vm_id) || a.quota_fields != b.quota_fields)
				abort();
			ctl_request_done(&b);
			free(line);
		}
		ctl_request_done(&a);
	} else {
		json_decref(err.id);
	}
	if (ctl_reply_parse((const char *)data, size, &body, msg, sizeof(msg)) == 0)
		json_decref(body);
	return 0;
}
