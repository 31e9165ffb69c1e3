#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, upstream rotation: an upstream-mode fleet verifies every report against the
# table its VMM wrote (from the daemon's ALLOW, or the certificate file) while snpctl tcb set /
# cert rotate and SIGHUP loop. The table of an ALLOW must match the signing key until its DONE:
# zero verification failures, zero wipes.
. "$(dirname "$0")/upstream-lib.sh"

DUR=$(faults_pick 15 180)
VMS=$(faults_pick 32 64)
check "daemon starts" up_platform "tcb_poll_interval = 500ms"
ctl() { "$(simenv_bin snpctl)" "$@" --socket "$SIMENV_SOCK"; }
T0=$(simenv_state_field reported_tcb)
T1=$(printf '%016x' $((0x$T0 - (1 << 48))))
check "VCEK for the lower TCB fetched into the certificate directory" \
	curl -sSf "$("$(simenv_bin snpctl)" kds-url --product "$(simenv_state_field product)" \
		--hwid "$(simenv_state_field chip_id)" --tcb "$T1" --base "$SIMENV_KDS_URL")" \
		-o "$SIMENV_DIR/certs/vcek-$T1.der"
up_kvmsim_run up-rotation "$DUR" --vms "$VMS" --rate 2 --duration "$DUR" &
KVM=$!
ops=0 fails=0
while kill -0 "$KVM" 2> /dev/null; do
	for op in "tcb set $T1" "tcb set $T0" "cert rotate" HUP; do
		if [ "$op" = HUP ]; then
			kill -HUP "$SIMENV_DAEMON_PID"
		elif ! ctl $op > "$SIMENV_DIR/op.out" 2>&1; then
			# A drain that did not finish in time is allowed (nothing changes).
			grep -q 'in flight after' "$SIMENV_DIR/op.out" || fails=$((fails + 1))
			diag < "$SIMENV_DIR/op.out"
		fi
		ops=$((ops + 1))
		sleep 0.2
	done
done
wait "$KVM"
up_collect up-rotation
faults_extra operations "$ops"
check "operations ran during the load" test "$ops" -ge 8
check "every snpctl operation succeeded (or gave up draining)" test "$fails" = 0
check "reports were verified" jqt "$SIMENV_DIR/up-rotation.json" '.totals.reports_verified > 0'
check "the daemon handed tables (ALLOW) during the rotations" \
	jqt "$SIMENV_DIR/up-rotation.json" '.upstream.admitted_by_daemon > 0'
faults_alive "at the end"
faults_stop_daemon
