#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, malformed input: while a fleet runs, the (simulated) kernel sends malformed
# messages (snp-kvmsim --malformed), a foreign netlink socket floods the daemon's port with
# random, truncated, oversized and near-valid messages (VM_REMOVE of live VMs, GUEST_REQ,
# GUEST_DONE, VM_DUMP, REGISTER: all from the wrong sender), and hostile control clients
# send garbage, over-long lines, half requests, pipelined strict-parser cases and more
# connections than the daemon serves. Guests must not notice.
. "$(dirname "$0")/lib.sh"

DUR=$(faults_pick 12 180)
VMS=$(faults_pick 16 64)
NL=$(faults_pick 20000 2000000)
CTL=$(faults_pick 200 10000)
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ * 7) % 20000))
check "daemon starts (metrics on $SIMENV_METRICS)" it_platform
port=$(faults_daemon_nlport)
check "the daemon's netlink port is known ($port)" test -n "$port"
faults_kvmsim_run malformed "$DUR" --vms "$VMS" --rate 4 --duration "$DUR" \
	--malformed $((DUR * 50)) --wait-broker 10 &
KVM=$!
sleep 1
nl_rounds=0 ctl_rounds=0
: > "$SIMENV_DIR/flood.out"
while kill -0 "$KVM" 2> /dev/null; do
	if [ "$nl_rounds" -lt $((NL / 5000)) ] && [ -n "$port" ]; then
		"$FAULTS_FLOOD" netlink "$port" 5000 $((nl_rounds + 1)) >> "$SIMENV_DIR/flood.out"
		nl_rounds=$((nl_rounds + 1))
	fi
	if [ "$ctl_rounds" -lt $((CTL / 50)) ]; then
		"$FAULTS_FLOOD" ctl "$SIMENV_SOCK" 50 $((ctl_rounds + 1)) >> "$SIMENV_DIR/flood.out"
		ctl_rounds=$((ctl_rounds + 1))
	fi
	[ "$nl_rounds" -ge $((NL / 5000)) ] && [ "$ctl_rounds" -ge $((CTL / 50)) ] && break
	faults_alive "during the flood" || break
done
wait "$KVM"
faults_kvmsim_collect malformed
nl_sent=$(jq -s 'map(.sent // 0) | add // 0' "$SIMENV_DIR/flood.out")
ctl_clients=$(jq -s 'map(.clients // 0) | add // 0' "$SIMENV_DIR/flood.out")
faults_extra kernel_malformed_sent "$(jq '.kernel.malformed_sent' "$SIMENV_DIR/malformed.json")"
faults_extra foreign_datagrams_sent "$nl_sent"
faults_extra ctl_hostile_clients "$ctl_clients"
if faults_alive "after the flood"; then
	mal=$(faults_metric 'snp_attestd_netlink_errors_total.*kind="(malformed|malformed_answered)"')
	foreign=$(faults_metric 'snp_attestd_netlink_errors_total.*kind="foreign_sender"')
	ctlerr=$(faults_metric '^snp_attestd_control_(errors|dropped)_total')
	faults_extra daemon_counted_malformed "${mal:-0}"
	faults_extra daemon_counted_foreign "${foreign:-0}"
	faults_extra daemon_counted_ctl_errors "${ctlerr:-0}"
	echo "# sent: kernel $(jq '.kernel.malformed_sent' "$SIMENV_DIR/malformed.json") malformed," \
		"foreign $nl_sent, control clients $ctl_clients;" \
		"daemon counted: malformed $mal, foreign $foreign, control errors/drops $ctlerr"
	check "foreign datagrams were sent" test "$nl_sent" -gt 0
	check "the daemon counted malformed kernel messages" test "${mal:-0}" -gt 0
	check "the daemon counted foreign senders" test "${foreign:-0}" -gt 0
	check "the daemon counted control errors" test "${ctlerr:-0}" -gt 0
	check "the control socket still answers" simenv_snpctl status
	check "the daemon still knows the fleet (vm list)" eval \
		"simenv_snpctl vm list --json > '$SIMENV_DIR/vms.json'"
fi
check "every VM completed requests" \
	jqt "$SIMENV_DIR/malformed.json" 'all(.per_vm[]; .completed > 0)'
faults_stop_daemon
