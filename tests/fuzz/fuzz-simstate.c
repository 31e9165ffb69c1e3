/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the simulation state file parser. Invariants: never crashes; whatever parses
 * formats, and the formatted text parses back and formats identically. The same bytes also
 * go to the platform file parser, whose result must be within its documented values. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_state_data a, b;
	struct sim_platform pf;
	char buf[8192], buf2[8192];
	int n, n2;

	if (sim_platform_parse((const char *)data, size, &pf) == 0 &&
	    (pf.sockets < 1 || pf.sockets > SIM_PLATFORM_MAX_SOCKETS ||
	     (pf.uninit_errno != EINVAL && pf.uninit_errno != ENODEV)))
		abort();
	if (sim_state_parse((const char *)data, size, &a) != 0)
		return 0;
	n = sim_state_format(&a, buf, sizeof(buf));
	if (n < 0)
		abort();
	if (sim_state_parse(buf, (size_t)n, &b) != 0)
		abort();
	/* Compare the formatted texts, not the structs (padding bytes are unspecified). */
	n2 = sim_state_format(&b, buf2, sizeof(buf2));
	if (n2 != n || memcmp(buf, buf2, (size_t)n) != 0)
		abort();
	return 0;
}
