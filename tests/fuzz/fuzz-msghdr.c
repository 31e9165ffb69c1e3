/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz-msghdr: guest message header parse/check/build, open under a fixed key and the payload
 * parsers. Properties: no crash, header build/parse round trips, an opened message reseals to
 * the same bytes. */
#include <stdint.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus holds messages sealed under this key, so msg_open's success path runs. */
static const uint8_t fuzz_key[MSG_KEY_LEN] = {
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
};

static bool hdr_equal(const struct msg_hdr *a, const struct msg_hdr *b)
{
	return memcmp(a->authtag, b->authtag, sizeof(a->authtag)) == 0 && a->seqno == b->seqno &&
	       a->algo == b->algo && a->hdr_version == b->hdr_version && a->hdr_sz == b->hdr_sz &&
	       a->type == b->type && a->version == b->version && a->sz == b->sz &&
	       a->vmpck == b->vmpck;
}

/* Reserved header bytes inside the AAD: 0x38..0x3b and 0x3d..0x5f. */
static bool reserved_zero(const uint8_t *hdr)
{
	for (size_t i = 0x38; i < MSG_HDR_SIZE; i++)
		if (i != MSG_OFF_VMPCK && hdr[i])
			return false;
	return true;
}

static void fuzz_payloads(const uint8_t *data, size_t size)
{
	struct msg_report_req rr;
	struct msg_report_rsp rs;
	struct msg_key_req kr;
	struct msg_key_rsp ks;
	struct msg_tsc_info_rsp ts;

	if (msg_report_req_parse(data, size, &rr) == 0) {
		uint8_t back[MSG_REPORT_REQ_SIZE];
		msg_report_req_build(&rr, back);
		if (memcmp(back, data, sizeof(back)) != 0)
			__builtin_trap();
	}
	if (msg_report_rsp_parse(data, size, &rs) == 0 && rs.report &&
	    (size_t)(rs.report - data) + rs.report_size > size)
		__builtin_trap();
	for (uint8_t v = 0; v <= 3; v++) {
		if (msg_key_req_parse(data, size, v, &kr) == 0) {
			uint8_t back[MSG_KEY_REQ_SIZE_V2];
			int n = msg_key_req_build(&kr, v, back, sizeof(back));
			if (n < 0 || (size_t)n != size || memcmp(back, data, size) != 0)
				__builtin_trap();
		}
	}
	(void)msg_key_rsp_parse(data, size, &ks);
	(void)msg_tsc_info_req_parse(data, size);
	(void)msg_tsc_info_rsp_parse(data, size, &ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pt[MSG_PAYLOAD_MAX], page[MSG_PAGE_SIZE];
	struct msg_hdr h, h2, oh;
	uint8_t back[MSG_HDR_SIZE];
	size_t olen;

	fuzz_payloads(data, size);
	if (msg_hdr_parse(data, size, &h) < 0)
		return 0;
	(void)msg_hdr_check(&h);
	(void)msg_hdr_check_response(&h, &h);
	msg_hdr_build(&h, back);
	if (msg_hdr_parse(back, sizeof(back), &h2) < 0 || !hdr_equal(&h, &h2))
		__builtin_trap();
	(void)msg_type_name(h.type);

	if (msg_open(fuzz_key, data, size, &oh, pt, sizeof(pt), &olen) == 0) {
		/* Sealing is deterministic in (key, header, plaintext): the same bytes must come
		 * back, apart from the unauthenticated reserved field at 0x28 and authtag[16..].
		 * Seal writes zero reserved bytes, so compare only when the input had them too. */
		if (olen != oh.sz || msg_seal(fuzz_key, &oh, pt, olen, page, sizeof(page)) < 0)
			__builtin_trap();
		if (reserved_zero(data) &&
		    (memcmp(page, data, MSG_AUTHTAG_LEN) != 0 ||
		     memcmp(page + 0x20, data + 0x20, 8) != 0 ||
		     memcmp(page + 0x30, data + 0x30, MSG_HDR_SIZE - 0x30 + olen) != 0))
			__builtin_trap();
		fuzz_payloads(pt, olen);
	}
	return 0;
}
