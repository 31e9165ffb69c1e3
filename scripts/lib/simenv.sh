# SPDX-License-Identifier: Apache-2.0
# simenv: start and stop the simulated platform (snp-kdssim), the daemon (snp-attestd) and the
# simulated fleet (snp-kvmsim) in one work directory. Sourced by scripts/demo and the
# integration tests. Everything started here is stopped by simenv_cleanup.
#
#   SIMENV_BUILD   build directory (default: build)
#   SIMENV_DIR     work directory (created; holds sim state, certs, config, logs, sockets)
#   SIMENV_PRODUCT milan|genoa|turin (default milan)

SIMENV_BUILD=${SIMENV_BUILD:-build}
SIMENV_PRODUCT=${SIMENV_PRODUCT:-milan}
SIMENV_PIDS=()
# The simulated kernel's netlink port id: one per run, so parallel runs do not collide.
SIMENV_PORT=${SIMENV_PORT:-$((0x5e000000 + ($$ & 0xffff)))}

simenv_bin() { # name -> path of a built program
	case "$1" in
	snp-attestd) echo "$SIMENV_BUILD/daemon/snp-attestd" ;;
	snpctl) echo "$SIMENV_BUILD/client/snpctl" ;;
	snp-kdssim) echo "$SIMENV_BUILD/sim/kdssim/snp-kdssim" ;;
	snp-kvmsim) echo "$SIMENV_BUILD/sim/kvmsim/snp-kvmsim" ;;
	*) return 1 ;;
	esac
}

simenv_log() { [ -n "${SIMENV_QUIET:-}" ] || echo "simenv: $*" >&2; }

simenv_wait_file() { # path timeout-seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# A state whose KDS CA already exists (RSA-4096 keys take seconds to make): SIMENV_SEED_STATE
# names a directory to copy the state from when set and present.
simenv_init() {
	mkdir -p "$SIMENV_DIR"
	SIMENV_DIR=$(cd "$SIMENV_DIR" && pwd)
	SIMENV_STATE=$SIMENV_DIR/sim
	if [ ! -e "$SIMENV_STATE/state" ] && [ -n "${SIMENV_SEED_STATE:-}" ] &&
		[ -e "$SIMENV_SEED_STATE/state" ]; then
		cp -a "$SIMENV_SEED_STATE" "$SIMENV_STATE"
	fi
}

simenv_start_kds() { # extra snp-kdssim args...
	rm -f "$SIMENV_DIR/kds.port"
	"$(simenv_bin snp-kdssim)" --state "$SIMENV_STATE" --product "$SIMENV_PRODUCT" \
		--listen 127.0.0.1:0 --port-file "$SIMENV_DIR/kds.port" \
		--log "$SIMENV_DIR/kds-requests.log" "$@" > "$SIMENV_DIR/kdssim.out" 2>&1 &
	SIMENV_PIDS+=($!)
	SIMENV_KDS_PID=$!
	if ! simenv_wait_file "$SIMENV_DIR/kds.port" 120; then
		echo "simenv: snp-kdssim did not start:" >&2
		cat "$SIMENV_DIR/kdssim.out" >&2
		return 1
	fi
	SIMENV_KDS_URL="http://127.0.0.1:$(cat "$SIMENV_DIR/kds.port")"
	simenv_log "KDS simulator at $SIMENV_KDS_URL"
}

simenv_state_field() { # key -> value from the sim state file
	sed -n "s/^$1=//p" "$SIMENV_STATE/state"
}

# Fetches the chain and the VCEK for the platform's reported TCB into $SIMENV_DIR/certs, the
# way an operator of an air-gapped host would (snpctl kds-url + curl).
simenv_fetch_certs() {
	local ctl hw tcb product
	ctl=$(simenv_bin snpctl)
	product=$(simenv_state_field product)
	hw=$(simenv_state_field chip_id)
	tcb=$(simenv_state_field reported_tcb)
	mkdir -p "$SIMENV_DIR/certs"
	curl -sSf "$("$ctl" kds-url --product "$product" --kind chain --base "$SIMENV_KDS_URL")" \
		-o "$SIMENV_DIR/certs/cert_chain.pem" &&
		curl -sSf "$("$ctl" kds-url --product "$product" --hwid "$hw" --tcb "$tcb" \
			--base "$SIMENV_KDS_URL")" -o "$SIMENV_DIR/certs/vcek.der"
}

simenv_write_conf() { # extra INI text (appended as a drop-in)
	SIMENV_CONF=$SIMENV_DIR/snp-attestd.conf
	SIMENV_SOCK=$SIMENV_DIR/control.sock
	# Each run its own VMM socket, so parallel runs (and a system daemon) never collide.
	SIMENV_VMM_SOCK=$SIMENV_DIR/vmm.sock
	: "${SIMENV_METRICS:=}"
	cat > "$SIMENV_CONF" <<CONF
[daemon]
backend = sim
sim_state_dir = $SIMENV_STATE
state_dir = $SIMENV_DIR/state
cache_dir = $SIMENV_DIR/cache
transport = usersock
usersock_port = $SIMENV_PORT
log_level = info
[control]
socket = $SIMENV_SOCK
[vmm]
socket = $SIMENV_VMM_SOCK
[certs]
cert_dir = $SIMENV_DIR/certs
kds_url = ${SIMENV_KDS_URL:-http://127.0.0.1:9}
[metrics]
listen = $SIMENV_METRICS
CONF
	mkdir -p "$SIMENV_CONF.d"
	rm -f "$SIMENV_CONF.d/"*.conf
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" > "$SIMENV_CONF.d/50-test.conf"
	fi
}

simenv_start_daemon() {
	rm -f "$SIMENV_SOCK"
	"$(simenv_bin snp-attestd)" --config "$SIMENV_CONF" --foreground \
		>> "$SIMENV_DIR/daemon.log" 2>&1 &
	SIMENV_DAEMON_PID=$!
	SIMENV_PIDS+=($!)
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q "ready" "$SIMENV_DIR/daemon.log" 2>/dev/null && [ -S "$SIMENV_SOCK" ] && return 0
		kill -0 "$SIMENV_DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "simenv: snp-attestd did not become ready:" >&2
	tail -20 "$SIMENV_DIR/daemon.log" >&2
	return 1
}

simenv_stop_daemon() { # [signal]
	[ -n "${SIMENV_DAEMON_PID:-}" ] || return 0
	kill "-${1:-TERM}" "$SIMENV_DAEMON_PID" 2>/dev/null || true
	wait "$SIMENV_DAEMON_PID" 2>/dev/null
	SIMENV_DAEMON_RC=$?
	SIMENV_DAEMON_PID=
}

simenv_kvmsim() { # snp-kvmsim args... (state dir added)
	"$(simenv_bin snp-kvmsim)" --state "$SIMENV_STATE" --port "$SIMENV_PORT" --quiet "$@"
}

simenv_snpctl() {
	"$(simenv_bin snpctl)" --socket "$SIMENV_SOCK" "$@"
}

simenv_cleanup() {
	local p
	for p in "${SIMENV_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${SIMENV_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	SIMENV_PIDS=()
}
