#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A KDS fault storm (429 with and without Retry-After, 500, garbage, delays) while a fleet runs
# and an operator keeps asking for a TCB change whose VCEK is not cached: guests keep being
# served from the cached chain with zero wipes and zero verification failures, each refused
# change leaves the platform as it was, and the daemon sends no more upstream requests than its
# pacing allows (at most one per key per 10 s).
. "$(dirname "$0")/lib.sh"

STORM=24
simenv_init
check "snp-kdssim starts" simenv_start_kds
PORT=$(cat "$SIMENV_DIR/kds.port")
simenv_write_conf "[certs]" "kds_timeout = 3s"
sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
check "daemon starts with KDS as the chain source" simenv_start_daemon
check "the first chain came from KDS" grep -q "Start-up chain decision: chain loaded" \
	"$SIMENV_DIR/daemon.log"
tcb_before=$(simenv_state_field reported_tcb)

# The storm: same address, every kind of fault.
kill "$SIMENV_KDS_PID"
wait "$SIMENV_KDS_PID" 2> /dev/null
"$(simenv_bin snp-kdssim)" --state "$SIMENV_STATE" --listen "127.0.0.1:$PORT" \
	--log "$SIMENV_DIR/storm.log" --seed 7 \
	--fault 429:p=0.3 --fault 429-retry-after=4:p=0.2 --fault 500:p=0.2 \
	--fault garbage:p=0.15 --fault delay=1500ms:p=0.1 > "$SIMENV_DIR/storm.out" 2>&1 &
SIMENV_PIDS+=($!)
for i in $(seq 50); do curl -s "http://127.0.0.1:$PORT/_sim/stats" > /dev/null && break; sleep 0.1; done
ok "snp-kdssim restarted with a fault storm on the same address"

simenv_kvmsim --vms 16 --rate 2 --duration "$STORM" --wait-broker 10 --json \
	> "$SIMENV_DIR/storm.json" &
KVM=$!
refused=0
changed=0
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt $((STORM - 2)) ]; do
	if simenv_snpctl tcb set bl=2,tee=0,snp=8,ucode=115 > "$SIMENV_DIR/tcbset.out" 2>&1; then
		changed=$((changed + 1))
	else
		refused=$((refused + 1))
	fi
	sleep 1
done
wait "$KVM"
rc=$?
end=$(date +%s)
F=$SIMENV_DIR/storm.json
curl -s "http://127.0.0.1:$PORT/_sim/stats" > "$SIMENV_DIR/stats.json"
upstream=$(jq '.total' "$SIMENV_DIR/stats.json")
elapsed=$((end - start))
echo "# storm ${elapsed}s: tcb set refused $refused, succeeded $changed; upstream requests $upstream"
jq -c '.by_status' "$SIMENV_DIR/stats.json" | diag
jq -c '.totals' "$F" | diag
check "snp-kvmsim exit 0" test "$rc" = 0
check "zero VMPCK wipes" jqt "$F" '.totals.vmpck_wipes == 0'
check "zero verification failures" jqt "$F" '.totals.verify_failures == 0'
check "guests were served and verified reports" jqt "$F" '.totals.reports_verified > 50'
check "TCB changes were attempted during the storm" test $((refused + changed)) -ge 10
if [ "$changed" -eq 0 ]; then
	check "every refused change left the reported TCB as it was" \
		test "$(simenv_state_field reported_tcb)" = "$tcb_before"
fi
# Pacing: per key at most one request per 10 s (+1 for the first), two keys at most
# (the new VCEK, and the chain if it was revalidated).
limit=$((2 * (elapsed / 10 + 1)))
check "upstream requests ($upstream) within the pacing bound ($limit)" test "$upstream" -le "$limit"
check "the daemon is still running" kill -0 "$SIMENV_DAEMON_PID"
