#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGKILL of the daemon under load, then a restart: the simulated kernel answers BUSY while no
# broker is registered, the new daemon re-registers, replays the VMs (VM_DUMP with in-flight
# requests) and no guest loses its key.
. "$(dirname "$0")/lib.sh"

check "daemon starts" it_platform
simenv_kvmsim --vms 32 --rate 5 --duration 14 --wait-broker 10 --json \
	> "$SIMENV_DIR/restart.json" &
KVM=$!
sleep 3
kill -KILL "$SIMENV_DAEMON_PID"
wait "$SIMENV_DAEMON_PID" 2>/dev/null
SIMENV_DAEMON_PID=
ok "daemon killed with SIGKILL under load"
sleep 2
check "daemon restarts" simenv_start_daemon
sleep 3
check "the restarted daemon registered again" grep -q "Registered as the SNP attestation broker" \
	"$SIMENV_DIR/daemon.log"
wait "$KVM"
rc=$?
F=$SIMENV_DIR/restart.json
jq -c '.totals' "$F" | diag
check "exit 0: no wipes, no verification failures" test "$rc" = 0
check "zero VMPCK wipes" jqt "$F" '.totals.vmpck_wipes == 0'
check "BUSY answers while no broker was registered" jqt "$F" '.totals.busy > 0'
check "requests completed after the restart" jqt "$F" '.totals.completed > 32'
