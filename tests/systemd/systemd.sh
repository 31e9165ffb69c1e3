#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's "Install as a service" and "try the service without SNP hardware" steps, run
# exactly as written under a real systemd (PID 1 of a systemd-nspawn container), then checked
# as an operator would: users and directories, READY via notify, reload, restart and SIGKILL
# under a 16-VM fleet with no VMPCK wipe, a watchdog restart of a hung daemon, socket
# activation of the control and metrics sockets, snpctl as root / admin / monitor / anybody,
# journal fields, systemd-analyze security, DeviceAllow, the udev rule's ACL, the VMM
# certificate file's owner and mode, and the service back after a reboot. Prints TAP.
#
# The README's code blocks of "## Install as a service" are extracted and run in order:
# host lines (scripts/, meson) in the source tree with the build directory replaced by one
# of ours and DESTDIR set to the container's root; every other line inside the container.
# Usage: systemd.sh SOURCE_ROOT CACHE_DIR PACKAGES_FILE
set -u
src=$(realpath "$1") cache=$2 pkgfile=$(realpath "$3")
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)); echo "not ok $n - $1"; fail=1
	[ -n "${2:-}" ] && sed 's/^/# /' <<<"$2" | head -n 60
	return 0
}
check() { # description, then a command: ok when it succeeds, its output shown when not
	local d=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$d"; else notok "$d" "$out"; fi
}
bail() { echo "Bail out! $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || bail "needs root (systemd-nspawn, mmdebstrap)"
for t in systemd-nspawn mmdebstrap nsenter python3; do
	command -v "$t" >/dev/null || bail "$t is missing: run scripts/setup"
done
mkdir -p "$cache"
cache=$(realpath "$cache")
root=$cache/root
leader=""
nspawn_pid=""

stop_container() {
	[ -n "$nspawn_pid" ] || return 0
	kill -TERM "$nspawn_pid" 2>/dev/null
	wait "$nspawn_pid" 2>/dev/null
	nspawn_pid="" leader=""
}
cleanup() {
	stop_container
	rm -rf "$root"
}
trap cleanup EXIT
trap "exit 1" TERM INT HUP

# --- 1. The README's blocks ----------------------------------------------------------------
blocks=$cache/readme
rm -rf "$blocks"
mkdir -p "$blocks"
if ! out=$(python3 - "$src/README.md" "$blocks" <<'PY' 2>&1
import sys
text = open(sys.argv[1]).read().split('\n')
start = text.index('## Install as a service')
blocks, cur, lang = [], None, None
for line in text[start + 1:]:
    if line.startswith('## '):
        break
    if line.startswith('```'):
        if cur is None:
            cur, lang = [], line[3:].strip()
        else:
            blocks.append((lang, cur))
            cur = None
        continue
    if cur is not None:
        cur.append(line)
want = ['sh', 'ini', 'sh', 'sh']
if [b[0] for b in blocks] != want:
    sys.exit('README "Install as a service": blocks %s, want %s' % ([b[0] for b in blocks], want))
for name, (lang, lines) in zip(['install', 'dropin', 'sim', 'metrics'], blocks):
    open('%s/%s' % (sys.argv[2], name), 'w').write('\n'.join(lines) + '\n')
PY
); then
	bail "$out"
fi
ok "README: the install, drop-in, simulator and metrics-socket blocks"

# The install block runs up to its udevadm line for the simulated platform; what follows it
# there (enable --now) must be what the simulator block runs too.
rest=$(sed -n '/^udevadm trigger/,$p' "$blocks/install" | tail -n +2)
missing=""
while IFS= read -r l; do
	[ -z "$l" ] || grep -qxF -- "$l" "$blocks/sim" || missing="$missing$l"$'\n'
done <<<"$rest"
[ -z "$missing" ] && ok "README: the install block's last steps are part of the simulator steps" ||
	notok "README: the install block's last steps are part of the simulator steps" "$missing"

# --- 2. The root file system (cached) --------------------------------------------------------
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -s "$f" ] && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || bail "no apt sources on this machine"
pkgs=$(grep -v -E '^\s*(#|$)' "$pkgfile" | tr -s ' \n' ',' | sed 's/,$//')
key=$(cat "$pkgfile" "${sources[@]}" | sha256sum | cut -c1-16)
if [ ! -s "$cache/rootfs.tar" ] || [ "$(cat "$cache/rootfs.key" 2>/dev/null)" != "$key" ]; then
	rm -f "$cache/rootfs.tar" "$cache/rootfs.key"
	if out=$(nice -n 10 mmdebstrap --variant=minbase --format=tar --include="$pkgs" bookworm \
		"$cache/rootfs.tar.new" "${sources[@]}" </dev/null 2>&1); then
		mv "$cache/rootfs.tar.new" "$cache/rootfs.tar"
		echo "$key" >"$cache/rootfs.key"
		ok "mmdebstrap: Debian 12 root file system built ($pkgs)"
	else
		notok "mmdebstrap: Debian 12 root file system built" "$(tail -n 30 <<<"$out")"
		bail "no root file system"
	fi
else
	ok "mmdebstrap: Debian 12 root file system from the cache ($key)"
fi
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" -xf "$cache/rootfs.tar" || bail "cannot unpack the root file system"

# --- 3. The install block's host lines -------------------------------------------------------
bdir=$cache/build-usr
hostfail=0
while IFS= read -r line; do
	case $line in
	scripts/* | meson\ *) ;;
	*) continue ;;
	esac
	# Our build directory instead of ./build (the tree's own may be configured differently).
	cmd=$(sed -E "s#(^| )build( |\$)#\\1$bdir\\2#g; s#-C build( |\$)#-C $bdir\\1#g" <<<"$line")
	case $cmd in meson\ setup*) [ -f "$bdir/build.ninja" ] && cmd="$cmd --reconfigure" ;; esac
	if out=$(cd "$src" && DESTDIR=$root nice -n 10 bash -e -c "$cmd" 2>&1); then
		ok "host: $line"
	else
		notok "host: $line" "$(tail -n 40 <<<"$out")"
		hostfail=1
	fi
done <"$blocks/install"
[ $hostfail -eq 0 ] || bail "the project is not installed"
[ -x "$root/usr/sbin/snp-attestd" ] && [ -f "$root/usr/lib/systemd/system/snp-attestd.service" ] ||
	bail "meson install did not put the daemon and its unit under /usr"

# --- 4. Boot --------------------------------------------------------------------------------
# A machine name of our own: nspawn keeps per-machine state under /run/systemd/nspawn/, and
# another worktree may run this suite at the same time (the network is private to each).
boot() {
	SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$root" --boot --keep-unit \
		--register=no --system-call-filter=bpf --private-network --console=passive \
		--machine="snp-attestd-test-$$" </dev/null >>"$cache/nspawn.log" 2>&1 &
	nspawn_pid=$!
	leader=""
	local i state=""
	# The container's PID 1 is systemd in a PID namespace of its own (the first child nspawn
	# forks is not it yet); "running" or "degraded" once the boot is done.
	for i in $(seq 600); do
		kill -0 "$nspawn_pid" 2>/dev/null || break
		leader=$(pgrep -P "$nspawn_pid" | head -n 1)
		if [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ] &&
			[ "$(readlink "/proc/$leader/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
			state=$(cin systemctl is-system-running --wait 2>/dev/null)
			case $state in running | degraded) break ;; esac
		fi
		sleep 0.2
	done
	[ "$state" = running ] || [ "$state" = degraded ]
}
# A command inside the container, with a clean environment.
# Bounded: a command stuck in a container that is going down must not hang the suite.
cin() {
	timeout -k 5 300 nsenter -t "$leader" -a -- /usr/bin/env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@" </dev/null
}
csh() { cin /bin/bash -c "$1"; }

: >"$cache/nspawn.log"
if boot; then
	ok "boot: systemd is PID 1 of the container ($(csh 'systemctl is-system-running'))"
else
	notok "boot: systemd is PID 1 of the container" "$(tail -n 40 "$cache/nspawn.log")"
	bail "the container did not boot"
fi

# --- 5. The install block's container lines, up to udevadm ---------------------------------
while IFS= read -r line; do
	case $line in scripts/* | meson\ * | '') continue ;; esac
	check "container: $line" csh "set -e; $line"
	case $line in udevadm\ trigger*) break ;; esac
done <"$blocks/install"

check "sysusers: snp-attestd (in kvm), snp-admin, snp-monitor" csh '
	set -e; getent passwd snp-attestd; getent group snp-admin; getent group snp-monitor
	id -nG snp-attestd | tr " " "\n" | grep -qx kvm'
check "tmpfiles: state, cache and runtime directories owned by snp-attestd" csh '
	set -e
	[ "$(stat -c "%U %a" /var/lib/snp-attestd)" = "snp-attestd 750" ]
	[ "$(stat -c "%U %a" /var/cache/snp-attestd)" = "snp-attestd 750" ]
	[ "$(stat -c "%U %a" /run/snp-attestd)" = "snp-attestd 755" ]'

# The udev rule's RUN command, applied to a stand-in for /dev/sev (there is no PSP here): the
# daemon's user gets rw through an ACL, the owner, group and mode stay what they were.
rule=$(sed -n -E 's/.*RUN\+="([^"]*)".*/\1/p' "$root/usr/lib/udev/rules.d/60-snp-attestd.rules")
if [ -n "$rule" ] && ! grep -q 'GROUP=\|MODE=\|OWNER=' "$root/usr/lib/udev/rules.d/60-snp-attestd.rules"; then
	check "udev rule: ACL for snp-attestd, /dev/sev keeps group kvm and mode 0660" csh "
		set -e; f=/run/fake-sev; : >\$f; chgrp kvm \$f; chmod 0660 \$f
		${rule//\$devnode/\$f}
		getfacl -p \$f | grep -qx 'user:snp-attestd:rw-'
		[ \"\$(stat -c '%U %G' \$f)\" = 'root kvm' ]
		getfacl -p \$f | grep -qx 'group::rw-'
		runuser -u snp-attestd -- sh -c \"echo x >> \$f\"; rm -f \$f"
else
	notok "udev rule: ACL for snp-attestd, /dev/sev keeps group kvm and mode 0660" \
		"$(cat "$root/usr/lib/udev/rules.d/60-snp-attestd.rules")"
fi

# --- 6. The drop-in, the simulated KDS, the service -----------------------------------------
dropin=$(sed -n -E '1s/^# (\/etc\/[^ ]+\.conf)$/\1/p' "$blocks/dropin")
if [ -n "$dropin" ] && mkdir -p "$root$(dirname "$dropin")" && cp "$blocks/dropin" "$root$dropin"; then
	ok "drop-in: $dropin"
else
	notok "drop-in: the README block's first line names the file" "$(head -n 1 "$blocks/dropin")"
fi

fleet_line=""
while IFS= read -r line; do
	case $line in
	'') continue ;;
	snp-kvmsim\ *) fleet_line=$line; break ;;
	esac
	check "container: $line" csh "set -e; $line"
done <"$blocks/sim"
[ -n "$fleet_line" ] || notok "README: the simulator block runs a fleet with snp-kvmsim"

check "the simulated state belongs to the daemon's user though snp-kdssim ran as root" csh '
	set -e
	[ "$(stat -c %U /var/lib/snp-attestd/sim)" = snp-attestd ]
	[ "$(stat -c %U /var/lib/snp-attestd/sim/state)" = snp-attestd ]
	[ "$(stat -c %U /var/lib/snp-attestd/sim/kds)" = snp-attestd ]
	[ "$(systemctl show -p User --value snp-kdssim)" = "" ]'
check "READY via sd_notify: Type=notify service active and running, with a status text" csh '
	set -e
	[ "$(systemctl show -p Type --value snp-attestd)" = notify ]
	[ "$(systemctl show -p ActiveState --value snp-attestd)" = active ]
	[ "$(systemctl show -p SubState --value snp-attestd)" = running ]
	systemctl show -p StatusText --value snp-attestd | grep .'
check "snpctl status as root: simulated backend, broker registered, chain from the KDS" csh '
	set -e; s=$(snpctl status); echo "$s"; grep -qi sim <<<"$s"'

# --- 7. The fleet, with reload, restart and SIGKILL while it runs ----------------------------
# A VMM certificate file for the restart to pick up (not a README step: [certs] of the man page).
mkdir -p "$root/etc/snp-attestd.conf.d"
printf '[certs]\nvmm_certs_file = /run/snp-attestd/vmm-certs.bin\n' \
	>"$root/etc/snp-attestd.conf.d/90-test-vmm.conf"
mainpid() { csh 'systemctl show -p MainPID --value snp-attestd'; }
csh "$fleet_line" >"$cache/fleet.out" 2>&1 &
fleet=$!
# Wait until the guests are being served (the broker saw VMs), then disturb the daemon.
for i in $(seq 300); do
	csh 'snpctl vm list 2>/dev/null' | grep -q '^[0-9]' && break
	kill -0 $fleet 2>/dev/null || break
	sleep 0.2
done
pid0=$(mainpid)
sleep 5
check "systemctl reload under the fleet: same main PID" csh "set -e; systemctl reload snp-attestd
	[ \"\$(systemctl show -p MainPID --value snp-attestd)\" = $pid0 ]"
sleep 5
check "systemctl restart under the fleet: a new main PID, active" csh "set -e
	systemctl restart snp-attestd
	[ \"\$(systemctl show -p MainPID --value snp-attestd)\" != $pid0 ]
	[ \"\$(systemctl show -p ActiveState --value snp-attestd)\" = active ]"
pid1=$(mainpid)
sleep 5
restarts0=$(csh 'systemctl show -p NRestarts --value snp-attestd')
csh 'systemctl kill -s KILL snp-attestd' >/dev/null 2>&1
back=0
for i in $(seq 300); do
	p=$(mainpid)
	[ "$p" != 0 ] && [ "$p" != "$pid1" ] &&
		[ "$(csh 'systemctl show -p ActiveState --value snp-attestd')" = active ] && { back=1; break; }
	sleep 0.2
done
[ $back -eq 1 ] && ok "SIGKILL under the fleet: Restart=on-failure brought it back ($restarts0 -> $(csh 'systemctl show -p NRestarts --value snp-attestd') restarts)" ||
	notok "SIGKILL under the fleet: Restart=on-failure brought it back" "$(csh 'systemctl status snp-attestd --no-pager')"
wait $fleet
frc=$?
wipes=$(sed -n -E 's/.*VMPCK wipes ([0-9]+).*/\1/p' "$cache/fleet.out" | tail -n 1)
if [ $frc -eq 0 ] && [ "${wipes:-x}" = 0 ]; then
	ok "fleet: $fleet_line: exit 0, 0 VMPCK wipes"
else
	notok "fleet: $fleet_line: exit 0, 0 VMPCK wipes (exit $frc, wipes ${wipes:-?})" \
		"$(tail -n 30 "$cache/fleet.out")"
fi
grep -E 'wipes|requests' "$cache/fleet.out" | head -n 5 | sed 's/^/# /'

check "VMM certificate file: snp-attestd, group kvm, mode 0640 under UMask=0027" csh '
	set -e; s=$(stat -c "%U %G %a" /run/snp-attestd/vmm-certs.bin); echo "$s"
	[ "$s" = "snp-attestd kvm 640" ]'

printf '[certs]\nvmm_certs_file = /run/snp-attestd/vmm-certs.bin\nvmm_certs_mode = 0644\n' \
	>"$root/etc/snp-attestd.conf.d/90-test-vmm.conf"
check "VMM certificate file: a reload applies a new vmm_certs_mode (0644)" csh '
	set -e; systemctl reload snp-attestd
	for i in $(seq 150); do [ "$(stat -c %a /run/snp-attestd/vmm-certs.bin)" = 644 ] && break; sleep 0.2; done
	s=$(stat -c "%U %G %a" /run/snp-attestd/vmm-certs.bin); echo "$s"
	[ "$s" = "snp-attestd kvm 644" ]'

# --- 8. The watchdog: a hung (stopped) daemon is killed and restarted -----------------------
pid2=$(mainpid)
csh 'systemctl kill -s STOP snp-attestd' >/dev/null 2>&1
back=0
for i in $(seq 450); do # WatchdogSec=30s, then the restart
	p=$(mainpid)
	[ "$p" != 0 ] && [ "$p" != "$pid2" ] &&
		[ "$(csh 'systemctl show -p ActiveState --value snp-attestd')" = active ] && { back=1; break; }
	sleep 0.2
done
if [ $back -eq 1 ] && csh 'journalctl -b -u snp-attestd --no-pager | grep -q -i "watchdog timeout"'; then
	ok "watchdog: a SIGSTOPped daemon is killed on the watchdog timeout and restarted"
else
	notok "watchdog: a SIGSTOPped daemon is killed on the watchdog timeout and restarted" \
		"$(csh 'journalctl -b -u snp-attestd --no-pager | tail -n 20')"
fi

# --- 9. Socket activation ----------------------------------------------------------------
check "socket activation (control): a stopped service is started by snpctl" csh '
	set -e; systemctl stop snp-attestd.service
	[ "$(systemctl show -p ActiveState --value snp-attestd.service)" != active ]
	systemctl is-active snp-attestd.socket
	snpctl status >/dev/null
	[ "$(systemctl show -p ActiveState --value snp-attestd.service)" = active ]'
while IFS= read -r line; do
	[ -z "$line" ] || check "container: $line" csh "set -e; $line"
done <"$blocks/metrics"
scrape='exec 3<>/dev/tcp/127.0.0.1/9477; printf "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n" >&3; cat <&3'
check "socket activation (metrics): the socket unit listens and the daemon answers on it" csh "
	set -e; systemctl is-active snp-attestd-metrics.socket
	out=\$($scrape); grep -q '^snp_' <<<\"\$out\""
check "socket activation (metrics): a scrape starts the stopped service" csh "
	set -e; systemctl stop snp-attestd.service
	out=\$($scrape); grep -q '^snp_' <<<\"\$out\"
	[ \"\$(systemctl show -p ActiveState --value snp-attestd.service)\" = active ]"

# --- 10. snpctl as root, the admin group, the monitor group and anybody else ----------------
csh 'useradd -m -G snp-admin alice; useradd -m -G snp-monitor bob; useradd -m eve' >/dev/null 2>&1
check "snpctl as root: quota set" csh 'snpctl quota set 7 --rate 1 --burst 2'
check "snpctl as a member of snp-admin: quota set" csh 'runuser -u alice -- snpctl quota set 8 --rate 1 --burst 2'
check "snpctl as a member of snp-monitor: status and quota list allowed" csh '
	set -e; runuser -u bob -- snpctl status >/dev/null; runuser -u bob -- snpctl quota list'
check "snpctl as a member of snp-monitor: quota set refused (exit 1)" csh '
	runuser -u bob -- snpctl quota set 9 --rate 1 --burst 2; [ $? -eq 1 ]'
check "snpctl as an unprivileged user: status refused (exit 1, says why)" csh '
	out=$(runuser -u eve -- snpctl status 2>&1); rc=$?; echo "$out"; [ $rc -eq 1 ] && [ -n "$out" ]'

# --- 11. Journal, security, devices ------------------------------------------------------
check "journal: the audit trail has alice's quota set and bob's refused one as fields" csh '
	set -e
	a=$(id -u alice); b=$(id -u bob)
	journalctl -b -u snp-attestd -o json --no-pager SNP_AUDIT_ACTION=quota.set SNP_PEER_UID=$a |
		grep "\"SNP_AUDIT_OUTCOME\":\"ok\"" | grep -q "\"SNP_VM_ID\":\"8\""
	journalctl -b -u snp-attestd -o json --no-pager SNP_AUDIT_ACTION=quota.set SNP_PEER_UID=$b |
		grep -q "\"SNP_AUDIT_OUTCOME\":\"denied\""'
check "journal: native entries with PRIORITY from the unit (structured, not stdout)" csh '
	set -e
	journalctl -b -u snp-attestd -o json --no-pager | grep "\"_TRANSPORT\":\"journal\"" | grep -q "\"PRIORITY\""'
out=$(csh 'systemd-analyze security --no-pager snp-attestd.service' 2>&1)
level=$(sed -n -E 's/.*Overall exposure level for snp-attestd.service: ([0-9.]+).*/\1/p' <<<"$out")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
	ok "systemd-analyze security (the running service): exposure $level <= 2.0"
else
	notok "systemd-analyze security (the running service): exposure ${level:-?} <= 2.0" "$out"
fi
# DeviceAllow: a process in the service's cgroup may not open a device outside the list
# (/dev/net/tun exists in the container); in a cgroup of its own it may.
check "DeviceAllow enforced: /dev/net/tun refused in the service's cgroup, allowed outside" csh '
	set -e
	[ "$(systemctl show -p DevicePolicy --value snp-attestd)" = closed ]
	cg=/sys/fs/cgroup$(systemctl show -p ControlGroup --value snp-attestd)
	[ -d "$cg" ]
	bash -c "exec 5</dev/net/tun"
	bash -c "echo \$\$ > $cg/cgroup.procs; exec 5</dev/net/tun" 2>/dev/null && exit 1
	out=$(bash -c "echo \$\$ > $cg/cgroup.procs; exec 5</dev/net/tun" 2>&1 || true)
	echo "$out"; grep -q "Operation not permitted" <<<"$out"'

# --- 12. Reboot: the service is back -------------------------------------------------------
csh 'systemctl reboot' >/dev/null 2>&1
wait "$nspawn_pid" 2>/dev/null
nspawn_pid=""
if boot; then
	check "reboot: the container boots again and the service is back" csh '
		set -e; systemctl is-active snp-attestd.socket
		for i in $(seq 150); do systemctl is-active -q snp-attestd.service && break; sleep 0.2; done
		systemctl is-active snp-attestd.service; snpctl status'
else
	notok "reboot: the container boots again and the service is back" "$(tail -n 20 "$cache/nspawn.log")"
fi

if [ $fail -ne 0 ] && [ -n "$leader" ]; then
	csh 'journalctl -b --no-pager | tail -n 60' 2>&1 | sed 's/^/# journal: /'
fi
stop_container
echo "1..$n"
exit $fail
