#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The metrics endpoint end to end: snp-attestd on the simulated platform (backend=sim,
# transport=usersock) with snp-kvmsim as the kernel and its guests, /metrics fetched with curl
# and checked by promtool, a real Prometheus scraping it and answering a query for a counter
# the fleet moved, per-VM series removed when the VMs go, HTTP errors, a bad address refused,
# and systemd socket activation. Prints TAP.
# Usage: metrics.sh SNP_ATTESTD SNP_KVMSIM
set -u
attestd=$1
kvmsim=$2

for tool in curl jq promtool prometheus python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool not installed (scripts/setup)"
		exit 0
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/metrics-test.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # description, command...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
diag() { sed 's/^/# /' "$@" | tail -n 30; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Polls a shell condition every 0.2 s, up to $1 seconds (waiting, not a timed assertion).
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 5; i++)); do
		if "$@"; then return 0; fi
		sleep 0.2
	done
	return 1
}

# A netlink port id of our own, so parallel tests with their own simulator do not collide.
nlport=$((0x40000000 + (RANDOM << 15) + RANDOM + $$ % 1000))
mport=$(free_port)
pport=$(free_port)
base="http://127.0.0.1:$mport"

write_conf() { # file, metrics listen value
	cat >"$1" <<EOF
[daemon]
backend = sim
sim_state_dir = $tmp/sim
state_dir = $tmp/state
cache_dir = $tmp/cache
transport = usersock
usersock_port = $nlport
log_level = info
[control]
socket = $tmp/ctl-$(basename "$1").sock
[metrics]
listen = $2
EOF
}

echo "1..14"

# The simulated platform (state, chip, KDS keys): a one-guest run without a broker creates it.
"$kvmsim" --state "$tmp/sim" --product milan --vms 1 --requests 1 --no-broker --quiet \
	--port $((nlport + 1)) >"$tmp/create.out" 2>&1
check "simulation state created" test -e "$tmp/sim/state"

write_conf "$tmp/bad.conf" "localhost:9477"
"$attestd" -c "$tmp/bad.conf" >"$tmp/bad.log" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "\[metrics\] listen: 'localhost:9477' is not ADDRESS:PORT" "$tmp/bad.log"; then
	ok "a non-numeric listen address is refused with a clear error"
else
	not_ok "a non-numeric listen address is refused with a clear error (rc $rc)"
	diag "$tmp/bad.log"
fi

write_conf "$tmp/d.conf" "127.0.0.1:$mport"
"$attestd" -c "$tmp/d.conf" >"$tmp/daemon.log" 2>&1 &
dpid=$!
pids+=("$dpid")
if wait_for 20 curl -sf -o /dev/null "$base/metrics"; then
	ok "the daemon serves /metrics on 127.0.0.1:$mport"
else
	not_ok "the daemon serves /metrics on 127.0.0.1:$mport"
	diag "$tmp/daemon.log"
fi

ctype=$(curl -s -o "$tmp/idle.txt" -w '%{content_type}' "$base/metrics")
if [ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] &&
	promtool check metrics <"$tmp/idle.txt" >"$tmp/promtool-idle.out" 2>&1; then
	ok "idle output has the exposition content type and passes promtool check metrics"
else
	not_ok "idle output has the exposition content type and passes promtool check metrics ($ctype)"
	diag "$tmp/promtool-idle.out"
fi

code404=$(curl -s -o /dev/null -w '%{http_code}' "$base/nope")
code405=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x=1 "$base/metrics")
check "unknown path is 404, POST is 405 (got $code404, $code405)" \
	test "$code404" = 404 -a "$code405" = 405

# A real Prometheus scraping the daemon every second.
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: snp-attestd
    static_configs:
      - targets: ['127.0.0.1:$mport']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")

# The simulated fleet: 70 guests (more than the 64 with their own series) for 4 s at 2
# requests per second each.
"$kvmsim" --state "$tmp/sim" --vms 70 --duration 4 --rate 2 --wait-broker 10 --port "$nlport" \
	--json --quiet >"$tmp/fleet.json" 2>"$tmp/fleet.err" &
kpid=$!
pids+=("$kpid")

vm_series() { # file: number of per-VM request series with a numeric vm label
	grep -c '^snp_attestd_guest_requests_total{vm="[0-9]*",type="report"}' "$1"
}
live_with_vms() {
	curl -s "$base/metrics" >"$tmp/live.txt" &&
		grep -q '^snp_attestd_vms 70$' "$tmp/live.txt" &&
		[ "$(vm_series "$tmp/live.txt")" = 64 ] &&
		grep -q '^snp_attestd_vms_in_other_series 6$' "$tmp/live.txt" &&
		grep -q '^snp_attestd_guest_requests_total{vm="other",type="report"} ' "$tmp/live.txt"
}
if wait_for 20 live_with_vms; then
	ok "during the run: 70 VMs, 64 with their own series, 6 summed into vm=\"other\""
else
	not_ok "during the run: 70 VMs, 64 with their own series, 6 summed into vm=\"other\""
	diag "$tmp/live.txt"
fi
check "output with live VMs passes promtool check metrics" \
	promtool check metrics <"$tmp/live.txt"

# Per-VM admission wait histograms agree with the per-VM admission counters of the same render:
# _count = +Inf bucket = snp_attestd_admitted_total for every VM series, "other" included.
# Every scrape must be consistent; scrapes are repeated (a short wait, not a timed assertion)
# until one shows an admitted request, since the first live scrape may come before any ALLOW.
wait_hist_consistent() { # file; exit 0 consistent and non-empty, 1 inconsistent, 2 empty
	awk '
	match($1, /^snp_attestd_admitted_total\{vm="[^"]*"\}$/) { adm[$1] = $2 }
	/^snp_attestd_vm_admission_wait_seconds_count\{/ { n++; cnt[$1] = $2; if ($2 > 0) pos++ }
	/^snp_attestd_vm_admission_wait_seconds_bucket\{.*le="\+Inf"\}/ { inf[$1] = $2 }
	END {
		if (n < 64) { print "# histograms: " n " (want at least 64)"; exit 1 }
		for (k in cnt) {
			a = k; sub(/^snp_attestd_vm_admission_wait_seconds_count/, "snp_attestd_admitted_total", a)
			i = k; sub(/_count\{/, "_bucket{", i); sub(/\}$/, ",le=\"+Inf\"}", i)
			if (!(a in adm) || adm[a] != cnt[k] || inf[i] != cnt[k]) {
				print "# mismatch " k "=" cnt[k] " " a "=" adm[a] " " i "=" inf[i]; exit 1
			}
		}
		if (pos < 1) exit 2
	}' "$1"
}
hist_scrape_ok() { # returns 0 once a scrape is consistent and non-empty; stops on a mismatch
	local rc=0
	curl -s "$base/metrics" >"$tmp/hist.txt" || return 1
	wait_hist_consistent "$tmp/hist.txt" || rc=$?
	case $rc in
	0) return 0 ;;
	2) return 1 ;;
	*) hist_bad=1; return 0 ;;
	esac
}
hist_all_ok() {
	local rc=0
	wait_hist_consistent "$tmp/live.txt" || rc=$? # the first live scrape: may be empty
	[ $rc != 1 ] && wait_for 10 hist_scrape_ok && [ $hist_bad = 0 ] &&
		wait_hist_consistent "$tmp/hist.txt"
}
hist_bad=0
if hist_all_ok; then
	ok "per-VM admission wait histograms (65 series) match the admission counters"
else
	not_ok "per-VM admission wait histograms (65 series) match the admission counters"
	diag "$tmp/hist.txt"
fi

wait "$kpid"
krc=$?
completed=$(jq -r '.totals.completed // 0' "$tmp/fleet.json" 2>/dev/null || echo 0)
wipes=$(jq -r '.totals.vmpck_wipes // 1' "$tmp/fleet.json" 2>/dev/null || echo 1)
if [ $krc -eq 0 ] && [ "$completed" -gt 0 ] && [ "$wipes" = 0 ]; then
	ok "the fleet completed $completed requests without a key wipe"
else
	not_ok "the fleet completed requests without a key wipe (rc $krc, completed $completed)"
	diag "$tmp/fleet.err"
fi

curl -s "$base/metrics" >"$tmp/after.txt"
received=$(awk '$1 == "snp_attestd_guest_requests_received_total" { print $2 }' "$tmp/after.txt")
allowed=$(awk '$1 == "snp_attestd_verdicts_total{verdict=\"allow\"}" { print $2 }' "$tmp/after.txt")
if [ -n "$received" ] && [ "$received" -ge "$completed" ] && [ "${allowed:-0}" -ge "$completed" ]; then
	ok "counters moved: $received requests received, $allowed allowed, for $completed completed"
else
	not_ok "counters moved (received '$received', allowed '$allowed', completed $completed)"
fi

# The simulator's last VM_REMOVEs may still be in flight when it exits: poll briefly.
series_gone() {
	curl -s "$base/metrics" >"$tmp/after.txt" &&
		grep -q '^snp_attestd_vms 0$' "$tmp/after.txt" &&
		[ "$(vm_series "$tmp/after.txt")" = 0 ] && ! grep -q '{vm="[0-9]' "$tmp/after.txt"
}
if wait_for 10 series_gone; then
	ok "per-VM series are gone once the VMs were removed"
else
	not_ok "per-VM series are gone once the VMs were removed"
	grep '{vm=' "$tmp/after.txt" | head -n 5 | sed 's/^/# /'
fi

# Prometheus must have scraped the moved counter: ask its HTTP API.
query_ok() {
	curl -s "http://127.0.0.1:$pport/api/v1/query" \
		--data-urlencode 'query=snp_attestd_guest_requests_received_total{job="snp-attestd"}' \
		>"$tmp/query.json" &&
		jq -e --argjson want "$received" \
			'.status == "success" and (.data.result | length == 1) and
			 (.data.result[0].value[1] | tonumber) == $want' "$tmp/query.json" >/dev/null
}
if [ -n "$received" ] && wait_for 30 query_ok; then
	ok "Prometheus answers snp_attestd_guest_requests_received_total = $received"
else
	not_ok "Prometheus answers snp_attestd_guest_requests_received_total = $received"
	diag "$tmp/query.json"
	diag "$tmp/prometheus.log"
fi

kill -TERM "$dpid"
wait "$dpid"
check "the daemon stops cleanly on SIGTERM" test $? -eq 0

# Socket activation: systemd passes a listening socket named "metrics"; the configured address
# (a port nobody listens on) is then ignored.
if command -v systemd-socket-activate >/dev/null; then
	aport=$(free_port)
	write_conf "$tmp/act.conf" "127.0.0.1:$(free_port)"
	systemd-socket-activate -l "127.0.0.1:$aport" --fdname=metrics \
		"$attestd" -c "$tmp/act.conf" >"$tmp/act.log" 2>&1 &
	pids+=("$!")
	if wait_for 20 curl -sf -o "$tmp/act.txt" "http://127.0.0.1:$aport/metrics" &&
		grep -q '^snp_attestd_build_info{version=' "$tmp/act.txt"; then
		ok "socket activation: metrics served on systemd's socket"
	else
		not_ok "socket activation: metrics served on systemd's socket"
		diag "$tmp/act.log"
	fi
else
	ok "# SKIP systemd-socket-activate not installed"
fi

exit $((fails > 0))
