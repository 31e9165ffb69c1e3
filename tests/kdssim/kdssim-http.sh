#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end test of snp-kdssim over HTTP with curl and openssl (TAP). Usage: kdssim-http.sh EXE
# The state directory lives in the build tree, so the RSA-4096 CA keys are generated once.
set -u

EXE=$1
BUILD=${SNP_BUILD_ROOT:?}
STATE=$BUILD/tests/kdssim/http-state
WORK=$(mktemp -d /tmp/kdssim-http-XXXXXX)
PIDS=()
n=0
failed=0

cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@" >"$WORK/check.out" 2>&1; then ok "$d"; else not_ok "$d"; sed 's/^/# /' "$WORK/check.out"; fi
}

# start NAME ARGS...: runs the simulator, waits for its port file, sets PORT.
start() {
	local name=$1
	shift
	rm -f "$WORK/$name.port"
	"$EXE" --state "$STATE" --product milan --listen 127.0.0.1:0 --port-file "$WORK/$name.port" \
		--log "$WORK/$name.log" "$@" 2>"$WORK/$name.err" &
	PIDS+=($!)
	# The first start generates RSA-4096 keys: wait generously (this is a limit, not a
	# measurement).
	for _ in $(seq 1 1200); do
		[ -s "$WORK/$name.port" ] && break
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	PORT=$(cat "$WORK/$name.port" 2>/dev/null)
	[ -n "$PORT" ]
}

# get URLPATH OUTFILE [curl args]: prints the HTTP status; headers in OUTFILE.h
get() {
	local path=$1 out=$2
	shift 2
	curl -s -o "$out" -D "$out.h" -w '%{http_code}' "$@" "http://127.0.0.1:$PORT$path"
}

header() { # header FILE NAME: value of a response header
	grep -i "^$2:" "$1.h" | head -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

echo "1..32"

if start plain; then ok "server starts and writes its port file"; else
	not_ok "server starts and writes its port file"
	sed 's/^/# /' "$WORK/plain.err"
	exit 1
fi

HWID=$(sed -n 's/^chip_id=//p' "$STATE/state")
Q='blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115'

# --- certificate chain ---
st=$(get /vcek/v1/Milan/cert_chain "$WORK/chain.pem")
check "cert_chain answers 200" test "$st" = 200
check "cert_chain is application/x-pem-file" \
	test "$(header "$WORK/chain.pem" Content-Type)" = application/x-pem-file
awk -v d="$WORK" '/BEGIN CERT/{i++} {print > (d "/c" i ".pem")}' "$WORK/chain.pem"
mv "$WORK/c1.pem" "$WORK/ask.pem"
mv "$WORK/c2.pem" "$WORK/ark.pem"
check "ARK is self-signed and ASK verifies against it (RSA-PSS)" \
	openssl verify -CAfile "$WORK/ark.pem" "$WORK/ask.pem"
check "chain names SEV-Milan then ARK-Milan" \
	bash -c "openssl x509 -in '$WORK/ask.pem' -noout -subject | grep -q 'CN = SEV-Milan' &&
		 openssl x509 -in '$WORK/ark.pem' -noout -subject | grep -q 'CN = ARK-Milan'"

# --- VCEK ---
st=$(get "/vcek/v1/Milan/$HWID?$Q" "$WORK/vcek.der")
check "VCEK for the simulated chip answers 200" test "$st" = 200
check "VCEK is application/pkix-cert" \
	test "$(header "$WORK/vcek.der" Content-Type)" = application/pkix-cert
check "VCEK DER parses, serial 0, RSA-PSS, CN=SEV-VCEK" \
	bash -c "openssl x509 -inform der -in '$WORK/vcek.der' -noout -text > '$WORK/vcek.txt' &&
		 grep -q 'Serial Number: 0' '$WORK/vcek.txt' && grep -q rsassaPss '$WORK/vcek.txt' &&
		 grep -q 'CN = SEV-VCEK' '$WORK/vcek.txt'"
openssl x509 -inform der -in "$WORK/vcek.der" -out "$WORK/vcek.pem" 2>/dev/null
check "VCEK chains to the simulated ARK through the ASK" \
	openssl verify -CAfile "$WORK/ark.pem" -untrusted "$WORK/ask.pem" "$WORK/vcek.pem"
check "VCEK hwID extension is the chip id" \
	bash -c "openssl asn1parse -inform der -in '$WORK/vcek.der' | grep -qi '${HWID:0:64}'"

st=$(get "/vcek/v1/Milan/$HWID?$Q" "$WORK/vcek2.der")
check "the same VCEK is served again byte for byte" cmp "$WORK/vcek.der" "$WORK/vcek2.der"

# --- conditional GET ---
ETAG=$(header "$WORK/vcek.der" ETag)
LM=$(header "$WORK/vcek.der" Last-Modified)
check "ETag, Last-Modified and Cache-Control are sent" \
	test -n "$ETAG" -a -n "$LM" -a -n "$(header "$WORK/vcek.der" Cache-Control)"
st=$(get "/vcek/v1/Milan/$HWID?$Q" "$WORK/cond" -H "If-None-Match: $ETAG")
check "If-None-Match with the ETag gives 304 and no body" test "$st" = 304 -a ! -s "$WORK/cond"
st=$(get "/vcek/v1/Milan/$HWID?$Q" "$WORK/cond" -H "If-Modified-Since: $LM")
check "If-Modified-Since gives 304" test "$st" = 304
st=$(get "/vcek/v1/Milan/$HWID?$Q" "$WORK/cond" -H 'If-None-Match: "other"')
check "a stale ETag gets the full body" test "$st" = 200

# --- CRL ---
st=$(get /vcek/v1/Milan/crl "$WORK/crl.der")
check "CRL is application/pkix-crl and verifies with the ARK" \
	bash -c "test '$st' = 200 &&
		 test '$(header "$WORK/crl.der" Content-Type)' = application/pkix-crl &&
		 openssl crl -inform der -in '$WORK/crl.der' -CAfile '$WORK/ark.pem' -noout"
st=$(get /vlek/v1/Milan/cert_chain "$WORK/vlek.pem")
check "VLEK chain starts with SEV-VLEK-Milan" \
	bash -c "test '$st' = 200 && openssl x509 -in '$WORK/vlek.pem' -noout -subject |
		 grep -q 'CN = SEV-VLEK-Milan'"

# --- bad requests ---
OTHER=$(printf '%s' "$HWID" | sed 's/^./f/; t; s/^/x/')
[ "${HWID:0:1}" = f ] && OTHER=$(printf '%s' "$HWID" | sed 's/^./e/')
st=$(get "/vcek/v1/Milan/$OTHER?$Q" "$WORK/x")
check "unknown hwid gives 404" test "$st" = 404
st=$(get "/vcek/v1/Milan/zz?$Q" "$WORK/x")
s2=$(get "/vcek/v1/Milan/$HWID?blSPL=03" "$WORK/x")
s3=$(get "/vcek/v1/Milan/$HWID?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=999" "$WORK/x")
check "malformed hwid, missing SPLs, out-of-range SPL give 400" \
	test "$st/$s2/$s3" = 400/400/400
st=$(get /vcek/v1/Genoa/cert_chain "$WORK/x")
s2=$(get /nothing "$WORK/x")
s3=$(get /vcek/v1/Milan/cert_chain "$WORK/x" -X POST)
check "other product 404, other path 404, POST 405" test "$st/$s2/$s3" = 404/404/405

st=$(get "/vcek/v1/Milan/%0Afake%20line%ff" "$WORK/x")
check "hostile path: 400, and the log stays one line per request" \
	bash -c "test '$st' = 400 && ! grep -q '^fake' '$WORK/plain.log' &&
		 grep -q 'path=/vcek/v1/Milan/?fake?line? status=400' '$WORK/plain.log'"

# --- stats and log ---
get /_sim/stats "$WORK/stats.json" >/dev/null
check "stats count the cert_chain fetch and the 304s" \
	bash -c "test \"\$(jq '.by_path[\"/vcek/v1/Milan/cert_chain\"][\"200\"]' '$WORK/stats.json')\" = 1 &&
		 test \"\$(jq '.by_status[\"304\"]' '$WORK/stats.json')\" = 2"
check "every request is logged with method, path, status, bytes, fault" \
	bash -c "grep -c 'method=GET path=/vcek/v1/Milan/cert_chain status=200 bytes=[1-9][0-9]* fault=-' \
		 '$WORK/plain.log' | grep -qx 1 && grep -q 'status=304 bytes=0' '$WORK/plain.log'"

# --- faults ---
if start faulty --seed 7 --fault 429:next=1 --fault 429-retry-after=7:next=1 --fault 500:next=1 \
	--fault delay=300ms:next=1 --fault truncate:next=1 --fault garbage:next=1; then
	ok "faulty server starts"
else
	not_ok "faulty server starts"
fi
C=/vcek/v1/Milan/cert_chain
s1=$(get $C "$WORK/f1")
s2=$(get $C "$WORK/f2")
check "429 without Retry-After, then 429 with Retry-After: 7" \
	bash -c "test '$s1/$s2' = 429/429 && ! grep -qi '^Retry-After' '$WORK/f1.h' &&
		 test '$(header "$WORK/f2" Retry-After)' = 7"
s3=$(get $C "$WORK/f3")
check "500 injected" test "$s3" = 500
curl -s -o "$WORK/f4" "http://127.0.0.1:$PORT$C"
rc4=$?
check "truncated body: curl sees a partial transfer (exit 18), logged as truncate" \
	bash -c "test $rc4 = 18 && test \$(stat -c %s '$WORK/f4') -lt \$(stat -c %s '$WORK/chain.pem') &&
		 grep -q 'status=200 bytes=[0-9]* fault=truncate' '$WORK/faulty.log'"
s5=$(get $C "$WORK/f5")
check "garbage body: 200 of the same length that is not the chain" \
	bash -c "test '$s5' = 200 && ! cmp -s '$WORK/f5' '$WORK/chain.pem' &&
		 test \$(stat -c %s '$WORK/f5') = \$(stat -c %s '$WORK/chain.pem') &&
		 ! openssl x509 -in '$WORK/f5' -noout 2>/dev/null"
s6=$(get $C "$WORK/f6")
check "after the counted faults the chain is served intact; delay was logged" \
	bash -c "test '$s6' = 200 && cmp '$WORK/f6' '$WORK/chain.pem' &&
		 grep -q 'status=429 bytes=0 fault=429,delay=300ms' '$WORK/faulty.log'"

# SIGTERM ends the server cleanly (under ASan this also catches leaks).
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}"
check "server exits 0 on SIGTERM" test $? = 0
unset 'PIDS[-1]'

# --- TLS ---
if start tls --tls; then ok "TLS server starts"; else not_ok "TLS server starts"; fi
CA=$STATE/kds/tls/ca.pem
check "HTTPS with the generated test CA serves the same chain" \
	bash -c "curl -sf --cacert '$CA' -o '$WORK/tls.pem' https://localhost:$PORT/vcek/v1/Milan/cert_chain &&
		 cmp '$WORK/tls.pem' '$WORK/chain.pem' && grep -q 'CA: $CA' '$WORK/tls.err'"

exit $failed
