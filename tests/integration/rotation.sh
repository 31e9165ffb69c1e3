#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rotation under load with the real daemon and snpctl: 64 simulated VMs verify every report
# against the table they are given while snpctl tcb set / cert rotate and SIGHUP loop. Zero
# verification failures, zero VMPCK wipes; the VMM certificate file ends on the final TCB.
. "$(dirname "$0")/lib.sh"

BLOB=$SIMENV_DIR/vmm-certs.blob
check "daemon starts on the simulated platform with a VMM certificate file" \
	it_platform "[certs]" "vmm_certs_file = $BLOB" "tcb_poll_interval = 500ms"
ctl() { "$(simenv_bin snpctl)" "$@" --socket "$SIMENV_SOCK"; }
reported_is() { # TCB: tcb show says so
	ctl tcb show --json > "$SIMENV_DIR/tcb.json" && jqt "$SIMENV_DIR/tcb.json" ".reported_tcb.raw == \"0x$1\""
}
T0=$(simenv_state_field reported_tcb)
# One SPL lower (snp byte), fetched like an operator would and stored under its TCB's name.
T1=$(printf '%016x' $((0x$T0 - (1 << 48))))
fetch_t1() {
	curl -sSf "$("$(simenv_bin snpctl)" kds-url --product "$(simenv_state_field product)" \
		--hwid "$(simenv_state_field chip_id)" --tcb "$T1" --base "$SIMENV_KDS_URL")" \
		-o "$SIMENV_DIR/certs/vcek-$T1.der"
}
check "VCEK for the lower TCB fetched into the certificate directory" fetch_t1
check "tcb show names the reported TCB" reported_is "$T0"
check "tcb set to a TCB without a VCEK is refused" \
	eval "! ctl tcb set 0x$(printf '%016x' $((0x$T0 - (2 << 48))))"
check "nothing changed after the refusal" test "$(simenv_state_field reported_tcb)" = "$T0"

simenv_kvmsim --vms 64 --duration 10 --rate 2 --wait-broker 10 --json > "$SIMENV_DIR/load.json" &
KPID=$!
it_rotate_while "$KPID" "$T0" "$T1"
ops=$ROT_OPS fails=$ROT_FAILS
wait "$KPID"
rc=$?
F=$SIMENV_DIR/load.json
echo "$ops operations" | diag
jq -c '.totals' "$F" | diag
check "operations ran during the load" test "$ops" -ge 8
check "every snpctl operation succeeded" test "$fails" = 0
check "snp-kvmsim exits 0 (no wipe, no verification failure)" test "$rc" = 0
check "zero VMPCK wipes" jqt "$F" '.totals.vmpck_wipes == 0'
check "zero verification failures" jqt "$F" '.totals.verify_failures == 0'
check "reports were verified" jqt "$F" '.totals.reports_verified > 0'
check "settled on the last TCB set" reported_is "$T0"
"$(simenv_bin snpctl)" certs show "$BLOB" --json > "$SIMENV_DIR/blob.json" 2>&1
check "VMM certificate file is a table with a VCEK" grep -q VCEK "$SIMENV_DIR/blob.json"
check "daemon still running" kill -0 "$SIMENV_DAEMON_PID"
simenv_stop_daemon TERM
check "SIGTERM drains and exits 0" test "${SIMENV_DAEMON_RC:-1}" = 0
