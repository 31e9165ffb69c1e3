# SPDX-License-Identifier: Apache-2.0
# Shared helpers of the integration tests: TAP output and a simulated platform (simenv) in a
# temporary directory. The simulated KDS keys are made once per build tree and copied.
set -u
: "${SNP_SOURCE_ROOT:?}" "${SNP_BUILD_ROOT:?}"
export SIMENV_BUILD=$SNP_BUILD_ROOT SIMENV_QUIET=1
SIMENV_DIR=$(mktemp -d /tmp/snp-it.XXXXXX)
SIMENV_SEED_STATE=$SNP_BUILD_ROOT/tests/integration/seed-state
# shellcheck source=../../scripts/lib/simenv.sh
. "$SNP_SOURCE_ROOT/scripts/lib/simenv.sh"

tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $1"; }
check() { # DESCRIPTION COMMAND...: the command must succeed
	local d=$1
	shift
	if "$@" > "$SIMENV_DIR/check.out" 2>&1; then
		ok "$d"
	else
		not_ok "$d"
		sed 's/^/# /' "$SIMENV_DIR/check.out" | head -40
	fi
}
jqt() { jq -e "$2" "$1" > /dev/null; } # FILE FILTER: the filter is true
diag() { sed 's/^/# /'; }

it_finish() {
	simenv_cleanup
	if [ "$tap_failed" -ne 0 ]; then
		echo "# logs kept in $SIMENV_DIR"
		tail -30 "$SIMENV_DIR/daemon.log" 2>/dev/null | diag
	else
		rm -rf "$SIMENV_DIR"
	fi
	echo "1..$tap_n"
	exit "$tap_failed"
}
trap it_finish EXIT

# The operator's rotations while PID runs: tcb set T1, tcb set T0, cert rotate, SIGHUP, again
# and again. Sets ROT_OPS (operations run) and ROT_FAILS (failed; a drain that did not finish
# in time is allowed: nothing changes then).
it_rotate_while() { # PID T0 T1
	local op
	ROT_OPS=0 ROT_FAILS=0
	while kill -0 "$1" 2> /dev/null; do
		for op in "tcb set $3" "tcb set $2" "cert rotate" HUP; do
			if [ "$op" = HUP ]; then
				kill -HUP "$SIMENV_DAEMON_PID"
			elif ! "$(simenv_bin snpctl)" $op --socket "$SIMENV_SOCK" \
				> "$SIMENV_DIR/op.out" 2>&1; then
				grep -q 'in flight after' "$SIMENV_DIR/op.out" || ROT_FAILS=$((ROT_FAILS + 1))
				diag < "$SIMENV_DIR/op.out"
			fi
			ROT_OPS=$((ROT_OPS + 1))
			sleep 0.2
		done
	done
}

# A running KDS simulator, certificates, a config (extra INI lines as arguments) and the daemon.
it_platform() {
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
	simenv_start_kds || return 1
	simenv_fetch_certs || return 1
	simenv_write_conf "$@"
	simenv_start_daemon
}
