#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, restart: the daemon is killed with SIGKILL again and again while a fleet
# runs, and started again after a pause. While no broker is registered the (simulated) kernel
# answers BUSY; requests ALLOWed before the kill finish on the PSP; the new daemon registers,
# replays the VMs (VM_DUMP with in-flight requests) and serves on. No guest may lose its key.
. "$(dirname "$0")/lib.sh"

DUR=$(faults_pick 20 180)
VMS=$(faults_pick 32 128)
check "daemon starts" it_platform
faults_kvmsim_run restart "$DUR" --vms "$VMS" --rate 5 --duration "$DUR" --wait-broker 10 &
KVM=$!
sleep 2
unregistered=0
after_load=0
# simenv_start_daemon returns once the control socket is there (the log's "ready" is an earlier
# start's): the next kill waits for this daemon's registration, so that each start is counted by
# the kernel however slow the machine is (bounded: 60 s). The kill loop's last restart can come
# after the fleet's run has ended (its pauses are random): with no kernel side left there is
# nothing to register with, so that start is counted apart, not as a failure.
registered() {
	local i
	for ((i = 0; i < 600; i++)); do
		simenv_snpctl status --json 2> /dev/null | jq -e '.broker.registered' > /dev/null &&
			return 0
		if ! kill -0 "$KVM" 2> /dev/null; then
			after_load=$((after_load + 1))
			return 0
		fi
		sleep 0.1
	done
	unregistered=$((unregistered + 1))
}
faults_kill_loop "$DUR" "$KVM" registered
kills=$F_KILLS
wait "$KVM"
# The run was in the background (a subshell): its counts are read now.
faults_kvmsim_collect restart
faults_extra kills "$kills"
faults_extra registrations \
	"$(jq '.kernel.registrations' "$SIMENV_DIR/restart.json" 2> /dev/null || echo 0)"
echo "# $kills SIGKILLs ($after_load restart(s) after the fleet's run had ended)"
check "the daemon was killed under load at least twice" test "$kills" -ge 2
check "only the last restart may come after the fleet's run ($after_load did)" \
	test "$after_load" -le 1
check "every restarted daemon registered within 60 s ($unregistered did not)" \
	test "$unregistered" = 0
check "the kernel saw a registration per start" \
	jqt "$SIMENV_DIR/restart.json" ".kernel.registrations >= $((kills + 1 - after_load))"
check "requests completed after the restarts" jqt "$SIMENV_DIR/restart.json" \
	".totals.completed > $VMS"
faults_alive "at the end"
faults_stop_daemon
