#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libsnpattest as a VMM author gets it (TAP): `meson install` into a DESTDIR, then a C program
# that includes only the installed <snpattest.h> and is compiled and linked with nothing but
# `cc $(pkg-config --cflags --libs libsnpattest)` talks to a server on the VMM socket.
# Also: the SONAME, the exported symbols (the API and nothing else) and libc as the only
# dependency. Usage: test-installed.sh SOURCE_ROOT BUILD_ROOT
set -u

SRC=$1
BUILD=$2
WORK=$(mktemp -d /tmp/snpattest-installed-XXXXXX)
SERVER_PID=
n=0
failed=0

cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@" >"$WORK/check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' "$WORK/check.out"; fi
}

DEST=$WORK/dest
check "meson install into a DESTDIR (runtime and devel files)" \
	meson install -C "$BUILD" --no-rebuild --quiet --destdir "$DEST" --tags runtime,devel

PC=$(find "$DEST" -name libsnpattest.pc | head -1)
SO=$(find "$DEST" -name 'libsnpattest.so.1' | head -1)
HDR=$(find "$DEST" -name snpattest.h | head -1)
if [ -z "$PC" ] || [ -z "$SO" ] || [ -z "$HDR" ]; then
	not_ok "installed: libsnpattest.pc, libsnpattest.so.1, snpattest.h (got '$PC' '$SO' '$HDR')"
	echo "1..$n"
	exit 1
fi
ok "installed: $(basename "$PC"), $(basename "$SO"), $(basename "$HDR")"

check "SONAME is libsnpattest.so.1" \
	sh -c "readelf -d '$SO' | grep -q 'Library soname: \[libsnpattest.so.1\]'"
# A sanitizer build (meson -Db_sanitize=...) links the sanitizer runtimes into every object;
# the program below is then built with the same flags. Otherwise libc is the only dependency.
SAN=
if nm -D --undefined-only "$SO" | grep -q -E '__(asan|ubsan)_'; then
	SAN="-fsanitize=address,undefined"
fi
readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -v -E '^lib(asan|ubsan)\.' >"$WORK/needed"
check "the only library it needs is libc${SAN:+ (besides the sanitizer runtimes)}" \
	sh -c "[ \"\$(cat '$WORK/needed')\" = libc.so.6 ]"
nm -D --defined-only "$SO" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$WORK/syms"
sed -n 's/^int \(snpattest_[a-z_]*\)(.*/\1/p; s/^void \(snpattest_[a-z_]*\)(.*/\1/p;
	s/^enum snpattest_source \(snpattest_[a-z_]*\)(.*/\1/p' "$HDR" | sort >"$WORK/api"
check "exported functions are exactly the header's API" diff -u "$WORK/api" "$WORK/syms"

# The program a VMM author would write (the KVM side left out: no /dev/kvm here).
cat >"$WORK/vmm.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <snpattest.h>

int main(int argc, char **argv)
{
	static unsigned char buf[SNPATTEST_MAX_PAGES * 4096];
	static const unsigned char uuid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct snpattest *h;
	unsigned long long pages;
	uint64_t npages = 0;
	int ret;

	if (argc != 2 || snpattest_open(argv[1], uuid, "installed-test", &h) < 0)
		return 2;
	snpattest_set_certs_file(h, NULL);
	ret = snpattest_request_certs(h, buf, &npages, 5000); /* RBX = 0: how much room? */
	pages = (unsigned long long)npages;
	printf("first ret=%d npages=%llu source=%d\n", ret, pages, (int)snpattest_last_source(h));
	if (ret != ENOSPC)
		return 1;
	ret = snpattest_request_certs(h, buf, &npages, 5000);
	printf("second ret=%d source=%d\n", ret, (int)snpattest_last_source(h));
	if (ret != 0 || snpattest_last_source(h) != SNPATTEST_SOURCE_DAEMON)
		return 1;
	snpattest_done(h);
	snpattest_close(h);
	return 0;
}
EOF
export PKG_CONFIG_PATH=$(dirname "$PC")
export PKG_CONFIG_SYSROOT_DIR=$DEST
# shellcheck disable=SC2046
check "a program compiles against only the installed header and pkg-config file" \
	sh -c "cc -std=c11 -Wall -Werror $SAN -o '$WORK/vmm' '$WORK/vmm.c' \$(pkg-config --cflags --libs libsnpattest)"

# A 2-page table for the server: 24-byte entries are irrelevant to the program, any valid
# table will do, so build a one-entry table (VCEK GUID) by hand.
python3 - "$WORK/table.bin" <<'EOF'
import struct, sys, uuid
cert = b'\xa5' * 5000
guid = uuid.UUID('63da758d-e664-4564-adc5-f4b93be8accd').bytes
hdr = guid + struct.pack('<II', 48, len(cert)) + b'\0' * 24
open(sys.argv[1], 'wb').write(hdr + cert)
EOF
SOCK=$WORK/vmm.sock
"$BUILD/tests/libsnpattest/vmm-test-server" "$SOCK" allow "$WORK/table.bin" >"$WORK/server.out" &
SERVER_PID=$!
for _ in $(seq 1 500); do grep -q ready "$WORK/server.out" 2>/dev/null && break; sleep 0.01; done
check "the program talks to the server: ENOSPC (2 pages) for RBX=0, then ALLOW and DONE" \
	sh -c "LD_LIBRARY_PATH='$(dirname "$SO")' '$WORK/vmm' '$SOCK' >'$WORK/vmm.out'"
sed 's/^/# /' "$WORK/vmm.out"
check "the first answer was ENOSPC (28) with 2 pages, from the daemon" \
	grep -q "first ret=$(python3 -c 'import errno; print(errno.ENOSPC)') npages=2 source=1" "$WORK/vmm.out"
kill "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=
check "the server saw one HELLO, one ENOSPC, one ALLOW and its DONE" \
	grep -q 'hellos=1 certs=2 allows=1 busys=0 enospcs=1 done_fw=1 done_abandoned=0 malformed=0' \
	"$WORK/server.out"

echo "1..$n"
exit $failed
