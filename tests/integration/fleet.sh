#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 64 simulated VMs for a fixed time against the daemon: every request answered, zero VMPCK
# wipes, zero report verification failures, every report's chain from the daemon's table.
. "$(dirname "$0")/lib.sh"

check "daemon starts on the simulated platform" it_platform
simenv_kvmsim --vms 64 --duration 8 --rate 2 --wait-broker 10 --json > "$SIMENV_DIR/fleet.json"
rc=$?
check "snp-kvmsim exits 0 (no wipe, no verification failure)" test "$rc" = 0
F=$SIMENV_DIR/fleet.json
jq -c '{vms, totals, latency_ms}' "$F" | diag
check "64 VMs ran" jqt "$F" '.vms == 64'
check "requests were made" jqt "$F" '.totals.requests >= 64'
check "every request answered (completed or still retrying BUSY at the end)" \
	jqt "$F" '.totals.completed + (.totals.abandoned // 0) >= .totals.requests - .vms'
check "zero VMPCK wipes" jqt "$F" '.totals.vmpck_wipes == 0'
check "zero verification failures" jqt "$F" '.totals.verify_failures == 0'
check "zero firmware errors" jqt "$F" '.totals.fw_errors == 0'
check "reports were verified against the served chain" jqt "$F" '.totals.reports_verified > 0'
check "every VM completed requests" jqt "$F" 'all(.per_vm[]; .completed > 0)'
check "daemon still running" kill -0 "$SIMENV_DAEMON_PID"
simenv_stop_daemon TERM
check "SIGTERM drains and exits 0" test "${SIMENV_DAEMON_RC:-1}" = 0
