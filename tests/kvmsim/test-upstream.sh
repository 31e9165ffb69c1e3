#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snp-kvmsim --kernel upstream (TAP): Linux 7.0 KVM with a VMM that uses libsnpattest, against
# the codec-built VMM-socket test server: every extended report request exits to the VMM and
# is decided by the server (ALLOW/BUSY/ENOSPC) with DONE after the firmware call; the rest go
# straight to the PSP; no daemon means an empty table and ret 0; a daemon restart under load
# is survived with a reconnect; a refusing daemon has no say. 0 wipes, 0 verification failures.
# Usage: test-upstream.sh KVMSIM VMM-TEST-SERVER
set -u

SIM=$1
SRV=$2
BUILD=${SNP_BUILD_ROOT:?}
STATE=$BUILD/tests/kvmsim/state-upstream
WORK=$(mktemp -d /tmp/kvmsim-upstream-XXXXXX)
SOCK=$WORK/vmm.sock
SERVER=
n=0
failed=0

cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@" >"$WORK/check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' "$WORK/check.out"; fi
}
jqt() { jq -e "$2" "$1" >/dev/null; }

start_server() { # start_server NAME MODE [BUSY-EVERY]
	"$SRV" "$SOCK" "$2" - "${3:-0}" >"$WORK/$1.srv" 2>&1 &
	SERVER=$!
	for _ in $(seq 1 1000); do grep -q ready "$WORK/$1.srv" 2>/dev/null && return 0; sleep 0.01; done
	return 1
}
stop_server() { # prints nothing; the counters land in $WORK/NAME.srv
	kill -TERM "$SERVER" 2>/dev/null
	wait "$SERVER" 2>/dev/null
	SERVER=
}
srv() { # srv NAME KEY: one counter of a stopped server
	sed -n "s/.*\<$2=\([0-9]*\).*/\1/p" "$WORK/$1.srv"
}
run_sim() { # run_sim NAME ARGS...
	local name=$1
	shift
	"$SIM" --state "$STATE" --product milan --json --kernel upstream --vmm-socket "$SOCK" \
		--time-scale 0.01 "$@" >"$WORK/$name.json" 2>"$WORK/$name.err"
	echo $? >"$WORK/$name.rc"
	if [ "$(cat "$WORK/$name.rc")" -gt 1 ]; then sed 's/^/# /' "$WORK/$name.err"; fi
}
SAFE='.totals.vmpck_wipes == 0 and .totals.verify_failures == 0 and .totals.msg_failures == 0
 and .upstream.vmm_bugs == 0'

mkdir -p "$BUILD/tests/kvmsim"
"$SIM" --state "$STATE" --kernel bogus --vms 1 --requests 1 >/dev/null 2>&1
check "--kernel with an unknown model is a usage error (2)" test $? = 2
"$SIM" --state "$STATE" --kernel upstream --no-broker --vms 1 --requests 1 >/dev/null 2>&1
check "--kernel upstream with --no-broker is a usage error (2)" test $? = 2

# --- the server decides: ALLOW with an empty table, BUSY every 4th CERTS, ENOSPC for 0 pages ---
check "test server starts" start_server allow allow 4
run_sim allow --vms 16 --requests 8 --rate 50
stop_server
check "allow: exit 0" test "$(cat "$WORK/allow.rc")" = 0
check "allow: mode upstream, 0 wipes, 0 verification failures" \
	jqt "$WORK/allow.json" ".mode == \"upstream\" and $SAFE"
check "allow: every VMM exit reached the server (vmm_exits = its CERTS count)" \
	jqt "$WORK/allow.json" ".upstream.vmm_exits == $(srv allow certs) and .upstream.vmm_exits > 0"
check "allow: every ret 0 was admitted by the server, and each got its DONE after the firmware" \
	jqt "$WORK/allow.json" ".upstream.ret_ok == .upstream.admitted_by_daemon
	 and .upstream.admitted_by_daemon == $(srv allow allows)
	 and $(srv allow done_fw) == $(srv allow allows) and $(srv allow done_abandoned) == 0"
check "allow: the server's BUSY reached guests as BUSY, ENOSPC as INVALID_LEN" \
	jqt "$WORK/allow.json" ".upstream.daemon_busy == $(srv allow busys) and $(srv allow busys) > 0
	 and .upstream.daemon_enospc == $(srv allow enospcs) and $(srv allow enospcs) > 0
	 and .totals.invalid_len >= .upstream.ret_enospc"
check "allow: plain and key requests went straight to the PSP, unadmitted" \
	jqt "$WORK/allow.json" ".upstream.direct_to_psp > 0 and .totals.keys_ok > 0
	 and .upstream.vmm_exits + .upstream.direct_to_psp == .totals.attempts"
check "allow: one connection and one HELLO per VM, nothing malformed" \
	test "$(srv allow hellos)/$(srv allow conns)/$(srv allow malformed)" = 16/16/0
check "allow: every request completed" jqt "$WORK/allow.json" \
	'.totals.completed == .totals.requests and .totals.requests == 128'

# --- no daemon, no certificate file: an empty table and ret 0 (what KVM does without one) ---
run_sim none --vms 8 --requests 5 --rate 50
check "no daemon: exit 0, 0 wipes, 0 verification failures" \
	jqt "$WORK/none.json" "$SAFE and .upstream.vmm_exits > 0"
check "no daemon: every exit answered 0 with the empty table, none BUSY" \
	jqt "$WORK/none.json" '.upstream.ret_ok == .upstream.vmm_exits
	 and .upstream.empty_table == .upstream.vmm_exits and .upstream.admitted_by_daemon == 0
	 and .upstream.ret_busy == 0'

# --- a daemon that refuses the VMs has no say ---
check "refusing server starts" start_server deny deny
run_sim deny --vms 4 --requests 5 --rate 50
stop_server
check "refusing daemon: 0 wipes; the fallback answered every exit" \
	jqt "$WORK/deny.json" "$SAFE and .upstream.admitted_by_daemon == 0
	 and .upstream.empty_table == .upstream.ret_ok and .upstream.vmm_exits > 0"
check "refusing daemon: every VM was told (ERROR denied), none admitted" \
	test "$(srv deny allows)" = 0 -a "$(srv deny errors)" -gt 0

# --- the daemon restarts under load: the VMMs reconnect ---
check "server 1 starts" start_server r1 allow
"$SIM" --state "$STATE" --product milan --json --kernel upstream --vmm-socket "$SOCK" \
	--time-scale 0.01 --vms 8 --duration 6 --rate 20 >"$WORK/restart.json" 2>"$WORK/restart.err" &
SIMPID=$!
sleep 2
stop_server
sleep 1
check "server 2 starts" start_server r2 allow
wait "$SIMPID"
echo $? >"$WORK/restart.rc"
stop_server
check "restart: exit 0, 0 wipes, 0 verification failures" \
	jqt "$WORK/restart.json" "$SAFE"
check "restart: both daemons admitted requests; the second one saw every VM again" \
	test "$(srv r1 allows)" -gt 0 -a "$(srv r2 allows)" -gt 0 -a "$(srv r2 hellos)" = 8
# An ALLOW the library took is one the servers sent. One the library did not take reached the
# guest another way: it came after the library's timeout (a local EAGAIN: ret_busy beyond the
# daemon's own BUSYs, on a loaded machine), its server died first (the file fallback or the
# empty table), or its VM went away meanwhile.
check "restart: every admitted request is a server's ALLOW; the ALLOWs not taken timed out or lost their server" \
	jqt "$WORK/restart.json" "(.upstream.admitted_by_daemon <= $(srv r1 allows) + $(srv r2 allows))
	 and ($(srv r1 allows) + $(srv r2 allows) - .upstream.admitted_by_daemon
	      <= .upstream.ret_busy - .upstream.daemon_busy + .upstream.from_file
		 + .upstream.empty_table + .upstream.dropped)"

echo "1..$n"
exit $failed
