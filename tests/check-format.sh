#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lint: no C file of the tree is changed by clang-format (the pinned version and .clang-format,
# through scripts/format). Prints TAP: first a self-test (a misformatted file is caught, a
# formatted one is not), then one line per file.
# Enforcement: the tree is formatted once (scripts/format) when every branch of the current
# work is merged; until the file .clang-format-enforced exists at the top of the tree, a file
# that would change is reported as "not ok ... # TODO" (visible, not failing). Once it exists,
# such a file fails the test.
set -u
root=${1:-.}
cd "$root" || exit 1
n=0
failed=0
tap() { # ok|not-ok DESCRIPTION [DIRECTIVE]
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2${3:+ # $3}"
		[ -n "${3:-}" ] || failed=1
	fi
}
if ! cf=$(scripts/format --which 2>&1); then
	echo "1..1"
	echo "not ok 1 - clang-format found: $cf"
	exit 1
fi
echo "# $($cf --version)"
enforced=
[ -e .clang-format-enforced ] || enforced="TODO not enforced until .clang-format-enforced exists"

# Self-test, in a scratch directory with the tree's style: a file clang-format rewrites must be
# detected as such, and its formatted version must not be.
t=$(mktemp -d /tmp/snp-check-format.XXXXXX)
trap 'rm -rf "$t"' EXIT
cp .clang-format "$t/.clang-format"
printf 'int  f( int a ){return a+1;}\n' > "$t/bad.c"
if ! "$cf" --style=file "$t/bad.c" | cmp -s - "$t/bad.c"; then
	tap ok "self-test: a misformatted file is detected"
else
	tap not-ok "self-test: a misformatted file is detected"
fi
"$cf" --style=file "$t/bad.c" > "$t/good.c"
if "$cf" --style=file "$t/good.c" | cmp -s - "$t/good.c"; then
	tap ok "self-test: the formatted file passes"
else
	tap not-ok "self-test: the formatted file passes"
fi

# One clang-format run over every file (--dry-run names each file it would change), then one
# TAP line per file; the first few differences are shown.
mapfile -t files < <(scripts/format --files)
nfiles=${#files[@]}
declare -A changes=()
if [ "$nfiles" -gt 0 ]; then
	while read -r f; do
		changes[$f]=1
	done < <("$cf" --style=file --dry-run "${files[@]}" 2>&1 |
		sed -n 's/^\(.*\):[0-9]*:[0-9]*: \(warning\|error\): code should be clang-formatted.*/\1/p' |
		sort -u)
fi
bad=0
for f in "${files[@]}"; do
	if [ -z "${changes[$f]:-}" ]; then
		tap ok "$f is formatted"
	else
		bad=$((bad + 1))
		tap not-ok "$f is formatted (scripts/format $f)" "$enforced"
		[ "$bad" -gt 5 ] ||
			"$cf" --style=file "$f" | diff -u "$f" - | sed -n '3,12p' | sed 's/^/#   /'
	fi
done
# clang-format leaves a missing final newline alone; clang's -Wnewline-eof (the fuzzing build)
# refuses it.
noeol=()
for f in "${files[@]}"; do
	[ -s "$f" ] && [ -n "$(tail -c1 "$f")" ] && noeol+=("$f")
done
if [ ${#noeol[@]} -eq 0 ]; then
	tap ok "every file ends with a newline"
else
	tap not-ok "every file ends with a newline: ${noeol[*]}"
fi
[ "$nfiles" -gt 0 ] && tap ok "C files found ($nfiles)" || tap not-ok "C files found"
echo "# $bad of $nfiles files would be changed by clang-format${enforced:+ (not enforced yet)}"
echo "1..$n"
exit $failed
