# SPDX-License-Identifier: Apache-2.0
# Fault campaign helpers: on top of tests/integration/lib.sh (TAP, a simulated platform in a
# temporary directory), the campaign's counts, accumulated over every snp-kvmsim run of a
# scenario, checked against their targets and written as one JSON object (FAULTS_RESULT).
#
#   FAULTS_LONG=1     the long campaign (minutes per scenario), else the short one
#   FAULTS_RESULT     file for the scenario's JSON result (optional)
#
# Count definitions (docs/faults.md): from snp-kvmsim --json of each run,
#   requests  = totals.requests (logical guest requests started; BUSY re-sends are not new)
#   completed = totals.completed (ended without a wipe)
#   wipes     = totals.vmpck_wipes
#   verify    = totals.verify_failures + totals.msg_failures
#   lost      = totals.requests - completed - vmpck_wipes - abandoned: requests with no final
#               outcome when the run was over (a vCPU still waiting for a verdict or the PSP
#               after the run's end plus a grace period; the harness then stops snp-kvmsim
#               forcibly and it reports what it has), plus every request of a run whose
#               snp-kvmsim died without a summary (counted as FAULTS_LOST_UNKNOWN = 1 each).
#   crashes   = daemon exits the test did not cause (found dead, or a non-zero status after
#               SIGTERM), plus sanitizer reports in its log.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

FAULTS_LONG=${FAULTS_LONG:-0}
FAULTS_NAME=${FAULTS_NAME:-$(basename "$0" .sh)}
FAULTS_FLOOD=$SNP_BUILD_ROOT/tests/faults/fault-flood
F_REQ=0 F_DONE=0 F_WIPES=0 F_VERIFY=0 F_LOST=0 F_CRASH=0 F_ABANDONED=0 F_BUSY=0
F_TIMEOUTS=0 F_TXDROP=0 F_RUNS=0
F_NOTES=()
# The watchdog's grace period (s): 60 on an idle machine, more with the load average per CPU
# when the scenario starts, at most 240 (under the test's timeout); it bounds a hang and
# measures nothing.
FAULTS_GRACE=$(awk -v n="$(nproc)" '{ g = 60 * (1 + $1 / n)
	printf "%d\n", (g > 240 ? 240 : g) }' /proc/loadavg)
F_EXTRA='{}'

# Scenario-specific count: faults_extra KEY NUMBER-OR-JSON
faults_extra() { F_EXTRA=$(jq -c --argjson v "$2" --arg k "$1" '.[$k] = $v' <<< "$F_EXTRA"); }
faults_note() { F_NOTES+=("$*"); }
faults_pick() { [ "$FAULTS_LONG" = 1 ] && echo "$2" || echo "$1"; } # SHORT LONG

# snp-kvmsim under a watchdog: NAME DURATION ARGS... (add --duration yourself). After the run's
# DURATION plus a grace period (FAULTS_GRACE) it gets SIGTERM (ends the run: guests stop after
# their current request), after half as long again a second SIGTERM (stops at once: requests
# still waiting count as lost), and after the full grace period again SIGKILL. The grace periods are generous (a sanitizer build is slow); they
# bound a hang, they measure nothing. Counts are added to the scenario's totals.
faults_kvmsim_run() { # NAME DURATION ARGS...: may run in the background (no TAP output)
	local name=$1 dur=$2 pid waited=0 limit
	shift 2
	: > "$SIMENV_DIR/$name.notes"
	simenv_kvmsim --json "$@" > "$SIMENV_DIR/$name.json" 2> "$SIMENV_DIR/$name.err" &
	pid=$!
	limit=$((${dur%.*} + FAULTS_GRACE))
	while kill -0 "$pid" 2> /dev/null; do
		if [ "$waited" -eq "$limit" ]; then
			echo "$name: snp-kvmsim still running ${limit}s after start: SIGTERM" \
				>> "$SIMENV_DIR/$name.notes"
			kill -TERM "$pid" 2> /dev/null
		elif [ "$waited" -eq $((limit + FAULTS_GRACE / 2)) ]; then
			kill -TERM "$pid" 2> /dev/null
		elif [ "$waited" -ge $((limit + FAULTS_GRACE)) ]; then
			kill -KILL "$pid" 2> /dev/null
			break
		fi
		sleep 1
		waited=$((waited + 1))
	done
	wait "$pid" 2> /dev/null
	return 0
}

# Adds the counts of the finished run NAME to the scenario's totals.
faults_kvmsim_collect() { # NAME
	local name=$1 f=$SIMENV_DIR/$1.json v n
	F_RUNS=$((F_RUNS + 1))
	while read -r n; do [ -z "$n" ] || faults_note "$n"; done < "$SIMENV_DIR/$name.notes"
	if ! jq -e .totals "$f" > /dev/null 2>&1; then
		not_ok "$name: snp-kvmsim printed its summary"
		sed 's/^/# /' "$SIMENV_DIR/$name.err" | tail -20
		F_LOST=$((F_LOST + 1))
		faults_note "$name: snp-kvmsim gave no summary (lost counted 1)"
		return 1
	fi
	read -r -a v <<< "$(jq -r '.totals as $t | .kernel as $k | [$t.requests, $t.completed,
		$t.vmpck_wipes, $t.verify_failures + $t.msg_failures,
		([0, $t.requests - $t.completed - $t.vmpck_wipes - $t.abandoned] | max),
		$t.abandoned, $t.busy, $k.verdict_timeouts, $k.tx_dropped] | @tsv' "$f")"
	F_REQ=$((F_REQ + v[0])) F_DONE=$((F_DONE + v[1])) F_WIPES=$((F_WIPES + v[2]))
	F_VERIFY=$((F_VERIFY + v[3])) F_LOST=$((F_LOST + v[4])) F_ABANDONED=$((F_ABANDONED + v[5]))
	F_BUSY=$((F_BUSY + v[6])) F_TIMEOUTS=$((F_TIMEOUTS + v[7])) F_TXDROP=$((F_TXDROP + v[8]))
	echo "# $name: $(jq -c '{totals: (.totals | del(.p50_ms, .p99_ms)), kernel}' "$f")"
	grep -m5 -E 'VMPCK wiped|verification failed' "$SIMENV_DIR/$name.err" | sed 's/^/# /'
	return 0
}

faults_kvmsim() { # NAME DURATION ARGS...
	faults_kvmsim_run "$@"
	faults_kvmsim_collect "$1"
}

# The daemon must be alive now (it was not killed by the test since its start).
faults_alive() { # WHEN
	if [ -n "${SIMENV_DAEMON_PID:-}" ] && kill -0 "$SIMENV_DAEMON_PID" 2> /dev/null; then
		return 0
	fi
	F_CRASH=$((F_CRASH + 1))
	faults_note "daemon found dead $1"
	not_ok "daemon alive $1"
	SIMENV_DAEMON_PID=
	return 1
}

# The overload scenarios' timings: SCALE (FAULTS_SCALE, short 0.5, long 1) scales the guest
# driver (retry 2 s x SCALE, wipe after 60 s x SCALE); the daemon gets guest_retry_interval =
# 2 s x SCALE and busy_budget = half the guest's limit (the default 20 s is a third of it; at
# scale 0.5 a third would be below the ~10 s round of 1,000 VMs, and every VM would be over
# budget all the time), the defaults in the long run. Sets SCALE, budget_ms, retry_ms and
# SCALED_CONF (the daemon's INI lines).
faults_scaled_timings() {
	SCALE=${FAULTS_SCALE:-$(faults_pick 0.5 1)}
	budget_ms=$(awk -v s="$SCALE" 'BEGIN { printf "%d", (s == 1 ? 20000 : 30000 * s) }')
	retry_ms=$(awk -v s="$SCALE" 'BEGIN { printf "%d", 2000 * s }')
	SCALED_CONF=("[scheduler]" "busy_budget = ${budget_ms}ms" "guest_retry_interval = ${retry_ms}ms")
}

# SIGKILL to the daemon every 1..4 s (seeded by the run), a restart after 0.2..1.9 s, until 5 s
# before the end of a DUR-second load, and at least twice while the load (LOAD-PID) still runs
# (a slow machine, a sanitizer build: a restart may take most of the window); after each restart
# the optional hook (a function name) runs. Sets F_KILLS. A daemon that does not come back is a
# crash (and ends the loop).
faults_kill_loop() { # DUR LOAD-PID [HOOK]
	local start
	F_KILLS=0
	start=$(date +%s)
	RANDOM=$$
	while [ $(($(date +%s) - start)) -lt $(($1 - 5)) ] ||
		{ [ "$F_KILLS" -lt 2 ] && kill -0 "$2" 2> /dev/null; }; do
		sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
		faults_alive "before kill $((F_KILLS + 1))" || break
		kill -KILL "$SIMENV_DAEMON_PID"
		wait "$SIMENV_DAEMON_PID" 2> /dev/null
		SIMENV_DAEMON_PID=
		F_KILLS=$((F_KILLS + 1))
		sleep "$((RANDOM % 2)).$((2 + RANDOM % 8))"
		if ! simenv_start_daemon; then
			F_CRASH=$((F_CRASH + 1))
			faults_note "daemon did not restart after kill $F_KILLS"
			break
		fi
		[ -z "${3:-}" ] || "$3"
	done
}

# SIGTERM to the daemon: it must drain and exit 0 (anything else counts as a crash).
faults_stop_daemon() {
	faults_alive "before the final SIGTERM" || return 0
	simenv_stop_daemon TERM
	if [ "${SIMENV_DAEMON_RC:-1}" != 0 ]; then
		F_CRASH=$((F_CRASH + 1))
		faults_note "daemon exited $SIMENV_DAEMON_RC after SIGTERM"
	fi
}

faults_sanitizer_reports() {
	grep -c -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: UndefinedB' \
		"$SIMENV_DIR/daemon.log" 2> /dev/null || true
}

# The daemon's netlink port: the port id of its NETLINK_USERSOCK socket (protocol 2), found
# through the socket inodes of its file descriptors in /proc/net/netlink.
faults_daemon_nlport() {
	local inodes
	inodes=$(find "/proc/$SIMENV_DAEMON_PID/fd" -lname 'socket:*' -printf '%l\n' 2> /dev/null |
		sed 's/socket:\[\([0-9]*\)\]/\1/' | sort -u | tr '\n' ' ')
	awk -v want=" $inodes" 'NR > 1 && $2 == 2 && index(want, " " $NF " ") { print $3; exit }' \
		/proc/net/netlink
}

faults_metric() { # NAME-REGEX: the sum of matching samples on the metrics endpoint
	curl -sf "http://$SIMENV_METRICS/metrics" |
		awk -v re="$1" '$1 ~ re { s += $NF } END { printf "%d\n", s }'
}

# One zero-count target: DESCRIPTION COUNT WHY-NOTHING-RAN (empty when work ran).
faults_zero() {
	if [ -n "$3" ]; then
		not_ok "$1 (nothing to count: $3)"
	elif [ "$2" = 0 ]; then
		ok "$1"
	else
		not_ok "$1 ($2)"
	fi
}

# Checks the targets, writes the result and ends the TAP stream (replaces lib.sh's trap).
faults_finish() {
	local san notes
	san=$(faults_sanitizer_reports)
	if [ "${san:-0}" -gt 0 ]; then
		F_CRASH=$((F_CRASH + san))
		faults_note "$san sanitizer report(s) in the daemon log"
		grep -m3 -A8 -E 'Sanitizer|runtime error:' "$SIMENV_DIR/daemon.log" | diag
	fi
	# A zero only means something when work ran: no snp-kvmsim summary, no request started or
	# none completed fails every zero-count check (with the reason) instead of passing it.
	local idle=
	if [ "$F_RUNS" -eq 0 ]; then
		idle="no snp-kvmsim run was collected"
	elif [ "$F_REQ" -eq 0 ]; then
		idle="no guest request was started in $F_RUNS run(s)"
	elif [ "$F_DONE" -eq 0 ]; then
		idle="none of $F_REQ guest requests completed"
	fi
	[ -z "$idle" ] || faults_note "zero counts not judged: $idle"
	faults_zero "zero VMPCK wipes" "$F_WIPES" "$idle"
	faults_zero "zero verification failures" "$F_VERIFY" "$idle"
	faults_zero "zero requests lost" "$F_LOST" "$idle"
	faults_zero "zero daemon crashes" "$F_CRASH" "$idle"
	faults_extra abandoned "$F_ABANDONED"
	faults_extra busy "$F_BUSY"
	faults_extra verdict_timeouts "$F_TIMEOUTS"
	faults_extra tx_dropped "$F_TXDROP"
	notes=$(printf '%s\n' "${F_NOTES[@]}" | jq -R . | jq -sc 'map(select(length > 0))')
	jq -nc --arg s "$FAULTS_NAME" --argjson long "$FAULTS_LONG" --argjson req "$F_REQ" \
		--argjson done "$F_DONE" --argjson w "$F_WIPES" --argjson v "$F_VERIFY" \
		--argjson l "$F_LOST" --argjson c "$F_CRASH" --argjson runs "$F_RUNS" \
		--argjson x "$F_EXTRA" --argjson n "$notes" --argjson failed "$tap_failed" \
		'{scenario: $s, long: ($long == 1), requests: $req, completed: $done, wipes: $w,
		  verify_failures: $v, lost: $l, crashes: $c, kvmsim_runs: $runs,
		  checks_failed: ($failed != 0), extra: $x, notes: $n}' > "$SIMENV_DIR/result.json"
	echo "# result: $(cat "$SIMENV_DIR/result.json")"
	[ -z "${FAULTS_RESULT:-}" ] || cp "$SIMENV_DIR/result.json" "$FAULTS_RESULT"
	it_finish
}
trap faults_finish EXIT
