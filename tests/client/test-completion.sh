#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bash completion of snpctl: sourced in bash, COMPREPLY for partial words; and its lists
# against the program (every command of 'snpctl --help', every long option of each command's
# --help), so that it cannot go stale. Prints TAP.
# Usage: test-completion.sh SNPCTL COMPLETION-FILE
set -u
SNPCTL=$(realpath -- "${1:?usage: test-completion.sh SNPCTL COMPLETION}")
COMP=$(realpath -- "${2:?}")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }

# shellcheck source=../../contrib/bash-completion/snpctl
. "$COMP"
complete -p snpctl >/dev/null 2>&1 && ok "sourcing registers a completion for snpctl" \
	|| nok "sourcing registers a completion for snpctl"

# comp WORDS...: completes the last word (may be empty); sorted, space-joined result in $got.
comp() {
	COMP_WORDS=(snpctl "$@")
	COMP_CWORD=$(($# ))
	COMPREPLY=()
	_snpctl
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
}
# expect DESC WANT WORDS...
expect() {
	local desc=$1 want=$2
	shift 2
	comp "$@"
	if [ "$got" = "$want" ]; then ok "$desc"; else nok "$desc" "got '$got'" "want '$want'"; fi
}

expect "first word 'q' -> quota" "quota" q
expect "first word 'v' -> vm vlek" "vlek vm" v
expect "first word 't' -> tcb top" "tcb top" t
expect "first word 'cert' -> cert certs" "cert certs" cert
expect "quota subcommands (and --help)" "--help get list reset set" quota ''
expect "quota s -> set" "set" quota s
expect "report subcommands (and --help)" "--help show verify" report ''
expect "quota set options --r" "--rate" quota set 42 --r
expect "top options --i" "--interval --iterations" top --i
expect "report verify options --v" "--vcek --vlek" report verify f --v
expect "--product values" "Genoa" kds-url --product G
expect "--kind values" "chain crl" kds-url --kind c
expect "global options before the command" "--json" --j
expect "global --socket value is skipped when finding the command" "--help list show" \
	--socket /x vm ''
expect "help completes command names" "quota" help qu
expect "help GROUP completes subcommands" "commit set show" help tcb ''
expect "no options offered for a value" "" quota set 42 --rate ''
touch "$W/report-a.bin" "$W/report-b.bin"
expect "report show completes file names" "$W/report-a.bin $W/report-b.bin" report show "$W/rep"

# The lists against the program.
"$SNPCTL" --help >"$W/help" 2>&1 || nok "snpctl --help runs"
mapfile -t cmds < <(sed -n 's/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)\?\)  .*/\1/p' "$W/help")
[ "${#cmds[@]}" -ge 15 ] && ok "snpctl --help lists ${#cmds[@]} commands" \
	|| nok "snpctl --help lists commands" "found ${#cmds[@]}"
missing=()
for c in "${cmds[@]}"; do
	read -r g s <<<"$c"
	if [ -z "$s" ]; then
		comp "${g:0:2}"
		[[ " $got " == *" $g "* ]] || missing+=("$c (command)")
	else
		comp "$g" ''
		[[ " $got " == *" $s "* ]] || missing+=("$c (subcommand)")
	fi
	# shellcheck disable=SC2086
	"$SNPCTL" help $c >"$W/h" 2>&1 || { missing+=("snpctl help $c fails"); continue; }
	for o in $(grep -oE -- '(^|[ [,(])--[a-z][a-z-]*' "$W/h" | grep -oE -- '--[a-z-]+' | sort -u); do
		# shellcheck disable=SC2086
		comp $c --
		[[ " $got " == *" $o "* ]] || missing+=("$c: $o")
	done
done
[ "${#missing[@]}" -eq 0 ] && ok "every command, subcommand and long option of --help completes" \
	|| nok "every command, subcommand and long option of --help completes" "${missing[@]}"
# and nothing offered that the program does not know
extra=()
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	"$SNPCTL" help $c >"$W/h" 2>&1
	# shellcheck disable=SC2086
	comp $c --
	for o in $got; do
		grep -qE -- "(^|[ [,(])$o([] ,=]|$)" "$W/h" || extra+=("$c: $o")
	done
done
[ "${#extra[@]}" -eq 0 ] && ok "no option is offered that the command's --help does not list" \
	|| nok "no option is offered that the command's --help does not list" "${extra[@]}"

echo "1..$n"
[ "$failed" -eq 0 ]
