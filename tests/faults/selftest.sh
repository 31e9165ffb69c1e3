#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fault library judges its zero counts only when work ran: faults_finish (lib.sh) on a
# scenario that collected no snp-kvmsim run, one whose runs started no request, and one whose
# requests never completed must fail its zero-count checks (naming why); a scenario with
# completed requests and zero counts passes them, and one with a wipe fails. Prints TAP.
set -u
: "${SNP_SOURCE_ROOT:?}" "${SNP_BUILD_ROOT:?}"
n=0
failed=0
W=$(mktemp -d /tmp/snp-faults-selftest.XXXXXX)
trap 'rm -rf "$W"' EXIT

# Runs faults_finish with the given totals (VAR=VALUE...) in a child shell; its TAP in $W/out.
finish_with() {
	(
		. "$SNP_SOURCE_ROOT/tests/faults/lib.sh"
		echo "$SIMENV_DIR" > "$W/dir"
		for a in "$@"; do eval "$a"; done
		exit 0 # the EXIT trap runs faults_finish
	) > "$W/out" 2>&1
	local rc=$?
	# A failing scenario keeps its work directory for the logs; this one has none worth keeping.
	rm -rf "$(cat "$W/dir")"
	return $rc
}
expect() { # DESCRIPTION EXPECTED-STATUS ACTUAL-STATUS PATTERN-THAT-MUST-BE-IN-THE-OUTPUT
	n=$((n + 1))
	if [ "$2" = "$3" ] && grep -qE -- "$4" "$W/out"; then
		echo "ok $n - $1"
	else
		failed=1
		echo "not ok $n - $1 (status $3, wanted $2)"
		sed 's/^/# /' "$W/out" | head -20
	fi
}

finish_with F_RUNS=0
expect "no snp-kvmsim run: the zero checks fail" 1 $? \
	'^not ok [0-9]+ - zero VMPCK wipes \(nothing to count: no snp-kvmsim run was collected\)'
finish_with F_RUNS=2 F_REQ=0
expect "runs without a request: the zero checks fail" 1 $? \
	'^not ok [0-9]+ - zero requests lost \(nothing to count: no guest request was started'
finish_with F_RUNS=1 F_REQ=50 F_DONE=0
expect "requests that never completed: the zero checks fail" 1 $? \
	'^not ok [0-9]+ - zero daemon crashes \(nothing to count: none of 50 guest requests completed'
finish_with F_RUNS=1 F_REQ=50 F_DONE=50
expect "completed work and zero counts: the zero checks pass" 0 $? \
	'^ok [0-9]+ - zero verification failures$'
finish_with F_RUNS=1 F_REQ=50 F_DONE=49 F_WIPES=1
expect "a wipe after completed work fails" 1 $? '^not ok [0-9]+ - zero VMPCK wipes \(1\)$'
echo "1..$n"
exit $failed
