#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snpctl offline commands against the real AMD samples in $SNP_TESTDATA. Prints TAP.
# Usage: test-snpctl.sh SNPCTL [MKFIXTURE]; with MKFIXTURE (tests/client/mkfixture.c) also the
# simulated, non-AMD chain that --ark exists for, and simulated Milan and Turin reports.
set -u

SNPCTL=${1:?usage: test-snpctl.sh SNPCTL}
# meson passes a path relative to the build directory; the tests cd into the data directory
SNPCTL=$(realpath -- "$SNPCTL") || exit 1
[ -x "$SNPCTL" ] || { echo "Bail out! $SNPCTL is not executable"; exit 1; }
MKFIXTURE=${2:+$(realpath -- "$2")}
D=${SNP_TESTDATA:?SNP_TESTDATA not set}/amd
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
	[ -s "$W/out" ] && sed 's/^/# out: /' "$W/out" | head -5
	[ -s "$W/err" ] && sed 's/^/# err: /' "$W/err" | head -5
}
# run ARGS...: runs snpctl, keeps stdout/stderr in $W/out, $W/err and the code in $rc.
run() { "$SNPCTL" "$@" >"$W/out" 2>"$W/err"; rc=$?; }
# expect CODE DESC ARGS...
expect() {
	local code=$1 desc=$2; shift 2
	run "$@"
	if [ "$rc" -eq "$code" ]; then ok "$desc (exit $code)"; else nok "$desc: exit $rc, want $code"; fi
}
# expect_ok DESC ARGS...: exit 0 and the first line starts with OK
expect_ok() {
	local desc=$1; shift
	run "$@"
	if [ "$rc" -eq 0 ] && head -n1 "$W/out" | grep -q '^OK'; then ok "$desc"; else nok "$desc"; fi
}
# expect_fail DESC STEP REASON ARGS...: exit 1, no OK line, stderr names the step and reason
expect_fail() {
	local desc=$1 step=$2 reason=$3; shift 3
	run "$@"
	if [ "$rc" -eq 1 ] && ! grep -q '^OK' "$W/out" && grep -q "snpctl: $step: $reason" "$W/err"
	then ok "$desc"; else nok "$desc: exit $rc, want 1 and '$step: $reason'"; fi
}
# check DESC CONDITION-COMMAND...
check() {
	local desc=$1; shift
	if "$@"; then ok "$desc"; else nok "$desc"; fi
}
# flip FILE OFFSET OUT: copy FILE with the byte at OFFSET inverted
flip() {
	cp "$1" "$3" && chmod u+w "$3"
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 0xff)))" | dd of="$3" bs=1 seek="$2" conv=notrunc status=none
}

SIG='signature does not verify'
MV3=(milan/report-v3.bin --vcek "$D/milan/report-v3.vcek.der")

# --- report verify: every real report verifies -------------------------------------------
cd "$D" || exit 1
expect_ok "milan v3 report + VCEK + milan chain" report verify "${MV3[@]}" --chain milan/cert_chain.pem
grep -q 'pinned AMD ARK' "$W/out" && ok "v3 OK names the pinned AMD root" || nok "v3 OK names the pinned AMD root"
expect_ok "milan v2 report + VCEK + milan chain" report verify milan/report-v2.bin \
	--vcek milan/report-v2.vcek.der --chain milan/cert_chain.pem
expect_ok "milan VLEK report + VLEK + VLEK chain, at a time the VLEK was valid" \
	report verify milan/report-vlek.bin --vlek milan/report-vlek.vlek.der \
	--chain milan/vlek_cert_chain.pem --at 2025-06-01
expect_ok "VLEK report with --vcek spelling and --no-time-check" report verify \
	milan/report-vlek.bin --vcek milan/report-vlek.vlek.der --chain milan/vlek_cert_chain.pem \
	--no-time-check
expect_ok "v3 report without chain (signature + extensions only)" report verify "${MV3[@]}"
grep -q 'not checked against an AMD root' "$W/out" && ok "no-chain OK says the root was not checked" \
	|| nok "no-chain OK says the root was not checked"
openssl x509 -inform der -in milan/report-v3.vcek.der -out "$W/v3vcek.pem"
expect_ok "VCEK given as PEM" report verify milan/report-v3.bin --vcek "$W/v3vcek.pem" \
	--chain milan/cert_chain.pem
# chain split: ASK only + the ARK given as --ark (a pinned AMD root: no warning)
awk -v d="$W" '/BEGIN/{k++} {print > (d "/milan-c" k ".pem")}' milan/cert_chain.pem
expect_ok "ASK-only chain with the ARK via --ark" report verify "${MV3[@]}" \
	--chain "$W/milan-c1.pem" --ark "$W/milan-c2.pem"
[ "$rc" -eq 0 ] && ! grep -q 'not an AMD root' "$W/out" && ok "pinned --ark not reported as non-AMD" \
	|| nok "pinned --ark not reported as non-AMD"

# --- report verify: rejections, each with its own reason ----------------------------------
# An expired leaf is named with its notAfter (issue 13 point 6), not only "chain file".
VLEK_EXPIRED="certificate is not valid at this time (VLEK 'SEV-VLEK' expired: notAfter 2025-12-10 22:14:21 UTC; chain file milan/vlek_cert_chain.pem"
expect_fail "VLEK outside its validity (at 2030) names the VLEK and its notAfter" chain \
	"$VLEK_EXPIRED)" report verify milan/report-vlek.bin --vlek milan/report-vlek.vlek.der \
	--chain milan/vlek_cert_chain.pem --at 2030-01-01
expect_fail "cert verify of an expired VLEK names it and its notAfter" chain \
	"$VLEK_EXPIRED with milan/report-vlek.vlek.der)" cert verify \
	--chain milan/vlek_cert_chain.pem --vlek milan/report-vlek.vlek.der --at 2030-01-01
expect_fail "VCEK before its validity (at 2020) names its notBefore" validity \
	"certificate is not valid at this time (.*VCEK 'SEV-VCEK' not yet valid: notBefore 2026-02-05 01:04:33 UTC)" \
	report verify "${MV3[@]}" --at 2020-01-01
# one byte flipped in the signed area: guest_svn, report_data, measurement, host_data,
# report_id, reported_tcb's microcode byte, chip_id
for off in 0x004 0x050 0x0a0 0x0c0 0x140 0x187 0x1a0 0x1df; do
	flip milan/report-v3.bin $((off)) "$W/tampered.bin"
	expect_fail "byte $off flipped" signature "$SIG" report verify "$W/tampered.bin" \
		--vcek milan/report-v3.vcek.der --chain milan/cert_chain.pem
done
flip milan/report-v3.bin $((0x2a0)) "$W/tampered.bin"
expect_fail "signature R byte flipped" signature "$SIG" report verify "$W/tampered.bin" \
	--vcek milan/report-v3.vcek.der
# flipping a must-be-zero byte of the signed area is caught by the parser
flip milan/report-v3.bin $((0x04c)) "$W/tampered.bin"
expect_fail "reserved (MBZ) byte flipped" "parse report" "malformed input" report verify \
	"$W/tampered.bin" --vcek milan/report-v3.vcek.der
expect_fail "wrong VCEK (another chip/TCB)" signature "$SIG" report verify milan/report-v3.bin \
	--vcek milan/report-v2.vcek.der --chain milan/cert_chain.pem
expect_fail "VLEK given for a VCEK-signed report" "signing key" "certificate does not match" \
	report verify milan/report-v3.bin --vcek milan/report-vlek.vlek.der --no-time-check
expect_fail "VCEK given for a VLEK-signed report" "signing key" "certificate does not match" \
	report verify milan/report-vlek.bin --vcek milan/report-v3.vcek.der
expect_fail "genoa chain for a milan report" chain "certificate chain belongs to another product" \
	report verify "${MV3[@]}" --chain genoa/cert_chain.pem
expect_fail "turin chain for a milan report" chain "certificate chain belongs to another product" \
	report verify "${MV3[@]}" --chain turin/cert_chain.pem
head -c 1000 milan/report-v3.bin >"$W/trunc.bin"
expect_fail "truncated report" "parse report" "wrong size" report verify "$W/trunc.bin" \
	--vcek milan/report-v3.vcek.der --chain milan/cert_chain.pem
: >"$W/empty.bin"
expect_fail "empty report" "parse report" "wrong size" report verify "$W/empty.bin" \
	--vcek milan/report-v3.vcek.der
{ cat milan/report-v3.bin; printf 'x'; } >"$W/long.bin"
expect_fail "report with a trailing byte" "parse report" "wrong size" report verify "$W/long.bin" \
	--vcek milan/report-v3.vcek.der
cp milan/report-v3.bin "$W/v9.bin" && chmod u+w "$W/v9.bin"
printf '\x09' | dd of="$W/v9.bin" bs=1 seek=0 conv=notrunc status=none
expect_fail "unknown report version" "parse report" "unsupported version" report verify \
	"$W/v9.bin" --vcek milan/report-v3.vcek.der
expect_fail "missing report file" "read report" "" report verify "$W/nonexistent" \
	--vcek milan/report-v3.vcek.der
expect_fail "certificate file that is not a certificate" "load --vcek" "malformed input" \
	report verify "${MV3[@]/report-v3.vcek.der/report-v3.bin}"
expect_fail "chain file in the wrong order (ARK, ASK)" chain "" report verify "${MV3[@]}" \
	--chain <(cat "$W/milan-c2.pem" "$W/milan-c1.pem")
expect_fail "chain with only the ASK and no --ark" "load --chain" "malformed input" \
	report verify "${MV3[@]}" --chain "$W/milan-c1.pem"
# A self-signed root that is not AMD's is not accepted as the chain's ARK
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$W/fake.key" \
	-subj /CN=ARK-Fake -days 30 -out "$W/fake-ark.pem" 2>/dev/null
expect_fail "chain ending in an unpinned root" chain "" report verify "${MV3[@]}" \
	--chain <(cat "$W/milan-c1.pem" "$W/fake-ark.pem")
grep -q 'snpctl: chain: chain does not reach a trusted AMD root\|snpctl: chain: signature does not verify' \
	"$W/err" && ok "unpinned root: reason named" || nok "unpinned root: reason named"

# --- report show --------------------------------------------------------------------------
jq_eq() { # jq_eq DESC FILTER EXPECTED
	local got
	got=$(jq -c "$2" "$W/out" 2>/dev/null)
	[ "$got" = "$3" ] && ok "$1" || nok "$1: got $got, want $3"
}
expect 0 "report show --json v3" report show --json milan/report-v3.bin
jq_eq "v3 version" .version 3
jq_eq "v3 product from CPUID" .product '"Milan"'
jq_eq "v3 reported_tcb raw" .reported_tcb.raw '"0xdb18000000000004"'
jq_eq "v3 reported_tcb decoded" '[.reported_tcb.bootloader,.reported_tcb.tee,.reported_tcb.snp,.reported_tcb.microcode]' '[4,0,24,219]'
jq_eq "v3 cpuid" '[.cpuid_fam_id,.cpuid_mod_id,.cpuid_step]' '[25,1,1]'
jq_eq "v3 signing key" .signer_info.signing_key '"VCEK"'
jq_eq "v3 chip_id is 64 bytes of hex" '.chip_id|length' 128
jq_eq "v3 signature r is 72 bytes of hex" '.signature.r|length' 144
jq_eq "v3 firmware version" .current_version '"1.55.29"'
jq_eq "v3 measurement" .measurement '"5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1"'
cp "$W/out" "$W/v3.json"
expect 0 "report show (human) v3" report show milan/report-v3.bin
missing=$(jq -r 'keys_unsorted[]' "$W/v3.json" | while read -r k; do grep -q "^$k " "$W/out" || echo "$k"; done)
[ -z "$missing" ] && ok "human output lists every JSON field" || nok "human output misses: $missing"
grep -q '^reported_tcb *0xdb18000000000004' "$W/out" && ok "human reported_tcb" || nok "human reported_tcb"
expect 0 "report show --json v2" report show --json milan/report-v2.bin
jq_eq "v2 version" .version 2
jq_eq "v2 reported_tcb" .reported_tcb.raw '"0x7308000000000003"'
jq_eq "v2 product unknown without CPUID" .product null
jq_eq "v2 has no CPUID fields" '[.cpuid_fam_id,.cpuid_mod_id,.cpuid_step]' '[null,null,null]'
expect 0 "report show --json --product milan v2" report show --json --product milan milan/report-v2.bin
jq_eq "v2 with --product" .product '"Milan"'
jq_eq "v2 TCB decoded" '[.reported_tcb.bootloader,.reported_tcb.snp,.reported_tcb.microcode]' '[3,8,115]'
expect 0 "report show --json --product turin v2 (Turin layout)" report show --json --product Turin milan/report-v2.bin
jq_eq "Turin layout has fmc" '.reported_tcb|has("fmc")' true
expect 0 "report show --json VLEK report" report show --json milan/report-vlek.bin
jq_eq "VLEK signing key" .signer_info.signing_key '"VLEK"'
expect_fail "report show on a truncated file" "parse report" "wrong size" report show "$W/trunc.bin"
expect_fail "report show on an MBZ-violating file" "parse report" "malformed input" report show "$W/tampered.bin"

# --- --json of the verify commands and kds-url ------------------------------------------------
expect 0 "report verify --json" report verify "${MV3[@]}" --chain milan/cert_chain.pem --json
jq_eq "report verify --json: ok, product, key, root" '[.ok,.product,.signing_key,.root,.chain_checked]' \
	'[true,"Milan","VCEK","amd",true]'
expect 0 "report verify --json without a chain" report verify "${MV3[@]}" --json
jq_eq "no chain: root null" '[.root,.chain_checked,.chip_id_checked]' '[null,false,true]'
expect_fail "report verify --json failure: stderr only" signature "$SIG" report verify \
	milan/report-v3.bin --vcek milan/report-v2.vcek.der --json
check "report verify --json failure: nothing on stdout" test ! -s "$W/out"
expect 0 "cert verify --json" cert verify --chain genoa/cert_chain.pem --vcek genoa/vcek.pem --json
jq_eq "cert verify --json" '[.ok,.product,.ark_cn,.root]' '[true,"Genoa","ARK-Genoa","amd"]'
expect 0 "kds-url --json" kds-url --product milan --vlek --kind crl --json
jq_eq "kds-url --json" '[.url,.kind,.key]' '["https://kdsintf.amd.com/vlek/v1/Milan/crl","crl","vlek"]'
expect 0 "global --json and --socket before kds-url (socket ignored offline)" --socket /x --json \
	kds-url --product turin --kind chain
jq_eq "global --json reached kds-url" .product '"Turin"'
expect 2 "global --socket without a value" --socket
expect 2 "global options without a command" --json

# --- cert verify ----------------------------------------------------------------------------
for p in milan genoa turin; do
	expect_ok "$p VCEK chain" cert verify --chain $p/cert_chain.pem
	grep -qi "$p chain" "$W/out" && ok "$p chain named" || nok "$p chain named"
	expect_ok "$p VLEK chain" cert verify --chain $p/vlek_cert_chain.pem
done
expect_ok "milan chain + v2 VCEK" cert verify --chain milan/cert_chain.pem --vcek milan/report-v2.vcek.der
expect_ok "milan chain + v3 VCEK" cert verify --chain milan/cert_chain.pem --vcek milan/report-v3.vcek.der
expect_ok "genoa chain + genoa VCEK (PEM)" cert verify --chain genoa/cert_chain.pem --vcek genoa/vcek.pem
expect_ok "turin chain + turin VCEK" cert verify --chain turin/cert_chain.pem --vcek turin/vcek.der
expect_ok "milan VLEK chain + VLEK (at 2025-06-01)" cert verify --chain milan/vlek_cert_chain.pem \
	--vlek milan/report-vlek.vlek.der --at 2025-06-01
expect_fail "genoa VCEK on the milan chain" chain "" cert verify --chain milan/cert_chain.pem \
	--vcek genoa/vcek.pem
expect_fail "VLEK on the VCEK chain (ASVK vs ASK)" chain "" cert verify --chain milan/cert_chain.pem \
	--vlek milan/report-vlek.vlek.der --at 2025-06-01
expect_fail "chain in the wrong order" chain "" cert verify --chain <(cat "$W/milan-c2.pem" "$W/milan-c1.pem")
expect_fail "garbage chain file" "load --chain" "malformed input" cert verify --chain milan/report-v3.bin

# --- certs build / certs show -----------------------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
expect 0 "certs build from --chain + VCEK" certs build --chain milan/cert_chain.pem \
	--vcek milan/report-v3.vcek.der -o "$W/table.bin"
check "table written" test -s "$W/table.bin"
check "no temporary file left" test -z "$(ls "$W" | grep 'table.bin.tmp')"
expect 0 "certs show --json" certs show --json "$W/table.bin"
jq_eq "kinds in order" '[.entries[].kind]' '["VCEK","ASK","ARK"]'
jq_eq "first offset after 4 entries" '.entries[0].offset' 96
jq_eq "VCEK length = DER size" '.entries[0].length' "$(stat -c %s milan/report-v3.vcek.der)"
jq_eq "VCEK sha256 = DER file" '.entries[0].sha256' "\"$(sha milan/report-v3.vcek.der)\""
jq_eq "ARK is ARK-Milan" '.entries[2].subject_cn' '"ARK-Milan"'
jq_eq "ARK sha256 is the pinned fingerprint" '.entries[2].sha256' \
	'"69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"'
jq_eq "ASK is SEV-Milan" '.entries[1].subject_cn' '"SEV-Milan"'
jq_eq "size = file size" .size "$(stat -c %s "$W/table.bin")"
expect 0 "certs show (human)" certs show "$W/table.bin"
grep -q 'CN=ARK-Milan' "$W/out" && grep -q '^VCEK 63da758d-e664-4564-adc5-f4b93be8accd' "$W/out" \
	&& ok "human certs show names kinds and CNs" || nok "human certs show names kinds and CNs"
# separate files, PEM leaf converted to DER, and a CRL
awk -v d="$W" '/BEGIN/{k++} {print > (d "/genoa-c" k ".pem")}' genoa/cert_chain.pem
openssl x509 -in genoa/vcek.pem -outform der -out "$W/genoa-vcek.der"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$W/ca.key" \
	-subj /CN=test-crl-ca -days 30 -out "$W/ca.pem" 2>/dev/null
mkdir -p "$W/ca" && : >"$W/ca/index.txt"
cat >"$W/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $W/ca/index.txt
default_md = sha384
default_crl_days = 30
EOF
openssl ca -gencrl -config "$W/ca.cnf" -keyfile "$W/ca.key" -cert "$W/ca.pem" -out "$W/crl.pem" 2>/dev/null
openssl crl -in "$W/crl.pem" -outform der -out "$W/crl.der"
expect 0 "certs build from separate files with PEM VCEK and PEM CRL" certs build \
	--ark "$W/genoa-c2.pem" --ask "$W/genoa-c1.pem" --vcek genoa/vcek.pem --crl "$W/crl.pem" \
	-o "$W/table2.bin"
run certs show --json "$W/table2.bin"
jq_eq "kinds incl. CRL" '[.entries[].kind]' '["VCEK","ASK","ARK","CRL"]'
jq_eq "PEM VCEK stored as DER" '.entries[0].sha256' "\"$(sha "$W/genoa-vcek.der")\""
jq_eq "PEM CRL stored as DER" '.entries[3].sha256' "\"$(sha "$W/crl.der")\""
jq_eq "genoa ARK pinned fingerprint" '.entries[2].sha256' \
	'"4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"'
expect 0 "VCEK + VLEK table" certs build --chain milan/cert_chain.pem --vcek milan/report-v3.vcek.der \
	--vlek milan/report-vlek.vlek.der -o "$W/table3.bin"
run certs show --json "$W/table3.bin"
jq_eq "VCEK and VLEK entries" '[.entries[].kind]' '["VCEK","VLEK","ASK","ARK"]'
# refusals; a failed build leaves the previous table untouched
before=$(sha "$W/table.bin")
expect_fail "VLEK passed as --vcek" "load --vcek" "certificate does not match" certs build \
	--chain milan/cert_chain.pem --vcek milan/report-vlek.vlek.der -o "$W/table.bin"
# a CRL with enough revoked serials to push the table past 16 KiB
for i in $(seq 1 700); do
	printf 'R\t301231000000Z\t240101000000Z\t%04X\tunknown\t/CN=x%d\n' "$i" "$i"
done >"$W/ca/index.txt"
openssl ca -gencrl -config "$W/ca.cnf" -keyfile "$W/ca.key" -cert "$W/ca.pem" -out "$W/bigcrl.pem" 2>/dev/null
expect_fail "table over 16 KiB refused" "build table" "" certs build --chain milan/cert_chain.pem \
	--vcek milan/report-v3.vcek.der --crl "$W/bigcrl.pem" -o "$W/table.bin"
grep -q 'exceed 16384' "$W/err" && ok "16 KiB limit named" || nok "16 KiB limit named"
check "failed builds left the old table intact" test "$(sha "$W/table.bin")" = "$before"
check "and no temporary files" test -z "$(ls "$W" | grep '\.tmp\.')"
expect_fail "garbage CRL" "load --crl" "malformed input" certs build --chain milan/cert_chain.pem \
	--vcek milan/report-v3.vcek.der --crl milan/report-v3.bin -o "$W/t4.bin"
expect_fail "unwritable output directory" "write table" "" certs build --chain milan/cert_chain.pem \
	--vcek milan/report-v3.vcek.der -o "$W/no/such/dir/t.bin"
# hostile tables
expect_fail "certs show: report file is not a table" "parse table" "" certs show milan/report-v3.bin
head -c 50 "$W/table.bin" >"$W/t-trunc.bin"
expect_fail "certs show: truncated table" "parse table" "" certs show "$W/t-trunc.bin"
cp "$W/table.bin" "$W/t-off.bin"
printf '\xff\xff\x00\x00' | dd of="$W/t-off.bin" bs=1 seek=16 conv=notrunc status=none
expect_fail "certs show: entry offset outside the file" "parse table" "" certs show "$W/t-off.bin"
expect_fail "certs show: empty file" "parse table" "" certs show "$W/empty.bin"

# --- kds-url -----------------------------------------------------------------------------------
HW64=$(jq -r .chip_id "$W/v3.json")
expect 0 "kds-url milan vcek" kds-url --product Milan --hwid "$HW64" --tcb db18000000000004
check "milan URL" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vcek/v1/Milan/$HW64?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219"
run kds-url --product milan --hwid "$HW64" --tcb bl=4,tee=0,snp=24,ucode=219
check "bl=.. form gives the same URL" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vcek/v1/Milan/$HW64?blSPL=04&teeSPL=00&snpSPL=24&ucodeSPL=219"
expect 0 "kds-url genoa vcek" kds-url --product Genoa --hwid "$HW64" --tcb 0x1500000000000003
check "genoa URL" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vcek/v1/Genoa/$HW64?blSPL=03&teeSPL=00&snpSPL=00&ucodeSPL=21"
expect 0 "kds-url turin vcek" kds-url --product Turin --hwid 0a1b2c3d4e5f6071 --tcb 5100000004010101
check "turin URL (fmcSPL, 8-byte hwid)" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vcek/v1/Turin/0a1b2c3d4e5f6071?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81"
run kds-url --product Turin --hwid "0a1b2c3d4e5f6071$(printf '0%.0s' $(seq 112))" --tcb 5100000004010101
check "turin: 64-byte chip id with zero tail accepted" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vcek/v1/Turin/0a1b2c3d4e5f6071?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81"
run kds-url --product milan --kind chain
check "milan chain URL" test "$(cat "$W/out")" = "https://kdsintf.amd.com/vcek/v1/Milan/cert_chain"
run kds-url --product genoa --kind crl
check "genoa CRL URL" test "$(cat "$W/out")" = "https://kdsintf.amd.com/vcek/v1/Genoa/crl"
run kds-url --product turin --vlek
check "--vlek gives the VLEK chain URL" test "$(cat "$W/out")" = \
	"https://kdsintf.amd.com/vlek/v1/Turin/cert_chain"
run kds-url --product milan --vlek --kind crl
check "--vlek --kind crl" test "$(cat "$W/out")" = "https://kdsintf.amd.com/vlek/v1/Milan/crl"
run kds-url --product milan --kind chain --base http://127.0.0.1:8443/
check "--base (mirror), trailing slash dropped" test "$(cat "$W/out")" = \
	"http://127.0.0.1:8443/vcek/v1/Milan/cert_chain"
expect 2 "kds-url: Turin with a 64-byte non-zero-tail hwid" kds-url --product Turin --hwid "$HW64" \
	--tcb 5100000004010101
expect 2 "kds-url: milan with an 8-byte hwid" kds-url --product Milan --hwid 0a1b2c3d4e5f6071 \
	--tcb db18000000000004
expect 2 "kds-url: odd hex" kds-url --product Milan --hwid abc --tcb db18000000000004
expect 2 "kds-url: bad tcb" kds-url --product Milan --hwid "$HW64" --tcb zz
expect 2 "kds-url: fmc on Milan" kds-url --product Milan --hwid "$HW64" --tcb bl=1,tee=1,snp=1,ucode=1,fmc=1
expect 2 "kds-url: unknown product" kds-url --product Naples --kind chain
expect 2 "kds-url: unknown kind" kds-url --product Milan --kind ask
expect 2 "kds-url: vcek without hwid" kds-url --product Milan --tcb db18000000000004
expect 2 "kds-url: hwid with chain" kds-url --product Milan --kind chain --hwid "$HW64"
expect 2 "kds-url: base not http(s)" kds-url --product Milan --kind chain --base file:///etc
expect 2 "kds-url: missing product" kds-url --kind chain

# --- simulated platform: a non-AMD root supplied with --ark ------------------------------------
if [ -n "$MKFIXTURE" ]; then
	for p in milan turin; do
		F="$W/sim-$p"
		mkdir -p "$F"
		if ! "$MKFIXTURE" "$F" $p 2>"$W/err"; then
			nok "$p fixture"
			continue
		fi
		ok "$p fixture"
		expect_fail "sim $p: chain without --ark is refused" chain \
			"chain does not reach a trusted AMD root" \
			report verify "$F/report.bin" --vcek "$F/vcek.der" --chain "$F/chain.pem"
		expect_ok "sim $p: verifies with --ark" report verify "$F/report.bin" --vcek "$F/vcek.der" \
			--chain "$F/chain.pem" --ark "$F/ark.der"
		head -n1 "$W/out" | grep -q '^OK (trusted root: supplied --ark, not an AMD root)' \
			&& ok "sim $p: OK line says the root is not AMD's" \
			|| nok "sim $p: OK line says the root is not AMD's"
		expect_ok "sim $p: cert verify with --ark" cert verify --chain "$F/chain.pem" \
			--vcek "$F/vcek.der" --ark "$F/ark.der"
		grep -q 'not an AMD root' "$W/out" && ok "sim $p: cert verify names the root" \
			|| nok "sim $p: cert verify names the root"
		expect_fail "sim $p: AMD's ARK as --ark does not bless the simulated chain" chain "" \
			report verify "$F/report.bin" --vcek "$F/vcek.der" --chain "$F/chain.pem" \
			--ark "$W/milan-c2.pem"
		flip "$F/report.bin" $((0x50)) "$W/sim-tampered.bin"
		expect_fail "sim $p: tampered report still refused with --ark" signature "$SIG" \
			report verify "$W/sim-tampered.bin" --vcek "$F/vcek.der" --chain "$F/chain.pem" \
			--ark "$F/ark.der"
		expect 0 "sim $p: certs build with the simulated CRL" certs build --chain "$F/chain.pem" \
			--vcek "$F/vcek.der" --crl "$F/crl.der" -o "$F/table.bin"
		run certs show --json "$F/table.bin"
		jq_eq "sim $p: table kinds" '[.entries[].kind]' '["VCEK","ASK","ARK","CRL"]'
		jq_eq "sim $p: CRL stored verbatim (DER)" '.entries[3].sha256' "\"$(sha "$F/crl.der")\""
	done
	F="$W/sim-turin"
	expect 0 "sim turin: report show --json" report show --json "$F/report.bin"
	jq_eq "turin v5 report" '[.version,.product,.tcb_layout]' '[5,"Turin","turin"]'
	jq_eq "turin TCB with fmc" \
		'[.reported_tcb.fmc,.reported_tcb.bootloader,.reported_tcb.tee,.reported_tcb.snp,.reported_tcb.microcode]' \
		'[1,1,1,4,81]'
	jq_eq "turin mitigation vectors" '[.launch_mit_vector,.current_mit_vector]' \
		'["0x000000000000003f","0x000000000000003f"]'
	jq_eq "turin cpuid" '[.cpuid_fam_id,.cpuid_mod_id]' '[26,2]'
	HW8=$(jq -r '.chip_id[0:16]' "$W/out")
	run kds-url --product Turin --hwid "$(jq -r .chip_id "$W/out")" --tcb "$(jq -r .reported_tcb.raw "$W/out")"
	check "turin: kds-url from report show output" test "$(cat "$W/out")" = \
		"https://kdsintf.amd.com/vcek/v1/Turin/$HW8?fmcSPL=01&blSPL=01&teeSPL=01&snpSPL=04&ucodeSPL=81"
else
	echo "# no MKFIXTURE given: simulated-root tests skipped"
fi

# --- usage errors and help -----------------------------------------------------------------------
expect 2 "no arguments" 
expect 2 "unknown command" frobnicate
expect 2 "missing subcommand" report
expect 2 "unknown subcommand" report frob
expect 2 "unknown option" report show --frob milan/report-v3.bin
expect 2 "report show without FILE" report show
expect 2 "report show with two FILEs" report show milan/report-v3.bin milan/report-v2.bin
expect 2 "report show with a bad --product" report show --product Naples milan/report-v3.bin
expect 2 "report verify without --vcek" report verify milan/report-v3.bin
expect 2 "report verify with --vcek missing its value" report verify milan/report-v3.bin --vcek
expect 2 "report verify --ark without --chain" report verify "${MV3[@]}" --ark "$W/milan-c2.pem"
expect 2 "report verify bad --at" report verify "${MV3[@]}" --at yesterday
expect 2 "report verify --at with --no-time-check" report verify "${MV3[@]}" --at 2025-01-01 --no-time-check
expect 2 "cert verify without --chain" cert verify --vcek milan/report-v3.vcek.der
expect 2 "cert verify with a positional argument" cert verify --chain milan/cert_chain.pem extra
expect 2 "certs build without -o" certs build --chain milan/cert_chain.pem --vcek milan/report-v3.vcek.der
expect 2 "certs build without a leaf" certs build --chain milan/cert_chain.pem -o "$W/x.bin"
expect 2 "certs build --chain and --ark" certs build --chain milan/cert_chain.pem --ark "$W/milan-c2.pem" \
	--vcek milan/report-v3.vcek.der -o "$W/x.bin"
expect 2 "certs build --vcek twice" certs build --chain milan/cert_chain.pem --vcek a --vcek b -o "$W/x.bin"
expect 2 "certs show without TABLE" certs show
check "usage errors print a hint on stderr" grep -q "Try 'snpctl certs show --help'" "$W/err"

expect 0 "--help" --help
for c in "report show" "report verify" "cert verify" "certs build" "certs show" "kds-url"; do
	grep -q "^  $c " "$W/out" && ok "overview lists '$c'" || nok "overview lists '$c'"
done
grep -q '2 usage error' "$W/out" && ok "overview documents exit codes" || nok "overview documents exit codes"
grep -q '3 snp-attestd is not running' "$W/out" && ok "overview documents exit code 3" \
	|| nok "overview documents exit code 3"
for c in status "vm list" "quota set" "tcb set" "cert rotate" top; do
	sed -n '/^Online commands/,/^$/p' "$W/out" | grep -q "^  $c " && ok "overview lists online '$c'" \
		|| nok "overview lists online '$c'"
done
grep -q '^  --socket PATH' "$W/out" && grep -q '^  --json ' "$W/out" && ok "overview: global options" \
	|| nok "overview: global options"
for c in "report show" "report verify" "cert verify" "certs build" "certs show" "kds-url"; do
	# shellcheck disable=SC2086
	expect 0 "$c --help" $c --help
	grep -q "^Usage: snpctl $c" "$W/out" && grep -q '^Exit status: 0 success; 1' "$W/out" \
		&& ok "$c --help: usage and exit codes" || nok "$c --help: usage and exit codes"
done
expect 0 "report --help" report --help
expect 0 "help report verify" help report verify
grep -q '^Usage: snpctl report verify' "$W/out" && ok "help CMD shows the command" || nok "help CMD shows the command"
expect 0 "help report (a group)" help report
grep -q '^  report verify ' "$W/out" && ok "help GROUP lists its subcommands" || nok "help GROUP lists its subcommands"
expect 2 "help for an unknown command" help frobnicate
expect 0 "--version" --version

echo "1..$n"
[ "$failed" -eq 0 ]
