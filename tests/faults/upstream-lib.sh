# SPDX-License-Identifier: Apache-2.0
# Upstream-mode fault scenarios (up-*.sh): on top of lib.sh, the fleet as Linux 7.0 KVM
# (snp-kvmsim --kernel upstream) whose VMMs ask the daemon over its VMM socket through
# libsnpattest and fall back to the daemon's certificate file. Only extended report requests
# are the daemon's to decide; the rest go straight to the PSP, as upstream KVM does.
. "$(dirname "$0")/lib.sh"

UP_BLOB=$SIMENV_DIR/certs.bin
# The daemon with the VMM certificate file the VMMs fall back to (extra INI lines appended).
up_platform() {
	it_platform "[certs]" "vmm_certs_file = $UP_BLOB" "$@"
}

# snp-kvmsim --kernel upstream under the campaign's watchdog: NAME DURATION ARGS...
up_kvmsim_run() {
	local name=$1 dur=$2
	shift 2
	faults_kvmsim_run "$name" "$dur" --kernel upstream --vmm-socket "$SIMENV_VMM_SOCK" \
		--vmm-certs-file "$UP_BLOB" "$@"
}

# Adds the run's counts and the upstream split (who decided the VMM exits) to the result.
up_collect() { # NAME
	local f=$SIMENV_DIR/$1.json
	faults_kvmsim_collect "$1" || return 1
	faults_extra vmm_exits "$(jq '.upstream.vmm_exits' "$f")"
	faults_extra decided_by_daemon \
		"$(jq '.upstream | .admitted_by_daemon + .daemon_busy + .daemon_enospc' "$f")"
	faults_extra from_file "$(jq '.upstream.from_file' "$f")"
	faults_extra empty_table "$(jq '.upstream.empty_table' "$f")"
	faults_extra direct_to_psp "$(jq '.upstream.direct_to_psp' "$f")"
	faults_extra vmm_bugs "$(jq '.upstream.vmm_bugs' "$f")"
	check "$1: the VMMs never answered KVM with anything but 0, ENOSPC or EAGAIN" \
		jqt "$f" '.upstream.vmm_bugs == 0'
	check "$1: extended report requests reached the VMMs" jqt "$f" '.upstream.vmm_exits > 0'
}
