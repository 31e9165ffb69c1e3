#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file carries an SPDX licence line (generated benchmark results in bench/results/
# are output, not source). Prints TAP.
set -u
root=${1:-.}
cd "$root" || exit 1
files=$(git ls-files 2>/dev/null | grep -E '\.(c|h|sh|py|build|txt)$|^scripts/|^\.ci/' | grep -v -E '(^|/)corpus/|^LICENSE$|\.ok$|^tests/golden/|^bench/results/')
[ -n "$files" ] || files=$(find daemon client proto sim tests bench scripts -type f \( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name meson.build \) -not -path '*/corpus/*' 2>/dev/null)
echo "1..1"
missing=""
for f in $files; do
	[ -f "$f" ] || continue
	head -n 5 "$f" | grep -q 'SPDX-License-Identifier:' || missing="$missing $f"
done
if [ -n "$missing" ]; then
	echo "not ok 1 - SPDX line in every source file"; for f in $missing; do echo "# missing: $f"; done; exit 1
fi
echo "ok 1 - SPDX line in every source file"
