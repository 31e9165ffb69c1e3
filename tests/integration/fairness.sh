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
	--json > "$SIMENV_DIR/fair.json" &
kpid=$!
# While the fleet runs, read each quiet VM's BUSY answers by reason from the daemon (the VMs are
# removed when snp-kvmsim ends); the counters only grow, so the largest value seen counts.
Q=$SIMENV_DIR/quiet-quota-busy
: > "$Q"
while kill -0 "$kpid" 2> /dev/null; do
	for vm in $(seq 2 16); do
		simenv_snpctl vm show "$vm" --json 2> /dev/null |
			jq -r --arg vm "$vm" '"\($vm) \(.vm_info.busy_by_reason.quota // 0)"' >> "$Q" 2> /dev/null
	done
	sleep 0.5
done
wait "$kpid"
rc=$?
F=$SIMENV_DIR/fair.json
jq -c '{totals, noisy: .per_vm[0], quiet_p99: [.per_vm[1:][] | .p99_ms] | max}' "$F" | diag
check "no wipes, no verification failures (exit 0)" test "$rc" = 0
check "the flooding VM got BUSY answers" jqt "$F" '.per_vm[0].busy > 0'
# Held to its quota: at most burst + rate * duration (+1 for timer rounding) completions.
check "the flooding VM is held to its quota" \
	jqt "$F" ".per_vm[0].completed <= $BURST + $RATE * ($DUR + 1) + 1"
check "every quiet VM completed requests" jqt "$F" 'all(.per_vm[1:][]; .completed >= 3)'
# The quiet VMs ask once a second against a quota of $RATE/s: none of them may ever be refused for
# quota. (A BUSY for overload is allowed: on a starved machine the admission wait can exceed
# max_queue_wait; latency is the benchmark's to measure, not this test's.)
echo "# quiet VMs' quota BUSY, as the daemon counted them: $(sort -u "$Q" | awk '$2 > 0' | tr '\n' ' ')"
check "the daemon was read for every quiet VM while the fleet ran" \
	test "$(awk '{print $1}' "$Q" | sort -u | wc -l)" = 15
check "no quiet VM was answered BUSY for quota" test "$(awk '$2 > 0' "$Q" | wc -l)" = 0
