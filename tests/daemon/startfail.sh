#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Start-up failures and the quota file, end to end on the simulated platform.
#  - Every module (and every resource-taking step of the broker) is made to fail in turn with
#    the test-only SNP_ATTESTD_TEST_FAIL_START: the daemon must exit 1 on its own, log the
#    failure once, and (in a sanitizer build) report no leak and no memory error.
#  - A quota file the daemon cannot read (garbage, a symbolic link) never keeps it from
#    serving: it starts with the defaults, says so, and keeps the file aside under a new name;
#    a link's target is neither read nor named.
#  - A VM id >= 2^63 round-trips exactly through quota set, the file and a restart.
#  - A quota that cannot be stored (full or read-only state directory) is refused with the
#    file system's own words and is not applied.
. "$SNP_SOURCE_ROOT/tests/integration/lib.sh"

# Distinct exit codes for sanitizer reports, so that they cannot pass for the expected 1.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86:detect_leaks=1
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=87
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:exitcode=88

mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
check "daemon starts on the simulated platform (KDS source, VMM file, metrics)" it_platform \
	"[certs]" "cert_dir =" "vmm_certs_file = $SIMENV_DIR/vmm-certs.bin" \
	"[metrics]" "listen = 127.0.0.1:$mport"
simenv_stop_daemon
check "... and stops cleanly" test "${SIMENV_DAEMON_RC:-1}" = 0

attestd=$(simenv_bin snp-attestd)
# Runs the daemon with one injected start failure; it must stop by itself.
start_failing() { # POINT
	local log=$SIMENV_DIR/fail-$1.log rc
	rm -f "$SIMENV_SOCK"
	SNP_ATTESTD_TEST_FAIL_START=$1 "$attestd" --config "$SIMENV_CONF" --foreground \
		> "$log" 2>&1 &
	local pid=$!
	SIMENV_PIDS+=("$pid")
	wait "$pid"
	rc=$?
	echo "$rc" > "$log.rc"
}
for point in broker broker:fw broker:vmm broker:kdsc broker:worker broker:nl metrics control; do
	start_failing "$point"
	log=$SIMENV_DIR/fail-$point.log
	rc=$(cat "$log.rc")
	mod=${point%%:*}
	check "$point: exits 1 (got $rc)" test "$rc" = 1
	check "$point: the failure is logged once" \
		test "$(grep -c "Failed to start $mod" "$log")" = 1
	check "$point: the log names the injected cause" grep -q "injected by SNP_ATTESTD" "$log"
	check "$point: no sanitizer report (leak, memory error)" \
		bash -c "! grep -E 'Sanitizer|runtime error' '$log'"
	check "$point: no control socket left behind" test ! -e "$SIMENV_SOCK"
	if [ "$rc" != 1 ]; then diag < "$log"; fi
done

# --- the quota file ---
state=$SIMENV_DIR/state
restart() { simenv_stop_daemon; simenv_start_daemon; }

simenv_stop_daemon
echo '{ "version": 1, "vms": [ { "vm": -5, "rate_milli"' > "$state/quotas.json"
check "a garbage quota file does not stop the daemon" simenv_start_daemon
check "... which says it runs with the default quotas" \
	grep -q "Cannot read the stored quotas.*default quota" "$SIMENV_DIR/daemon.log"
check "... and kept the file aside" bash -c "ls '$state'/quotas.json.unreadable-* > /dev/null"
check "... the unreadable content is intact" \
	grep -q '"vm": -5' "$(ls "$state"/quotas.json.unreadable-* | head -1)"
check "quota set works again after it" simenv_snpctl quota set 7 --rate 3 --burst 4
rm -f "$state"/quotas.json.unreadable-*

simenv_stop_daemon
secret=$SIMENV_DIR/not-for-the-daemon.txt
echo "SECRET-CONTENT" > "$secret"
rm -f "$state/quotas.json"
ln -s "$secret" "$state/quotas.json"
: > "$SIMENV_DIR/daemon.log"
check "a quota file that is a symbolic link does not stop the daemon" simenv_start_daemon
check "... it is refused as a link" grep -q "quotas.json is a symbolic link; refused" \
	"$SIMENV_DIR/daemon.log"
check "... without naming its target" bash -c "! grep -q '$secret' '$SIMENV_DIR/daemon.log'"
check "... without reading it" bash -c "! grep -q SECRET-CONTENT '$SIMENV_DIR/daemon.log'"
check "... the link is kept aside, its target untouched" \
	bash -c "test -L \"\$(ls '$state'/quotas.json.unreadable-* | head -1)\" && grep -q SECRET-CONTENT '$secret'"
rm -f "$state"/quotas.json.unreadable-*

big=18446744073709551615
mid=9223372036854775808
check "quota set for VM 2^64-1" simenv_snpctl quota set "$big" --rate 3 --burst 5
check "quota set for VM 2^63" simenv_snpctl quota set "$mid" --rate 4 --burst 6
check "the file holds both ids exactly" \
	jq -e --arg a "$big" --arg b "$mid" \
	'[.vms[].vm | tostring] | (index($a) != null) and (index($b) != null)' "$state/quotas.json"
: > "$SIMENV_DIR/daemon.log"
check "the daemon restarts with them" restart
check "... no complaint about the quota file" \
	bash -c "! grep -qi 'stored quotas' '$SIMENV_DIR/daemon.log' || grep -q 'Restored' '$SIMENV_DIR/daemon.log'"
simenv_snpctl quota get "$big" --json > "$SIMENV_DIR/q-big.json" 2>&1
check "quota get 2^64-1 after the restart: its own quota, rate 3" \
	jq -e '(.custom == true) and (.quota.rate == "3") and (.vm == "18446744073709551615")' "$SIMENV_DIR/q-big.json"
simenv_snpctl quota get "$mid" --json > "$SIMENV_DIR/q-mid.json" 2>&1
check "quota get 2^63 after the restart: its own quota, burst 6" \
	jq -e '(.custom == true) and (.quota.burst == 6) and (.vm == "9223372036854775808")' "$SIMENV_DIR/q-mid.json"
simenv_snpctl quota list --json > "$SIMENV_DIR/q-list.json" 2>&1
check "quota list names VM 2^64-1 exactly" \
	jq -e --arg a "$big" '[.quotas[].vm | tostring] | index($a) != null' "$SIMENV_DIR/q-list.json"

# --- a state directory that cannot take the write ---
simenv_stop_daemon
disk=$SIMENV_DIR/disk
mkdir -p "$disk"
if ! mount -t tmpfs -o size=64k tmpfs "$disk" 2> "$SIMENV_DIR/mount.err"; then
	ok "# SKIP cannot mount a tmpfs for the full-disk checks: $(head -1 "$SIMENV_DIR/mount.err")"
	exit 0
fi
SIMENV_MOUNT=$disk
trap 'umount "$SIMENV_MOUNT" 2>/dev/null || umount -l "$SIMENV_MOUNT" 2>/dev/null; it_finish' EXIT
mkdir -p "$disk/state"
cp "$state/quotas.json" "$disk/state/"
sed -i "s|^state_dir = .*|state_dir = $disk/state|" "$SIMENV_CONF"
check "daemon starts with its state on a 64 KiB tmpfs" simenv_start_daemon
head -c 1M /dev/zero > "$disk/fill" 2>/dev/null
check "the tmpfs is full" bash -c "! head -c 4096 /dev/zero > '$disk/more' 2>/dev/null"
rm -f "$disk/more"
out=$SIMENV_DIR/full.out
simenv_snpctl quota set 42 --rate 5 --burst 7 > "$out" 2>&1
rc=$?
cat "$out" | diag
check "quota set on a full disk fails (exit 1)" test "$rc" = 1
check "... naming the cause: No space left on device" grep -q "No space left on device" "$out"
check "... never 'buffer too small'" bash -c "! grep -qi 'buffer too small' '$out'"
simenv_snpctl quota get 42 --json > "$SIMENV_DIR/q42.json" 2>&1
check "... and the quota was not applied" jq -e '.custom == false' "$SIMENV_DIR/q42.json"
check "... the stored file is unchanged" \
	bash -c "! grep -q '\"vm\": 42' '$disk/state/quotas.json'"
rm -f "$disk/fill"
check "with room again, the same quota set succeeds" simenv_snpctl quota set 42 --rate 5 --burst 7
simenv_snpctl quota get 42 --json > "$SIMENV_DIR/q42.json" 2>&1
check "... and is applied" jq -e '(.custom == true) and (.quota.burst == 7)' "$SIMENV_DIR/q42.json"

mount -o remount,ro "$disk"
simenv_snpctl quota reset 42 > "$out" 2>&1
rc=$?
cat "$out" | diag
check "quota reset on a read-only state directory fails (exit 1)" test "$rc" = 1
check "... naming the cause: Read-only file system" grep -q "Read-only file system" "$out"
simenv_snpctl quota get 42 --json > "$SIMENV_DIR/q42.json" 2>&1
check "... and the custom quota stays in force" jq -e '.custom == true' "$SIMENV_DIR/q42.json"
mount -o remount,rw "$disk"
simenv_stop_daemon
check "the daemon stops cleanly" test "${SIMENV_DAEMON_RC:-1}" = 0
