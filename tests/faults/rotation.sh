#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, rotation: a fleet verifies every report against the certificate table it is
# given while the operator loops over TCB changes (one SPL lower and back; both VCEKs are in
# the certificate directory), certificate rotations and configuration reloads (SIGHUP).
# Every guest must get the chain that signed its report, also in the middle of a change.
. "$(dirname "$0")/lib.sh"

DUR=$(faults_pick 15 180)
VMS=$(faults_pick 48 128)
BLOB=$SIMENV_DIR/vmm-certs.blob
check "daemon starts with a VMM certificate file" \
	it_platform "[certs]" "vmm_certs_file = $BLOB" "tcb_poll_interval = 500ms"
T0=$(simenv_state_field reported_tcb)
T1=$(printf '%016x' $((0x$T0 - (1 << 48))))
fetch_t1() {
	curl -sSf "$("$(simenv_bin snpctl)" kds-url --product "$(simenv_state_field product)" \
		--hwid "$(simenv_state_field chip_id)" --tcb "$T1" --base "$SIMENV_KDS_URL")" \
		-o "$SIMENV_DIR/certs/vcek-$T1.der"
}
check "VCEK for the lower TCB in the certificate directory" fetch_t1

faults_kvmsim_run rotation "$DUR" --vms "$VMS" --rate 2 --duration "$DUR" --wait-broker 10 &
KVM=$!
sleep 1
declare -A done_ops=() failed_ops=()
drains=0
while kill -0 "$KVM" 2> /dev/null; do
	for op in "tcb set $T1" "cert rotate" "tcb set $T0" HUP; do
		kill -0 "$KVM" 2> /dev/null || break
		name=${op%% *}
		if [ "$op" = HUP ]; then
			faults_alive "before SIGHUP" && kill -HUP "$SIMENV_DAEMON_PID"
		elif ! simenv_snpctl $op > "$SIMENV_DIR/op.out" 2>&1; then
			# A drain that did not finish in time changes nothing: allowed.
			if grep -q 'in flight after' "$SIMENV_DIR/op.out"; then
				drains=$((drains + 1))
			else
				failed_ops[$name]=$((${failed_ops[$name]:-0} + 1))
				diag < "$SIMENV_DIR/op.out"
			fi
			continue
		fi
		done_ops[$name]=$((${done_ops[$name]:-0} + 1))
		sleep 0.2
	done
done
wait "$KVM"
faults_kvmsim_collect rotation
ops=$(for k in "${!done_ops[@]}"; do printf '"%s": %s,' "$k" "${done_ops[$k]}"; done)
fails=$(for k in "${!failed_ops[@]}"; do printf '"%s": %s,' "$k" "${failed_ops[$k]}"; done)
faults_extra operations "{${ops%,}}"
faults_extra operations_failed "{${fails%,}}"
faults_extra drain_timeouts "$drains"
echo "# operations: {${ops%,}}; failed: {${fails%,}}; drain timeouts $drains"
check "TCB changes ran under load" test "${done_ops[tcb]:-0}" -ge 4
check "every operation succeeded (or timed out draining)" test "${#failed_ops[@]}" = 0
check "reports were verified" jqt "$SIMENV_DIR/rotation.json" '.totals.reports_verified > 0'
check "a last TCB change after the load succeeds" simenv_snpctl tcb set "$T0"
check "the platform ends on the last TCB set" test "$(simenv_state_field reported_tcb)" = "$T0"
faults_alive "at the end"
faults_stop_daemon
