#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The control socket end to end: the real daemon on the simulated platform (transport usersock,
# no simulator peer needed), driven by snpctl and by raw clients. Prints TAP.
# Usage: ctl.sh SNP-ATTESTD SNPCTL CTL-RAW
set -u
DAEMON=$(realpath "$1")
SNPCTL=$(realpath "$2")
RAW=$(realpath "$3")

T=$(mktemp -d /tmp/snpctl-ctl.XXXXXX)
chmod 755 "$T" # the unprivileged clients below must reach the socket
SOCK=$T/run/control.sock
pid=
stall_pids=()

cleanup() {
	for p in "${stall_pids[@]}"; do kill "$p" 2>/dev/null; done
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
	sed 's/^/# /' "$T/out" "$T/err" 2>/dev/null | head -40
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# run EXPECTED-EXIT DESCRIPTION CMD...: output in $T/out and $T/err.
run() {
	local want=$1 desc=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local got=$?
	if [ "$got" -eq "$want" ]; then ok "$desc"; else
		echo "# exit $got, expected $want" >>"$T/err"; not_ok "$desc"; fi
}
# has FILE REGEX DESCRIPTION
has() {
	if grep -Eq -- "$2" "$T/$1"; then ok "$3"; else
		echo "# no match for: $2" >>"$T/err"; not_ok "$3"; fi
}
hasnt() {
	if grep -Eq -- "$2" "$T/$1"; then echo "# unexpected: $2" >>"$T/err"; not_ok "$3"
	else ok "$3"; fi
}

ctl() { "$SNPCTL" "$@" --socket "$SOCK"; }
raw() { "$RAW" send "$SOCK"; }

start_daemon() {
	"$DAEMON" -c "$T/d.conf" >>"$T/daemon.log" 2>&1 &
	pid=$!
	# Wait for readiness (the socket), not for a time: the loop ends early on success.
	for _ in $(seq 1 300); do
		[ -S "$SOCK" ] && "$SNPCTL" status --socket "$SOCK" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_daemon() {
	kill -TERM "$pid"
	wait "$pid"
	local rc=$?
	pid=
	return $rc
}

"$RAW" mkstate "$T/sim" milan || { echo "Bail out! cannot create the simulated platform"; exit 1; }
ADMIN_GROUP=staff
READ_GROUP=users
ADMIN_GID=$(getent group "$ADMIN_GROUP" | cut -d: -f3)
READ_GID=$(getent group "$READ_GROUP" | cut -d: -f3)
cat >"$T/d.conf" <<EOF
[daemon]
backend = sim
sim_state_dir = $T/sim
state_dir = $T/state
cache_dir = $T/cache
transport = usersock
log_level = debug
[control]
socket = $SOCK
admin_group = $ADMIN_GROUP
readonly_group = $READ_GROUP
[metrics]
listen =
EOF


if start_daemon; then ok "daemon starts and answers on the control socket"; else
	not_ok "daemon starts"; sed "s/^/# /" "$T/daemon.log"; echo "1..$n"; exit 1; fi
if [ "$(stat -c %a "$SOCK")" = 666 ]; then ok "socket mode 0666 (SO_PEERCRED decides)"
else not_ok "socket mode"; fi

# --- status, vm list, vm show ---
run 0 "status" ctl status
has out '^snp-attestd [0-9]' "status: version"
has out 'backend: +sim \(simulated platform\)' "status: simulated backend"
has out 'not registered' "status: broker not registered (no simulator peer)"
has out 'current TCB: +bl=[0-9]+ tee=[0-9]+ snp=[0-9]+ ucode=[0-9]+ \(0x[0-9a-f]{16}\)' \
	"status: current TCB decoded"
has out 'BUSY by reason: +in-flight 0' "status: BUSY counters by reason"
run 0 "status --json" ctl status --json
has out '"backend": "sim"' "status --json: backend"
has out '"registered": false' "status --json: broker"
hasnt out '"ok"' "status --json: envelope removed"
run 0 "vm list" ctl vm list
has out '^no VMs$' "vm list: empty"
run 0 "vm list --json" ctl vm list --json
has out '"vms": \[\]' "vm list --json: empty array"
run 1 "vm show of an unknown VM fails" ctl vm show 42
has err 'no VM 42' "vm show: clear reason"
run 2 "vm show without a VM is a usage error" ctl vm show

run 0 "global options before the command" "$SNPCTL" --json --socket "$SOCK" vm list
has out '"vms": \[\]' "global --json before the command: JSON"
run 0 "SNPCTL_SOCKET names the socket" env SNPCTL_SOCKET="$SOCK" "$SNPCTL" status --json
has out '"backend": "sim"' "SNPCTL_SOCKET: reached the daemon"
printf '[control]\nsocket = %s\n' "$SOCK" >"$T/client.conf"
run 0 "socket from the configuration file (SNPCTL_CONFIG)" env SNPCTL_CONFIG="$T/client.conf" \
	"$SNPCTL" vm list --json
run 0 "top --once without VMs" ctl top --once --interval 0.1
has out '^snp-attestd [0-9].*VMs 0 .*admission running' "top: header with the daemon's state"
has out '^no VMs$' "top: no VMs"
hasnt out $'\033' "top without a terminal: no escape codes"
run 2 "top: bad --interval" ctl top --once --interval 0
run 2 "top: bad -n" ctl top -n x

# --- quotas ---
run 0 "quota get (default)" ctl quota get 42
has out '^VM 42: rate 2/s, burst [0-9]+, weight 1 \(default\)' "quota get: default quota"
run 0 "quota set" ctl quota set 42 --rate 0.5 --burst 4 --weight 2
has out '^VM 42: rate 0.5/s, burst 4, weight 2 \(custom' "quota set: new quota shown"
run 0 "quota get --json" ctl quota get 42 --json
has out '"rate": "0.5"' "quota get --json: rate"
has out '"custom": true' "quota get --json: custom"
run 0 "quota set of one field keeps the others" ctl quota set 42 --weight 3
has out 'rate 0.5/s, burst 4, weight 3' "quota set: partial update"
run 0 "quota set of a second VM" ctl quota set 7 --burst 9
run 0 "quota list" ctl quota list
has out '^42 +0.5 +4 +3$' "quota list: VM 42"
has out '^7 +2 +9 +1$' "quota list: VM 7"
run 0 "quota reset" ctl quota reset 7
has out '^VM 7: .*\(default\)' "quota reset: back to the default"
run 0 "quota list --json" ctl quota list --json
hasnt out '"vm": 7' "quota list --json: reset VM gone"
run 1 "daemon refuses a quota slower than one request per busy_budget" \
	ctl quota set 42 --rate 0.01
has err 'quota refused' "quota set: daemon's reason shown"
run 2 "snpctl refuses a malformed rate" ctl quota set 42 --rate abc
run 2 "quota set without a value is a usage error" ctl quota set 42
if [ -s "$T/state/quotas.json" ]; then ok "quotas.json written in state_dir"; else
	not_ok "quotas.json written"; fi

# --- hostile clients ---
printf 'not json\n{"cmd":"status","id":9}\n{"cmd":"status","cmd":"vm.list"}\n{"cmd":"reboot","id":"x"}\n[1]\n' |
	raw >"$T/out" 2>"$T/err"
if [ "$(wc -l <"$T/out")" -eq 5 ]; then ok "one reply per line, malformed ones included"; else
	not_ok "one reply per line"; fi
has out '^\{"ok":false,"error":"request is not valid JSON","code":"EBADMSG"\}$' "malformed: EBADMSG"
has out '"ok":true,"id":9,' "a good request after a bad one is answered, id echoed"
has out 'duplicate key.*EBADMSG' "duplicate keys refused"
has out '"id":"x".*"code":"EOPNOTSUPP"' "unknown command refused, id echoed"
head -c 70000 /dev/zero | tr '\0' 'a' | raw >"$T/out" 2>"$T/err"
has out '"code":"EMSGSIZE"' "oversized line: error reply"
"$RAW" stall "$SOCK" 60 >/dev/null &
stall_pids+=($!)
for _ in $(seq 1 20); do "$RAW" stall "$SOCK" 60 >/dev/null & stall_pids+=($!); done
run 0 "other clients are served while 21 clients stall mid-request" ctl status
run 0 "and after an oversized line" ctl quota get 42

# --- authorisation ---
if [ "$(id -u)" -ne 0 ] || [ -z "$ADMIN_GID" ] || [ -z "$READ_GID" ]; then
	for i in $(seq 1 12); do skip "authorisation $i" "needs root and groups staff/users"; done
else
	# SNPCTL_CONFIG: snpctl reads the group names for its messages from the daemon's config.
	as() { local g=$1; shift; setpriv --reuid=65534 --regid=65534 "$g" -- \
		env SNPCTL_CONFIG="$T/d.conf" "$@"; }
	run 1 "no group: status refused" as --clear-groups "$SNPCTL" status --socket "$SOCK"
	has err "permission denied: 'status' refused by snp-attestd \(needs root or group $ADMIN_GROUP or $READ_GROUP\)" \
		"no group: clear message naming the groups"
	run 1 "no group: quota set refused" as --clear-groups "$SNPCTL" quota set 1 --burst 2 --socket "$SOCK"
	run 0 "read-only group: status" as --groups="$READ_GID" "$SNPCTL" status --socket "$SOCK"
	has out 'your role: +reader' "read-only group: reader role"
	run 0 "read-only group: quota list" as --groups="$READ_GID" "$SNPCTL" quota list --socket "$SOCK"
	run 1 "read-only group: quota set refused" as --groups="$READ_GID" "$SNPCTL" quota set 42 --burst 2 --socket "$SOCK"
	has err "permission denied: 'quota.set' refused by snp-attestd \(needs root or group $ADMIN_GROUP\)" \
		"read-only group: write refused with a clear message naming the admin group"
	run 1 "read-only group: quota reset refused" as --groups="$READ_GID" "$SNPCTL" quota reset 42 --socket "$SOCK"
	run 0 "admin group: quota set" as --groups="$ADMIN_GID" "$SNPCTL" quota set 42 --burst 5 --socket "$SOCK"
	has out 'burst 5' "admin group: quota changed"
	run 0 "admin group: status" as --groups="$ADMIN_GID" "$SNPCTL" status --socket "$SOCK"
fi

# --- restart: quotas persist; the socket goes away ---
for p in "${stall_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
stall_pids=()
if stop_daemon; then ok "daemon stops cleanly"; else not_ok "daemon stops cleanly"; fi
if [ ! -e "$SOCK" ]; then ok "socket removed on stop"; else not_ok "socket removed on stop"; fi
run 3 "snpctl with no daemon fails with exit 3" ctl status
has err "snp-attestd is not running \(no socket at $SOCK\)" "no daemon: clear message"
run 3 "top with no daemon: exit 3" ctl top --once --interval 0.1
has err "snp-attestd is not running" "top, no daemon: clear message"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
run 3 "a stale socket file nobody listens on: exit 3" "$SNPCTL" vm list --socket "$T/stale.sock"
has err "snp-attestd is not running \(nothing listens on $T/stale.sock\)" "stale socket: clear message"
if start_daemon; then ok "daemon restarts"; else not_ok "daemon restarts"; fi
run 0 "quota get after restart" ctl quota get 42 --json
has out '"rate": "0.5"' "custom quota survived the restart"
stop_daemon >/dev/null 2>&1
echo "1..$n"
exit $((fails > 0))
