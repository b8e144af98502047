#!/usr/bin/env bash
# bench/who.sh [--report]: `pgtool who PFN` against the classic loop
#   for pid in /proc/[0-9]*: page-types -p $pid -L | grep PFN
# on the same PFN, and 1,000 PFNs at once against one. Needs root.
#
# Before timing, both must find exactly the PID that maps the PFN (an anonymous page of a
# `sleep` started here), and pgtool must succeed on the 1,000 PFNs; any failure aborts (exit 1).
# Then RUNS runs of each side (the same number), alternating, and their medians: the loop, one
# PFN, 1,000 PFNs. Targets: loop / pgtool >= 50x; 1,000 PFNs / 1 PFN < 2x. A missed
# target exits 1; --report prints the figures and exits 0 whatever they are.
#
# Env: PGTOOL_REF_DIR (reference tools, default ~/.cache/pgtool-ref), RUNS (default 5),
# PGTOOL (a pgtool binary to use instead of the shipped one, built by tools/dist.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
report=0
case ${1:-} in --report) report=1 ;; "") ;; *) echo "usage: $0 [--report]" >&2; exit 2 ;; esac
die() { echo "bench/who.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (reads other processes' pagemap and /proc/kpage*)"
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types
RUNS=${RUNS:-5}
[ -x "$REF" ] || tools/build-reference.sh "$(dirname "$REF")" || die "no reference page-types at $REF"
if [ -z "${PGTOOL:-}" ]; then
    PGTOOL=$(tools/dist.sh) || die "tools/dist.sh failed"
fi
TMP=$(mktemp -d)
sleep 3600 &
SP=$!
trap 'kill $SP 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
sleep 0.3

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# A PFN mapped by a live process: the first anonymous page of our sleep (page-types prints
# PFNs in hex without 0x, in column 2 of -L output).
PFN=$("$REF" -p "$SP" -L -b anonymous | awk 'NR > 1 { print $2; exit }') ||
    die "page-types -p $SP failed"
[ -n "$PFN" ] || die "no anonymous page in pid $SP"
NPROC=$(ls -d /proc/[0-9]* | wc -l)
echo "processes: $NPROC   PFN: 0x$PFN   cpus: $(nproc)   runs per side: $RUNS"

loop() {   # the classic loop: prints the PIDs mapping the PFN (a vanished process is skipped)
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        # (grep reads everything: with pipefail a -q would turn page-types' SIGPIPE into "no")
        if "$REF" -p "$pid" -L 2>/dev/null | grep -F "	$PFN	" > /dev/null; then echo "$pid"; fi
    done
}
one() { "$PGTOOL" who "0x$PFN" --csv; }
many() { "$PGTOOL" who --csv - < "$TMP/pfns"; }

# 1. both tools must answer, and answer the same, before anything is timed
one > "$TMP/who.csv" 2> "$TMP/who.err" || die "pgtool who 0x$PFN failed (exit $?): $(head -c 300 "$TMP/who.err")"
# the pid column, found by its header name (tolerates column order)
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "pid") c = i; next } c && $c != "" { print $c }' \
    "$TMP/who.csv" | sort -un > "$TMP/who.pids"
loop | sort -un > "$TMP/loop.pids"
[ "$(cat "$TMP/loop.pids")" = "$SP" ] || die "the loop found [$(tr '\n' ' ' < "$TMP/loop.pids")], want [$SP]"
cmp -s "$TMP/loop.pids" "$TMP/who.pids" ||
    die "pgtool who found [$(tr '\n' ' ' < "$TMP/who.pids")], the loop [$(tr '\n' ' ' < "$TMP/loop.pids")]"
echo "same PID found by both: $SP"

# 1,000 PFNs mapped by processes (collected with page-types; a fixed-seed random sample, not
# the lowest PFNs, which are mostly shared-library pages mapped by every process).
for p in /proc/[0-9]*; do
    "$REF" -p "${p#/proc/}" -L 2>/dev/null | awk 'NR > 1 && NF == 3 && $1 ~ /^[0-9a-f]+$/ { print "0x" $2 }' || true
done | sort -u | awk 'BEGIN { srand(1) } { print rand() "\t" $0 }' | sort -n | cut -f2 > "$TMP/all"
head -n 1000 "$TMP/all" > "$TMP/pfns"
N=$(wc -l < "$TMP/pfns")
[ "$N" -gt 0 ] || die "no mapped PFN found with page-types"
many > "$TMP/many.csv" 2> "$TMP/many.err" || die "pgtool who - ($N PFNs) failed (exit $?): $(head -c 300 "$TMP/many.err")"
ROWS=$(($(wc -l < "$TMP/many.csv") - 1))
[ "$ROWS" -gt 0 ] || die "pgtool who - printed no mapping for $N mapped PFNs"

# 2. RUNS alternating runs of each; any failure aborts
: > "$TMP/t.loop"; : > "$TMP/t.one"; : > "$TMP/t.many"
# Wall time from bash's own clock ($EPOCHREALTIME, bash >= 5: no fork). A `date` on each side
# of the command (as this bench did before) adds two fork+execs, ~2 ms here: more than a
# one-PFN lookup itself takes, and nothing on the loop's scale.
timed() {   # timed FILE CMD...: append the wall time in ns; abort on failure
    local f=$1 s e; shift
    s=${EPOCHREALTIME/[.,]/}
    "$@" > /dev/null 2> "$TMP/err" || die "$* failed while timing: $(head -c 300 "$TMP/err")"
    e=${EPOCHREALTIME/[.,]/}
    echo $(((e - s) * 1000)) >> "$f"
}
for _ in $(seq "$RUNS"); do
    timed "$TMP/t.loop" loop
    timed "$TMP/t.one" one
    timed "$TMP/t.many" many
done
LOOP=$(median < "$TMP/t.loop") ONE=$(median < "$TMP/t.one") MANY=$(median < "$TMP/t.many")
ms() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1e6 }'; }
R1=$(awk -v a="$LOOP" -v b="$ONE" 'BEGIN { printf "%.1f", a / b }')
R2=$(awk -v a="$MANY" -v b="$ONE" 'BEGIN { printf "%.2f", a / b }')
echo "classic loop (page-types -p PID -L | grep, $NPROC processes), median of $RUNS: $(ms "$LOOP") ms"
echo "pgtool who PFN, median of $RUNS: $(ms "$ONE") ms"
echo "ratio loop / pgtool: ${R1}x (target >= 50x: one PFN <= 0.02x the loop)   load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "pgtool who, $N PFNs at once, median of $RUNS: $(ms "$MANY") ms ($ROWS mappings printed)"
echo "ratio $N PFNs / 1 PFN: ${R2}x (target < 2x)   load $(cut -d' ' -f1-3 /proc/loadavg)"
missed=0
awk -v r="$R1" 'BEGIN { exit !(r < 50) }' && { echo "MISSED: loop / pgtool $R1 < 50"; missed=1; }
awk -v r="$R2" 'BEGIN { exit !(r >= 2) }' && { echo "MISSED: $N PFNs / 1 PFN $R2 >= 2"; missed=1; }
[ $missed = 0 ] || [ $report = 1 ] || exit 1
exit 0
