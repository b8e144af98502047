#!/bin/sh
# bench/mem.sh: the per-process memory report (PID, user, command, swap, USS, PSS, RSS, with
# totals) by `pgtool mem` against `smem -t` (Debian package smem: Python, reads every
# /proc/PID/smaps) and against reading every /proc/PID/smaps_rollup (the kernel's fastest
# path: no USS split by page, no memcg, no libraries). Needs root (PFNs). The `smem` package
# is needed for this bench only.
#
# Prints: processes, best-of-RUNS wall time of each, the ratios (goal: pgtool <= 0.1x smem),
# and pgtool's peak RSS at two batch sizes (it must follow the batch, not the processes).
#
# Env: RUNS (default 5), PGTOOL (a pgtool binary instead of building target/release/pgtool).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
command -v smem >/dev/null || { echo "bench/mem.sh: smem is not installed (apt-get install smem)" >&2; exit 2; }
if [ -z "${PGTOOL:-}" ]; then
    cargo build --release --quiet
    PGTOOL=$(pwd)/target/release/pgtool
fi

now() { date +%s%N; }
# best wall time in ms of RUNS runs of "$@" (output discarded)
best() {
    b=""
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        t0=$(now)
        "$@" >/dev/null 2>&1 || true
        t1=$(now)
        t=$(( (t1 - t0) / 1000 ))
        if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi
        i=$((i + 1))
    done
    awk -v u="$b" 'BEGIN { printf "%.1f", u / 1000 }'
}
rollups() { cat /proc/[0-9]*/smaps_rollup; }
peak_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

NPROC=$(ls -d /proc/[0-9]* | wc -l)
RSS_KB=$(cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Rss:/ { s += $2 } END { print s }')
echo "processes: $NPROC   summed RSS: $((RSS_KB / 1024)) MiB   cpus: $(nproc)"
echo "uptime: $(uptime)"

T_PG=$(best "$PGTOOL" mem --json)
T_SMEM=$(best smem -t -c "pid user command swap uss pss rss")
T_ROLL=$(best rollups)
N_PG=$("$PGTOOL" mem --csv 2>/dev/null | grep -vc ',true$' || true)
N_SMEM=$(smem -H -c pid | wc -l)
echo "rows: pgtool $((N_PG - 1)) processes, smem $N_SMEM (smem skips processes without a cmdline)"
echo "pgtool mem --json:            $T_PG ms"
echo "smem -t (same columns):       $T_SMEM ms"
echo "cat every smaps_rollup:       $T_ROLL ms"
awk -v a="$T_PG" -v b="$T_SMEM" -v c="$T_ROLL" 'BEGIN {
    printf "pgtool / smem:          %.3fx (goal <= 0.1x)\n", a / b
    printf "pgtool / smaps_rollup:  %.2fx\n", a / c
}'
# Where the time goes: the largest process alone (pgtool reads 3 words per page, smaps walks
# page tables in the kernel), and small processes alone (where smem's cost is its own).
BIG=$("$PGTOOL" mem --csv 2>/dev/null | awk -F, 'NR == 2 { print $1 }')
BIG_RSS=$(awk '/^Rss:/ { print int($2 / 1024) }' "/proc/$BIG/smaps_rollup")
T_BIG=$(best "$PGTOOL" mem --json --pid "$BIG")
T_BIGR=$(best cat "/proc/$BIG/smaps_rollup")
echo "largest process ($BIG, $BIG_RSS MiB RSS): pgtool $T_BIG ms, its smaps_rollup $T_BIGR ms"
T_SH=$(best "$PGTOOL" mem --json --comm bash)
T_SHS=$(best smem -t -P '^-?bash' -c "pid user command swap uss pss rss")
awk -v a="$T_SH" -v b="$T_SHS" 'BEGIN {
    printf "bash processes only: pgtool %.1f ms, smem %.1f ms: %.3fx\n", a, b, a / b }'
P1=$(peak_kb "$PGTOOL" mem --json --batch 0x1000)
P2=$(peak_kb "$PGTOOL" mem --json)
P3=$(peak_kb "$PGTOOL" mem --json --batch 0x100000)
echo "peak RSS: batch 4096 pages: ${P1} KiB   default (65536): ${P2} KiB   1048576: ${P3} KiB"
echo "uptime: $(uptime)"
