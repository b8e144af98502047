#!/bin/sh
# bench/v2p.sh [--report]: `pgtool v2p` over 1 GiB of touched anonymous memory (JSON, CSV,
# table) against the reference `page-types -p PID -L -a START,END` on the same range, with
# time (best of RUNS) and peak RSS (/usr/bin/time -v). Needs root (PFNs and /proc/kpage*).
#
# Targets (issue 19): --json <= 1.5x page-types' time, table <= 2x, peak RSS <= 8 MiB in every
# format. Exits 1 when one is missed (--report: print only, exit 0). Prints the load
# (uptime) too: on a shared machine the times move with it.
#
# Env: PGTOOL_REF_DIR (reference tools, default ~/.cache/pgtool-ref), RUNS (default 3),
# MIB (default 1024), PGTOOL (a pgtool binary instead of the shipped one, built by tools/dist.sh).
set -eu
cd "$(dirname "$0")/.."
REPORT=0
[ "${1:-}" = "--report" ] && REPORT=1
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types
RUNS=${RUNS:-3}
MIB=${MIB:-1024}
[ -x "$REF" ] || sh tools/build-reference.sh
[ -x /usr/bin/time ] || { echo "bench/v2p.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ -z "${PGTOOL:-}" ]; then
    PGTOOL=$(tools/dist.sh) || exit 1
fi
TMP=$(mktemp -d)
HOG=""
trap '[ -n "$HOG" ] && kill -9 $HOG 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
cc -O2 -o "$TMP/hog" bench/hog.c
"$TMP/hog" anon "$MIB" > "$TMP/hog.out" &
HOG=$!
i=0
until grep -q ready "$TMP/hog.out" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "bench/v2p.sh: hog did not get ready" >&2; exit 2; }
done

# The hog's mapping: exactly MIB MiB (mmap of an anonymous region; THP may align it).
LEN=$((MIB << 20))
START=$(awk -v len="$LEN" '{ split($1, r, "-"); s = strtonum("0x" r[1]); e = strtonum("0x" r[2]);
    if (e - s == len) { printf "%x\n", s; exit } }' "/proc/$HOG/maps" 2>/dev/null || true)
if [ -z "$START" ]; then
    # mawk has no strtonum: fall back to the shell's arithmetic
    while read -r range _; do
        s=${range%-*}; e=${range#*-}
        if [ $((0x$e - 0x$s)) -eq "$LEN" ]; then START=$s; break; fi
    done < "/proc/$HOG/maps"
fi
[ -n "$START" ] || { echo "bench/v2p.sh: no ${MIB} MiB mapping in pid $HOG" >&2; exit 2; }
S=$((0x$START))
E=$((S + LEN))
PT_RANGE=$(printf '0x%x,0x%x' $((S / 4096)) $((E / 4096)))
SPEC=$(printf '0x%x+0x%x' "$S" "$LEN")

# best time (s) and peak RSS (KiB) of RUNS runs of "$@" > /dev/null
measure() {
    best=""
    rss=0
    i=0
    while [ $i -lt "$RUNS" ]; do
        /usr/bin/time -f "%e %M" -o "$TMP/t" "$@" > /dev/null 2> "$TMP/err" || {
            echo "bench/v2p.sh: failed: $*" >&2; cat "$TMP/err" >&2; exit 2; }
        read -r t m < "$TMP/t"
        best=$(awk -v a="$t" -v b="${best:-1e18}" 'BEGIN { print (a < b) ? a : b }')
        [ "$m" -gt "$rss" ] && rss=$m
        i=$((i + 1))
    done
    echo "$best $rss"
}

# Both tools must list every page of the range (else the comparison means nothing).
PAGES=$((LEN / 4096))
N=$("$REF" -p "$HOG" -L -a "$PT_RANGE" | grep -c '^[0-9a-f]')
[ "$N" -ge "$PAGES" ] || { echo "bench/v2p.sh: page-types listed $N pages, not $PAGES" >&2; exit 2; }
N=$("$PGTOOL" v2p "$HOG" "$SPEC" --json | wc -l)
[ "$N" -eq "$PAGES" ] || { echo "bench/v2p.sh: pgtool listed $N pages, not $PAGES" >&2; exit 2; }

echo "v2p over ${MIB} MiB of touched anonymous memory (pid $HOG, $SPEC), best of $RUNS"
echo "load: $(uptime | sed 's/.*load average/load average/')   cpus: $(nproc)"
set -- $(measure "$REF" -p "$HOG" -L -a "$PT_RANGE"); PT_T=$1; PT_M=$2
set -- $(measure "$PGTOOL" v2p "$HOG" "$SPEC" --json); J_T=$1; J_M=$2
set -- $(measure "$PGTOOL" v2p "$HOG" "$SPEC" --csv); C_T=$1; C_M=$2
set -- $(measure "$PGTOOL" v2p "$HOG" "$SPEC"); T_T=$1; T_M=$2
ROWS=$("$PGTOOL" v2p "$HOG" "$SPEC" | wc -l)

FAIL=0
line() { # name time rss target-ratio
    ratio=$(awk -v a="$2" -v b="$PT_T" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
    verdict=ok
    if [ -n "$4" ] && awk -v r="$ratio" -v t="$4" 'BEGIN { exit !(r > t) }'; then
        verdict="MISSED (target <= ${4}x)"; FAIL=1
    fi
    if [ "$3" -gt 8192 ]; then verdict="$verdict; RSS MISSED (target <= 8192 KiB)"; FAIL=1; fi
    printf '%-28s %7.2f s  %6.2fx  %7d KiB  %s\n' "$1" "$2" "$ratio" "$3" "$verdict"
}
printf '%-28s %9s  %7s  %11s\n' "" "time" "ratio" "peak RSS"
printf '%-28s %7.2f s  %6.2fx  %7d KiB\n' "page-types -p -L -a" "$PT_T" 1 "$PT_M"
line "pgtool v2p --json" "$J_T" "$J_M" 1.5
line "pgtool v2p --csv" "$C_T" "$C_M" ""
line "pgtool v2p (table, $ROWS lines)" "$T_T" "$T_M" 2
echo "load after: $(uptime | sed 's/.*load average/load average/')"
if [ "$FAIL" -ne 0 ] && [ "$REPORT" -eq 0 ]; then
    echo "bench/v2p.sh: a target was missed (--report to print without failing)" >&2
    exit 1
fi
exit 0
