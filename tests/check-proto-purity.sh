#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# proto/ is the pure core (style.md): no event loop, HTTP, systemd, ioctl, sockets, files,
# clocks or logging. Prints TAP.
set -u
root=${1:-.}
n=0; fail=0
check() { # description, extended regex over proto/*.[ch]
	n=$((n + 1))
	hits=$(grep -nE "$2" "$root"/proto/*.[ch] 2>/dev/null)
	if [ -n "$hits" ]; then
		echo "not ok $n - $1"; echo "$hits" | sed 's/^/# /'; fail=1
	else
		echo "ok $n - $1"
	fi
}
echo "1..5"
check "no forbidden headers" '#include *[<"](ev\.h|curl/curl\.h|systemd/|sys/ioctl\.h|sys/socket\.h|syslog\.h|pthread\.h|unistd\.h|fcntl\.h|sys/time\.h)'
check "no clock reads" '\b(time|clock_gettime|gettimeofday|clock)[[:space:]]*\([^)]*\)' 
check "no file or stream I/O" '\b(fopen|fread|fwrite|open|read|write|printf|fprintf|puts|perror)[[:space:]]*\('
check "no logging" '\b(syslog|sd_journal_[a-z_]+|log_[a-z_]+)[[:space:]]*\('
check "no environment or process calls" '\b(getenv|exit|abort|system|fork|exec[lv]p?)[[:space:]]*\('
exit $fail
