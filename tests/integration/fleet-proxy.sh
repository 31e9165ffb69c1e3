#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A fleet behind one caching proxy: nginx (proxy_cache, fleet-nginx.conf.in) in front of
# snp-kdssim, FLEET_N daemons on the same simulated chip (same KDS keys) started together.
#  1. cold caches: KDS sees exactly one request per key; every daemon asked the proxy once per key
#  2. proxy and KDS unreachable, warm caches: every daemon serves its chain from the cache
#     (time to READY=1 on the notify socket and to the chain reported, not asserted)
#  3. the daemons' entries past their max-age (rewritten as a day later would see them), cert
#     rotate: conditional requests (If-None-Match) reach the proxy, which answers 304 from its
#     own cache; KDS sees nothing and no body is transferred again.
. "$(dirname "$0")/lib.sh"

N=${FLEET_N:-8}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
	trap - EXIT
	simenv_cleanup
	rm -rf "$SIMENV_DIR"
	echo "1..0 # SKIP nginx is not installed (scripts/setup installs it)"
	exit 0
fi
CTL=$(simenv_bin snpctl)
D=$SIMENV_DIR
NG=$D/nginx

# The simulated CA is made once per build tree (RSA-4096 keys are slow), like it_platform.
seed_state() {
	mkdir -p "$(dirname "$SIMENV_SEED_STATE")"
	(
		flock 9
		if [ ! -e "$SIMENV_SEED_STATE/state" ]; then
			SIMENV_DIR=$(mktemp -d /tmp/snp-seed.XXXXXX)
			simenv_init
			simenv_start_kds && cp -a "$SIMENV_STATE" "$SIMENV_SEED_STATE.tmp" &&
				mv "$SIMENV_SEED_STATE.tmp" "$SIMENV_SEED_STATE"
			simenv_cleanup
			rm -rf "$SIMENV_DIR"
		fi
	) 9> "$SNP_BUILD_ROOT/tests/integration/seed.lock"
	simenv_init
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_open() { # port: something accepts connections on 127.0.0.1:port
	(exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null
}

NGINX_PID=
start_nginx() {
	mkdir -p "$NG/tmp"
	sed -e "s|@DIR@|$NG|g" -e "s|@PORT@|$PROXY_PORT|g" -e "s|@UPSTREAM@|$SIMENV_KDS_URL|g" \
		-e "s|@USER@|$(id -un) $(id -gn)|g" \
		"$SNP_SOURCE_ROOT/tests/integration/fleet-nginx.conf.in" > "$NG/nginx.conf"
	"$NGINX" -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" -g 'daemon off;' \
		>> "$NG/nginx.out" 2>&1 &
	NGINX_PID=$!
	SIMENV_PIDS+=("$NGINX_PID")
	local i
	for ((i = 0; i < 100; i++)); do
		port_open "$PROXY_PORT" && return 0
		kill -0 "$NGINX_PID" 2> /dev/null || break
		sleep 0.1
	done
	cat "$NG/nginx.out" "$NG/error.log" >&2
	return 1
}
stop_nginx() {
	kill -TERM "$NGINX_PID" 2> /dev/null
	wait "$NGINX_PID" 2> /dev/null
	! port_open "$PROXY_PORT"
}

# Daemon i: its own state, cache, control socket and netlink port; the chain from KDS through
# the proxy (no cert_dir).
write_conf() {
	local i=$1 dd=$D/d$1
	mkdir -p "$dd"
	cat > "$dd/snp-attestd.conf" << CONF
[daemon]
backend = sim
sim_state_dir = $SIMENV_STATE
state_dir = $dd/state
cache_dir = $dd/cache
transport = usersock
usersock_port = $((SIMENV_PORT + i))
log_level = info
[control]
socket = $dd/control.sock
[vmm]
socket = $dd/vmm.sock
[certs]
cert_dir =
kds_url = http://127.0.0.1:$PROXY_PORT
kds_timeout = 10s
[metrics]
listen =
CONF
}

DPIDS=()
start_daemon() { # i [env assignments...]
	local i=$1 dd=$D/d$1
	shift
	rm -f "$dd/control.sock"
	env "$@" "$(simenv_bin snp-attestd)" --config "$dd/snp-attestd.conf" --foreground \
		>> "$dd/daemon.log" 2>&1 &
	DPIDS[i]=$!
	SIMENV_PIDS+=($!)
}
stop_daemons() { # every daemon exits 0 on SIGTERM
	local i bad=0
	for ((i = 0; i < N; i++)); do
		kill -TERM "${DPIDS[i]}" 2> /dev/null
	done
	for ((i = 0; i < N; i++)); do
		wait "${DPIDS[i]}" || bad=$((bad + 1))
	done
	test "$bad" = 0
}
status_of() { # i -> $D/d<i>/status.json
	"$CTL" --socket "$D/d$1/control.sock" status --json > "$D/d$1/status.json" 2> /dev/null
}
has_chain() { # i source
	status_of "$1" && jqt "$D/d$1/status.json" ".chain != null and .chain.source == \"$2\""
}
wait_chains() { # source timeout-s: every daemon serves a chain obtained from source
	local i t
	for ((i = 0; i < N; i++)); do
		for ((t = 0; t < $2 * 10; t++)); do
			has_chain "$i" "$1" && break
			kill -0 "${DPIDS[i]}" 2> /dev/null || return 1
			sleep 0.1
		done
		has_chain "$i" "$1" || {
			echo "daemon $i: $(cat "$D/d$i/status.json" 2> /dev/null)"
			tail -5 "$D/d$i/daemon.log"
			return 1
		}
	done
}
kds_stats() { curl -sSf "$SIMENV_KDS_URL/_sim/stats" -o "$D/$1"; }
kds_gets() { grep -c ' "GET /vcek/' "$NG/access.log"; } # KDS requests the proxy has seen

seed_state
check "snp-kdssim starts" simenv_start_kds
PROXY_PORT=$(free_port)
check "nginx starts as a caching proxy in front of it" start_nginx
PRODUCT=$(simenv_state_field product)
HWID=$(simenv_state_field chip_id)
TCB=$(simenv_state_field reported_tcb)
CHAIN_URL=$("$CTL" kds-url --product "$PRODUCT" --kind chain --base http://kds)
VCEK_URL=$("$CTL" kds-url --product "$PRODUCT" --hwid "$HWID" --tcb "$TCB" --base http://kds)
CHAIN_PATH=${CHAIN_URL#http://kds}
VCEK_PATH=${VCEK_URL#http://kds}
VCEK_PATH=${VCEK_PATH%%\?*}

# --- 1. cold start of the fleet, all at once ---
for ((i = 0; i < N; i++)); do
	write_conf "$i"
done
for ((i = 0; i < N; i++)); do
	start_daemon "$i"
done
check "all $N daemons serve a chain fetched from KDS through the proxy" wait_chains kds 60
kds_stats stats1.json
jq -c . "$D/stats1.json" | diag
check "KDS saw exactly one request for the cert_chain" \
	jqt "$D/stats1.json" ".by_path[\"$CHAIN_PATH\"] == {\"200\": 1}"
check "KDS saw exactly one request for the VCEK" \
	jqt "$D/stats1.json" ".by_path[\"$VCEK_PATH\"] == {\"200\": 1}"
check "KDS saw nothing else" jqt "$D/stats1.json" '.total == 2'
awk '{ for (f = 1; f <= NF; f++) if ($f ~ /^cache=/) n[$f]++ } END { for (k in n) print k, n[k] }' \
	"$NG/access.log" | sort | diag
check "the proxy saw exactly one request per key from each daemon ($((2 * N)))" \
	test "$(kds_gets)" = $((2 * N))
check "the proxy answered $((2 * N - 2)) of them from its cache" \
	test "$(grep -c ' "GET /vcek/.* cache=HIT ' "$NG/access.log")" = $((2 * N - 2))
check "every daemon wrote both entries to its cache" \
	test "$(ls "$D"/d*/cache/*.kdsc | wc -l)" = $((2 * N))
check "the daemons stop cleanly" stop_daemons

# --- 2. warm caches, proxy down (KDS unreachable for the daemons) ---
check "the proxy stops" stop_nginx
kds_stats stats2a.json
# The measurer: for daemon i (started by the shell right after it writes d<i>/t0), the time from
# t0 to READY=1 on its notify socket and to the first status reply naming a chain (the control
# socket polled every millisecond). Wall clock in ns on both sides.
python3 - "$D" "$N" > "$D/measure.out" 2>&1 << 'PY' &
import json, os, select, socket, sys, time
d, n = sys.argv[1], int(sys.argv[2])

def wait_file(p, secs):
    end = time.monotonic() + secs
    while not os.path.exists(p):
        if time.monotonic() > end:
            return False
        time.sleep(0.0005)
    return True

def chain_source(path):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(1)
            c.connect(path)
            c.sendall(b'{"cmd":"status","id":1}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                part = c.recv(65536)
                if not part:
                    return None
                buf += part
        o = json.loads(buf)
        chain = o.get("chain") or (o.get("result") or {}).get("chain")
        return chain.get("source") if chain else None
    except (OSError, ValueError):
        return None

for i in range(n):
    dd = f"{d}/d{i}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(f"{dd}/notify.sock")
    with open(f"{dd}/notify.bound", "w") as f:
        f.write("bound\n")
    ready = chain = None
    src = "-"
    if wait_file(f"{dd}/t0", 10):
        end = time.monotonic() + 10
        while ready is None and time.monotonic() < end:
            if select.select([s], [], [], 0.1)[0]:
                msg, t = s.recv(4096), time.time_ns()
                if b"READY=1" in msg.split(b"\n"):
                    ready = t
        while ready and chain is None and time.monotonic() < end:
            src = chain_source(f"{dd}/control.sock")
            if src:
                chain = time.time_ns()
            else:
                time.sleep(0.001)
    t0 = int(open(f"{dd}/t0").read()) if os.path.exists(f"{dd}/t0") else 0
    ms = lambda t: "-" if t is None else "%.1f" % ((t - t0) / 1e6)
    with open(f"{dd}/measured.tmp", "w") as f:
        f.write(f"{i} {ms(ready)} {ms(chain)} {src}\n")
    os.rename(f"{dd}/measured.tmp", f"{dd}/measured")
    s.close()
PY
MEASURER=$!
# One at a time (each host runs one daemon).
for ((i = 0; i < N; i++)); do
	simenv_wait_file "$D/d$i/notify.bound" 10
	date +%s%N > "$D/d$i/t0"
	start_daemon "$i" "NOTIFY_SOCKET=$D/d$i/notify.sock"
	simenv_wait_file "$D/d$i/measured" 30
done
wait "$MEASURER"
cat "$D"/d*/measured > "$D/warm-start.txt" 2> /dev/null
awk '{ printf "daemon %d: READY=1 after %s ms, chain from %s reported after %s ms\n", $1, $2, $4, $3 }' \
	"$D/warm-start.txt" | diag
summary() { # column name
	sort -n -k "$1" "$D/warm-start.txt" | awk -v c="$1" -v what="$2" '{ v[NR] = $c }
		END { printf "%s: min %s ms, median %s ms, max %s ms\n", what, v[1], v[int((NR + 1) / 2)], v[NR] }'
}
{ summary 2 "time to READY=1"; summary 3 "time to chain served"; } | tee "$D/warm-summary.txt" | diag
check "every daemon sent READY=1" test "$(awk '$2 != "-"' "$D/warm-start.txt" | wc -l)" = "$N"
check "every daemon served its chain from the cache with the proxy down" \
	test "$(awk '$4 == "cache"' "$D/warm-start.txt" | wc -l)" = "$N"
check "status agrees (chain from the cache on every daemon)" wait_chains cache 10
kds_stats stats2b.json
check "KDS saw no request while the proxy was down" \
	jqt "$D/stats2b.json" ".total == $(jq .total "$D/stats2a.json")"
check "no daemon logged a failed fetch (fresh entries need no request)" \
	eval "! grep -q 'KDS fetch of' $D/d*/daemon.log"

# --- 3. expired entries, proxy back: conditional requests answered 304 by the proxy ---
check "the proxy starts again (its cache kept on disk)" start_nginx
# What the daemons would see a day later (KDS's max-age=86400 passed): each entry's fresh_until
# set in the past and the header checksum recomputed (layout in daemon/cache.h).
age_entries() {
	python3 - "$@" << 'PY'
import hashlib, os, struct, sys, time
for path in sys.argv[1:]:
    b = bytearray(open(path, "rb").read())
    assert b[:8] == b"SNPKDSC\n" and struct.unpack_from("<I", b, 8)[0] == 1, path
    struct.pack_into("<Q", b, 24, int(time.time()) - 60)
    b[44:76] = hashlib.sha256(bytes(b[:44]) + bytes(b[76:])).digest()
    with open(path + ".aged", "wb") as f:
        f.write(b)
    os.replace(path + ".aged", path)
PY
}
fresh_until_all_future() {
	python3 - "$@" << 'PY'
import struct, sys, time
now = int(time.time())
bad = [p for p in sys.argv[1:] if struct.unpack_from("<Q", open(p, "rb").read(), 24)[0] <= now]
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}
check "the daemons' cache entries are made a day old" age_entries "$D"/d*/cache/*.kdsc
before=$(kds_gets)
kds_stats stats3a.json
rot_fail=0
for ((i = 0; i < N; i++)); do
	"$CTL" --socket "$D/d$i/control.sock" cert rotate > "$D/d$i/rotate.out" 2>&1 ||
		rot_fail=$((rot_fail + 1))
done
check "cert rotate succeeds on every daemon" test "$rot_fail" = 0
tail -n +$((before + 1)) "$NG/access.log" | grep ' "GET /vcek/' > "$D/round3.log"
head -2 "$D/round3.log" | diag
check "each daemon revalidated both keys at the proxy ($((2 * N)) requests)" \
	test "$(wc -l < "$D/round3.log")" = $((2 * N))
# nginx logs the ETag's quotes as \x22.
check "every revalidation was conditional (If-None-Match with the ETag)" \
	test "$(grep -c ' inm=\\x22[0-9a-f]*\\x22 ' "$D/round3.log")" = $((2 * N))
check "the proxy answered every one 304 from its cache, no body" \
	test "$(grep -c ' status=304 bytes=0 cache=HIT ' "$D/round3.log")" = $((2 * N))
kds_stats stats3b.json
check "KDS saw nothing (the proxy's copy is within KDS's max-age)" \
	jqt "$D/stats3b.json" ".total == $(jq .total "$D/stats3a.json")"
check "no entry was set aside as corrupt" eval "! ls $D/d*/cache/ | grep -q corrupt"
check "the 304 renewed every entry's freshness" fresh_until_all_future "$D"/d*/cache/*.kdsc
check "every daemon still serves its chain" wait_chains cache 10
check "the daemons stop cleanly" stop_daemons

# --- 4. expired entries and the proxy unreachable: the stale copy is served ---
# Daemon 0 alone, its entries aged again. Refused connections (proxy stopped), then a proxy that
# accepts and never answers (kds_timeout = 10 s in the configuration). Times reported only.
time_to_chain() { # label: start daemon 0, wait for a chain from the cache (30 s at most)
	local t0 t
	date +%s%N > "$D/t0"
	t0=$(cat "$D/t0")
	start_daemon 0
	for ((t = 0; t < 600; t++)); do
		has_chain 0 cache && break
		sleep 0.05
	done
	has_chain 0 cache || return 1
	echo "$1: chain from the stale cache after $((($(date +%s%N) - t0) / 1000000)) ms" |
		tee -a "$D/stale.txt"
}
check "the proxy stops" stop_nginx
check "daemon 0's entries are made a day old again" age_entries "$D"/d0/cache/*.kdsc
N=1
check "refused connections: daemon 0 serves the expired copy" time_to_chain "proxy refused"
check "daemon 0 stops cleanly" stop_daemons
check "daemon 0's entries are still expired (nothing renewed them)" \
	eval "! fresh_until_all_future $D/d0/cache/*.kdsc > /dev/null"
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    held.append(s.accept()[0])
' "$PROXY_PORT" &
SIMENV_PIDS+=($!)
for ((t = 0; t < 50; t++)); do port_open "$PROXY_PORT" && break; sleep 0.1; done
check "black-holed proxy: daemon 0 serves the expired copy after kds_timeout" \
	time_to_chain "proxy accepts, never answers"
diag < "$D/stale.txt"
check "daemon 0 stops cleanly" stop_daemons
