#!/usr/bin/env bash
# bench/compare.sh [--only whole|anon|sparse] [--runs N] [--threads N] [--anon-mib MIB] [--report] [--rss-fails]
#
# pgtool types vs the kernel's page-types ($PGTOOL_REF_DIR/bin, built by tools/build-reference.sh
# when missing): median wall time of N (default 5) alternating runs of each (the same number),
# the ratio pgtool/page-types, and peak RSS (/usr/bin/time -v "Maximum resident set size") for
#   whole   the whole-memory summary                       (target ratio <= 0.4)
#   anon    -p of a process with 2 GiB touched anon memory, summary (<= 0.3) and -L (<= 0.2)
#   sparse  -p of a 256 GiB MAP_NORESERVE mapping with 64 MiB touched        (<= 0.05)
# and pgtool's peak RSS (target <= 4 MiB: a larger RSS is printed as MISSED-RSS; it fails the
# run only with --rss-fails, since pgtool --version alone maps ~4 MiB here: see
# docs/performance.md).
# plus the kernel floor `dd if=/proc/kpageflags of=/dev/null bs=1M`. Needs root.
# Before a case is timed both tools' outputs must be identical: for the whole-memory summary on
# one frozen copy of /proc/kpageflags (page-types -F COPY vs pgtool types --root SNAPSHOT), for
# the -p cases live (5 tries: shared pages' flags may change between two runs). Any difference
# or failing command aborts (exit 1). A missed target exits 1; --report prints and exits 0.
# --anon-mib MIB sizes the anon process (default 2048). --threads N is passed to pgtool types (its walk's thread count; default: the CPUs it may run
# on, sched_getaffinity). Every line is printed with the load average at the time.
# Env: PGTOOL (a pgtool binary instead of the shipped one, built by tools/dist.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
only= runs=5 threads= report=0 rssfails=0 anon=2048
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--report) report=1; shift ;;
	--rss-fails) rssfails=1; shift ;;
	--anon-mib) anon=$2; shift 2 ;;
	*) echo "usage: $0 [--only whole|anon|sparse] [--runs N] [--threads N] [--report] [--rss-fails] [--anon-mib MIB]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "compare.sh: needs root (reads /proc/kpageflags)" >&2; exit 2; }
die() { echo "compare.sh: $*" >&2; exit 1; }
ref=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types
[ -x "$ref" ] || sh "$here/tools/build-reference.sh" "$(dirname "$ref")" || die "no reference page-types at $ref"
[ -x /usr/bin/time ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null; }
if [ -n "${PGTOOL:-}" ]; then
	pg=$PGTOOL
else
	pg=$("$here/tools/dist.sh") || die "tools/dist.sh failed"
fi
work=$(mktemp -d)
hog=$work/bench-hog
cc -O2 -o "$hog" "$here/bench/hog.c" || die "cc bench/hog.c failed"
targs=()
[ -n "$threads" ] && targs=(--threads "$threads")

ns() { date +%s%N; }
# one timed run: prints "seconds rss_kib"
timed() {
	local t0 t1 rss
	t0=$(ns)
	/usr/bin/time -v -o /tmp/compare.$$.time "$@" >/dev/null 2>/tmp/compare.$$.err || {
		echo "compare.sh: failed: $*" >&2; cat /tmp/compare.$$.err >&2; exit 1; }
	t1=$(ns)
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/compare.$$.time)
	echo "$(( (t1 - t0) / 1000 )) $rss"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# same ARGS...: page-types and pgtool types print the same (5 tries); else abort
same() {
	local i
	for i in 1 2 3 4 5; do
		"$ref" "$@" >"$work/ref.out" 2>"$work/ref.err" || die "page-types $* failed: $(head -c 300 "$work/ref.err")"
		"$pg" types "${targs[@]}" "$@" >"$work/pg.out" 2>"$work/pg.err" ||
			die "pgtool types $* failed: $(head -c 300 "$work/pg.err")"
		cmp -s "$work/ref.out" "$work/pg.out" && return 0
	done
	# The kernel sets and DAMON clears the referenced/idle bits of live pages at any time:
	# after 5 tries, accept outputs that agree once those two bits are cleared and the flag
	# sets summed again (every other flag, and the page count, must still match).
	if [ "$(refmask "$work/ref.out")" = "$(refmask "$work/pg.out")" ]; then
		echo "compare.sh: page-types $* and pgtool types $* agree but for live referenced/idle bits" >&2
		return 0
	fi
	diff "$work/ref.out" "$work/pg.out" | head -n 10 >&2 || true
	die "page-types $* and pgtool types $* differ (5 tries)"
}
# refmask FILE: page-types output with the referenced (2) and idle_page (25) bits cleared: a
# summary is re-summed per flag set; a -L listing is expanded to one line per page (voffset,
# PFN, masked symbolic flags) so runs split by those bits compare equal (python3: mawk has no
# hex arithmetic). Any other line must match as it is.
refmask() {
	python3 -c '
import sys, collections
c = collections.Counter()
def sym(s):
    s = list(s)
    for i in (2, 25):
        if i < len(s):
            s[i] = "_"
    return "".join(s)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    g = line.split()
    if g and g[0].startswith("0x"):
        c[("set", int(g[0], 16) & ~((1 << 2) | (1 << 25)))] += int(g[1])
    elif g and g[0] == "total":
        c["total"] += int(g[1])
    elif len(f) == 3 and f[0] != "voffset":
        try:
            c[("page", int(f[0], 16), int(f[1], 16), sym(f[2]))] += 1
        except ValueError:
            c[("line", line)] += 1
    elif len(f) >= 4 and f[2].isdigit():
        try:
            v, o = int(f[0], 16), int(f[1], 16)
        except ValueError:
            c[("line", line)] += 1
            continue
        for i in range(int(f[2])):
            c[("page", v + i, o + i, sym(f[3]))] += 1
    else:
        c[("line", line)] += 1
print(sorted((repr(k), v) for k, v in c.items()))' "$1"
}
missed=0
# case NAME TARGET ARGS...: alternate page-types and pgtool types; check the ratio <= TARGET
case_() {
	local name=$1 target=$2; shift 2
	local a=() b=() ra=0 rb=0 x y
	for _ in $(seq "$runs"); do
		read -r x y < <(timed "$ref" "$@"); a+=("$x"); [ "$y" -gt "$ra" ] && ra=$y
		read -r x y < <(timed "$pg" types "${targs[@]}" "$@"); b+=("$x"); [ "$y" -gt "$rb" ] && rb=$y
	done
	local ma mb
	ma=$(printf '%s\n' "${a[@]}" | median)
	mb=$(printf '%s\n' "${b[@]}" | median)
	awk -v n="$name" -v a="$ma" -v b="$mb" -v ra="$ra" -v rb="$rb" -v t="$target" \
		-v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
		printf "%-22s page-types %8.3f s %6.1f MiB   pgtool %8.3f s %6.1f MiB   ratio %.3f (target <= %s)  load %s\n",
			n, a/1e6, ra/1024, b/1e6, rb/1024, b/a, t, load }' 
	if awk -v a="$ma" -v b="$mb" -v t="$target" 'BEGIN { exit !(b / a > t) }'; then
		echo "MISSED: $name ratio above $target"; missed=1
	fi
	if [ "$rb" -gt 4096 ]; then
		echo "MISSED-RSS: $name pgtool peak RSS $((rb / 1024)).$(( (rb % 1024) * 10 / 1024 )) MiB above 4 MiB"
		[ $rssfails = 0 ] || missed=1
	fi
}
hogpid=
cleanup() { [ -n "$hogpid" ] && kill -9 "$hogpid" 2>/dev/null || true; rm -f /tmp/compare.$$.*; rm -rf "$work"; }
trap cleanup EXIT
start_hog() {
	"$hog" "$@" > /tmp/compare.$$.hog &
	hogpid=$!
	for _ in $(seq 600); do grep -q ready /tmp/compare.$$.hog 2>/dev/null && break; sleep 0.1; done
	grep -q ready /tmp/compare.$$.hog || { echo "compare.sh: hog $* did not get ready" >&2; exit 1; }
	sleep 1	# let the kernel settle (LRU batches, background aging) before timing
}

echo "machine: $(nproc) CPUs (pgtool threads: ${threads:-auto}), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); runs=$runs"
if [ -z "$only" ] || [ "$only" = whole ]; then
	f=()
	for _ in $(seq "$runs"); do read -r x _ < <(timed dd if=/proc/kpageflags of=/dev/null bs=1M); f+=("$x"); done
	printf "%-22s %8.3f s (median)\n" "dd kpageflags floor" "$(printf '%s\n' "${f[@]}" | median | awk '{print $1/1e6}')"
	# one frozen copy of kpageflags: both tools must print the same summary of it
	mkdir -p "$work/snap/proc"
	dd if=/proc/kpageflags of="$work/snap/proc/kpageflags" bs=1M status=none || die "cannot copy /proc/kpageflags"
	cp /proc/iomem "$work/snap/proc/iomem"
	"$ref" -F "$work/snap/proc/kpageflags" >"$work/ref.out" 2>&1 || die "page-types -F copy failed"
	"$pg" types "${targs[@]}" --root "$work/snap" >"$work/pg.out" 2>&1 || die "pgtool types --root failed: $(head -c 300 "$work/pg.out")"
	cmp -s "$work/ref.out" "$work/pg.out" || { diff "$work/ref.out" "$work/pg.out" | head >&2 || true;
		die "whole-memory summaries of one kpageflags copy differ"; }
	rm -f "$work/snap/proc/kpageflags"
	case_ "whole-memory summary" 0.4
fi
if [ -z "$only" ] || [ "$only" = anon ]; then
	start_hog anon "$anon"
	same -p "$hogpid"
	case_ "-p ${anon}MiB anon summary" 0.3 -p "$hogpid"
	same -p "$hogpid" -L
	case_ "-p ${anon}MiB anon -L" 0.2 -p "$hogpid" -L
	kill -9 "$hogpid"; wait "$hogpid" 2>/dev/null || true; hogpid=
fi
if [ -z "$only" ] || [ "$only" = sparse ]; then
	start_hog sparse 256 64
	same -p "$hogpid"
	case_ "-p 256GiB sparse" 0.05 -p "$hogpid"
	kill -9 "$hogpid"; wait "$hogpid" 2>/dev/null || true; hogpid=
fi
[ $missed = 0 ] || [ $report = 1 ] || exit 1
exit 0
