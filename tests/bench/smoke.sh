#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The harness runs end to end in its tiny configuration (TAP). Figures are not judged: a MISS
# is fine, a benchmark that could not run or an unreadable result is not.
set -u
: "${SNP_SOURCE_ROOT:?}" "${SNP_BUILD_ROOT:?}"
W=$(mktemp -d /tmp/snp-bench-smoke.XXXXXX)
trap 'rm -rf "$W"' EXIT
n=0
failed=0
check() { # DESCRIPTION COMMAND...
	local d=$1
	shift
	n=$((n + 1))
	if "$@" > "$W/check.out" 2>&1; then
		echo "ok $n - $d"
	else
		failed=1
		echo "not ok $n - $d"
		sed 's/^/# /' "$W/check.out" | head -30
	fi
}
jqt() { jq -e "$1" "$W/out.json" > /dev/null; }

# The bench programs are ordinary targets of this tree (built with it).
for p in bench/bench-sched bench/bench-null bench/bench-vmm; do
	check "$p is built" test -x "$SNP_BUILD_ROOT/$p"
done
R=$W/results
"$SNP_SOURCE_ROOT/bench/run.sh" --build "$SNP_BUILD_ROOT" --quick --results "$R" \
	> "$W/table.txt" 2> "$W/run.err"
rc=$?
sed 's/^/# /' "$W/table.txt"
check "run.sh exits 0 (every benchmark ran)" sh -c "[ $rc -eq 0 ] || { cat '$W/run.err'; exit 1; }"
# Every results file: present, valid JSON, the benchmark ran, its rows are well formed.
for b in overhead psp scale sched fairness startup vmm; do
	check "results/$b.json parses, ran, rows PASS/MISS/n/a" jq -e '.ran == true and
		.benchmark == "'$b'" and (.run.failed == []) and
		all(.rows[]; (.result | IN("PASS", "MISS", "n/a")) and .measured != "not measured")' \
		"$R/$b.json"
done
jqf() { # DESCRIPTION BENCHMARK FILTER (on .figures)
	check "$1" jq -e ".figures | $3" "$R/$2.json"
}
jqf "overhead: medians of floor and daemon, ratios, clean" overhead \
	'(.median | .floor_verdicts_per_s > 0 and .daemon_verdicts_per_s > 0 and
	  .floor_p99_ms > 0 and .daemon_p99_ms > 0) and .throughput_ratio > 0 and .p99_ratio > 0
	 and (.floor.verdicts_per_s | length) == .reps and .daemon.clean and .floor.clean'
jqf "psp: daemon cost against the PSP time" psp \
	'.cost_percent > 0 and .firmware_mean_ms > 0 and .clean'
jqf "scale: 10, 100, 1000, 10000 VMs with CPU/request, rate, latency, memory" scale \
	'([.points[].vms] == [10, 100, 1000, 10000]) and all(.points[]; .cpu_ns_per_request > 0
	  and .rate_per_s > 0 and .p50_ms >= 0 and .p99_ms >= .p50_ms and .vmhwm_mib > 0
	  and .floor_p99_ms >= .floor_p50_ms and .floor_p50_ms >= 0
	  and .clean) and .cpu_ratio_max_min >= 1'
jqf "sched: the policy at every size" sched \
	'.results | length == 4 and all(.[]; .direct_ns > 0 and .queued_ns > 0)'
jqf "fairness: both phases, Jain in (0,1], quiet p99 bucket, slot, clean" fairness \
	'(.flood | (.jain_quiet > 0 and .jain_quiet <= 1.000001) and .noisy_vms >= 1 and
	  (.quiet_wait_p99_bucket_ms | length == 2 and .[0] <= .[1]) and .firmware_mean_ms > 0
	  and (.per_vm | length) == (.quiet_vms + .noisy_vms) and .quiet_admitted > 0 and .clean
	  and (.psp_idle_while_waiting | .samples > 0 and .samples_idle_with_queue >= 0)) and
	 (.no_flood | .noisy_vms == 0 and .clean) and .no_flood.quiet_vms == .flood.quiet_vms'
jqf "vmm: the daemon and the do-nothing peer measured, ratios, upstream fleet's Jain, clean" vmm \
	'.throughput_ratio > 0 and .p99_ratio > 0 and all(.daemon[]; .calls > 0 and .from_daemon > 0)
	 and all(.floor[]; .calls > 0) and (.fairness | .quiet_vms > 0 and (.admitted | length) ==
	 .quiet_vms and .totals.vmpck_wipes == 0 and .totals.verify_failures == 0)'
jqf "startup: READY and --check-config timed every run" startup \
	'.ready.n == .runs and .check_config.n == .runs and .ready.median_ms > 0 and
	 .check_config.median_ms > 0 and .ratio_median > 0 and .ready_missing == 0'
check "summary.txt has the header and the four sections" sh -c "
	grep -q -e '^metric .*measured .*target .*result' '$R/summary.txt' &&
	for s in overhead scale fairness startup vmm; do grep -qx \"\\[\$s\\]\" '$R/summary.txt' || exit 1; done"
check "summary.txt is what was printed" sh -c "grep -qF -e \"\$(sed -n 3p '$R/summary.txt')\" '$W/table.txt'"
if command -v gnuplot > /dev/null; then
	for p in scale fairness; do
		check "$p.png is a PNG image" sh -c "head -c 8 '$R/$p.png' | od -An -c | grep -q 'P   N   G'"
	done
fi
check "bench/run and scripts/bench answer --help; run.sh refuses a missing --results" sh -c "
	'$SNP_SOURCE_ROOT/bench/run' --help | grep -q 'bench/results' &&
	'$SNP_SOURCE_ROOT/scripts/bench' --help | grep -q 'bench/results' &&
	'$SNP_SOURCE_ROOT/bench/run.sh' --build '$SNP_BUILD_ROOT' 2> /dev/null; [ \$? -eq 2 ]"
# Hostile input: bad options are refused with a usage error, a bad table file is an error.
check "bench-sched refuses --vms 0 and a non-number" sh -c \
	"'$SNP_BUILD_ROOT/bench/bench-sched' --vms 0; [ \$? -eq 2 ] &&
	 '$SNP_BUILD_ROOT/bench/bench-sched' --vms 10,x; [ \$? -eq 2 ]"
head -c 100 /dev/urandom > "$W/garbage.bin"
check "bench-null refuses a missing or garbage table" sh -c \
	"'$SNP_BUILD_ROOT/bench/bench-null' --table /nonexistent; [ \$? -eq 1 ] &&
	 '$SNP_BUILD_ROOT/bench/bench-null' --table '$W/garbage.bin'; [ \$? -eq 1 ]"
# Hostile input: report.py on a directory without results fails cleanly, without a traceback.
mkdir -p "$W/empty"
check "report.py refuses an empty raw directory" \
	sh -c "! python3 '$SNP_SOURCE_ROOT/bench/report.py' '$W/empty' 2> '$W/r.err' &&
		grep -q 'no run.json' '$W/r.err' && ! grep -q Traceback '$W/r.err'"
# ... and raw files that are garbage give "not measured" rows and notes, not a traceback.
mkdir -p "$W/junk"
echo '{"cpus": 2, "scale_sizes": [10, 100], "overhead_reps": 2}' > "$W/junk/run.json"
for f in floor-1.kvmsim.json daemon-1.kvmsim.json scale-10.kvmsim.json fairness.kvmsim.json \
	startup.json sched.json; do
	head -c 300 /dev/urandom > "$W/junk/$f"
done
echo '{"totals":{},"duration_s":1,"per_vm":[{"vm":"x"}]}' > "$W/junk/fairness.kvmsim.json"
check "report.py on garbage raw files: no traceback, nothing measured" sh -c "
	python3 '$SNP_SOURCE_ROOT/bench/report.py' '$W/junk' --results '$W/junk-out' \
		> '$W/j.out' 2>&1 && ! grep -q Traceback '$W/j.out' &&
	jq -e '.ran == false' '$W/junk-out/scale.json' '$W/junk-out/startup.json' > /dev/null"
check "startup.py refuses --runs 0 and times out on a daemon that never starts" sh -c "
	python3 '$SNP_SOURCE_ROOT/bench/startup.py' --daemon /bin/false --config /dev/null \
		--runs 0 2> /dev/null; [ \$? -eq 2 ] &&
	! python3 '$SNP_SOURCE_ROOT/bench/startup.py' --daemon /bin/false --config /dev/null \
		--runs 1 --timeout 1 > '$W/s.json' && jq -e '.ready_missing == 1 and .ready == null' \
		'$W/s.json' > /dev/null"
echo "1..$n"
exit $failed
