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
for p in bench/bench-sched bench/bench-null; do
	check "$p is built" test -x "$SNP_BUILD_ROOT/$p"
done
"$SNP_SOURCE_ROOT/bench/run.sh" --build "$SNP_BUILD_ROOT" --quick --out "$W/out.json" \
	> "$W/table.txt" 2> "$W/run.err"
rc=$?
sed 's/^/# /' "$W/table.txt"
check "run.sh exits 0 (every benchmark ran)" sh -c "[ $rc -eq 0 ] || { cat '$W/run.err'; exit 1; }"
check "the table has a header and the three sections" \
	grep -q -e '^metric .*measured .*target .*result' "$W/table.txt"
for s in overhead scale fairness; do
	check "section [$s] printed" grep -qx "\[$s\]" "$W/table.txt"
done
check "the JSON result parses and lists no failed benchmark" jqt '.failed == []'
check "every row is PASS, MISS or n/a" jqt 'all(.table[]; .result | IN("PASS", "MISS", "n/a"))'
check "no target left unmeasured" jqt 'all(.table[]; .measured != "not measured")'
# Each benchmark produced its figures (numbers, whatever they are).
check "overhead: daemon and both floors measured" \
	jqt '.figures.overhead | (.daemon.verdicts_per_s > 0) and (.floors | length == 2) and
		(.throughput_ratio > 0) and (.p99_ratio > 0)'
check "overhead: daemon cost against the PSP time" \
	jqt '.figures.psp | (.cost_percent > 0) and (.firmware_mean_ms > 0) and .clean'
check "scale: CPU per request at both sizes, memory" \
	jqt '(.figures.scale | .cpu_ns_per_request_10 > 0 and .cpu_ns_per_request_big > 0) and
		(.figures.memory.vmhwm_mib > 0)'
check "scale: policy benchmark at two sizes" \
	jqt '.figures.sched.results | length == 2 and all(.[]; .direct_ns > 0 and .queued_ns > 0)'
check "fairness: Jain's index in (0, 1], scrapes taken, no wipes" \
	jqt '.figures.fairness | (.jain > 0 and .jain <= 1.000001) and .samples > 0 and .clean'
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
echo "1..$n"
exit $failed
