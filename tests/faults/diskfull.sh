#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fault campaign, full disk: the daemon's cache directory, its state directory (quotas) and
# the simulated platform's state live on a small tmpfs. With a fleet running, the tmpfs is
# filled to the last byte, then everything that writes is tried: quota set, cert fetch,
# cert rotate, TCB changes (a VCEK not yet cached, and the platform state), SIGHUP. Then the
# space is freed. The daemon must keep serving, answer the writes that failed with a clear
# error, leave every file stored before intact, recover without a restart, and after a
# restart (KDS down) serve from what it stored.
. "$(dirname "$0")/lib.sh"

DUR=$(faults_pick 14 180)
VMS=$(faults_pick 16 64)
ROUNDS=$(faults_pick 1 10)
DISK=$SIMENV_DIR/disk
mkdir -p "$DISK"
if ! mount -t tmpfs -o size=4m,mode=0700 tmpfs "$DISK" 2> "$SIMENV_DIR/mount.err"; then
	trap - EXIT
	echo "1..0 # SKIP cannot mount a tmpfs: $(head -1 "$SIMENV_DIR/mount.err")"
	rm -rf "$SIMENV_DIR"
	exit 0
fi
umount_disk() { umount "$DISK" 2> /dev/null || umount -l "$DISK" 2> /dev/null; }
# The tmpfs goes once everything using it is stopped: it_finish (the end of faults_finish)
# gets an unmount right after its simenv_cleanup.
_it_finish_orig=$(declare -f it_finish)
eval "${_it_finish_orig/simenv_cleanup/simenv_cleanup; umount_disk}"

simenv_init
check "snp-kdssim starts" simenv_start_kds
cp -a "$SIMENV_STATE" "$DISK/sim" && rm -rf "$SIMENV_STATE" && ln -s "$DISK/sim" "$SIMENV_STATE"
simenv_write_conf "[certs]" "kds_timeout = 3s"
sed -i -e 's/^cert_dir = .*/cert_dir =/' -e "s|^state_dir = .*|state_dir = $DISK/state|" \
	-e "s|^cache_dir = .*|cache_dir = $DISK/cache|" \
	-e "s|^sim_state_dir = .*|sim_state_dir = $DISK/sim|" \
	"$SIMENV_CONF"
check "daemon starts with its cache, state and platform on a 4 MiB tmpfs" simenv_start_daemon
T0=$(simenv_state_field reported_tcb)
T1=$(printf '%016x' $((0x$T0 - (1 << 48))))
check "quota set before the disk is full" simenv_snpctl quota set 1 --rate 3 --burst 5
snapshot() { (cd "$DISK" && find cache state sim -type f ! -name '*.lock' -print0 | sort -z |
	xargs -0 -r sha256sum) > "$1"; }
snapshot "$SIMENV_DIR/before.sum"
echo "# stored before: $(wc -l < "$SIMENV_DIR/before.sum") files"
check "the cache holds the chain from KDS" test "$(find "$DISK/cache" -type f | wc -l)" -ge 2

faults_kvmsim_run diskfull "$DUR" --vms "$VMS" --rate 3 --duration "$DUR" --wait-broker 10 &
KVM=$!
sleep 1
refused=0 unclear=0 accepted=0 recovered=0 tmp_left=0 changed=0
# Files of snapshot $1 changed or gone in snapshot $2 count as changed (named in the log).
files_changed() { # BEFORE AFTER WHAT
	join -v1 <(sort "$1") <(sort "$2") > "$SIMENV_DIR/changed.txt"
	changed=$((changed + $(wc -l < "$SIMENV_DIR/changed.txt")))
	awk -v w="$3" '{ print "# " w ": changed or gone: " $2 }' "$SIMENV_DIR/changed.txt"
}
# The exact refusal of each write on a full disk: snpctl's one line, the operation's own words
# and the file system's cause as strerror gives it (tmpfs says ENOSPC; the simulated firmware
# reports its full state disk as EDQUOT, see docs/faults.md), and nothing after it but the
# firmware status and what the daemon still serves.
FULL='(No space left on device|Disk quota exceeded)'
AFTER='( \(firmware status 0x[0-9a-f]+\))?(; still serving the previous chain)?'
declare -A CAUSE=(
	["quota set"]="^snpctl: quota set: quota not stored, nothing changed: ([^:]+: )?$FULL\$"
	["quota reset"]="^snpctl: quota reset: quota not stored, nothing changed: ([^:]+: )?$FULL\$"
	["tcb set"]="^snpctl: tcb set: (SNP_SET_CONFIG failed|[A-Za-z ]*not (stored|cached)): $FULL$AFTER\$"
	["cert fetch"]="^snpctl: cert fetch: [^:]*: $FULL$AFTER\$"
	["cert rotate"]="^snpctl: cert rotate: [^:]*: $FULL$AFTER\$"
)
# The daemon's old wrong rendering of ENOSPC (snp_strerror's "buffer too small", fixed by issue
# 11 point 6): counted apart so that a regression is named as such; it fails like any other.
KNOWN_BAD='^snpctl: quota (set|reset): quota not stored: buffer too small$'
cause_known_bad=0
declare -A cause_seen=() cause_bad=() cause_todo=()
cause_check() { # DESCRIPTION OPERATION REPLY
	local op=$2 want=${CAUSE[$2]:-} text=${3% }
	cause_seen[$op]=$((${cause_seen[$op]:-0} + 1))
	if [ -n "$want" ] && [[ $text =~ $want ]]; then
		echo "# full disk, refused with the cause: $1: $text"
	else
		unclear=$((unclear + 1))
		cause_bad[$op]=$((${cause_bad[$op]:-0} + 1))
		if [[ $text =~ $KNOWN_BAD ]]; then
			cause_known_bad=$((cause_known_bad + 1))
			cause_todo[$op]=$((${cause_todo[$op]:-0} + 1))
		fi
		echo "# full disk, refused without the exact cause: $1: $text"
	fi
}

# A write on a full disk. Refused, it must leave every stored file as it was. Accepted (the
# disk had room after all, e.g. blocks a rename freed), it may change its own file: the
# baseline moves on.
try_full() { # DESCRIPTION SNPCTL-ARGS...
	local d=$1
	shift
	if simenv_snpctl "$@" > "$SIMENV_DIR/full.out" 2>&1; then
		accepted=$((accepted + 1))
		echo "# full disk, accepted: $d: $(head -c 200 "$SIMENV_DIR/full.out" | tr '\n' ' ')"
		snapshot "$SIMENV_DIR/before.sum"
	else
		snapshot "$SIMENV_DIR/after.sum"
		files_changed "$SIMENV_DIR/before.sum" "$SIMENV_DIR/after.sum" "refused $d"
		mv "$SIMENV_DIR/after.sum" "$SIMENV_DIR/before.sum"
		refused=$((refused + 1))
		cause_check "$d" "$1 $2" "$(head -c 400 "$SIMENV_DIR/full.out" | tr '\n' ' ')"
	fi
}
# After the space is freed. A VCEK fetched while the disk was full could not be cached, and
# KDS manners allow no second fetch for the same key within 10 s: a retry for up to 15 s
# (a bound on a hang; how many retries were needed is reported, not asserted).
retries=0
recover() { # DESCRIPTION SNPCTL-ARGS...
	local d=$1 i
	shift
	for ((i = 0; i < 30; i++)); do
		if simenv_snpctl "$@" > "$SIMENV_DIR/rec.out" 2>&1; then
			recovered=$((recovered + 1))
			return 0
		fi
		retries=$((retries + 1))
		sleep 0.5
	done
	echo "# after freeing, still failing: $d: $(head -c 300 "$SIMENV_DIR/rec.out" | tr '\n' ' ')"
}
for ((r = 0; r < ROUNDS; r++)); do
	# Fill the tmpfs to the last block (a second file takes what the first left).
	dd if=/dev/zero of="$DISK/filler" bs=64k 2> /dev/null
	dd if=/dev/zero of="$DISK/filler2" bs=1k 2> /dev/null
	try_full "quota set" quota set 2 --rate 4 --burst 6
	try_full "quota reset" quota reset 1
	try_full "tcb set to an uncached VCEK" tcb set "$T1"
	try_full "cert fetch" cert fetch
	try_full "cert rotate" cert rotate
	faults_alive "before SIGHUP on a full disk" && kill -HUP "$SIMENV_DAEMON_PID"
	sleep 1
	faults_alive "with the disk full" || break
	# Whatever was stored before is still there, byte for byte (the SIGHUP wrote nothing over
	# it either).
	snapshot "$SIMENV_DIR/full.sum"
	files_changed "$SIMENV_DIR/before.sum" "$SIMENV_DIR/full.sum" "round $r, SIGHUP on the full disk"
	tmp_left=$((tmp_left + $(find "$DISK/cache" "$DISK/state" "$DISK/sim" -name '*.tmp*' | wc -l)))
	# Free the space: the same writes must now work, without a restart.
	rm -f "$DISK/filler" "$DISK/filler2"
	recover "quota set" quota set 2 --rate 4 --burst 6
	recover "tcb set (the VCEK fetched while the disk was full)" tcb set "$T1"
	recover "tcb set back" tcb set "$T0"
	recover "quota reset" quota reset 2
	recover "quota set" quota set 1 --rate 3 --burst 5
	snapshot "$SIMENV_DIR/before.sum"
done
wait "$KVM"
faults_kvmsim_collect diskfull
faults_extra full_disk_writes_refused "$refused"
faults_extra full_disk_writes_accepted "$accepted"
faults_extra refusals_without_cause "$unclear"
faults_extra refusals_known_wrong_cause "$cause_known_bad"
faults_extra stored_files_changed "$changed"
faults_extra temp_files_left "$tmp_left"
faults_extra writes_after_freeing_ok "$recovered"
faults_extra writes_after_freeing_tried $((ROUNDS * 5))
faults_extra retries_after_freeing "$retries"
echo "# full disk: refused $refused (without the exact cause $unclear, $cause_known_bad of them the known wrong one), accepted $accepted;" \
	"stored files changed $changed, temp files left $tmp_left;" \
	"after freeing $recovered/$((ROUNDS * 5)) ok ($retries retries)"
check "writes on the full disk were refused" test "$refused" -gt 0
# One check per kind of write that was refused.
for op in "quota set" "quota reset" "tcb set" "cert fetch" "cert rotate"; do
	[ -n "${cause_seen[$op]:-}" ] || continue
	bad=${cause_bad[$op]:-0}
	d="every refused $op named the exact cause ($bad of ${cause_seen[$op]} did not)"
	if [ "$bad" = 0 ]; then
		ok "$d"
	elif [ "$bad" = "${cause_todo[$op]:-0}" ]; then
		not_ok "$d: the old 'buffer too small' rendering of ENOSPC is back"
	else
		not_ok "$d"
	fi
done
check "files stored before the disk filled are intact" test "$changed" = 0
check "no temporary files left behind" test "$tmp_left" = 0
check "every write worked again once space was freed (no restart)" \
	test "$recovered" = $((ROUNDS * 5))
check "guests verified reports" jqt "$SIMENV_DIR/diskfull.json" '.totals.reports_verified > 0'

# A restart with KDS down: the daemon serves from what it stored; the quotas survived.
faults_stop_daemon
kill "$SIMENV_KDS_PID" 2> /dev/null
check "the daemon restarts from its stored cache with KDS down" simenv_start_daemon
simenv_snpctl quota list --json > "$SIMENV_DIR/quotas.json" 2>&1
check "the stored quota of VM 1 survived" grep -q '"rate": *"3' "$SIMENV_DIR/quotas.json"
faults_kvmsim after-restart 4 --vms 8 --rate 4 --duration 4 --wait-broker 10
check "reports verify against the stored chain after the restart" \
	jqt "$SIMENV_DIR/after-restart.json" '.totals.reports_verified > 0'
faults_alive "at the end"
faults_stop_daemon
