#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, hostile VMM clients: while an upstream-mode fleet runs, other clients of the
# VMM socket send garbage, speak another version, never say HELLO, take an ALLOW and never send
# DONE, flood the socket with connections and connect as an unauthorised user. Each is refused
# and counted; the fleet's guests only ever see ALLOW, BUSY or ENOSPC: zero wipes, zero
# verification failures.
. "$(dirname "$0")/upstream-lib.sh"

RAW=$SNP_BUILD_ROOT/tests/integration/vmm-raw
DUR=$(faults_pick 20 180)
VMS=$(faults_pick 32 128)
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ * 17) % 20000))
chmod 755 "$SIMENV_DIR"
check "daemon starts (max_clients 128, hello_timeout 1s)" \
	up_platform "[vmm]" "max_clients = 128" "hello_timeout = 1s"
S=$SIMENV_VMM_SOCK
up_kvmsim_run up-hostile "$DUR" --vms "$VMS" --rate 2 --duration "$DUR" &
KVM=$!
HOLD=()
rounds=0
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt $((DUR - 3)) ] && kill -0 "$KVM" 2> /dev/null; do
	rounds=$((rounds + 1))
	"$RAW" "$S" hex deadbeef expect-close > /dev/null 2>&1
	"$RAW" "$S" hello-v 9 12345678-1234-4234-8234-123456789abc bad-version expect-close \
		> /dev/null 2>&1
	"$RAW" "$S" certs 1 4 expect-close > /dev/null 2>&1
	"$RAW" "$S" expect-close > /dev/null 2>&1 &
	HOLD+=($!)
	# Takes the PSP slot with an ALLOW and never sends DONE (freed by the in-flight timeout).
	"$RAW" "$S" hello "$(printf 'dead0000-0000-4000-8000-%012d' "$rounds")" never-done \
		certs 1 4 hold > /dev/null 2>&1 &
	HOLD+=($!)
	"$RAW" flood "$S" 150 > "$SIMENV_DIR/flood.out" 2>&1 &
	HOLD+=($!)
	if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$RAW" "$S" \
			hello 12345678-1234-4234-8234-123456789abd intruder expect-close > /dev/null 2>&1
	fi
	sleep 2
	for p in "${HOLD[@]}"; do kill "$p" 2> /dev/null; wait "$p" 2> /dev/null; done
	HOLD=()
done
wait "$KVM"
up_collect up-hostile
faults_extra hostile_rounds "$rounds"
for r in malformed version state hello_timeout limit denied; do
	n=$(faults_metric "^snp_attestd_vmm_refused_total\\{reason=\"$r\"\\}")
	faults_extra "refused_$r" "${n:-0}"
	if [ "$r" = denied ] && [ "$(id -u)" != 0 ]; then continue; fi
	check "hostile clients refused and counted: $r ($n)" test "${n:-0}" -gt 0
done
check "hostile rounds ran during the load" test "$rounds" -ge 2
faults_alive "at the end"
faults_stop_daemon
