#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, upstream restart: the daemon is killed with SIGKILL again and again while
# an upstream-mode fleet runs, and started again after a pause. While it is down the VMMs'
# libsnpattest serves from the certificate file (or an empty table); an ALLOW whose DONE never
# reached the dead daemon costs nothing; the library reconnects to the new daemon by itself.
. "$(dirname "$0")/upstream-lib.sh"

DUR=$(faults_pick 20 180)
VMS=$(faults_pick 32 128)
check "daemon starts" up_platform
up_kvmsim_run up-restart "$DUR" --vms "$VMS" --rate 5 --duration "$DUR" &
KVM=$!
sleep 2
faults_kill_loop "$DUR" "$KVM"
kills=$F_KILLS
wait "$KVM"
up_collect up-restart
F=$SIMENV_DIR/up-restart.json
faults_extra kills "$kills"
echo "# $kills SIGKILLs"
check "the daemon was killed under load at least twice" test "$kills" -ge 2
check "the VMMs reconnected: the daemon decided requests" \
	jqt "$F" '.upstream.admitted_by_daemon > 0'
check "requests completed across the restarts" jqt "$F" ".totals.completed > $VMS"
check "the last daemon serves VMMs again" sh -c "'$SNP_BUILD_ROOT/tests/integration/vmm-raw' \
	'$SIMENV_VMM_SOCK' hello 0badc0de-0000-4000-8000-000000000001 after-restart | grep -q '^ACK '"
faults_alive "at the end"
faults_stop_daemon
