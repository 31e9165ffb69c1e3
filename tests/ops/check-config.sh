#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Golden tests of the configuration: the shipped etc/snp-attestd.conf parses, lists every key
# with its true default, and --check-config prints the expected normalised form for it and for
# a sample with drop-ins; hostile files are refused with exit 2 and a message naming the line.
# Usage: check-config.sh SNP-ATTESTD SOURCE_ROOT. Prints TAP.
set -u
daemon=$1
src=$2
golden=$src/tests/ops/golden
shipped=$src/etc/snp-attestd.conf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)); echo "not ok $n - $1"; fail=1
	[ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"
}

# 1. The shipped file against its golden output (which is the defaults: nothing is set).
if out=$("$daemon" -c "$shipped" --check-config 2>&1) &&
	d=$(diff -u "$golden/snp-attestd.conf.ok" - <<<"$out"); then
	ok "shipped snp-attestd.conf: --check-config matches golden"
else
	notok "shipped snp-attestd.conf: --check-config matches golden" "${d:-$out}"
fi

# 2. Uncommenting every '#key = value' line must not change anything: each commented value is
# the real default. Also no key may be missing or listed twice.
sed -E 's/^#([a-z_]+ =)/\1/' "$shipped" >"$tmp/uncommented.conf"
if out=$("$daemon" -c "$tmp/uncommented.conf" --check-config 2>&1) &&
	d=$(diff -u "$golden/snp-attestd.conf.ok" - <<<"$out"); then
	ok "shipped snp-attestd.conf: every commented value is the default"
else
	notok "shipped snp-attestd.conf: every commented value is the default" "${d:-$out}"
fi
keys_out=$(grep -E '^[a-z_]+ =' "$golden/snp-attestd.conf.ok" | cut -d' ' -f1 | sort)
keys_live=$("$daemon" --config "$shipped" --check-config | grep -E '^[a-z_]+ =' | cut -d' ' -f1 |
	sort)
keys_file=$(grep -E '^#[a-z_]+ =' "$shipped" | sed -E 's/^#([a-z_]+) =.*/\1/' | sort)
if [ "$keys_file" = "$keys_live" ] && [ "$keys_out" = "$keys_live" ] && [ -n "$keys_live" ]; then
	ok "shipped snp-attestd.conf lists each of the $(wc -l <<<"$keys_live") keys once"
else
	notok "shipped snp-attestd.conf lists each key once" \
		"$(diff <(echo "$keys_live") <(echo "$keys_file"))"
fi

# 3. Non-normal spellings and drop-ins (name order, last wins; non-.conf files ignored).
if out=$("$daemon" -c "$golden/sample.conf" --check-config 2>&1) &&
	d=$(diff -u "$golden/sample.conf.ok" - <<<"$out"); then
	ok "sample.conf + drop-ins: --check-config matches golden"
else
	notok "sample.conf + drop-ins: --check-config matches golden" "${d:-$out}"
fi

# 4. Hostile files: exit 2 and a message naming the problem (and the line where there is one).
hostile=(
	"unknown-key|[daemon]\nbackend = sev\nfrobnicate = 1\n|:3: unknown key 'frobnicate' in [daemon]"
	"unknown-section|[nope]\nkey = 1\n|unknown section [nope]"
	"duplicate|[quota]\nrate = 1\nrate = 2\n|given twice"
	"bad-duration|[scheduler]\nmax_queue_wait = soon\n|is not a duration"
	"bad-number|[quota]\nburst = -4\n|is not a number"
	"out-of-range|[scheduler]\npsp_concurrency = 65\n|out of range"
	"busy-budget-60s|[scheduler]\nbusy_budget = 60s\n|must be below 60s"
	"quota-too-slow|[quota]\nrate = 0.01\n|slower than one request per busy_budget"
	"relative-state|[daemon]\nstate_dir = var/lib\n|must be absolute"
	"bad-backend|[daemon]\nbackend = qemu\n|backend must be sev or sim"
	"syntax|[daemon\nbackend = sev\n|:1:"
	"long-socket|[control]\nsocket = /$(printf 'x%.0s' {1..120})\n|shorter than 108 bytes"
	"vmm-mode-world-writable|[certs]\nvmm_certs_mode = 0666\n|not be world-writable"
	"vmm-mode-no-owner-write|[certs]\nvmm_certs_mode = 0440\n|owner's read and write"
	"vmm-mode-setuid|[certs]\nvmm_certs_mode = 4640\n|above 0777"
	"vmm-mode-decimal|[certs]\nvmm_certs_mode = 640.0\n|is not an octal mode"
	"vmm-mode-not-octal|[certs]\nvmm_certs_mode = 0648\n|is not an octal mode"
	"vmm-socket-relative|[vmm]\nsocket = run/vmm.sock\n|[vmm] socket must be auto, none or an absolute path"
	"vmm-socket-long|[vmm]\nsocket = /$(printf 'x%.0s' {1..120})\n|[vmm] socket must be auto, none or an absolute path"
	"vmm-socket-is-control|[vmm]\nsocket = /run/snp-attestd/control.sock\n|must differ"
	"vmm-max-clients-zero|[vmm]\nmax_clients = 0\n|out of range"
	"vmm-hello-timeout-bad|[vmm]\nhello_timeout = 1ms\n|out of range"
	"vmm-unknown-key|[vmm]\nsockets = none\n|unknown key 'sockets' in [vmm]"
)
for h in "${hostile[@]}"; do
	IFS='|' read -r name text want <<<"$h"
	printf '%b' "$text" >"$tmp/$name.conf"
	out=$("$daemon" -c "$tmp/$name.conf" --check-config 2>&1)
	rc=$?
	if [ $rc -eq 2 ] && grep -qF -- "$want" <<<"$out" && ! grep -q '^\[' <<<"$out"; then
		ok "hostile $name: refused with exit 2 ($want)"
	else
		notok "hostile $name: refused with exit 2 ($want)" "rc=$rc: $out"
	fi
done
printf '[daemon]\nbackend = sev\0\n' >"$tmp/nul.conf"
out=$("$daemon" -c "$tmp/nul.conf" --check-config 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q 'NUL' <<<"$out"; then
	ok "hostile nul byte: refused with exit 2"
else
	notok "hostile nul byte: refused with exit 2" "rc=$rc: $out"
fi
out=$("$daemon" -c "$tmp/does-not-exist.conf" --check-config 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q 'No such file' <<<"$out"; then
	ok "missing explicit -c file: exit 2"
else
	notok "missing explicit -c file: exit 2" "rc=$rc: $out"
fi

echo "1..$n"
exit $fail
