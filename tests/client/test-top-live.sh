#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snpctl top against the real daemon on the simulated platform with snp-kvmsim guests, one of
# them noisy: frames without a terminal (--once, -n), VMs sorted by activity, BUSY reasons for
# the noisy VM; and, when tmux is installed, the live view in a terminal quitting on q.
# Prints TAP.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

SNPCTL=$(simenv_bin snpctl)
top_out=$SIMENV_DIR/top.out

check "daemon starts on the simulated platform" it_platform
simenv_kvmsim --vms 4 --noisy 1 --noisy-rate 40 --rate 1 --time-scale 0.05 --duration 60 \
	--wait-broker 10 \
	> "$SIMENV_DIR/kvmsim.out" 2>&1 &
kvm_pid=$!

# Readiness, not a time: the loop ends as soon as the four VMs are known.
vms_known() {
	for _ in $(seq 1 200); do
		[ "$(simenv_snpctl vm list --json 2>/dev/null | jq '.vms | length')" = 4 ] && return 0
		sleep 0.1
	done
	return 1
}
check "four guests registered" vms_known
# The noisy guest is the one with the most requests once BUSY answers appear.
noisy_busy() {
	for _ in $(seq 1 200); do
		simenv_snpctl vm list --json 2>/dev/null |
			jq -e '[.vms[] | select(.busy > 0)] | length > 0' > /dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "the noisy guest gets BUSY answers" noisy_busy
noisy=$(simenv_snpctl vm list --json | jq -r '.vms | max_by(.requests) | .vm')

simenv_snpctl top --once --interval 1 > "$top_out" 2> "$SIMENV_DIR/top.err"
check "top --once exits 0 without a terminal" test $? = 0
sed 's/^/# /' "$top_out"
check "header: daemon state" grep -Eq '^snp-attestd .* VMs 4 .*admission running +broker registered' "$top_out"
check "fleet line with a positive request rate" \
	grep -Eq '^fleet: [0-9.]*[1-9][0-9.]* req/s' "$top_out"
check "table heading" grep -q '^VM .*REQ/S .*BUSY/S .*QUOTA .*BUSY/S BY REASON' "$top_out"
rows=$(awk '/^VM /{t=1; next} t && /^[0-9]/' "$top_out")
check "one row per VM" test "$(wc -l <<< "$rows")" = 4
check "the noisy VM is first (sorted by requests/s)" test "$(head -n1 <<< "$rows" | awk '{print $1}')" = "$noisy"
first=$(head -n1 <<< "$rows")
check "noisy VM: BUSY per second above zero" awk '{exit !($4 > 0)}' <<< "$first"
check "noisy VM: BUSY by reason named" grep -Eq '[a-z-]+ [0-9]+\.[0-9]$' <<< "$first"
check "rows are in descending requests/s" \
	bash -c 'awk "{print \$2}" | sort -rn -c' <<< "$rows"
check "no terminal control codes without a terminal" bash -c "! grep -q $'\\033' '$top_out'"

simenv_snpctl top -n 2 --interval 0.2 > "$top_out" 2>&1
check "-n 2 prints two frames" test "$(grep -c '^snp-attestd ' "$top_out")" = 2

if command -v tmux > /dev/null; then
	tm="tmux -L snpctl2-top-$$"
	$tm new-session -d -x 160 -y 40 "$SNPCTL top --socket $SIMENV_SOCK --interval 0.2; echo TOP-EXIT=\$?; sleep 30"
	drawn() {
		for _ in $(seq 1 100); do
			$tm capture-pane -p | grep -q '(q to quit)' && return 0
			sleep 0.1
		done
		return 1
	}
	check "in a terminal: frames drawn" drawn
	check "in a terminal: all four VMs shown" \
		bash -c "$tm capture-pane -p | awk '/^VM /{t=1;next} t && /^[0-9]/' | wc -l | grep -qx 4"
	$tm send-keys q
	quit() {
		for _ in $(seq 1 100); do
			$tm capture-pane -p | grep -q 'TOP-EXIT=0' && return 0
			sleep 0.1
		done
		return 1
	}
	check "in a terminal: q quits with exit 0" quit
	$tm kill-server 2> /dev/null
else
	echo "# tmux not installed: the terminal checks are skipped"
fi

kill "$kvm_pid" 2> /dev/null
wait "$kvm_pid" 2> /dev/null
simenv_stop_daemon TERM
