#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, overload: 1,000 VMs requesting back to back (--rate 0) against the one
# serial PSP (8 ms per report, about 125 reports/s). The guests behave like the Linux driver
# with its timings scaled by FAULTS_SCALE (retry 2 s x scale, give up and wipe after
# 60 s x scale); the daemon's busy_budget and guest_retry_interval are scaled to match.
# Every VM waits about 1,000 x 8 ms = 8 s (more in a sanitizer build) between admissions, so
# the guests' limit (30 s at the default scale 0.5) is what the daemon must keep them under.
. "$(dirname "$0")/lib.sh"

VMS=${FAULTS_VMS:-1000}
# Long: the driver's real timings and the daemon's defaults (busy_budget 20 s, retry 2 s).
faults_scaled_timings
# Short: longer than one guest limit (60 s x scale), so a starved VM would be wiped.
DUR=$(faults_pick 32 180)
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ * 11) % 20000))
check "daemon starts (busy_budget ${budget_ms}ms, guest_retry_interval ${retry_ms}ms)" \
	it_platform "${SCALED_CONF[@]}"
faults_kvmsim_run overload "$DUR" --vms "$VMS" --rate 0 --duration "$DUR" \
	--time-scale "$SCALE" --wait-broker 10 &
KVM=$!
# The daemon's own view, sampled just before the fleet ends (VMs leave with their counters).
sleep $((DUR - 1))
curl -sf "http://$SIMENV_METRICS/metrics" > "$SIMENV_DIR/metrics.txt"
wait "$KVM"
faults_kvmsim_collect overload
forced=$(awk '$1 ~ /^snp_attestd_forced_admissions_total/ { s += $NF } END { printf "%d", s }' \
	"$SIMENV_DIR/metrics.txt")
faults_extra daemon_forced_admissions "${forced:-0}"
F=$SIMENV_DIR/overload.json
faults_alive "after the overload run"
if [ -s "$F" ]; then
	faults_extra vms "$VMS"
	faults_extra time_scale "$SCALE"
	faults_extra max_busy_streak_s "$(jq '[.per_vm[] | .max_busy_streak_s] | max' "$F")"
	faults_extra vms_completing "$(jq '[.per_vm[] | select(.completed > 0)] | length' "$F")"
	faults_extra reports_verified "$(jq '.totals.reports_verified' "$F")"
	check "the PSP was overloaded (BUSY answers seen)" jqt "$F" '.totals.busy > 1000'
	check "every VM completed a request" jqt "$F" 'all(.per_vm[]; .completed > 0)'
fi
faults_stop_daemon
