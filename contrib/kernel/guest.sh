#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs inside contrib/kernel/check's QEMU guest, chrooted into the host's root: copies the
# simulator state made on the host to tmpfs and runs the checks (guest-check.py).
# Usage: guest.sh SRC BUILD PREP
set -u
SRC=$1 BUILD=$2 PREP=$3
W=/tmp/kcheck
mkdir -p "$W"
cp -a "$PREP/sim" "$PREP/certs" "$W/" || { echo "KCHECK FAIL guest setup: cannot copy $PREP"; exit 1; }
echo "KCHECK-INFO kernel $(uname -r), $(nproc) CPUs"
exec python3 "$SRC/contrib/kernel/guest-check.py" --build "$BUILD" --work "$W"
