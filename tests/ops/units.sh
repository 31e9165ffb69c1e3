#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The systemd units: systemd-analyze verify (with ExecStart pointed at the built daemon, the
# one thing verify needs to exist), systemd-analyze security at exposure 2.0 or better, the
# sysusers and tmpfiles fragments applied to a scratch root, and the unit and the fragments
# agreeing on users and directory modes. Prints TAP.
# Usage: units.sh SERVICE(built) SOCKET SYSUSERS TMPFILES SNP-ATTESTD(built) METRICS-SOCKET
#        UDEV-RULE
set -u
service=$1 socket=$2 daemon=$5 msocket=$6 rule=$7 vsocket=$8
# Absolute: with --root, systemd-sysusers and systemd-tmpfiles resolve names inside the root.
sysusers=$(realpath "$3") tmpfiles=$(realpath "$4")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1)); echo "not ok $n - $1"; fail=1
	[ -n "${2:-}" ] && sed 's/^/# /' <<<"$2"
}
prop() { sed -n -E "s/^$1=(.*)$/\\1/p" "$service" | tail -n 1; }

# 1. verify: both units, the service's ExecStart resolved to the built binary.
mkdir "$tmp/units"
sed -E "s|^ExecStart=[^ ]+|ExecStart=$(realpath "$daemon")|" "$service" >"$tmp/units/snp-attestd.service"
cp "$socket" "$tmp/units/snp-attestd.socket"
cp "$msocket" "$tmp/units/snp-attestd-metrics.socket"
cp "$vsocket" "$tmp/units/snp-attestd-vmm.socket"
if out=$(cd "$tmp/units" && systemd-analyze verify --man=no --generators=no \
	./snp-attestd.service ./snp-attestd.socket ./snp-attestd-metrics.socket \
	./snp-attestd-vmm.socket 2>&1) &&
	[ -z "$out" ]; then
	ok "systemd-analyze verify: service and the three sockets"
else
	notok "systemd-analyze verify: service and the three sockets" "$out"
fi

# 2. security: the overall exposure, printed with one decimal, must be <= 2.0.
out=$(systemd-analyze security --offline=true --no-pager "$tmp/units/snp-attestd.service" 2>&1)
level=$(sed -n -E 's/.*Overall exposure level for snp-attestd.service: ([0-9.]+).*/\1/p' <<<"$out")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
	ok "systemd-analyze security: exposure $level <= 2.0"
	grep '✗' <<<"$out" | sed -E 's/ {2,}/  /g; s/^/# remaining: /'
else
	notok "systemd-analyze security: exposure ${level:-?} <= 2.0" "$out"
fi

# 3. The service has what design section 7 asks for.
want=(
	"Type=notify" "NotifyAccess=main" "WatchdogSec=30s" "User=snp-attestd"
	"StateDirectory=snp-attestd" "CacheDirectory=snp-attestd" "RuntimeDirectory=snp-attestd"
	"DeviceAllow=/dev/sev rw" "ProtectSystem=strict" "ExecReload=/bin/kill -HUP \$MAINPID"
	"Requires=snp-attestd.socket"
)
missing=""
for w in "${want[@]}"; do grep -qxF -- "$w" "$service" || missing="$missing$w"$'\n'; done
[ -z "$missing" ] && ok "service: notify, watchdog, user, directories, /dev/sev, reload" ||
	notok "service: notify, watchdog, user, directories, /dev/sev, reload" "$missing"
if grep -qxF "ListenStream=/run/snp-attestd/control.sock" "$socket" &&
	grep -qxF "FileDescriptorName=control" "$socket"; then
	ok "socket: the default control path, passed as \"control\""
else
	notok "socket: the default control path, passed as \"control\""
fi
if grep -qxF "ListenSequentialPacket=/run/snp-attestd/vmm.sock" "$vsocket" &&
	grep -qxF "FileDescriptorName=vmm" "$vsocket" && grep -qxF "Service=snp-attestd.service" "$vsocket" &&
	grep -qxF "Wants=snp-attestd-vmm.socket" "$service"; then
	ok "VMM socket: the default path, SOCK_SEQPACKET, passed as \"vmm\", wanted by the service"
else
	notok "VMM socket: the default path, SOCK_SEQPACKET, passed as \"vmm\", wanted by the service"
fi
if grep -qxF "ListenStream=127.0.0.1:9477" "$msocket" && grep -qxF "FileDescriptorName=metrics" "$msocket" &&
	grep -qxF "Service=snp-attestd.service" "$msocket"; then
	ok "metrics socket: the default address, passed to the service as \"metrics\""
else
	notok "metrics socket: the default address, passed to the service as \"metrics\""
fi

# 4. sysusers and tmpfiles in a scratch root: the user and both groups of [control] exist and
# the directories get the owner and modes the unit asks systemd for.
mkdir -p "$tmp/root/etc"
if out=$(systemd-sysusers --root="$tmp/root" "$sysusers" 2>&1) &&
	grep -q '^snp-attestd:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$tmp/root/etc/passwd" &&
	grep -q '^snp-admin:' "$tmp/root/etc/group" && grep -q '^snp-monitor:' "$tmp/root/etc/group"; then
	ok "sysusers: user snp-attestd, groups snp-admin and snp-monitor"
else
	notok "sysusers: user snp-attestd, groups snp-admin and snp-monitor" "$out"
fi
uid=$(awk -F: '$1 == "snp-attestd" { print $3 }' "$tmp/root/etc/passwd")
if out=$(systemd-tmpfiles --root="$tmp/root" --create "$tmpfiles" 2>&1); then
	problems=""
	for d in "var/lib:$(prop StateDirectoryMode)" "var/cache:$(prop CacheDirectoryMode)" \
		"run:$(prop RuntimeDirectoryMode)"; do
		path=$tmp/root/${d%%:*}/snp-attestd
		mode=${d##*:}
		got=$(stat -c '%a %u' "$path" 2>&1)
		[ "$got" = "${mode#0} $uid" ] || problems="$problems$path: '$got', unit wants ${mode#0} $uid"$'\n'
	done
	[ -z "$problems" ] && ok "tmpfiles: directories match the unit's modes and user" ||
		notok "tmpfiles: directories match the unit's modes and user" "$problems"
else
	notok "tmpfiles: directories match the unit's modes and user" "$out"
fi

# 5. Real hosts: ordered after kvm_amd is loaded (SNP is initialised then from Linux 6.15),
# without requiring it; /dev/sev keeps its group (QEMU's) and the daemon's user gets an ACL.
if grep -qE '^Wants=.*modprobe@kvm_amd\.service' "$service" &&
	grep -qE '^After=.*modprobe@kvm_amd\.service' "$service" &&
	! grep -qE '^Requires=.*modprobe@' "$service"; then
	ok "service: Wants= and After= modprobe@kvm_amd.service, not Requires="
else
	notok "service: Wants= and After= modprobe@kvm_amd.service, not Requires=" "$(grep -E '^(Wants|After|Requires)=' "$service")"
fi
rules=$(grep -v '^#' "$rule")
if ! grep -qE 'GROUP=|MODE=|OWNER=' <<<"$rules" &&
	grep -qE 'KERNEL=="sev".*RUN\+="/usr/bin/setfacl -m u:snp-attestd:rw \$devnode"' <<<"$rules" &&
	grep -qxF 'm snp-attestd kvm' "$sysusers"; then
	ok "udev: /dev/sev keeps owner, group and mode; an ACL for snp-attestd; snp-attestd in kvm"
else
	notok "udev: /dev/sev keeps owner, group and mode; an ACL for snp-attestd; snp-attestd in kvm" "$rules"
fi

echo "1..$n"
exit $fail
