# Sourced by every tests/kernel/guest/*.sh inside the VM (busybox sh), as /ktest/lib.sh.
# Report each check on its own line: "PASS name: detail", "FAIL name: reason" or
# "SKIP name: reason"; run.sh collects these lines from the console.
# Binaries: /bin/pgtool, /bin/page-types (reference, when built), test programs in /bin.
KT_FAILS=0
pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; KT_FAILS=$((KT_FAILS + 1)); }
skip() { echo "SKIP $1: $2"; }
# check NAME DETAIL CMD...: PASS when CMD succeeds
check() { _cn=$1 _cd=$2; shift 2; if "$@"; then pass "$_cn" "$_cd"; else fail "$_cn" "$_cd"; fi; }
# wait_file FILE [TENTHS]: wait up to TENTHS/10 s (default 10 s) for FILE to exist
wait_file() { _i=0; while [ ! -e "$1" ]; do _i=$((_i + 1)); [ $_i -gt "${2:-100}" ] && return 1; sleep 0.1; done; }
# jfield FIELD: the numeric value of "FIELD": in a JSON line on stdin
jfield() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p" | head -1; }
# within PCT GOT WANT: |GOT - WANT| <= PCT % of WANT
within() { _w=$(($2 - $3)); [ $_w -lt 0 ] && _w=$((-_w)); [ $((_w * 100)) -le $(($1 * $3)) ]; }
# flags PFN: kpageflags of PFN as a decimal number (independent reader /bin/kpf)
flags() { _v=$(kpf get "$1") || return 1; echo $((_v)); }
hasbit() { [ $(( ($(flags "$1") >> $2) & 1 )) = 1 ]; }
uptime_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
finish() { echo "ktest: $KT_FAILS failure(s)"; exit $KT_FAILS; }
