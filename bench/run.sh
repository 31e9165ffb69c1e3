#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh: runs every benchmark of design §10 against an existing build tree, then
# bench/report.py writes RESULTS/<name>.json, RESULTS/summary.txt and the plots and prints the
# table. Usage: run.sh --build DIR --results DIR [--quick] [--keep] [--only "NAME..."]
# [--sizes "N..."] [--settle S] (bench/run builds first; --only runs some of overhead psp scale
# sched fairness startup vmm; --sizes replaces the fleet sizes of scale and sched, e.g. --sizes
# 10000; --settle replaces the scale step's wait between adding the VMs and measuring)
# Raw figures go to a work directory; nothing here asserts a speed: the exit status is non-zero
# only when a benchmark could not run.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=
QUICK=0
OUT=
KEEP=0
ONLY=
SIZES=
SETTLE=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--results) OUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--only) ONLY=" $2 "; shift 2 ;;
	--sizes) SIZES=$2; shift 2 ;;
	--settle) SETTLE=$2; shift 2 ;;
	-h | --help)
		sed -n "3,10p" "$0"
		exit 0
		;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$BUILD" ] || { echo "run.sh: --build DIR is required" >&2; exit 2; }
[ -n "$OUT" ] || { echo "run.sh: --results DIR is required" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd) || exit 2
for t in jq python3 curl; do
	command -v "$t" > /dev/null || { echo "run.sh: $t is needed" >&2; exit 2; }
done

# Durations (seconds) and sizes. --quick is the smoke configuration: every benchmark runs,
# briefly and small; its figures mean little.
if [ "$QUICK" = 1 ]; then
	T_LOAD=1 OVH_REPS=1 PSP_REPS=1 T_PSP=2 T_IDLE=0.5 T_SCALE=1 SCALE_RATE=1000 T_FAIR=2 STARTUP_RUNS=2
	SCALE_SIZES="10 100 1000 10000" FAIR_QUIET=7 SCHED_ITERS=20000 SCHED_ROUNDS=1 SCALE_LAT_REPS=1
	SCALE_SETTLE=0.5 VMM_REPS=1
else
	T_LOAD=3 OVH_REPS=5 PSP_REPS=5 T_PSP=8 T_IDLE=3 T_SCALE=5 SCALE_RATE=5000 T_FAIR=20 STARTUP_RUNS=9
	SCALE_SIZES="10 100 1000 10000" FAIR_QUIET=15 SCHED_ITERS=1000000 SCHED_ROUNDS=7 SCALE_LAT_REPS=7
	SCALE_SETTLE=1 VMM_REPS=7
fi
[ -z "$SIZES" ] || SCALE_SIZES=$SIZES
[ -z "$SETTLE" ] || SCALE_SETTLE=$SETTLE
LOAD_VMS=64
# The VMM socket: VMs (one thread and libsnpattest handle each) asking back to back.
VMM_VMS=16
# Fairness load: the quiet VMs together ask FAIR_RATE requests/s, evenly spaced and handed out
# round robin (snp-kvmsim --total-rate), i.e. one request every 1/FAIR_RATE = 25 ms: longer
# than one PSP slot (~8 ms), so quiet VMs do not queue behind each other; PSP utilisation from
# the quiet load is FAIR_RATE x 8 ms = 0.32. Each quiet VM asks FAIR_RATE/N per second, under
# the quota (rate 5, burst 5) that the FLOODERS flooding VMs (FLOOD_RATE/s each) exceed; a
# flooder answered BUSY waits the driver's 2 s before its re-send, as a Linux guest does.
FAIR_RATE=40 FLOOD_RATE=200 FLOODERS=2

export SIMENV_BUILD=$BUILD SIMENV_QUIET=1
SIMENV_DIR=$(mktemp -d /tmp/snp-bench.XXXXXX)
SIMENV_SEED_STATE=$BUILD/bench/seed-state
SIMENV_METRICS=127.0.0.1:$((20000 + ($$ % 20000)))
# shellcheck source=../scripts/lib/simenv.sh
. "$SRC/scripts/lib/simenv.sh"
R=$SIMENV_DIR/raw
mkdir -p "$R"
FAILED=()
BG=()

log() { echo "bench: $*" >&2; }

finish() {
	local p
	for p in "${BG[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	simenv_cleanup
	if [ "$KEEP" = 1 ] || [ ${#FAILED[@]} -gt 0 ]; then
		log "work directory kept: $SIMENV_DIR"
	else
		rm -rf "$SIMENV_DIR"
	fi
}
trap finish EXIT

# CPU time (ns) a live process has run, all threads (/proc/PID/task/*/schedstat, field 1).
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
mem_kib() { # PID FIELD (VmRSS, VmHWM)
	awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status
}
scrape() { # FILE: the daemon's /metrics
	curl -sf --max-time 2 "http://$SIMENV_METRICS/metrics" > "$1"
}

# A load generator run: snp-kvmsim with its CPU time. NAME PORT kvmsim-args...
kvmsim_run() {
	local name=$1 port=$2
	shift 2
	/usr/bin/time -f '{"user_s":%U,"sys_s":%S,"wall_s":%e,"maxrss_kib":%M}' \
		-o "$R/$name.kvmsim-time.json" \
		"$(simenv_bin snp-kvmsim)" --state "$SIMENV_STATE" --port "$port" --quiet \
		--wait-broker 10 --json "$@" > "$R/$name.kvmsim.json" 2> "$R/$name.kvmsim.err"
	local rc=$?
	if ! jq -e '.totals' "$R/$name.kvmsim.json" > /dev/null 2>&1; then
		log "$name: snp-kvmsim produced no summary (exit $rc)"
		cat "$R/$name.kvmsim.err" >&2
		return 1
	fi
	echo "$rc" > "$R/$name.kvmsim.rc"
}

# The daemon with a benchmark configuration (extra INI lines), fresh each time.
daemon_start() {
	simenv_stop_daemon
	simenv_write_conf "$@"
	simenv_start_daemon
}

# With the daemon running: kvmsim-args... -> daemon CPU and metrics around one run.
daemon_run() {
	local name=$1 c0 c1
	shift
	c0=$(cpu_ns "$SIMENV_DAEMON_PID")
	kvmsim_run "$name" "$SIMENV_PORT" "$@" || return 1
	c1=$(cpu_ns "$SIMENV_DAEMON_PID")
	scrape "$R/$name.metrics" || : > "$R/$name.metrics"
	printf '{"cpu_ns":%s,"rss_kib":%s,"hwm_kib":%s}\n' "$((c1 - c0))" \
		"$(mem_kib "$SIMENV_DAEMON_PID" VmRSS)" "$(mem_kib "$SIMENV_DAEMON_PID" VmHWM)" \
		> "$R/$name.peer.json"
}

# The floor peer (every caller passes bench/bench-null) on its own port, then kvmsim against it.
floor_run() { # NAME PORT PEER-COMMAND... -- kvmsim-args...
	local name=$1 port=$2 pid c0 c1 peer=()
	shift 2
	while [ "$1" != -- ]; do peer+=("$1"); shift; done
	shift
	"${peer[@]}" > "$R/$name.peer-out.json" 2> "$R/$name.peer.err" &
	pid=$!
	BG+=("$pid")
	sleep 0.2
	c0=$(cpu_ns "$pid")
	kvmsim_run "$name" "$port" "$@"
	local rc=$?
	c1=$(cpu_ns "$pid")
	printf '{"cpu_ns":%s}\n' "$((c1 - c0))" > "$R/$name.peer.json"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}

run_step() { # NAME FUNCTION: a benchmark that could not run is recorded, the others go on
	if [ -n "$ONLY" ] && [ "$1" != platform ] && [[ $ONLY != *" $1 "* ]]; then
		return 0
	fi
	log "running $1"
	if ! "$2"; then
		log "$1 could not run"
		FAILED+=("$1")
	fi
}

# --- the platform: KDS simulator, chain, state (seeded once per build tree) ---
platform() {
	mkdir -p "$(dirname "$SIMENV_SEED_STATE")"
	(
		flock 9
		if [ ! -e "$SIMENV_SEED_STATE/state" ]; then
			SIMENV_DIR=$(mktemp -d /tmp/snp-bench-seed.XXXXXX)
			simenv_init
			simenv_start_kds && cp -a "$SIMENV_STATE" "$SIMENV_SEED_STATE.tmp" &&
				mv "$SIMENV_SEED_STATE.tmp" "$SIMENV_SEED_STATE"
			simenv_cleanup
			rm -rf "$SIMENV_DIR"
		fi
	) 9> "$BUILD/bench/seed.lock"
	simenv_init
	simenv_start_kds && simenv_fetch_certs
}

# Quota and slots that never limit: the load runs measure the daemon's path, not the policy's
# decisions (slots: PSP free, so the simulated driver's queue is never the limit).
FREE_CONF=("[scheduler]" "psp_concurrency = 64" "[quota]" "rate = 1000000" "burst = 1000000"
	"[certs]" "vmm_certs_file = $SIMENV_DIR/vmm-certs.bin")

# 1. Overhead with the PSP modelled as free (--load): the floor (bench-null) and the daemon
# alternate OVH_REPS times on one transport, same VMs and outstanding requests (64 VMs back to
# back, one request each outstanding); report.py takes the median of each and the spread.
bench_overhead() {
	local load=(--load --vms "$LOAD_VMS" --rate 0 --duration "$T_LOAD") i table=()
	# The daemon writes the VMM certificate table bench-null serves: start it once first.
	daemon_start "${FREE_CONF[@]}" || return 1
	simenv_stop_daemon
	[ -s "$SIMENV_DIR/vmm-certs.bin" ] && table=(--table "$SIMENV_DIR/vmm-certs.bin")
	[ ${#table[@]} -gt 0 ] || log "no VMM certificate file: bench-null serves no table"
	for ((i = 1; i <= OVH_REPS; i++)); do
		floor_run "floor-$i" $((SIMENV_PORT + 2)) \
			"$BUILD/bench/bench-null" --port $((SIMENV_PORT + 2)) ${table[@]+"${table[@]}"} \
			-- "${load[@]}" || return 1
		daemon_start "${FREE_CONF[@]}" || return 1
		daemon_run "daemon-$i" "${load[@]}" || return 1
		simenv_stop_daemon
	done
}

# 1b. Against the simulated PSP's report time (real cryptography, 8 ms per report), default
# scheduler settings with quota that does not refuse. PSP_REPS runs, each on a fresh daemon
# (report.py takes the median: at ~70 requests/s the daemon's CPU is a few milliseconds a
# second, so one run is exposed to whatever else the machine does).
# The daemon's CPU while idle (no VMs, registered) is measured first over T_IDLE seconds, so
# that its share of the per-request figure is visible.
bench_psp() {
	local c0 c1 i
	for ((i = 1; i <= PSP_REPS; i++)); do
		daemon_start "[quota]" "rate = 100" "burst = 100" || return 1
		sleep 0.5
		c0=$(cpu_ns "$SIMENV_DAEMON_PID")
		sleep "$T_IDLE"
		c1=$(cpu_ns "$SIMENV_DAEMON_PID")
		printf '{"cpu_ns":%s,"seconds":%s}\n' "$((c1 - c0))" "$T_IDLE" > "$R/daemon-idle-$i.json"
		daemon_run "daemon-psp-$i" --vms 16 --rate 5 --duration "$T_PSP" || return 1
	done
}

# 2. Scale: the same aggregate rate (SCALE_RATE/s, snp-kvmsim --total-rate) from each fleet
# size, a fresh daemon each time: CPU per request, VmRSS during the run, VmHWM, latency (and
# the floor's latency at the same size and rate, for the generator's own share). CPU
# per request is taken in the steady state too: daemon CPU and its GUEST_REQ counter read at
# two instants inside the run (after the fleet's VM_ADDs, before its VM_REMOVEs).
# GUEST_REQs the daemon has received (snpctl status: O(1) on the daemon's loop, unlike a
# /metrics render, which walks every VM and at 10,000 VMs holds the loop for milliseconds: a
# scrape inside a latency run would put that stall into the daemon's p99, and the floor has no
# such probe).
guest_reqs() {
	simenv_snpctl status --json 2> /dev/null | jq -e '.stats.guest_reqs'
}
# NAME SETTLE WINDOW: from the first GUEST_REQ + SETTLE s, for WINDOW s: daemon CPU and
# GUEST_REQs received in the window. The daemon is read only through the control socket here.
steady_probe() {
	local a b i ra rb
	for ((i = 0; i < 600; i++)); do
		ra=$(guest_reqs) && [ "$ra" -gt 0 ] && break
		sleep 0.05
	done
	sleep "$2"
	a=$(cpu_ns "$SIMENV_DAEMON_PID")
	ra=$(guest_reqs) || ra=null
	mem_kib "$SIMENV_DAEMON_PID" VmRSS > "$R/$1.during-rss"
	sleep "$3"
	b=$(cpu_ns "$SIMENV_DAEMON_PID")
	rb=$(guest_reqs) || rb=null
	printf '{"cpu_ns":%s,"settle_s":%s,"window_s":%s,"guest_reqs_a":%s,"guest_reqs_b":%s}\n' \
		"$((b - a))" "$2" "$3" "$ra" "$rb" > "$R/$1.steady.json"
}

bench_scale() {
	local n probe settle window table=() fleet
	# Every scale run first adds its N VMs and then waits SCALE_SETTLE seconds before the first
	# request (snp-kvmsim --settle; the run's duration counts from there): the floor takes the
	# burst of VM_ADDs for free, while the daemon's requests in the first ~0.2 s after 10,000 of
	# them were slow enough to double its p99 (set-up, not turnaround; bench/RESULTS.md, "What
	# made the tail"). The quick configuration needs it too: its 1 s runs would otherwise end
	# before the largest fleet is set up.
	# The floor serves the daemon's certificate table, as in the overhead step, so that both
	# answer the same requests the same way (extended requests with too small a buffer get
	# INVALID_LEN from both); with --only scale the daemon has not written it yet.
	if [ ! -s "$SIMENV_DIR/vmm-certs.bin" ]; then
		daemon_start "${FREE_CONF[@]}" || return 1
		simenv_stop_daemon
	fi
	[ -s "$SIMENV_DIR/vmm-certs.bin" ] && table=(--table "$SIMENV_DIR/vmm-certs.bin")
	[ ${#table[@]} -gt 0 ] || log "no VMM certificate file: bench-null serves no table"
	settle=$(awk -v t="$T_SCALE" 'BEGIN { print 0.2 * t }')
	window=$(awk -v t="$T_SCALE" 'BEGIN { print 0.6 * t }')
	for n in $SCALE_SIZES; do
		fleet=(--load --vms "$n" --total-rate "$SCALE_RATE" --settle "$SCALE_SETTLE")
		daemon_start "${FREE_CONF[@]}" || return 1
		steady_probe "scale-$n" "$settle" "$window" &
		probe=$!
		daemon_run "scale-$n" "${fleet[@]}" --duration "$T_SCALE" || return 1
		wait "$probe"
		simenv_stop_daemon
		# The floor at the same size and rate: how much of the latency is the generator's.
		floor_run "scale-floor-$n" $((SIMENV_PORT + 2)) \
			"$BUILD/bench/bench-null" --port $((SIMENV_PORT + 2)) ${table[@]+"${table[@]}"} \
			-- "${fleet[@]}" --duration "$T_SCALE" || return 1
	done
	# Latency at the largest size, daemon against floor (design §10: p99 within 1.3x): the
	# runs above carry the steady-state probe (snpctl and jq processes during the daemon's run
	# only) and are one run each, exposed to whatever else the machine does meanwhile. Here
	# daemon and floor alternate SCALE_LAT_REPS times with nothing else of ours running, and
	# report.py compares the medians.
	for ((i = 1; i <= SCALE_LAT_REPS; i++)); do
		daemon_start "${FREE_CONF[@]}" || return 1
		daemon_run "scale-lat-$n-$i" "${fleet[@]}" --duration "$T_SCALE" || return 1
		simenv_stop_daemon
		floor_run "scale-lat-floor-$n-$i" $((SIMENV_PORT + 2)) \
			"$BUILD/bench/bench-null" --port $((SIMENV_PORT + 2)) ${table[@]+"${table[@]}"} \
			-- "${fleet[@]}" --duration "$T_SCALE" || return 1
	done
}

bench_sched() {
	"$BUILD/bench/bench-sched" --vms "$(echo $SCALE_SIZES | tr ' ' ,)" --iterations "$SCHED_ITERS" \
		--rounds "$SCHED_ROUNDS" > "$R/sched.json"
}

# 3. Fairness: FAIR_QUIET quiet VMs (paced, see FAIR_RATE) alone, then the same quiet load with
# FLOODERS flooding VMs (the first vm ids), default slots (1), a fresh daemon for each phase so
# that each phase's figures are its own. /metrics is sampled every 110 ms: the per-VM series
# come from the last sample that has them (the daemon drops a VM's series at VM_REMOVE; the
# VMs linger 0.6 s after the run), and PSP idle while a request waited is sampled when the
# daemon has no counter for it.
# /metrics every 110 ms into $R/NAME.sample.N, in the background: prints its pid (a child of
# the command substitution, so sampler_stop kills it; wait only reaps what it can).
sampler_start() { # NAME
	(
		i=0
		while :; do
			scrape "$R/$1.sample.$i" 2>/dev/null || rm -f "$R/$1.sample.$i"
			i=$((i + 1))
			sleep 0.11
		done
	) > /dev/null &
	echo $!
}
sampler_stop() { # PID
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

fair_phase() { # NAME kvmsim-args...
	local name=$1 sampler
	shift
	daemon_start "[quota]" "rate = 5" "burst = 5" || return 1
	sampler=$(sampler_start "$name")
	BG+=("$sampler")
	daemon_run "$name" "$@"
	local rc=$?
	sampler_stop "$sampler"
	simenv_stop_daemon
	return $rc
}

bench_fairness() {
	# --linger: the VMs stay 0.6 s after the run, so that samples hold their complete per-VM
	# series (the daemon drops a VM's series with its VM_REMOVE).
	fair_phase fair-base --vms "$FAIR_QUIET" --total-rate "$FAIR_RATE" --duration "$T_FAIR" \
		--linger 0.6 &&
		fair_phase fairness --vms $((FAIR_QUIET + FLOODERS)) --noisy "$FLOODERS" \
			--noisy-rate "$FLOOD_RATE" \
			--total-rate "$FAIR_RATE" --duration "$T_FAIR" --linger 0.6
}

# 4. Start-up: time to READY=1 with a warm cache and the KDS unreachable, against the daemon's
# own --check-config run. The daemon fetches its chain from the simulated KDS once (KDS mode,
# no certificate directory) to warm the cache, then starts STARTUP_RUNS times with the KDS URL
# pointing at a closed port.
bench_startup() {
	local kds=$SIMENV_KDS_URL
	simenv_stop_daemon
	simenv_write_conf
	sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
	simenv_start_daemon || return 1
	simenv_snpctl status --json > "$R/startup.warm-status.json" 2>/dev/null
	simenv_stop_daemon
	SIMENV_KDS_URL=http://127.0.0.1:9 simenv_write_conf
	sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
	python3 "$HERE/startup.py" --daemon "$(simenv_bin snp-attestd)" --config "$SIMENV_CONF" \
		--runs "$STARTUP_RUNS" > "$R/startup.json"
	local rc=$?
	# Was the chain served from the cache with the KDS down? Ask a daemon started the same way.
	simenv_start_daemon && simenv_snpctl status --json > "$R/startup.status.json" 2>/dev/null
	simenv_stop_daemon
	SIMENV_KDS_URL=$kds
	return $rc
}

# 5. The VMM socket (Linux 7.0 path): bench-vmm (VMM_VMS VMs, one libsnpattest handle each,
# asking back to back: request_certs, done) against a do-nothing peer on the same socket type
# (tests/libsnpattest/vmm-test-server: ALLOW with the daemon's table to every CERTS) and
# against the daemon (quota and slots that never limit), alternating VMM_REPS times; then the
# fairness load of 3. as an upstream-mode fleet (snp-kvmsim --kernel upstream), its per-VM
# admissions sampled from /metrics (VMM-socket VMs are named in snp_attestd_vmm_vm_info).
bench_vmm() {
	local i c0 c1 srv sampler table=$SIMENV_DIR/vmm-certs.bin null=$SIMENV_DIR/vmm-null.sock
	if [ ! -s "$table" ]; then
		daemon_start "${FREE_CONF[@]}" || return 1
		simenv_stop_daemon
	fi
	for ((i = 1; i <= VMM_REPS; i++)); do
		rm -f "$null"
		"$BUILD/tests/libsnpattest/vmm-test-server" "$null" allow "$table" \
			> "$R/vmm-floor-$i.server.out" 2>&1 &
		srv=$!
		BG+=("$srv")
		for ((c0 = 0; c0 < 500; c0++)); do
			grep -q ready "$R/vmm-floor-$i.server.out" 2> /dev/null && break
			sleep 0.01
		done
		c0=$(cpu_ns "$srv")
		"$BUILD/bench/bench-vmm" --socket "$null" --vms "$VMM_VMS" --duration "$T_LOAD" \
			> "$R/vmm-floor-$i.json" || return 1
		c1=$(cpu_ns "$srv")
		kill -TERM "$srv" 2> /dev/null
		wait "$srv" 2> /dev/null
		printf '{"cpu_ns":%s}\n' "$((c1 - c0))" > "$R/vmm-floor-$i.peer.json"
		daemon_start "${FREE_CONF[@]}" || return 1
		c0=$(cpu_ns "$SIMENV_DAEMON_PID")
		"$BUILD/bench/bench-vmm" --socket "$SIMENV_VMM_SOCK" --vms "$VMM_VMS" \
			--duration "$T_LOAD" > "$R/vmm-daemon-$i.json" || return 1
		c1=$(cpu_ns "$SIMENV_DAEMON_PID")
		printf '{"cpu_ns":%s}\n' "$((c1 - c0))" > "$R/vmm-daemon-$i.peer.json"
		simenv_stop_daemon
	done
	daemon_start "[quota]" "rate = 5" "burst = 5" || return 1
	sampler=$(sampler_start vmm-fair)
	BG+=("$sampler")
	"$(simenv_bin snp-kvmsim)" --state "$SIMENV_STATE" --quiet --json --kernel upstream \
		--vmm-socket "$SIMENV_VMM_SOCK" --vms $((FAIR_QUIET + FLOODERS)) --noisy "$FLOODERS" \
		--noisy-rate "$FLOOD_RATE" --total-rate "$FAIR_RATE" --duration "$T_FAIR" \
		--linger 0.6 > "$R/vmm-fair.kvmsim.json" 2> "$R/vmm-fair.kvmsim.err"
	local rc=$?
	sampler_stop "$sampler"
	simenv_stop_daemon
	jq -e .totals "$R/vmm-fair.kvmsim.json" > /dev/null 2>&1 || { log "vmm-fair: rc $rc"; return 1; }
}

LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
run_step platform platform || { log "the simulated platform did not start"; exit 1; }
run_step overhead bench_overhead
run_step psp bench_psp
run_step scale bench_scale
run_step sched bench_sched
run_step fairness bench_fairness
run_step startup bench_startup
run_step vmm bench_vmm
simenv_stop_daemon

LOAD_AFTER=$(cut -d" " -f1 /proc/loadavg)
COMMIT=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)
QUICK_JSON=false
[ "$QUICK" = 1 ] && QUICK_JSON=true
FAILED_JSON=$(printf '%s\n' ${FAILED[@]+"${FAILED[@]}"} | jq -R . | jq -sc 'map(select(. != ""))')
jq -n --argjson la "[$LOAD_BEFORE,$LOAD_AFTER]" --argjson quick "$QUICK_JSON" \
	--argjson sizes "[$(echo $SCALE_SIZES | tr ' ' ,)]" --arg commit "$COMMIT" \
	--arg host "$(uname -r)" --argjson cpus "$(nproc)" \
	--argjson failed "$FAILED_JSON" \
	--argjson n "$(printf '{"load_vms":%s,"overhead_reps":%s,"psp_reps":%s,"scale_rate":%s,"fair_quiet":%s,
		"fair_rate":%s,"flood_rate":%s,"flooders":%s,"startup_runs":%s,"scale_lat_reps":%s,"vmm_reps":%s}' \
		"$LOAD_VMS" "$OVH_REPS" "$PSP_REPS" "$SCALE_RATE" "$FAIR_QUIET" "$FAIR_RATE" \
		"$FLOOD_RATE" "$FLOODERS" "$STARTUP_RUNS" "$SCALE_LAT_REPS" "$VMM_REPS")" \
	'{loadavg: $la, quick: $quick, scale_sizes: $sizes, commit: $commit, host: $host,
	  cpus: $cpus, failed: $failed} + $n' > "$R/run.json"
python3 "$HERE/report.py" "$R" --results "$OUT" || FAILED+=(report)
[ ${#FAILED[@]} -eq 0 ]
