#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Offline certificate handling (issue [D] points 3 and 8): `snpctl cert show`, `cert fetch`
# and `cert export` on a daemon that gets its chain from KDS; then an air-gapped daemon (KDS
# unreachable, empty cache) gets the exported chain with `cert import`, serves it, and guests
# verify their reports against it. A chain for another TCB is refused and changes nothing.
. "$(dirname "$0")/lib.sh"

simenv_init
check "snp-kdssim starts" simenv_start_kds
simenv_write_conf
sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
check "daemon A starts with KDS as the chain source" simenv_start_daemon
W=$SIMENV_DIR

simenv_snpctl cert show --json > "$W/show.json" 2>&1
check "cert show --json answers" jqt "$W/show.json" 'type == "object"'
jq -c '{source: (.chain.source // .source), certificates: ([.. | .subject_cn? // empty])}' \
	"$W/show.json" 2> /dev/null | diag
check "cert show lists three certificates with PEM" \
	jqt "$W/show.json" '[.. | objects | select(has("pem"))] | length == 3'
check "cert fetch reports an outcome per key" simenv_snpctl cert fetch --json
simenv_snpctl cert fetch --json > "$W/fetch.json" 2>&1
jq -c . "$W/fetch.json" | head -c 600 | diag
check "cert export writes the chain" simenv_snpctl cert export "$W/exp"
check "exported files present" test -s "$W/exp/ark.pem" -a -s "$W/exp/ask.pem" \
	-a -s "$W/exp/cert_chain.pem" -a -s "$W/exp/vcek.der"
openssl x509 -inform DER -in "$W/exp/vcek.der" -out "$W/exp-vcek.pem"
check "the exported chain passes openssl verify" \
	openssl verify -CAfile "$W/exp/ark.pem" -untrusted "$W/exp/ask.pem" "$W/exp-vcek.pem"
if simenv_snpctl cert export "$W/exp" > /dev/null 2>&1; then
	not_ok "cert export refuses to overwrite without --force"
else
	ok "cert export refuses to overwrite without --force"
fi
check "cert export --force overwrites" simenv_snpctl cert export "$W/exp" --force

# A VCEK for another TCB (KDS issues any TCB), with the right chain: must be refused.
mkdir -p "$W/wrong"
cp "$W/exp/ark.pem" "$W/exp/ask.pem" "$W/exp/cert_chain.pem" "$W/wrong/"
P=$(simenv_state_field product)
hw=$(simenv_state_field chip_id)
curl -sf "$("$(simenv_bin snpctl)" kds-url --product "$P" --hwid "$hw" \
	--tcb bl=2,tee=0,snp=8,ucode=115 --base "$SIMENV_KDS_URL")" -o "$W/wrong/vcek.der"
simenv_stop_daemon TERM
simenv_cleanup

# Daemon B: air-gapped (KDS unreachable), fresh state and cache.
SIMENV_DIR=$W/b
mkdir -p "$SIMENV_DIR"
SIMENV_KDS_URL=http://127.0.0.1:9
simenv_write_conf
sed -i 's/^cert_dir = .*/cert_dir =/' "$SIMENV_CONF"
check "daemon B starts without KDS (runs without a chain)" simenv_start_daemon
check "daemon B serves no chain yet" grep -q "running without a chain" "$SIMENV_DIR/daemon.log"
if simenv_snpctl cert import "$W/wrong" > "$W/wrong.out" 2>&1; then
	not_ok "import of a VCEK for another TCB is refused"
else
	ok "import of a VCEK for another TCB is refused"
fi
diag < "$W/wrong.out"
check "cert import of the exported chain succeeds" simenv_snpctl cert import "$W/exp"
simenv_snpctl status --json > "$W/b-status.json"
check "daemon B serves the imported chain" jqt "$W/b-status.json" \
	'.. | objects | select(has("source")) | .source | tostring | test("import")'
simenv_kvmsim --vms 8 --rate 2 --duration 5 --wait-broker 10 --json > "$W/b-fleet.json"
rc=$?
jq -c '.totals' "$W/b-fleet.json" | diag
check "guests verify reports against the imported chain (exit 0)" test "$rc" = 0
check "reports verified with the imported table" jqt "$W/b-fleet.json" \
	'.totals.reports_verified > 0 and .totals.verify_failures == 0 and .totals.vmpck_wipes == 0'
