#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, KDS: the daemon takes its chain from (simulated) KDS and a fleet runs while
# KDS cycles through outage (nothing listening), a 429 storm (with and without Retry-After,
# plus 500, garbage and truncated bodies), a hang (every answer later than kds_timeout) and
# health. Throughout, an operator asks for a revalidation (snpctl cert fetch) and for a TCB
# change to a TCB one SPL lower and back (snpctl tcb set): refusals are fine, guests must
# keep being served from the cached chain with zero wipes and zero verification failures.
. "$(dirname "$0")/lib.sh"

PHASE=$(faults_pick 4 15)
CYCLES=$(faults_pick 1 3)
DUR=$((PHASE * 4 * CYCLES + 4))
VMS=$(faults_pick 16 64)
simenv_init
check "snp-kdssim starts" simenv_start_kds
PORT=$(cat "$SIMENV_DIR/kds.port")
simenv_write_conf "[certs]" "kds_timeout = 2s"
sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
check "daemon starts with KDS as the chain source" simenv_start_daemon
T0=$(simenv_state_field reported_tcb)
T1=$(printf '%016x' $((0x$T0 - (1 << 48))))

kds_up() { # extra snp-kdssim args
	"$(simenv_bin snp-kdssim)" --state "$SIMENV_STATE" --listen "127.0.0.1:$PORT" \
		--log "$SIMENV_DIR/kds-phases.log" --seed "$RANDOM" "$@" \
		>> "$SIMENV_DIR/kdssim-phases.out" 2>&1 &
	SIMENV_KDS_PID=$!
	SIMENV_PIDS+=($!)
	local i
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null "http://127.0.0.1:$PORT/_sim/stats" && return 0
		sleep 0.1
	done
	return 1
}
kds_down() {
	[ -n "${SIMENV_KDS_PID:-}" ] || return 0
	curl -s "http://127.0.0.1:$PORT/_sim/stats" > "$SIMENV_DIR/stats.json" &&
		upstream=$((upstream + $(jq '.total' "$SIMENV_DIR/stats.json")))
	kill "$SIMENV_KDS_PID" 2> /dev/null
	wait "$SIMENV_KDS_PID" 2> /dev/null
	SIMENV_KDS_PID=
}

upstream=0
declare -A refused=() succeeded=() reason=()
faults_kvmsim_run kds "$DUR" --vms "$VMS" --rate 2 --duration "$DUR" --wait-broker 10 &
KVM=$!
sleep 2
target=$T1
for ((c = 0; c < CYCLES; c++)); do
	for phase in outage storm hang healthy; do
		kds_down
		case $phase in
		outage) ;;
		storm) kds_up --fault 429:p=0.4 --fault 429-retry-after=3:p=0.2 --fault 500:p=0.1 \
			--fault garbage:p=0.1 --fault truncate:p=0.1 ;;
		hang) kds_up --fault delay=5s ;;
		healthy) kds_up ;;
		esac
		end=$(($(date +%s) + PHASE))
		while [ "$(date +%s)" -lt "$end" ]; do
			if simenv_snpctl cert fetch > "$SIMENV_DIR/op.out" 2>&1; then
				succeeded[fetch-$phase]=$((${succeeded[fetch-$phase]:-0} + 1))
			else
				refused[fetch-$phase]=$((${refused[fetch-$phase]:-0} + 1))
			fi
			if simenv_snpctl tcb set "$target" > "$SIMENV_DIR/op.out" 2>&1; then
				succeeded[tcb-$phase]=$((${succeeded[tcb-$phase]:-0} + 1))
				[ "$target" = "$T1" ] && target=$T0 || target=$T1
			else
				refused[tcb-$phase]=$((${refused[tcb-$phase]:-0} + 1))
				grep -q . "$SIMENV_DIR/op.out" || echo "(no reason printed)" > "$SIMENV_DIR/op.out"
				[ -s "$SIMENV_DIR/noreason" ] || sed 's/^/# refused: /' "$SIMENV_DIR/op.out" |
					head -2 > "$SIMENV_DIR/noreason"
				# The last reason per phase, for the result.
				reason[$phase]=$(head -1 "$SIMENV_DIR/op.out" | cut -c1-160)
			fi
			sleep 0.5
		done
	done
done
kds_down
wait "$KVM"
faults_kvmsim_collect kds
ops=$(for k in "${!succeeded[@]}"; do printf '"ok-%s": %s,' "$k" "${succeeded[$k]}"; done
	for k in "${!refused[@]}"; do printf '"refused-%s": %s,' "$k" "${refused[$k]}"; done)
faults_extra operations "{${ops%,}}"
faults_extra kds_upstream_requests "$upstream"
faults_extra tcb_refusal_reasons "$(for p in "${!reason[@]}"; do
	jq -nc --arg k "$p" --arg v "${reason[$p]}" '{($k): $v}'; done | jq -sc 'add // {}')"
echo "# operations: {${ops%,}}; upstream KDS requests $upstream"
cat "$SIMENV_DIR/noreason" 2> /dev/null
# Each phase on its own: both operations (a revalidation and a TCB change) were tried in it,
# whatever their outcome.
attempts() { # OP PHASE: how often OP was tried in PHASE (accepted + refused)
	echo $((${succeeded[$1-$2]:-0} + ${refused[$1-$2]:-0}))
}
for phase in outage storm hang healthy; do
	d="operations were attempted in the $phase phase"
	d+=" (fetch $(attempts fetch $phase), tcb set $(attempts tcb $phase))"
	check "$d" test "$(attempts fetch $phase)" -gt 0 -a "$(attempts tcb $phase)" -gt 0
done
check "guests verified reports during the faults" jqt "$SIMENV_DIR/kds.json" \
	'.totals.reports_verified > 20'
check "refusals printed a reason" \
	eval '! grep -q "no reason printed" "$SIMENV_DIR/noreason" 2>/dev/null'
faults_alive "at the end"
faults_stop_daemon
