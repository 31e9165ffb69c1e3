#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, failopen: the daemon is stopped for 120 s under load, twice the guest
# driver's 60 s BUSY limit, then started again. The (simulated) kernel answers BUSY for its
# fail-open window (10 s, the kernel's broker_wait_ms default), then serves the guests itself,
# unadmitted and with an empty certificate table, until the restarted daemon registers. No
# guest may lose its key, no report may fail to verify, requests must have been served without
# the broker, and the restarted daemon must serve again. Real guest timings (no time scale):
# the point is the driver's real 60 s limit. About 150 s; CI runs it in the normal build only.
. "$(dirname "$0")/lib.sh"

VMS=$(faults_pick 16 64)
DOWN=120
DUR=$((10 + DOWN + 20))
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ * 13) % 20000))
registered() { # bounded: 60 s
	local i
	for ((i = 0; i < 600; i++)); do
		simenv_snpctl status --json 2> /dev/null | jq -e '.broker.registered' > /dev/null &&
			return 0
		sleep 0.1
	done
	return 1
}

check "daemon starts" it_platform
faults_kvmsim_run failopen "$DUR" --vms "$VMS" --rate 1 --duration "$DUR" --wait-broker 10 &
KVM=$!
check "the daemon registers with the kernel" registered
sleep 10
faults_alive "before the stop"
simenv_stop_daemon TERM
check "the daemon stops on SIGTERM with status 0" test "${SIMENV_DAEMON_RC:-1}" = 0
echo "# daemon down for ${DOWN}s under load ($VMS VMs)"
sleep "$DOWN"
if simenv_start_daemon; then
	check "the restarted daemon registers again" registered
else
	F_CRASH=$((F_CRASH + 1))
	faults_note "daemon did not restart after ${DOWN}s down"
fi
# Served by the restarted daemon: its own counters (they start at zero with it).
sleep 5
simenv_snpctl status --json > "$SIMENV_DIR/status-after.json" 2>&1
wait "$KVM"
faults_kvmsim_collect failopen
F=$SIMENV_DIR/failopen.json
faults_extra vms "$VMS"
faults_extra down_s "$DOWN"
faults_extra failopen_serves "$(jq '.failopen.serves // 0' "$F" 2> /dev/null || echo 0)"
faults_extra max_busy_streak_s "$(jq '[.per_vm[] | .max_busy_streak_s] | max // 0' "$F" \
	2> /dev/null || echo 0)"
check "the kernel failed open: requests served without the broker (failopen.serves > 0)" \
	jqt "$F" '.failopen.serves > 0 and .failopen.periods >= 1 and .failopen.window_ms == 10000'
check "the kernel saw both registrations" jqt "$F" '.kernel.registrations >= 2'
check "no VM saw BUSY for as long as the driver's limit (longest streak < 60 s)" \
	jqt "$F" '[.per_vm[] | .max_busy_streak_s] | max < 60'
check "the restarted daemon admits requests again (its own ALLOW count > 0)" \
	jqt "$SIMENV_DIR/status-after.json" '.stats.verdicts.allow > 0'
faults_alive "at the end"
faults_stop_daemon
