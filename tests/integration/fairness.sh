#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A flooding VM is held to its quota while the quiet VMs keep their latency (design §5).
. "$(dirname "$0")/lib.sh"

RATE=5
BURST=5
DUR=8
check "daemon starts with quota rate $RATE/s burst $BURST" it_platform \
	"[quota]" "rate = $RATE" "burst = $BURST"
# VM 1 floods at 200 requests/s; 15 quiet VMs ask once a second.
simenv_kvmsim --vms 16 --noisy 1 --noisy-rate 200 --rate 1 --duration $DUR --wait-broker 10 \
	--json > "$SIMENV_DIR/fair.json"
rc=$?
F=$SIMENV_DIR/fair.json
jq -c '{totals, noisy: .per_vm[0], quiet_p99: [.per_vm[1:][] | .p99_ms] | max}' "$F" | diag
check "no wipes, no verification failures (exit 0)" test "$rc" = 0
check "the flooding VM got BUSY answers" jqt "$F" '.per_vm[0].busy > 0'
# Held to its quota: at most burst + rate * duration (+1 for timer rounding) completions.
check "the flooding VM is held to its quota" \
	jqt "$F" ".per_vm[0].completed <= $BURST + $RATE * ($DUR + 1) + 1"
check "every quiet VM completed requests" jqt "$F" 'all(.per_vm[1:][]; .completed >= 3)'
check "no quiet VM was answered BUSY for quota" jqt "$F" 'all(.per_vm[1:][]; .busy == 0)'
# One PSP slot is ~8 ms (simulated report): a quiet VM's p99 stays within a few slots.
check "quiet VMs' p99 latency stays within 100 ms" jqt "$F" '[.per_vm[1:][] | .p99_ms] | max < 100'
