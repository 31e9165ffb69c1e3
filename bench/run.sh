#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/run.sh: runs every benchmark of design §10 against an existing build tree and prints
# the table (bench/report.py). Usage: run.sh --build DIR [--quick] [--out FILE] [--keep]
# Raw figures go to a work directory; nothing here asserts a speed: the exit status is non-zero
# only when a benchmark could not run.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=
QUICK=0
OUT=
KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--out) OUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help)
		sed -n '3,6p' "$0"
		exit 0
		;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -n "$BUILD" ] || { echo "run.sh: --build DIR is required" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd) || exit 2
for t in jq python3 curl; do
	command -v "$t" > /dev/null || { echo "run.sh: $t is needed" >&2; exit 2; }
done

# Durations (seconds) and sizes. --quick is the smoke configuration: every benchmark runs,
# briefly and small; its figures mean little.
if [ "$QUICK" = 1 ]; then
	T_LOAD=1 T_PSP=2 T_SCALE=1 T_MEM=1 T_FAIR=2
	SCALE_BIG=1000 SCALE_TOTAL=2000 FAIR_QUIET=7 SCHED_ITERS=20000 SCHED_ROUNDS=2
else
	T_LOAD=5 T_PSP=8 T_SCALE=5 T_MEM=4 T_FAIR=12
	SCALE_BIG=10000 SCALE_TOTAL=20000 FAIR_QUIET=15 SCHED_ITERS=1000000 SCHED_ROUNDS=7
fi
LOAD_VMS=64

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

# A floor peer (null-broker or bench-null) on its own port, then kvmsim against it.
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

# 1. Overhead with the PSP modelled as free (--load), floor and daemon on one transport.
bench_overhead() {
	local load=(--load --vms "$LOAD_VMS" --rate 0 --duration "$T_LOAD")
	daemon_start "${FREE_CONF[@]}" || return 1
	daemon_run daemon-load "${load[@]}" || return 1
	simenv_stop_daemon
	[ -s "$SIMENV_DIR/vmm-certs.bin" ] || log "no VMM certificate file: bench-null serves no table"
	local table=()
	[ -s "$SIMENV_DIR/vmm-certs.bin" ] && table=(--table "$SIMENV_DIR/vmm-certs.bin")
	floor_run floor-null-broker $((SIMENV_PORT + 1)) \
		"$BUILD/tests/kvmsim/null-broker" --port $((SIMENV_PORT + 1)) --state "$SIMENV_STATE" \
		--stats -- "${load[@]}" || return 1
	floor_run floor-bench-null $((SIMENV_PORT + 2)) \
		"$BUILD/bench/bench-null" --port $((SIMENV_PORT + 2)) "${table[@]}" \
		-- "${load[@]}" || return 1
}

# 1b. Against the simulated PSP's report time (real cryptography, 8 ms per report), default
# scheduler settings with quota that does not refuse.
bench_psp() {
	daemon_start "[quota]" "rate = 100" "burst = 100" || return 1
	daemon_run daemon-psp --vms 16 --rate 5 --duration "$T_PSP"
}

# 2. Scale: same offered rate from 10 and from SCALE_BIG VMs; memory at 1,000 VMs.
bench_scale() {
	daemon_start "${FREE_CONF[@]}" || return 1
	local probe
	(
		sleep "$(awk -v t="$T_MEM" 'BEGIN { print t * 0.8 }')"
		mem_kib "$SIMENV_DAEMON_PID" VmRSS > "$R/mem-1000.during-rss"
	) &
	probe=$!
	daemon_run mem-1000 --load --vms 1000 --rate 10 --duration "$T_MEM" || return 1
	wait "$probe"
	daemon_run scale-10 --load --vms 10 --rate $((SCALE_TOTAL / 10)) --duration "$T_SCALE" ||
		return 1
	daemon_run scale-big --load --vms "$SCALE_BIG" --rate "$((SCALE_TOTAL / SCALE_BIG))" \
		--duration "$T_SCALE"
}

bench_sched() {
	"$BUILD/bench/bench-sched" --vms "10,$SCALE_BIG" --iterations "$SCHED_ITERS" \
		--rounds "$SCHED_ROUNDS" > "$R/sched.json"
}

# 3. Fairness: one VM floods, the others ask at a steady rate; default slots (1), a quota the
# flooder exceeds. /metrics is sampled meanwhile to catch the PSP idle while a request waits.
bench_fairness() {
	daemon_start "[quota]" "rate = 5" "burst = 5" || return 1
	(
		end=$((SECONDS + 2 * T_FAIR + 20))
		i=0
		while [ $SECONDS -lt $end ]; do
			scrape "$R/fair.sample.$i" 2>/dev/null || rm -f "$R/fair.sample.$i"
			i=$((i + 1))
			sleep 0.11
		done
	) &
	local sampler=$!
	BG+=("$sampler")
	# Baseline without the flooder first: its histogram is subtracted from the next scrape.
	daemon_run fair-base --vms "$FAIR_QUIET" --rate 2 --duration "$T_FAIR" &&
		daemon_run fairness --vms $((FAIR_QUIET + 1)) --noisy 1 --noisy-rate 200 --rate 2 \
			--duration "$T_FAIR"
	local rc=$?
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	return $rc
}

LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
run_step platform platform || { log "the simulated platform did not start"; exit 1; }
run_step overhead bench_overhead
run_step psp bench_psp
run_step scale bench_scale
run_step sched bench_sched
run_step fairness bench_fairness
simenv_stop_daemon

LOAD_AFTER=$(cut -d" " -f1 /proc/loadavg)
printf '{"loadavg":[%s,%s],"quick":%s,"load_vms":%s,"scale_big":%s,"scale_total_rate":%s,"fair_quiet":%s,"failed":%s,"host":"%s","cpus":%s}\n' \
	"$LOAD_BEFORE" "$LOAD_AFTER" "$([ "$QUICK" = 1 ] && echo true || echo false)" "$LOAD_VMS" "$SCALE_BIG" "$SCALE_TOTAL" \
	"$FAIR_QUIET" "$(printf '%s\n' "${FAILED[@]}" | jq -R . | jq -sc 'map(select(. != ""))')" \
	"$(uname -r)" "$(nproc)" > "$R/run.json"
python3 "$HERE/report.py" "$R" ${OUT:+--out "$OUT"} || FAILED+=(report)
[ ${#FAILED[@]} -eq 0 ]
