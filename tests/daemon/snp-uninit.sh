#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SNP not initialised (kvm_amd not loaded with sev_snp=1 yet, facts §9.4) is a state, not a
# start-up failure. On a simulated platform that starts with `snp = off` the daemon:
#  - starts, sends READY=1 and a STATUS text naming the state, says so in `snpctl status`
#    (snp.initialized false) and in the metrics (snp_attestd_snp_initialized 0), and probes;
#  - refuses a TCB commit with the firmware layer's text for the state;
#  - once `snp = on` (the simulated kvm_amd load): logs the change once, loads the chain and
#    serves a small fleet with zero wipes and verified reports;
#  - when SNP goes away again and an administrative firmware call finds it so, gives the admin
#    that text and goes back to waiting; comes back up the same way.
# Every wait polls the daemon's own answers, bounded generously; nothing sleeps a fixed time.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NOTIFY=$SIMENV_DIR/notify.sock
# The receiving end of NOTIFY_SOCKET: every datagram, one line each.
python3 - "$NOTIFY" "$SIMENV_DIR/notify.log" << 'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
PY
# Not in SIMENV_PIDS: it_platform's first run in a build tree makes the seed state in a
# subshell whose cleanup kills every process listed there.
NOTIFY_PID=$!
trap 'kill "$NOTIFY_PID" 2> /dev/null; it_finish' EXIT
for ((i = 0; i < 100; i++)); do [ -S "$NOTIFY" ] && break; sleep 0.05; done

# The platform file goes in after the state is made and before the daemon starts.
eval "simenv_start_daemon_plain$(declare -f simenv_start_daemon | sed 1s/^simenv_start_daemon//)"
simenv_start_daemon() {
	printf '# kvm_amd not loaded yet\nsnp = off\nuninit_errno = ENODEV\n' > "$SIMENV_STATE/platform"
	NOTIFY_SOCKET=$NOTIFY simenv_start_daemon_plain
}

status_json() { simenv_snpctl status --json > "$SIMENV_DIR/status.json" 2>&1; }
# Polls until FILTER holds on the status JSON (at most about 90 s: the probe backoff is
# 1, 2, 4, 8, 16, 32 s plus a quarter of jitter, and a loaded machine is slow).
wait_status() { # FILTER
	local i
	for ((i = 0; i < 450; i++)); do
		status_json && jqt "$SIMENV_DIR/status.json" "$1" && return 0
		sleep 0.2
	done
	echo "status never matched $1:"
	cat "$SIMENV_DIR/status.json"
	return 1
}
scrape() { curl -sS --max-time 10 "http://127.0.0.1:$mport/metrics" > "$SIMENV_DIR/metrics.txt"; }
metric_is() { # NAME VALUE
	scrape && grep -qx "$1 $2" "$SIMENV_DIR/metrics.txt" ||
		{ grep "^$1" "$SIMENV_DIR/metrics.txt"; return 1; }
}
wait_grep() { # FILE PATTERN
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q -- "$2" "$1" 2> /dev/null && return 0
		sleep 0.1
	done
	echo "no '$2' in $1"
	return 1
}
alive() { kill -0 "$SIMENV_DAEMON_PID"; }

check "daemon starts with SNP not initialised (snp = off, ENODEV)" it_platform \
	"[metrics]" "listen = 127.0.0.1:$mport"
check "READY=1 sent" wait_grep "$SIMENV_DIR/notify.log" "READY=1"
check "STATUS names the state" wait_grep "$SIMENV_DIR/notify.log" \
	"STATUS=SNP not initialised: waiting for kvm_amd with sev_snp=1"
check "the start-up log names the cause" grep -q "SNP is not initialised" "$SIMENV_DIR/daemon.log"
check "snpctl status: snp.initialized false, state named" wait_status \
	'.snp.initialized == false and (.snp.state | test("kvm_amd")) and .chain == null'
check "metric snp_attestd_snp_initialized 0" metric_is snp_attestd_snp_initialized 0
human_says() { simenv_snpctl status | grep -q "$1"; }
check "snpctl status (text) says SNP is not initialised" human_says "SNP: *NOT initialised"
check "it probes (status shows a probe)" wait_status '.snp.probes >= 1'
check "metric snp_attestd_snp_probes_total counts them" \
	bash -c "curl -sS --max-time 10 http://127.0.0.1:$mport/metrics |
		awk '\$1 == \"snp_attestd_snp_probes_total\" && \$2 >= 1 { f = 1 } END { exit !f }'"
commit_out=$SIMENV_DIR/commit.out
commit_refused() { ! simenv_snpctl tcb commit > "$commit_out" 2>&1; }
check "tcb commit while waiting is refused" commit_refused
check "... with the firmware layer's text" grep -q "SNP is not initialised" "$commit_out"
check "the daemon is still up" alive
# Guests meanwhile (only the simulator can have them: a real kernel runs no SNP guest before
# SNP is up) get contract answers only: admitted, no certificates, nothing wiped.
simenv_kvmsim --vms 2 --requests 2 --time-scale 0.01 --wait-broker 10 --json \
	> "$SIMENV_DIR/fleet-waiting.json"
rc=$?
check "a fleet while waiting: snp-kvmsim exits 0" test "$rc" = 0
check "... every request completed, zero wipes" jqt "$SIMENV_DIR/fleet-waiting.json" \
	'.totals.completed == 4 and .totals.vmpck_wipes == 0'
check "still waiting, still up" wait_status '.snp.initialized == false'

# The simulated kvm_amd load.
printf 'snp = on\n' > "$SIMENV_STATE/platform"
check "becomes initialised and serves the chain" wait_status \
	'.snp.initialized == true and .snp.state == "initialized" and .chain != null'
check "metric snp_attestd_snp_initialized 1" metric_is snp_attestd_snp_initialized 1
check "snpctl status (text) says initialised" human_says "SNP: *initialised"
check "the change is logged once" test "$(grep -c 'SNP is initialised (after' "$SIMENV_DIR/daemon.log")" = 1
check "STATUS moves on to serving" wait_grep "$SIMENV_DIR/notify.log" "STATUS=serving: "
check "platform read: chip id and reported TCB" jqt "$SIMENV_DIR/status.json" \
	".platform.chip_id == \"$(simenv_state_field chip_id)\""
simenv_kvmsim --vms 4 --requests 4 --time-scale 0.01 --wait-broker 10 --json \
	> "$SIMENV_DIR/fleet.json"
rc=$?
check "snp-kvmsim exits 0" test "$rc" = 0
check "every request completed, zero wipes, reports verified" jqt "$SIMENV_DIR/fleet.json" \
	'.totals.completed == 16 and .totals.vmpck_wipes == 0 and .totals.verify_failures == 0
	 and .totals.reports_verified > 0'

# SNP goes away (kvm_amd unloaded): the admin's firmware call finds it, the daemon waits again.
printf 'snp = off\nuninit_errno = EINVAL\n' > "$SIMENV_STATE/platform"
check "tcb commit with SNP gone fails" commit_refused
check "... naming the state" grep -q "SNP is not initialised" "$commit_out"
check "back to waiting" wait_status '.snp.initialized == false'
check "metric back to 0" metric_is snp_attestd_snp_initialized 0
printf 'snp = on\n' > "$SIMENV_STATE/platform"
check "up again" wait_status '.snp.initialized == true and .chain != null'
check "logged once more" test "$(grep -c 'SNP is initialised (after' "$SIMENV_DIR/daemon.log")" = 2

simenv_stop_daemon TERM
check "SIGTERM exits 0" test "${SIMENV_DAEMON_RC:-1}" = 0
