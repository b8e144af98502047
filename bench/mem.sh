#!/bin/sh
# bench/mem.sh: the per-process memory report (PID, user, command, swap, USS, PSS, RSS, with
# totals) by `pgtool mem` against `smem -t` (Debian package smem: Python, reads every
# /proc/PID/smaps) and against reading every /proc/PID/smaps_rollup (the kernel's fastest
# path: no USS split by page, no memcg, no libraries). Needs root (PFNs). The `smem` package
# is needed for this bench only.
#
# Prints: processes, best-of-RUNS wall time of each (the commands alternate, round by round,
# so load on a shared machine hits them alike), the ratios (goal: pgtool <= 0.1x smem), for
# `pgtool mem` (every page's flags: THP, KSM, dirty) and `pgtool mem --fast` (pages mapped
# once counted from pagemap alone: smem's columns, exact), and pgtool's peak RSS at three
# batch sizes (it must follow the batch, not the processes).
#
# The ratio depends on what runs: smem's cost is mostly its own Python (a fixed ~25 ms plus
# its parsing of each mapping), pgtool's and the kernel's mostly the pages walked. HOG_MIB
# starts a process with that many MiB of touched anonymous memory first (bench/hog.c, stopped
# while measured), so a quiet machine can be measured with one large process too.
#
# Env: RUNS (default 5), PGTOOL (a pgtool binary instead of the shipped one, built by
# tools/dist.sh), HOG_MIB (default 0: none).
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
HOG_MIB=${HOG_MIB:-0}
command -v smem >/dev/null || { echo "bench/mem.sh: smem is not installed (apt-get install smem)" >&2; exit 2; }
if [ -z "${PGTOOL:-}" ]; then
    PGTOOL=$(tools/dist.sh) || exit 1
fi
TMP=$(mktemp -d)
HOG=
trap '[ -n "$HOG" ] && kill -9 "$HOG" 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
if [ "$HOG_MIB" -gt 0 ]; then
    cc -O2 -o "$TMP/hog" bench/hog.c
    mkfifo "$TMP/ready"
    "$TMP/hog" anon "$HOG_MIB" >"$TMP/ready" &
    HOG=$!
    read -r _ <"$TMP/ready"
fi

now() { date +%s%N; }
# timeit NAME CMD...: run CMD once (output discarded), keep NAME's best wall time (us).
timeit() {
    name=$1
    shift
    t0=$(now)
    "$@" >/dev/null 2>&1 || true
    t=$(( ($(now) - t0) / 1000 ))
    eval "b=\${best_$name:-}"
    if [ -z "$b" ] || [ "$t" -lt "$b" ]; then eval "best_$name=$t"; fi
}
# Times are net of the timer's own cost (best_base: two forks of date around a no-op).
ms() { eval "awk -v u=\"\$best_$1\" -v z=\"\${best_base:-0}\" 'BEGIN { printf \"%.1f\", (u - z) / 1000 }'"; }
ratio() { awk -v a="$(ms "$1")" -v b="$(ms "$2")" 'BEGIN { printf "%.3f", a / b }'; }
rollups() { cat /proc/[0-9]*/smaps_rollup; }
peak_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
COLS="pid user command swap uss pss rss"

NPROC=$(ls -d /proc/[0-9]* | wc -l)
RSS_KB=$(cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Rss:/ { s += $2 } END { print s }')
echo "processes: $NPROC   summed RSS: $((RSS_KB / 1024)) MiB (hog: $HOG_MIB MiB)   cpus: $(nproc)"
echo "uptime: $(uptime)"

i=0
while [ "$i" -lt "$RUNS" ]; do
    timeit base :
    timeit pg "$PGTOOL" mem --json
    timeit fast "$PGTOOL" mem --json --fast
    timeit smem smem -t -c "$COLS"
    timeit roll rollups
    i=$((i + 1))
done
N_PG=$("$PGTOOL" mem --csv 2>/dev/null | grep -vc ',true$' || true)
N_SMEM=$(smem -H -c pid | wc -l)
echo "rows: pgtool $((N_PG - 1)) processes, smem $N_SMEM (smem skips processes without a cmdline)"
echo "(times net of the timer's own $(awk -v z="$best_base" 'BEGIN { printf "%.1f", z / 1000 }') ms)"
echo "pgtool mem --json:            $(ms pg) ms"
echo "pgtool mem --json --fast:     $(ms fast) ms"
echo "smem -t (same columns):       $(ms smem) ms"
echo "cat every smaps_rollup:       $(ms roll) ms"
echo "pgtool / smem:          $(ratio pg smem)x   --fast: $(ratio fast smem)x (goal <= 0.1x)"
echo "pgtool / smaps_rollup:  $(ratio pg roll)x   --fast: $(ratio fast roll)x"
# Where the time goes: the largest process alone (pgtool reads pagemap, and without --fast
# kpageflags for every page; smaps_rollup walks the page tables in the kernel: with --fast
# both cost about one page-table walk), and small processes alone (where smem's cost is its
# own Python, and pgtool's its listing of every process).
# The largest process that outlives this script's own commands (pgtool lists itself).
BIG=$("$PGTOOL" mem --csv 2>/dev/null | awk -F, 'NR > 1 && $2 != "pgtool" { print $1; exit }')
BIG_RSS=$(awk '/^Rss:/ { print int($2 / 1024) }' "/proc/$BIG/smaps_rollup")
i=0
while [ "$i" -lt "$RUNS" ]; do
    timeit big "$PGTOOL" mem --json --pid "$BIG"
    timeit bigf "$PGTOOL" mem --json --fast --pid "$BIG"
    timeit bigr cat "/proc/$BIG/smaps_rollup"
    timeit sh "$PGTOOL" mem --json --comm bash
    timeit shf "$PGTOOL" mem --json --fast --comm bash
    timeit shs smem -t -P '^-?bash' -c "$COLS"
    i=$((i + 1))
done
echo "largest process ($BIG, $BIG_RSS MiB RSS): pgtool $(ms big) ms, --fast $(ms bigf) ms, its smaps_rollup $(ms bigr) ms"
echo "bash processes only: pgtool $(ms sh) ms, --fast $(ms shf) ms, smem $(ms shs) ms: $(ratio sh shs)x, --fast $(ratio shf shs)x"
P1=$(peak_kb "$PGTOOL" mem --json --batch 0x1000)
P2=$(peak_kb "$PGTOOL" mem --json)
P3=$(peak_kb "$PGTOOL" mem --json --batch 0x100000)
P4=$(peak_kb "$PGTOOL" mem --json --fast)
echo "peak RSS: batch 4096 pages: ${P1} KiB   default (65536): ${P2} KiB   1048576: ${P3} KiB   --fast: ${P4} KiB"
echo "uptime: $(uptime)"
