#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# transport = genl on a kernel without the snp_attest family (this build machine's kernel has
# no KVM broker interface). The daemon must:
#  - start and become ready (the family is not a start-up condition: kvm_amd may load later);
#  - say clearly, once, that the family is missing;
#  - keep looking for it with backoff, counted in snp_attestd_netlink_family_missing_total;
#  - serve the control socket (status: broker not registered) and the metrics meanwhile;
#  - exit 0 soon after SIGTERM (the lookup never blocks the event loop).
# Waits poll the daemon's own answers with generous bounds; nothing asserts a duration.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

if "$SNP_BUILD_ROOT/tests/daemon/test-daemon-genl-resolve" > /dev/null 2>&1 &&
	python3 - << 'PY'
import socket, struct, sys
# CTRL_CMD_GETFAMILY "snp_attest": exit 0 if the family exists (then this test cannot run).
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
s.bind((0, 0))
name = b"snp_attest\0"
attr = struct.pack("HH", 4 + len(name), 2) + name + b"\0" * ((4 - len(name) % 4) % 4)
body = struct.pack("BBH", 3, 1, 0) + attr
s.send(struct.pack("IHHII", 16 + len(body), 0x10, 1, 1, 0) + body)
data = s.recv(65536)
sys.exit(0 if struct.unpack_from("H", data, 4)[0] == 0x10 else 1)
PY
then
	echo "1..0 # SKIP this kernel has the snp_attest family"
	trap - EXIT
	exit 0
fi

mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scrape() { curl -sS --max-time 10 "http://127.0.0.1:$mport/metrics" > "$SIMENV_DIR/metrics.txt"; }
metric_at_least() { # NAME MIN: polls until the counter reaches MIN (about 90 s at most)
	local i
	for ((i = 0; i < 450; i++)); do
		scrape && awk -v n="$1" -v m="$2" '$1 == n && $2 >= m { f = 1 } END { exit !f }' \
			"$SIMENV_DIR/metrics.txt" && return 0
		sleep 0.2
	done
	grep "^$1" "$SIMENV_DIR/metrics.txt"
	return 1
}
status_says() { # FILTER
	simenv_snpctl status --json > "$SIMENV_DIR/status.json" && jqt "$SIMENV_DIR/status.json" "$1"
}

check "daemon with transport = genl starts and becomes ready" it_platform \
	"[daemon]" "transport = genl" "[metrics]" "listen = 127.0.0.1:$mport"
check "it says the family is missing" \
	grep -q "Generic netlink family 'snp_attest' is missing" "$SIMENV_DIR/daemon.log"
check "... and what that means (no broker interface in KVM)" \
	grep -q "no SNP guest request broker" "$SIMENV_DIR/daemon.log"
check "it keeps looking: snp_attestd_netlink_family_missing_total reaches 3" \
	metric_at_least snp_attestd_netlink_family_missing_total 3
check "the missing family is logged once, not on every retry" \
	test "$(grep -c "is missing" "$SIMENV_DIR/daemon.log")" = 1
# Backoff (1, 2, 4 ... 30 s): when the counter reached 3 a few seconds had passed; a lookup
# without backoff (the retry timer alone, or a busy loop) would count far more by then.
check "backoff: the counter stays small (< 20) when it reached 3" \
	awk '$1 == "snp_attestd_netlink_family_missing_total" && $2 < 20 { f = 1 } END { exit !f }' \
	"$SIMENV_DIR/metrics.txt"
check "no REGISTER was sent (there is no family to send it to)" \
	grep -qx 'snp_attestd_netlink_register_attempts_total 0' "$SIMENV_DIR/metrics.txt"
check "snpctl status answers meanwhile: broker not registered" \
	status_says '.broker.registered == false'
check "the daemon is still up" kill -0 "$SIMENV_DAEMON_PID"

# SIGTERM: the daemon exits 0 well within a generous bound (it used to hang in recvmsg).
kill -TERM "$SIMENV_DAEMON_PID"
exited=0
for ((i = 0; i < 200; i++)); do
	kill -0 "$SIMENV_DAEMON_PID" 2> /dev/null || { exited=1; break; }
	sleep 0.1
done
check "SIGTERM: the daemon exits (bound 20 s)" test "$exited" = 1
simenv_stop_daemon KILL
check "... with status 0" test "${SIMENV_DAEMON_RC:-1}" = 0
