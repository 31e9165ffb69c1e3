#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Malformed netlink messages from the (simulated) kernel are counted and never fatal; the
# fleet is served throughout.
. "$(dirname "$0")/lib.sh"

SIMENV_METRICS=127.0.0.1:$((20000 + $$ % 20000))
check "daemon starts (metrics on $SIMENV_METRICS)" it_platform
simenv_kvmsim --vms 8 --rate 4 --duration 6 --malformed 2000 --wait-broker 10 --json \
	> "$SIMENV_DIR/mal.json"
rc=$?
F=$SIMENV_DIR/mal.json
jq -c '.totals' "$F" | diag
check "exit 0: no wipes, no verification failures" test "$rc" = 0
check "the daemon survived" kill -0 "$SIMENV_DAEMON_PID"
curl -sf "http://$SIMENV_METRICS/metrics" > "$SIMENV_DIR/metrics.txt"
grep -E 'malformed' "$SIMENV_DIR/metrics.txt" | grep -v '^#' | diag
check "malformed messages were counted" \
	awk '/^snp_attestd_netlink.*malformed/ && $NF > 0 { found = 1 } END { exit !found }' \
	"$SIMENV_DIR/metrics.txt"
check "requests completed" jqt "$F" '.totals.completed >= 8'
