#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mandoc -T lint on each built man page: no error, warning or style message. The only
# messages tolerated depend on the machine, not the page: cross-references to pages that are
# not installed here ("referenced manual not found") and a stale mandoc.db. Prints TAP.
set -u
echo "1..$#"
n=0
fail=0
for page in "$@"; do
	n=$((n + 1))
	if ! [ -s "$page" ]; then
		echo "not ok $n - $(basename "$page"): missing"
		fail=1
		continue
	fi
	out=$(mandoc -T lint -W style "$page" 2>&1 |
		grep -v -e 'referenced manual not found' -e 'mandoc\.db')
	if [ -z "$out" ]; then
		echo "ok $n - $(basename "$page"): mandoc -T lint clean"
	else
		echo "not ok $n - $(basename "$page"): mandoc -T lint clean"
		sed 's/^/# /' <<<"$out"
		fail=1
	fi
done
exit $fail
