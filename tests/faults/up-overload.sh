#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, upstream overload: many VMs requesting back to back on Linux 7.0's KVM model.
# The daemon admits the extended report requests (one serial PSP, shared with the requests
# that bypass it); the rest wait for the PSP inside KVM. The daemon's bounded-BUSY rule must
# keep every guest under its limit, and the VMMs must only ever pass 0, ENOSPC or EAGAIN on.
. "$(dirname "$0")/upstream-lib.sh"

VMS=$(faults_pick 200 1000)
faults_scaled_timings
DUR=$(faults_pick 32 180)
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ * 13) % 20000))
check "daemon starts (busy_budget ${budget_ms}ms, guest_retry_interval ${retry_ms}ms)" \
	up_platform "${SCALED_CONF[@]}"
up_kvmsim_run up-overload "$DUR" --vms "$VMS" --rate 0 --duration "$DUR" --time-scale "$SCALE"
up_collect up-overload
F=$SIMENV_DIR/up-overload.json
faults_alive "after the overload run"
if [ -s "$F" ]; then
	faults_extra vms "$VMS"
	check "the daemon answered BUSY (the PSP was overloaded)" jqt "$F" '.upstream.daemon_busy > 0'
	check "every VM completed a request" jqt "$F" 'all(.per_vm[]; .completed > 0)'
	check "the daemon decided the extended report requests (no VMM fell back)" \
		jqt "$F" '.upstream.from_file + .upstream.empty_table == 0'
fi
faults_stop_daemon
