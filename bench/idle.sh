#!/usr/bin/env bash
# bench/idle.sh [--report] [--runs N] [--mib MIB] [--wss-mib MIB]: `pgtool idle mark` and
# `pgtool idle read` of a MIB (default 256) process against the floor of doing the same with
# raw syscalls (pagemap preads, then one bitmap pwrite/pread per window of 512 words holding
# the pages' bits: bench/idle.c), and the CPU cost of one `pgtool idle wss` interval on a
# process that keeps touching --wss-mib (default 1024) MiB.
#
# The host kernel has no page_idle bitmap, so all of it runs inside the qemu kernel of the test
# harness (tests/kernel/qemu-kernel.sh: built once, ~15 min on 2 cores, then cached), with
# the shipped static binary (tools/dist.sh) and bench/idle.c built static. The guest is
# emulated (TCG): absolute times are several times the host's; the ratios compare like with
# like (same guest, same run, alternating). Before timing, pgtool's read must agree with the
# floor's on every page (all idle after pgtool's mark); a failing command aborts (exit 1).
# Target: pgtool within 2x of the floor for mark and for read; a miss exits 1 (--report: 0).
# Env: PGTOOL (a static pgtool to use instead of tools/dist.sh's), PGTOOL_QEMU_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
report=0 runs=5 mib=256 wss=1024 smp=${SMP:-1}
while [ $# -gt 0 ]; do
	case $1 in
	--report) report=1; shift ;;
	--runs) runs=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--wss-mib) wss=$2; shift 2 ;;
	*) echo "usage: $0 [--report] [--runs N] [--mib MIB] [--wss-mib MIB]" >&2; exit 2 ;;
	esac
done
die() { echo "bench/idle.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (qemu-kernel.sh installs packages and builds the kernel once)"
PGTOOL=${PGTOOL:-$(tools/dist.sh)} || die "tools/dist.sh failed"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
gcc -O2 -static -Wall -o "$TMP/idle" bench/idle.c || die "cannot build bench/idle.c (gcc, static libc)"
# guest memory: both processes at once never exist, but the larger one plus the kernel must fit
mem=$(( (mib > wss ? mib : wss) + 512 ))M
tests/kernel/qemu-kernel.sh -q --smp "$smp" --mem "$mem" --timeout 900 --log "$TMP/console" \
	--file "$PGTOOL:/bin/pgtool" "$TMP/idle" -- "$mib" "$wss" "$runs" /bin/pgtool > "$TMP/out" 2>&1 ||
	die "the guest run failed (exit $?): $(tail -n 20 "$TMP/out"; grep -a 'idle bench' "$TMP/console" | tail -n 5)"
# the guest's stdout is on the console, among the kernel's messages
grep -aE '^(pages|floor|pgtool|RATIO|wss)' "$TMP/console" | tr -d '\r' > "$TMP/res"
grep -q '^RATIO' "$TMP/res" || die "no result in the guest's output: $(tail -n 20 "$TMP/console")"
grep -v '^RATIO' "$TMP/res"
read -r _ _ mark _ read < <(grep '^RATIO' "$TMP/res")
echo "host load $(cut -d' ' -f1-3 /proc/loadavg) (the guest is emulated on it)"
missed=0
awk -v r="$mark" 'BEGIN { exit !(r > 2) }' && { echo "MISSED: idle mark ${mark}x the floor (target <= 2x)"; missed=1; }
awk -v r="$read" 'BEGIN { exit !(r > 2) }' && { echo "MISSED: idle read ${read}x the floor (target <= 2x)"; missed=1; }
[ $missed = 0 ] || [ $report = 1 ] || exit 1
exit 0
