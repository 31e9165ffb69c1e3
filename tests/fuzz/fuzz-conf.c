/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the configuration parser and validator on arbitrary text. Invariants: never
 * crashes; a successful apply keeps the configuration printable, and the printed form parses
 * back to the same printed form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c, d;
	char err[256];
	char *text, *a, *b;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (conf_init_defaults(&c) < 0) {
		free(text);
		return 0;
	}
	if (conf_apply_string(&c, text, "fuzz", err, sizeof(err)) == 0) {
		(void)conf_validate(&c, err, sizeof(err));
		a = conf_format(&c);
		if (a && conf_init_defaults(&d) == 0) {
			if (conf_apply_string(&d, a, "normalised", err, sizeof(err)) != 0)
				abort();
			b = conf_format(&d);
			if (b && strcmp(a, b) != 0)
				abort();
			free(b);
			conf_done(&d);
		}
		free(a);
	}
	conf_done(&c);
	free(text);
	return 0;
}
