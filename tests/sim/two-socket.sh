#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The daemon on a simulated 2-socket host, whose GET_ID2 answers 128 bytes (facts §9.4): it
# starts, keeps socket 0's chip id (the one in the reports and the VCEK), and serves a small
# fleet with zero wipes and verified reports. Before the length query this start failed.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

# The platform file goes in after the state is made and before the daemon starts.
eval "simenv_start_daemon_plain$(declare -f simenv_start_daemon | sed 1s/^simenv_start_daemon//)"
simenv_start_daemon() {
	printf '# a 2-socket host\nsockets = 2\n' > "$SIMENV_STATE/platform"
	simenv_start_daemon_plain
}

check "daemon starts on a simulated 2-socket host" it_platform
status_json() { simenv_snpctl status --json > "$SIMENV_DIR/status.json"; }
check "snpctl status answers" status_json
chip=$(simenv_state_field chip_id)
# (jq -e on an empty file is true: the id must be read out and compared.)
check "status shows socket 0's chip id (the first 64 of the 128 bytes)" test \
	"$(jq -r '.platform.chip_id' "$SIMENV_DIR/status.json" 2>/dev/null)" = "$chip" -a ${#chip} = 128
simenv_kvmsim --vms 4 --requests 4 --time-scale 0.01 --wait-broker 10 --json \
	> "$SIMENV_DIR/fleet.json"
rc=$?
check "snp-kvmsim exits 0" test "$rc" = 0
check "every request completed, zero wipes, reports verified" jqt "$SIMENV_DIR/fleet.json" \
	'.totals.completed == 16 and .totals.vmpck_wipes == 0 and .totals.verify_failures == 0
	 and .totals.reports_verified > 0'
simenv_stop_daemon TERM
check "SIGTERM exits 0" test "${SIMENV_DAEMON_RC:-1}" = 0
