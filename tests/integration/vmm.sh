#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The VMM socket end to end (TAP): the real daemon on the simulated platform, a scriptable raw
# client (vmm-raw) for the protocol, authorisation, hostile clients, quotas by UUID across
# reconnects and a daemon restart, DONE and close releasing the in-flight slot, rotation
# waiting for DONE; and a program built against only the installed libsnpattest header and
# pkg-config file, talking to the daemon. Usage: vmm.sh VMM-RAW
. "$(dirname "$0")/lib.sh"
RAW=$(realpath "$1")
chmod 755 "$SIMENV_DIR" # the unprivileged clients below must reach the socket
BG=()
stop_bg() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	BG=()
}
trap 'stop_bg; it_finish' EXIT

SIMENV_METRICS=127.0.0.1:$((20000 + ($$ + 7) % 20000))
check "daemon starts with the VMM socket (metrics on $SIMENV_METRICS)" \
	it_platform "[vmm]" "group = users" "max_clients = 16" "hello_timeout = 1s"
S=$SIMENV_VMM_SOCK
ctl() { "$(simenv_bin snpctl)" "$@" --socket "$SIMENV_SOCK"; }
raw() { "$RAW" "$S" "$@"; }
metric() { # NAME{LABELS} -> value (0 when absent)
	curl -sf "http://$SIMENV_METRICS/metrics" | awk -v k="$1" '$1 == k { print $2; f=1 } END { if (!f) print 0 }'
}
# The raw client's output must be exactly these lines.
says() { # DESCRIPTION EXPECTED-LINES -- raw steps...
	local d=$1 want=$2
	shift 3
	raw "$@" > "$SIMENV_DIR/raw.out" 2>&1
	if [ "$(cat "$SIMENV_DIR/raw.out")" = "$want" ]; then ok "$d"; else
		not_ok "$d"
		{ echo "want:"; echo "$want"; echo "got:"; cat "$SIMENV_DIR/raw.out"; } | diag
	fi
}
# Starts raw steps in the background (output in $SIMENV_DIR/$NAME.out) and waits for a line.
bg_raw() { # NAME LINE-REGEX steps...
	local name=$1 want=$2
	shift 2
	"$RAW" "$S" "$@" > "$SIMENV_DIR/$name.out" 2>&1 & # the program itself: $! is its pid
	BG+=($!)
	for _ in $(seq 1 600); do
		grep -Eq "$want" "$SIMENV_DIR/$name.out" && return 0
		sleep 0.05
	done
	cat "$SIMENV_DIR/$name.out"
	return 1
}
wait_for() { # COMMAND...: until it succeeds (60 s at most)
	for _ in $(seq 1 600); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
U1=11111111-1111-4111-8111-111111111111
U2=22222222-2222-4222-8222-222222222222
U3=33333333-3333-4333-8333-333333333333

check "the VMM socket is a socket anyone may connect to (mode 0666)" \
	sh -c "[ -S '$S' ] && [ \$(stat -c %a '$S') = 666 ]"

# --- the protocol ---
PAGES=$(ctl status --json | jq -r '.chain.table_pages // empty')
check "a chain is served (table of $PAGES pages)" test -n "$PAGES"
raw hello $U1 vm-one certs 1 0 certs 2 "$PAGES" done 2 certs 3 "$PAGES" certs 4 "$PAGES" \
	done 3 > "$SIMENV_DIR/proto.out" 2>&1
diag < "$SIMENV_DIR/proto.out"
check "HELLO is acknowledged with the VM id derived from the UUID" \
	grep -Eq '^ACK [0-9]{19,20}$' "$SIMENV_DIR/proto.out"
check "CERTS with npages 0 gets ENOSPC with the table's page count" \
	grep -qx "ENOSPC 1 $PAGES" "$SIMENV_DIR/proto.out"
check "CERTS with room gets ALLOW with the table" grep -Eqx 'ALLOW 2 [1-9][0-9]+' "$SIMENV_DIR/proto.out"
check "after DONE the next CERTS is allowed" grep -Eqx 'ALLOW 3 [1-9][0-9]+' "$SIMENV_DIR/proto.out"
check "one in flight: CERTS before the DONE of an ALLOW gets BUSY" grep -qx 'BUSY 4' "$SIMENV_DIR/proto.out"

# --- snpctl by UUID and name, the transport ---
bg_raw held 'ACK' hello $U1 vm-one hold
check "snpctl vm list shows the VM with transport vmm and its name" \
	sh -c "'$(simenv_bin snpctl)' vm list --socket '$SIMENV_SOCK' | grep -E ' vmm +vm-one '"
check "snpctl vm show by name gives the UUID" \
	sh -c "'$(simenv_bin snpctl)' vm show vm-one --json --socket '$SIMENV_SOCK' | jq -e '.vm_info.uuid == \"$U1\" and .vm_info.transport == \"vmm\"'"
check "snpctl vm show by UUID" \
	sh -c "'$(simenv_bin snpctl)' vm show $U1 --json --socket '$SIMENV_SOCK' | jq -e '.vm_info.name == \"vm-one\"'"
check "the metrics name the VM (uuid and name labels)" wait_for \
	sh -c "curl -sf http://$SIMENV_METRICS/metrics | grep -q 'snp_attestd_vmm_vm_info{.*uuid=\"$U1\",name=\"vm-one\"} 1'"
says "a second connection for the same UUID is refused (duplicate)" $'ERROR duplicate 0\nCLOSED' -- \
	hello $U1 vm-one-again expect-close
stop_bg
ctl vm show no-such-vm > "$SIMENV_DIR/noname.out" 2>&1
check "an unknown name is refused with a reason" \
	sh -c "[ $? = 1 ] && grep -q \"no connected VM is named 'no-such-vm'\" '$SIMENV_DIR/noname.out'"

# --- quotas by UUID: set before the VM runs, across reconnects and a daemon restart ---
check "quota set by UUID for a VM that is not running" ctl quota set $U2 --rate 0.05 --burst 1
says "the VM gets its quota: one ALLOW, then BUSY" $'ACK '"$(ctl quota get $U2 --json | jq -r .vm)"$'\nALLOW 1 '"$(ctl status --json | jq -r '.chain.table_bytes')"$'\nBUSY 2' -- \
	hello $U2 vm-two certs 1 "$PAGES" done 1 certs 2 "$PAGES"
bg_raw quota2 'ACK' hello $U2 renamed-two hold
check "after a reconnect (new name) the VM still has its custom quota" \
	sh -c "'$(simenv_bin snpctl)' vm show $U2 --json --socket '$SIMENV_SOCK' | jq -e '.vm_info.custom_quota == true and .vm_info.quota.burst == 1 and .vm_info.name == \"renamed-two\"'"
stop_bg
simenv_stop_daemon
check "daemon stops cleanly" test "${SIMENV_DAEMON_RC:-1}" = 0
check "daemon restarts" simenv_start_daemon
check "after a daemon restart the quota by UUID is still there" \
	sh -c "'$(simenv_bin snpctl)' quota get $U2 --json --socket '$SIMENV_SOCK' | jq -e '.custom == true and .quota.burst == 1 and .transport == \"vmm\"'"
check "quota reset by UUID" ctl quota reset $U2

# --- DONE and close release the in-flight slot ---
says "an ALLOW then close without DONE" "ACK $(ctl quota get $U3 --json | jq -r .vm)"$'\nALLOW 1 '"$(ctl status --json | jq -r '.chain.table_bytes')" -- \
	hello $U3 vm-three certs 1 "$PAGES"
check "the reconnected VM is allowed at once (the close freed its slot)" \
	sh -c "'$RAW' '$S' hello $U3 vm-three certs 1 $PAGES | grep -Eqx 'ALLOW 1 [0-9]+'"
check "nothing is left in flight" sh -c "'$(simenv_bin snpctl)' status --json --socket '$SIMENV_SOCK' | jq -e '.broker.inflight == 0'"

# --- hostile clients: each gets a clear ERROR, is counted, and nothing else changes ---
M0=$(metric 'snp_attestd_vmm_refused_total{reason="malformed"}')
says "garbage is refused as malformed" $'ERROR malformed 0\nCLOSED' -- hex deadbeef expect-close
says "a truncated header is malformed" $'ERROR malformed 0\nCLOSED' -- hex 534e5056010001 expect-close
says "a CERTS with a bad length is malformed" $'ERROR malformed 0\nCLOSED' -- \
	hex 534e5056010003001d00000001000000000000000100000000000000ff expect-close
says "another protocol version is refused (version)" $'ERROR version 0\nCLOSED' -- \
	hello-v 2 $U3 vm-x expect-close
says "CERTS before HELLO is a state error" $'ERROR state 7\nCLOSED' -- certs 7 1 expect-close
says "a second HELLO is a state error" $'ACK '"$(ctl quota get $U3 --json | jq -r .vm)"$'\nERROR state 0\nCLOSED' -- \
	hello $U3 a hello-v 1 $U3 b expect-close
says "DONE for a request never allowed is refused" $'ACK '"$(ctl quota get $U3 --json | jq -r .vm)"$'\nERROR unknown-request 99\nCLOSED' -- \
	hello $U3 a done 99 expect-close
says "a request id going backwards is refused" $'ACK '"$(ctl quota get $U3 --json | jq -r .vm)"$'\nALLOW 5 '"$(ctl status --json | jq -r '.chain.table_bytes')"$'\nERROR state 5\nCLOSED' -- \
	hello $U3 a certs 5 "$PAGES" done 5 certs-nowait 5 1 expect-close
says "a connection that never says HELLO is closed after hello_timeout" $'ERROR state 0\nCLOSED' -- \
	expect-close
check "malformed messages are counted" wait_for \
	sh -c "[ \$(curl -sf http://$SIMENV_METRICS/metrics | awk '\$1 == \"snp_attestd_vmm_refused_total{reason=\\\"malformed\\\"}\" { print \$2 }') -ge $((M0 + 3)) ]"
check "version, state, unknown-request and hello_timeout refusals are counted" wait_for \
	sh -c "curl -sf http://$SIMENV_METRICS/metrics > '$SIMENV_DIR/m.txt' && for r in version state unknown_request hello_timeout; do grep -Eq \"^snp_attestd_vmm_refused_total\\{reason=\\\"\$r\\\"\\} [1-9]\" '$SIMENV_DIR/m.txt' || exit 1; done"

# never-DONE: the VM holds its ALLOW; other VMs are served; the core frees the slot later.
bg_raw nodone 'ALLOW' hello 44444444-4444-4444-8444-444444444444 never-done certs 1 "$PAGES" hold
raw hello 55555555-5555-4555-8555-555555555555 other certs 1 "$PAGES" > "$SIMENV_DIR/other.out" 2>&1
check "while one VM holds the PSP slot without DONE, another VM gets a contract answer" \
	grep -Eqx 'BUSY 1|ALLOW 1 [0-9]+' "$SIMENV_DIR/other.out"
check "the never-DONE request is freed by the in-flight timeout" \
	wait_for sh -c "'$(simenv_bin snpctl)' status --json --socket '$SIMENV_SOCK' | jq -e '[.. | .stale_inflight_freed? // empty] | max >= 1'"
stop_bg
check "then the other VM is allowed again" \
	wait_for sh -c "'$RAW' '$S' hello 55555555-5555-4555-8555-555555555555 other certs 1 $PAGES done 1 | grep -Eqx 'ALLOW 1 [0-9]+'"

# unauthorised peers: neither root nor in [vmm] group
if command -v setpriv > /dev/null && [ "$(id -u)" = 0 ]; then
	D0=$(metric 'snp_attestd_vmm_refused_total{reason="denied"}')
	setpriv --reuid=65534 --regid=65534 --clear-groups "$RAW" "$S" hello $U3 intruder \
		expect-close > "$SIMENV_DIR/denied.out" 2>&1
	check "an unprivileged peer outside the group gets ERROR denied" \
		grep -qx 'ERROR denied 0' "$SIMENV_DIR/denied.out"
	denied_counted() { test "$(metric 'snp_attestd_vmm_refused_total{reason="denied"}')" -gt "$D0"; }
	check "the refusal is counted" wait_for denied_counted
	setpriv --reuid=65534 --regid=65534 --groups="$(getent group users | cut -d: -f3)" \
		"$RAW" "$S" hello 66666666-6666-4666-8666-666666666666 qemu-user > "$SIMENV_DIR/member.out" 2>&1
	check "an unprivileged member of the [vmm] group is served" grep -q '^ACK ' "$SIMENV_DIR/member.out"
else
	ok "unauthorised peers # SKIP needs root and setpriv"
fi

# connection flood: beyond max_clients, ERROR limit; the daemon keeps serving.
"$RAW" flood "$S" 40 > "$SIMENV_DIR/flood.out" 2>&1 &
BG+=($!)
check "a flood of 40 connections: those over max_clients 16 get ERROR limit" \
	wait_for sh -c "grep -Eq '^refused (2[4-9]|3[0-9]|40) open' '$SIMENV_DIR/flood.out'"
diag < "$SIMENV_DIR/flood.out"
stop_bg
check "after the flood a VM is served" \
	wait_for sh -c "'$RAW' '$S' hello $U1 vm-one certs 100 $PAGES done 100 | grep -Eqx 'ALLOW 100 [0-9]+'"
limit_counted() { test "$(metric 'snp_attestd_vmm_refused_total{reason="limit"}')" -ge 24; }
check "limit refusals are counted" wait_for limit_counted

# --- rotation waits for the DONE of an ALLOW (the table matches the signing key) ---
rm -f "$SIMENV_DIR/go"
bg_raw rot 'ALLOW' hello 77777777-7777-4777-8777-777777777777 rot-vm certs 1 "$PAGES" \
	wait-file "$SIMENV_DIR/go" done 1 hold
ctl cert rotate > "$SIMENV_DIR/rotate.out" 2>&1 &
ROT=$!
check "the rotation pauses admission while the ALLOW is outstanding" \
	wait_for sh -c "'$(simenv_bin snpctl)' status --json --socket '$SIMENV_SOCK' | jq -e '.broker.paused == true'"
still=no
kill -0 "$ROT" 2>/dev/null && still=yes
says "a new VM gets BUSY while the rotation drains" \
	"ACK $(ctl quota get 88888888-8888-4888-8888-888888888888 --json | jq -r .vm)"$'\nBUSY 1' -- \
	hello 88888888-8888-4888-8888-888888888888 waiter certs 1 "$PAGES"
touch "$SIMENV_DIR/go"
wait "$ROT"
rrc=$?
diag < "$SIMENV_DIR/rotate.out"
if [ "$still" = yes ]; then
	check "the rotation finished only after the DONE (or gave up: drain timeout)" \
		sh -c "[ $rrc = 0 ] || grep -q 'in flight after' '$SIMENV_DIR/rotate.out'"
else
	check "the rotation did not finish before the DONE unless it gave up draining" \
		grep -q 'in flight after' "$SIMENV_DIR/rotate.out"
fi
stop_bg
check "admission resumes after the rotation" \
	wait_for sh -c "'$RAW' '$S' hello 88888888-8888-4888-8888-888888888888 waiter certs 1 $PAGES done 1 | grep -Eqx 'ALLOW 1 [0-9]+'"

# --- a VMM program built against only the installed header and pkg-config file ---
DEST=$SIMENV_DIR/dest
check "meson install into a DESTDIR" \
	meson install -C "$SNP_BUILD_ROOT" --no-rebuild --quiet --destdir "$DEST" --tags runtime,devel
PC=$(find "$DEST" -name libsnpattest.pc | head -1)
SO=$(find "$DEST" -name 'libsnpattest.so.1' | head -1)
SAN=
nm -D --undefined-only "$SO" 2>/dev/null | grep -q -E '__(asan|ubsan)_' && SAN="-fsanitize=address,undefined"
cat > "$SIMENV_DIR/vmm.c" << 'EOF'
#include <errno.h>
#include <stdio.h>
#include <snpattest.h>

int main(int argc, char **argv)
{
	static unsigned char buf[SNPATTEST_MAX_PAGES * 4096];
	static const unsigned char uuid[16] = { 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x49, 0x99,
						0x89, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99 };
	struct snpattest *h;
	uint64_t npages = 0;
	int first, second, ok;

	if (argc != 2 || snpattest_open(argv[1], uuid, "installed-vmm", &h) < 0)
		return 2;
	snpattest_set_certs_file(h, NULL);
	first = snpattest_request_certs(h, buf, &npages, 5000);
	second = snpattest_request_certs(h, buf, &npages, 5000);
	printf("first=%d npages=%llu second=%d source=%d\n", first, (unsigned long long)npages,
	       second, (int)snpattest_last_source(h));
	ok = first == ENOSPC && second == 0 && snpattest_last_source(h) == SNPATTEST_SOURCE_DAEMON;
	snpattest_done(h);
	snpattest_close(h);
	return ok ? 0 : 1;
}
EOF
check "a VMM program compiles with only the installed header and pkg-config file" \
	env PKG_CONFIG_PATH="$(dirname "$PC")" PKG_CONFIG_SYSROOT_DIR="$DEST" sh -c \
	"cc -std=c11 -Wall -Werror $SAN -o '$SIMENV_DIR/vmm' '$SIMENV_DIR/vmm.c' \$(pkg-config --cflags --libs libsnpattest)"
LD_LIBRARY_PATH=$(dirname "$SO") "$SIMENV_DIR/vmm" "$S" > "$SIMENV_DIR/vmm.out" 2>&1
vrc=$?
diag < "$SIMENV_DIR/vmm.out"
check "it talks to the daemon: ENOSPC with the page count, then ALLOW from the daemon" \
	sh -c "[ $vrc = 0 ] && grep -qx 'first=$(python3 -c 'import errno; print(errno.ENOSPC)') npages=$PAGES second=0 source=1' '$SIMENV_DIR/vmm.out'"
check "the daemon is still running" kill -0 "$SIMENV_DAEMON_PID"
check "no request is left in flight" \
	wait_for sh -c "'$(simenv_bin snpctl)' status --json --socket '$SIMENV_SOCK' | jq -e '.broker.inflight == 0'"

# --- socket activation: the VMM socket systemd passes with the name "vmm" ---
simenv_stop_daemon
check "daemon stops cleanly at the end" test "${SIMENV_DAEMON_RC:-1}" = 0
ACT=$SIMENV_DIR/activated-vmm.sock
env -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES systemd-socket-activate --seqpacket -l "$ACT" \
	--fdname=vmm "$(simenv_bin snp-attestd)" --config "$SIMENV_CONF" --foreground \
	>> "$SIMENV_DIR/daemon-activated.log" 2>&1 &
SIMENV_DAEMON_PID=$!
SIMENV_PIDS+=($!)
check "systemd-socket-activate listens" wait_for test -S "$ACT"
# systemd-socket-activate starts the daemon on the first connection: that VMM waits in the
# backlog and is then served, as with the socket unit while the service (re)starts.
check "the first VMM on the activated socket starts the daemon and is served" \
	sh -c "'$RAW' '$ACT' hello $U1 vm-one certs 1 $PAGES done 1 | grep -Eqx 'ALLOW 1 [0-9]+'"
check "snpctl status: the VMM socket came from systemd (path $ACT)" \
	wait_for sh -c "'$(simenv_bin snpctl)' status --json --socket '$SIMENV_SOCK' | jq -e '.vmm.activated and .vmm.path == \"$ACT\"'"
check "the configured path is not bound when systemd passes the socket" test ! -e "$S"
