#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Issue [B]'s acceptance check, for each product: a report made by the simulation, with the
# VCEK and cert_chain fetched from snp-kdssim at the URLs `snpctl kds-url` prints, passes
# `openssl verify` for the chain and an independent ECDSA check of the report (Python + openssl,
# no project code), and `snpctl report verify` with the simulator's ARK. A tampered copy fails.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ctl=$(simenv_bin snpctl)

for product in milan genoa turin; do
	W=$SIMENV_DIR/$product
	mkdir -p "$W"
	SIMENV_STATE=$W/sim
	SIMENV_PRODUCT=$product
	SIMENV_DIR_SAVE=$SIMENV_DIR
	SIMENV_DIR=$W
	# The simulated AMD keys (RSA-4096) are made once per build tree and product.
	seed=$SNP_BUILD_ROOT/tests/integration/seed-$product
	[ -e "$seed/state" ] && cp -a "$seed" "$SIMENV_STATE"
	check "$product: snp-kdssim starts (creates the simulated chip)" simenv_start_kds
	[ -e "$seed/state" ] || cp -a "$SIMENV_STATE" "$seed" 2> /dev/null
	"$(simenv_bin snp-kvmsim)" --state "$SIMENV_STATE" --vms 1 --requests 4 --no-broker --quiet \
		--dump "$W/dump" --json > "$W/run.json"
	check "$product: snp-kvmsim --no-broker produced reports" test -s "$(ls "$W"/dump/*.report | head -1)"
	report=$(ls "$W"/dump/*.report | head -1)
	P=$(simenv_state_field product)
	hw=$(simenv_state_field chip_id)
	tcb=$(simenv_state_field reported_tcb)
	chain_url=$("$ctl" kds-url --product "$P" --kind chain --base "$SIMENV_KDS_URL")
	vcek_url=$("$ctl" kds-url --product "$P" --hwid "$hw" --tcb "$tcb" --base "$SIMENV_KDS_URL")
	echo "# $vcek_url"
	check "$product: cert_chain fetched at the kds-url URL" curl -sSf "$chain_url" -o "$W/chain.pem"
	check "$product: VCEK fetched at the kds-url URL" curl -sSf "$vcek_url" -o "$W/vcek.der"
	openssl x509 -inform DER -in "$W/vcek.der" -out "$W/vcek.pem"
	awk 'BEGIN{n=0} /BEGIN CERT/{n++} {print > ("'"$W"'/c" n ".pem")}' "$W/chain.pem"
	check "$product: openssl verify: ARK -> ASK -> VCEK (RSA-PSS)" \
		openssl verify -CAfile "$W/c2.pem" -untrusted "$W/c1.pem" "$W/vcek.pem"
	check "$product: the ARK in the chain is the simulator's" \
		cmp <(openssl x509 -in "$W/c2.pem" -outform DER) \
		<(openssl x509 -in "$W/sim/kds/ark-$product.pem" -outform DER)
	check "$product: independent ECDSA P-384 check of the report" \
		python3 "$HERE/report-openssl.py" "$report" "$W/vcek.pem" "$W"
	check "$product: snpctl report verify with the simulator's ARK" \
		"$ctl" report verify "$report" --vcek "$W/vcek.der" --chain "$W/chain.pem" \
		--ark "$W/sim/kds/ark-$product.pem"
	cp "$report" "$W/tampered.report"
	printf '\x01' | dd of="$W/tampered.report" bs=1 seek=$((0x50)) conv=notrunc 2> /dev/null
	if python3 "$HERE/report-openssl.py" "$W/tampered.report" "$W/vcek.pem" "$W" > /dev/null 2>&1; then
		not_ok "$product: a tampered report fails the independent check"
	else
		ok "$product: a tampered report fails the independent check"
	fi
	if "$ctl" report verify "$W/tampered.report" --vcek "$W/vcek.der" --chain "$W/chain.pem" \
		--ark "$W/sim/kds/ark-$product.pem" > /dev/null 2>&1; then
		not_ok "$product: snpctl rejects the tampered report"
	else
		ok "$product: snpctl rejects the tampered report"
	fi
	simenv_cleanup
	SIMENV_DIR=$SIMENV_DIR_SAVE
done
