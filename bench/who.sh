#!/bin/sh
# bench/who.sh: `pgtool who PFN` against the classic loop
#   for pid in /proc/[0-9]*: page-types -p $pid -L | grep PFN
# on the same PFN, and 1,000 PFNs at once against one. Needs root.
#
# Prints: number of processes, time of the loop, time of `pgtool who PFN` (best of 5),
# the ratio (target >= 20x, aim 100x), the time for 1,000 PFNs at once, and its ratio to one
# PFN (target < 2x). Also checks both found the same PIDs.
#
# Env: PGTOOL_REF_DIR (reference tools, default ~/.cache/pgtool-ref), RUNS (default 5),
# PGTOOL (a pgtool binary to use instead of building target/release/pgtool).
set -eu
cd "$(dirname "$0")/.."
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types
RUNS=${RUNS:-5}
[ -x "$REF" ] || sh tools/build-reference.sh
if [ -z "${PGTOOL:-}" ]; then
    cargo build --release --quiet
    PGTOOL=$(pwd)/target/release/pgtool
fi
TMP=$(mktemp -d)
sleep 3600 &
SP=$!
trap 'kill $SP 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
sleep 0.3

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# A PFN mapped by a live process: the first anonymous page of our sleep (page-types prints
# PFNs in hex without 0x, in column 2 of -L output).
PFN=$("$REF" -p "$SP" -L -b anonymous | awk 'NR > 1 { print $2; exit }')
[ -n "$PFN" ] || { echo "bench/who.sh: no anonymous page in pid $SP" >&2; exit 2; }
NPROC=$(ls -d /proc/[0-9]* | wc -l)
echo "processes: $NPROC   PFN: 0x$PFN   cpus: $(nproc)"

# The classic loop.
t0=$(now)
for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    "$REF" -p "$pid" -L 2>/dev/null | grep -q -F "	$PFN	" && echo "$pid"
done > "$TMP/loop.pids" || true
t1=$(now)
LOOP=$(ms "$t0" "$t1")

# pgtool who, best of RUNS.
best() {
    b=""
    i=0
    while [ $i -lt "$RUNS" ]; do
        s=$(now)
        "$@" > "$TMP/out" 2>/dev/null || true
        e=$(now)
        t=$(ms "$s" "$e")
        b=$(awk -v a="$t" -v b="${b:-1e18}" 'BEGIN { print (a < b) ? a : b }')
        i=$((i + 1))
    done
    echo "$b"
}
ONE=$(best "$PGTOOL" who "0x$PFN" --csv)
"$PGTOOL" who "0x$PFN" --csv 2>/dev/null | awk -F, 'NR > 1 && $2 != "" { print $2 }' | sort -n > "$TMP/who.pids"
sort -n "$TMP/loop.pids" > "$TMP/loop.sorted"

# 1,000 PFNs mapped by processes (collected with page-types; a fixed-seed random sample, not
# the lowest PFNs, which are mostly shared-library pages mapped by every process), at once.
for p in /proc/[0-9]*; do
    "$REF" -p "${p#/proc/}" -L 2>/dev/null | awk 'NR > 1 && NF == 3 && $1 ~ /^[0-9a-f]+$/ { print "0x" $2 }'
done | sort -u | awk 'BEGIN { srand(1) } { print rand() "\t" $0 }' | sort -n | cut -f2 |
    head -n 1000 > "$TMP/pfns"
N=$(wc -l < "$TMP/pfns")
MANY=$(best sh -c "\"$PGTOOL\" who --csv - < \"$TMP/pfns\"")
ROWS=$("$PGTOOL" who --csv - < "$TMP/pfns" 2>/dev/null | awk -F, 'NR > 1 && $2 != ""' | wc -l)

echo "classic loop (page-types -p PID -L | grep, $NPROC processes): $LOOP ms"
echo "pgtool who PFN (best of $RUNS): $ONE ms"
awk -v a="$LOOP" -v b="$ONE" 'BEGIN { printf "ratio loop / pgtool: %.1fx (target >= 20x, aim 100x)\n", a / b }'
echo "pgtool who, $N PFNs at once (best of $RUNS): $MANY ms ($ROWS mappings printed)"
awk -v a="$MANY" -v b="$ONE" -v n="$N" 'BEGIN { printf "ratio %d PFNs / 1 PFN: %.2fx (target < 2x)\n", n, a / b }'
if cmp -s "$TMP/loop.sorted" "$TMP/who.pids"; then
    echo "same PIDs found by both: $(tr '\n' ' ' < "$TMP/who.pids")"
else
    echo "PIDs differ (processes may have come and gone): loop [$(tr '\n' ' ' < "$TMP/loop.sorted")] pgtool [$(tr '\n' ' ' < "$TMP/who.pids")]"
fi
