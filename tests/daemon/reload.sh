#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGHUP applies a changed kds_url (the KDS client is made anew and the reload's rotation
# fetches from the new KDS), and a reload that cannot apply a key says which one: never a
# bare "Configuration reloaded" while a change was ignored.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

log=$SIMENV_DIR/daemon.log
# Polls (a wait, not a timed assertion) for a pattern in the daemon's log.
wait_log() { # PATTERN
	local i
	for ((i = 0; i < 150; i++)); do
		grep -q -- "$1" "$log" && return 0
		sleep 0.2
	done
	return 1
}
set_key() { # KEY VALUE: in the drop-in the test wrote
	sed -i "s|^$1 = .*|$1 = $2|" "$SIMENV_CONF.d/50-test.conf"
}

SIMENV_KDS_URL_REAL=
it_setup() {
	# The platform, with the chain from a KDS that is not there (port 9 refuses).
	simenv_init
	simenv_start_kds || return 1
	SIMENV_KDS_URL_REAL=$SIMENV_KDS_URL
	simenv_write_conf "[certs]" "cert_dir =" "kds_url = http://127.0.0.1:9" \
		"[daemon]" "usersock_port = $SIMENV_PORT" "[vmm]" "max_clients = 1024"
	simenv_start_daemon
}
check "daemon starts with an unreachable KDS" it_setup
check "... and decides to run without a chain" wait_log "Start-up chain decision"
simenv_snpctl status --json > "$SIMENV_DIR/st0.json" 2>&1
check "status: no chain served" jq -e '.chain == null' "$SIMENV_DIR/st0.json"

: > "$log.mark"
set_key kds_url "$SIMENV_KDS_URL_REAL"
kill -HUP "$SIMENV_DAEMON_PID"
check "SIGHUP: the new KDS client is made" wait_log "Certificates now come from KDS ($SIMENV_KDS_URL_REAL)"
check "... the reload's rotation serves the chain from it" \
	wait_log "Rotation (configuration reload): serving the VCEK chain"
check "... the reload is complete (no key left out)" \
	bash -c "grep 'Configuration reloaded' '$log' | tail -1 | grep -vq 'except'"
simenv_snpctl status --json > "$SIMENV_DIR/st1.json" 2>&1
check "status: a chain is served now" jq -e '.chain != null' "$SIMENV_DIR/st1.json"

# [vmm] max_clients applies to the running socket: a complete reload.
set_key max_clients 8
n=$(grep -c "Configuration reloaded" "$log")
kill -HUP "$SIMENV_DAEMON_PID"
check "SIGHUP with a changed [vmm] max_clients: reloaded, nothing left out" \
	bash -c "for i in \$(seq 1 150); do [ \$(grep -c 'Configuration reloaded' '$log') -gt $n ] && break; sleep 0.2; done
		grep 'Configuration reloaded' '$log' | tail -1 | grep -vq 'except'"

set_key usersock_port $((SIMENV_PORT + 1))
n=$(grep -c "Configuration reloaded" "$log")
kill -HUP "$SIMENV_DAEMON_PID"
wait_for_reload() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ "$(grep -c "Configuration reloaded" "$log")" -gt "$n" ] && return 0
		sleep 0.2
	done
	return 1
}
check "SIGHUP with a changed usersock_port: reloaded" wait_for_reload
check "... naming the key that needs a restart" \
	bash -c "grep 'Configuration reloaded' '$log' | tail -1 | grep -q 'except what needs a restart: \[daemon\] usersock_port'"

# A new VMM socket path needs a restart: the reload says so, and the old socket keeps serving.
echo "socket = $SIMENV_DIR/vmm-other.sock" >> "$SIMENV_CONF.d/50-test.conf"
n=$(grep -c "Configuration reloaded" "$log")
kill -HUP "$SIMENV_DAEMON_PID"
check "SIGHUP with a changed [vmm] socket: reloaded" wait_for_reload
check "... naming [vmm] socket as needing a restart" \
	bash -c "grep 'Configuration reloaded' '$log' | tail -1 | grep -q '\[vmm\] socket'"
check "... and the VMM socket stays where it was" test -S "$SIMENV_VMM_SOCK"
simenv_stop_daemon
check "the daemon stops cleanly" test "${SIMENV_DAEMON_RC:-1}" = 0
