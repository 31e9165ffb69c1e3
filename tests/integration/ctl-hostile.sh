#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The control socket against hostile and careless clients (issue 13 points 15, 16, 10): replies
# in order and exactly once around a half-close while an operation is pending; a request that
# trickles one byte at a time is closed by its deadline, not kept alive; floods of peers with no
# role or the read-only role never keep root or the admin group out; the audit trail of
# administrative commands. The daemon runs on the simulated platform with no simulator peer.
# Nothing here is judged on time: deadlines are short by configuration and every wait for the
# daemon is bounded generously. Prints TAP.
# Usage: ctl-hostile.sh SNP-ATTESTD SNPCTL CTL-RAW SNP-KDSSIM
set -u
DAEMON=$(realpath "$1")
SNPCTL=$(realpath "$2")
RAW=$(realpath "$3")
KDSSIM=$(realpath "$4")

T=$(mktemp -d /tmp/snpctl-hostile.XXXXXX)
chmod 755 "$T"
SOCK=$T/run/control.sock
pid=
bg_pids=()

cleanup() {
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
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
has() {
	if grep -Eq -- "$2" "$T/$1"; then ok "$3"; else
		echo "# no match for: $2" >>"$T/err"; not_ok "$3"; fi
}

"$RAW" mkstate "$T/sim" milan || { echo "Bail out! cannot create the simulated platform"; exit 1; }
# A KDS that answers every request after 2 s: tcb.set to a TCB whose VCEK is not cached yet
# stays pending that long (it fetches that VCEK first), with requests queued behind it.
"$KDSSIM" --state "$T/sim" --listen 127.0.0.1:0 --port-file "$T/kds.port" --log "$T/kds.log" \
	--fault delay=2s &
bg_pids+=($!)
for _ in $(seq 1 300); do [ -s "$T/kds.port" ] && break; sleep 0.1; done
KDS_PORT=$(cat "$T/kds.port")
ADMIN_GROUP=staff
READ_GROUP=users
ADMIN_GID=$(getent group "$ADMIN_GROUP" | cut -d: -f3)
READ_GID=$(getent group "$READ_GROUP" | cut -d: -f3)

write_conf() { # request_timeout
	cat >"$T/d.conf" <<EOF
[daemon]
backend = sim
sim_state_dir = $T/sim
state_dir = $T/state
cache_dir = $T/cache
transport = usersock
usersock_port = $((0x50000000 + $$ % 100000))
log_level = info
[control]
socket = $SOCK
admin_group = $ADMIN_GROUP
readonly_group = $READ_GROUP
request_timeout = $1
[certs]
kds_url = http://127.0.0.1:$KDS_PORT
kds_timeout = 30s
[metrics]
listen =
EOF
}

start_daemon() {
	: >"$T/daemon.log"
	"$DAEMON" -c "$T/d.conf" >>"$T/daemon.log" 2>&1 &
	pid=$!
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
	if [ $rc -eq 0 ]; then ok "daemon stops cleanly"; else
		echo "# exit $rc" >"$T/err"; tail -n 30 "$T/daemon.log" >"$T/out"
		not_ok "daemon stops cleanly"; fi
}
# Waits (bounded) until a chain is served, so the start-up rotation is over.
wait_chain() {
	for _ in $(seq 1 600); do
		"$SNPCTL" status --json --socket "$SOCK" 2>/dev/null | grep -q '"not_after"' && return 0
		sleep 0.1
	done
	return 1
}

write_conf 1s
if start_daemon; then ok "daemon starts (request_timeout 1s)"; else
	not_ok "daemon starts"; sed "s/^/# /" "$T/daemon.log"; echo "1..$n"; exit 1; fi
if wait_chain; then ok "the chain from the (slow) simulated KDS is served"; else
	not_ok "chain served"; sed "s/^/# /" "$T/daemon.log" | tail; fi

# --- point 16: one reply per request, in order, around a half-close ---
# tcb.set waits 2 s for KDS; the requests behind it wait their turn.
printf '{"cmd":"tcb.set","tcb":"bl=3,tee=0,snp=8,ucode=114","id":1}\n{"cmd":"status","id":2}\n{"cmd":"quota.get","vm":5,"id":3}\n' |
	"$RAW" send "$SOCK" >"$T/out" 2>"$T/err"
ids=$(grep -o '"id":[0-9]*' "$T/out" | cut -d: -f2 | tr '\n' ' ')
if [ "$ids" = "1 2 3 " ] && [ "$(wc -l <"$T/out")" -eq 3 ]; then
	ok "tcb.set, status, quota.get, half-close: three replies in request order"
else
	echo "# ids in reply order: $ids" >>"$T/err"; not_ok "three replies in request order"
fi
has out '^\{"ok":true,"id":1,.*"message"' "the operation succeeded, and its reply is the first"
if grep -q 'not valid JSON' "$T/out"; then not_ok "no request glued to the next"; else
	ok "no request glued to the next"; fi
# The last request without its newline, behind a pending operation.
printf '{"cmd":"tcb.set","tcb":"bl=3,tee=0,snp=8,ucode=113","id":"a"}\n{"cmd":"status","id":"b"}\n{"cmd":"quota.get","vm":5,"id":"c"}' |
	"$RAW" send "$SOCK" >"$T/out" 2>"$T/err"
ids=$(grep -o '"id":"[a-z]"' "$T/out" | cut -d'"' -f4 | tr '\n' ' ')
if [ "$ids" = "a b c " ]; then
	ok "a last line without newline behind a pending operation: answered last, in order"
else
	echo "# ids in reply order: $ids" >>"$T/err"; not_ok "last line without newline answered in order"
fi
# Pipelined requests with no operation in front of them, then half-close.
for i in $(seq 1 50); do printf '{"cmd":"quota.get","vm":%d,"id":%d}\n' "$i" "$i"; done |
	"$RAW" send "$SOCK" >"$T/out" 2>"$T/err"
if [ "$(grep -o '"id":[0-9]*' "$T/out" | cut -d: -f2 | tr '\n' ' ')" = "$(seq 1 50 | tr '\n' ' ')" ]; then
	ok "50 pipelined requests: 50 replies in order"
else
	not_ok "50 pipelined requests: 50 replies in order"
fi

# --- point 10: the audit trail (stderr form: the message, then NAME="value" fields) ---
audit_lines() { grep -F 'SNP_AUDIT_ACTION="'"$1"'"' "$T/daemon.log"; }
"$SNPCTL" quota set 42 --rate 0.5 --socket "$SOCK" >"$T/out" 2>"$T/err"
audit_lines quota.set >"$T/out"
if [ "$(wc -l <"$T/out")" -eq 1 ]; then ok "quota.set: audited exactly once"; else
	not_ok "quota.set: audited exactly once"; fi
has out 'SNP_AUDIT_OUTCOME="ok".*SNP_PEER_UID="0" SNP_PEER_GID="0" SNP_PEER_PID="[0-9]+" SNP_PEER_ROLE="admin" SNP_VM_ID="42"' \
	"quota.set: outcome, peer uid/gid/pid/role and VM as fields"
has out 'SNP_AUDIT_OLD="rate=2 burst=4 weight=1 \(default\)" SNP_AUDIT_NEW="rate=0.5 burst=4 weight=1"' \
	"quota.set: old and new values"
"$SNPCTL" quota set 42 --rate 0.01 --socket "$SOCK" >"$T/out" 2>"$T/err"
audit_lines quota.set | tail -n 1 >"$T/out"
has out 'SNP_AUDIT_OUTCOME="failed".*SNP_AUDIT_ERROR="EINVAL".*SNP_AUDIT_DETAIL="quota refused' \
	"a quota.set the daemon refuses: audited as failed, with the reason"
"$SNPCTL" quota reset 42 --socket "$SOCK" >"$T/out" 2>"$T/err"
audit_lines quota.reset >"$T/out"
has out 'SNP_AUDIT_OUTCOME="ok".*SNP_AUDIT_OLD="rate=0.5 burst=4 weight=1" SNP_AUDIT_NEW="rate=2 burst=4 weight=1 \(default\)"' \
	"quota.reset: audited with old and new values"
audit_lines tcb.set >"$T/out"
if [ "$(grep -c 'SNP_AUDIT_OUTCOME="ok"' "$T/out")" -eq 2 ] && [ "$(wc -l <"$T/out")" -eq 2 ]; then
	ok "the two tcb.set operations: audited once each, when they completed"
else not_ok "tcb.set audited once each"; fi
has out 'SNP_AUDIT_OLD="reported_tcb=0x[0-9a-f]{16} .*leaf_sha256=[0-9a-f]{64}" SNP_AUDIT_NEW="reported_tcb=0x[0-9a-f]{16}' \
	"tcb.set: the platform and served chain before and after"
if [ "$(id -u)" -eq 0 ] && [ -n "$READ_GID" ]; then
	setpriv --reuid=60200 --regid=60201 --groups="$READ_GID" -- \
		"$SNPCTL" quota reset 42 --socket "$SOCK" >"$T/out" 2>"$T/err"
	audit_lines quota.reset | tail -n 1 >"$T/out"
	has out 'SNP_AUDIT_OUTCOME="denied" SNP_PEER_UID="60200" SNP_PEER_GID="60201" SNP_PEER_PID="[0-9]+" SNP_PEER_ROLE="reader" SNP_VM_ID="42".*SNP_AUDIT_ERROR="EACCES"' \
		"a refused quota.reset by a reader is audited with the peer's credentials"
else
	skip "refused attempt audited" "needs root and group users"
fi

# --- point 15: a deadline per request, not per byte ---
# One byte every 300 ms (request_timeout is 1s): the daemon must close the connection long
# before the client runs out of its 400 bytes (two minutes).
if "$RAW" trickle "$SOCK" 300 400 >"$T/out" 2>"$T/err"; then
	ok "a request trickling one byte at a time is closed by its deadline"
else
	not_ok "a request trickling one byte at a time is closed by its deadline"
fi
if "$SNPCTL" status --socket "$SOCK" >"$T/out" 2>"$T/err"; then ok "and the socket still serves"
else not_ok "and the socket still serves"; fi
# Requests until the daemon stops reading (its replies over the high water), then one byte of
# the replies every 300 ms: the replies are not taken within request_timeout, so it hangs up.
if "$RAW" slowread "$SOCK" 300 400 >"$T/out" 2>"$T/err"; then
	ok "a client taking its replies one byte at a time is closed by the reply deadline"
else
	not_ok "a client taking its replies one byte at a time is closed by the reply deadline"
fi

# --- point 15: floods never keep root or the admin group out ---
stop_daemon
write_conf 10min # nobody is dropped by a deadline while the floods hold their slots
if start_daemon; then ok "daemon restarts (request_timeout 10min)"; else
	not_ok "daemon restarts"; sed "s/^/# /" "$T/daemon.log"; echo "1..$n"; exit 1; fi

# flood ROLE-GROUP-ARGS...: 20 users (uid 60000..60019) each holding 16 connections.
flood() {
	local u f
	flood_pids=()
	for u in $(seq 60000 60019); do
		f=$T/flood.$u
		: >"$f"
		setpriv --reuid="$u" --regid=65534 "$@" -- "$RAW" hold "$SOCK" 16 600 >"$f" 2>&1 &
		flood_pids+=($!)
		bg_pids+=($!)
	done
	for u in $(seq 60000 60019); do
		for _ in $(seq 1 600); do grep -q held "$T/flood.$u" && break; sleep 0.1; done
	done
}
unflood() {
	for p in "${flood_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
# control.clients as root sees it (root's own connection included).
clients() {
	"$SNPCTL" status --json --socket "$SOCK" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["control"]["clients"])'
}
# Waits until the daemon has let the flood go.
wait_clients_below() {
	for _ in $(seq 1 300); do
		[ "$(clients)" -lt "$1" ] 2>/dev/null && return 0
		sleep 0.1
	done
}

if [ "$(id -u)" -ne 0 ] || [ -z "$ADMIN_GID" ] || [ -z "$READ_GID" ]; then
	for i in $(seq 1 8); do skip "flood $i" "needs root and groups staff/users"; done
else
	flood --clear-groups
	if "$SNPCTL" status --socket "$SOCK" >"$T/out" 2>"$T/err"; then
		ok "320 connections of 20 users without a role: root still served"
	else not_ok "no-role flood: root still served"; fi
	c=$(clients)
	if [ "$c" = 33 ]; then ok "no-role flood: 32 connections kept (the no-role cap), root's"
	else echo "# clients: $c" >"$T/err"; not_ok "no-role flood: 32 kept"; fi
	unflood
	wait_clients_below 2

	# One reader uid holds at most 16 connections.
	setpriv --reuid=60300 --regid=65534 --groups="$READ_GID" -- "$RAW" hold "$SOCK" 20 600 \
		>"$T/one.uid" 2>&1 &
	one_pid=$!
	bg_pids+=($one_pid)
	for _ in $(seq 1 600); do grep -q held "$T/one.uid" && break; sleep 0.1; done
	c=$(clients)
	if [ "$c" = 17 ]; then ok "one read-only user with 20 connections: 16 kept (the per-uid cap)"
	else echo "# clients: $c" >"$T/err"; not_ok "one user: 16 kept"; fi
	kill "$one_pid" 2>/dev/null; wait "$one_pid" 2>/dev/null
	wait_clients_below 2

	flood --groups="$READ_GID"
	if "$SNPCTL" status --socket "$SOCK" >"$T/out" 2>"$T/err"; then
		ok "320 connections of 20 read-only users: root still served"
	else not_ok "read-only flood: root still served"; fi
	c=$(clients)
	if [ "$c" = 225 ]; then ok "read-only flood: 224 kept, 32 slots left for administrators"
	else echo "# clients: $c" >"$T/err"; not_ok "read-only flood: 224 kept"; fi
	if setpriv --reuid=60100 --regid=65534 --groups="$ADMIN_GID" -- \
		"$SNPCTL" status --socket "$SOCK" >"$T/out" 2>"$T/err"; then
		ok "read-only flood: a member of the admin group still served"
	else not_ok "read-only flood: admin group still served"; fi
	printf '{"cmd":"status"}\n' | setpriv --reuid=60101 --regid=65534 --groups="$READ_GID" -- \
		"$RAW" send "$SOCK" >"$T/out" 2>"$T/err"
	has out '"code":"EBUSY"' "read-only flood: another reader is refused with EBUSY"
	has out 'kept for administrators' "read-only flood: the refusal says why"
	unflood
fi

stop_daemon
echo "1..$n"
exit $((fails > 0))
