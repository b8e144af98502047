#!/usr/bin/env bash
# bench/compare.sh [--only whole|anon|sparse] [--runs N] [--threads N]
#
# pgtool types vs the kernel's page-types (built by tools/build-reference.sh when missing):
# median wall time of N (default 5) alternating runs, the ratio pgtool/page-types, and peak RSS
# (/usr/bin/time -v "Maximum resident set size") for
#   whole   the whole-memory summary                       (target ratio <= 0.55)
#   anon    -p of a process with 2 GiB touched anon memory, summary and -L   (<= 0.4)
#   sparse  -p of a 256 GiB MAP_NORESERVE mapping with 64 MiB touched        (<= 0.1)
# plus the kernel floor `dd if=/proc/kpageflags of=/dev/null bs=1M`. Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
only= runs=5 threads=
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	*) echo "usage: $0 [--only whole|anon|sparse] [--runs N] [--threads N]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "compare.sh: needs root (reads /proc/kpageflags)" >&2; exit 2; }
ref=${PGTOOL_REF_PAGE_TYPES:-${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types}
[ -x "$ref" ] || sh "$here/tools/build-reference.sh" "$(dirname "$ref")"
[ -x /usr/bin/time ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null; }
(cd "$here" && cargo build --release -q)
pg=$here/target/release/pgtool
hog=$here/target/release/bench-hog
cc -O2 -o "$hog" "$here/bench/hog.c"
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
# case NAME ARGS...: alternate page-types and pgtool types
case_() {
	local name=$1; shift
	local a=() b=() ra=0 rb=0 x y
	# one untimed warm-up run of each
	"$ref" "$@" >/dev/null 2>&1 || true
	"$pg" types "${targs[@]}" "$@" >/dev/null 2>&1 || true
	for _ in $(seq "$runs"); do
		read -r x y < <(timed "$ref" "$@"); a+=("$x"); [ "$y" -gt "$ra" ] && ra=$y
		read -r x y < <(timed "$pg" types "${targs[@]}" "$@"); b+=("$x"); [ "$y" -gt "$rb" ] && rb=$y
	done
	local ma mb
	ma=$(printf '%s\n' "${a[@]}" | median)
	mb=$(printf '%s\n' "${b[@]}" | median)
	awk -v n="$name" -v a="$ma" -v b="$mb" -v ra="$ra" -v rb="$rb" 'BEGIN {
		printf "%-22s page-types %8.3f s %6.1f MiB   pgtool %8.3f s %6.1f MiB   ratio %.3f\n",
			n, a/1e6, ra/1024, b/1e6, rb/1024, b/a }'
}
hogpid=
cleanup() { [ -n "$hogpid" ] && kill -9 "$hogpid" 2>/dev/null || true; rm -f /tmp/compare.$$.*; }
trap cleanup EXIT
start_hog() {
	"$hog" "$@" > /tmp/compare.$$.hog &
	hogpid=$!
	for _ in $(seq 600); do grep -q ready /tmp/compare.$$.hog 2>/dev/null && break; sleep 0.1; done
	grep -q ready /tmp/compare.$$.hog || { echo "compare.sh: hog $* did not get ready" >&2; exit 1; }
	sleep 1	# let the kernel settle (LRU batches, background aging) before timing
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r); runs=$runs"
if [ -z "$only" ] || [ "$only" = whole ]; then
	f=()
	for _ in $(seq "$runs"); do read -r x _ < <(timed dd if=/proc/kpageflags of=/dev/null bs=1M); f+=("$x"); done
	printf "%-22s %8.3f s (median)\n" "dd kpageflags floor" "$(printf '%s\n' "${f[@]}" | median | awk '{print $1/1e6}')"
	case_ "whole-memory summary"
fi
if [ -z "$only" ] || [ "$only" = anon ]; then
	start_hog anon 2048
	case_ "-p 2GiB anon summary" -p "$hogpid"
	case_ "-p 2GiB anon -L" -p "$hogpid" -L
	kill -9 "$hogpid"; wait "$hogpid" 2>/dev/null || true; hogpid=
fi
if [ -z "$only" ] || [ "$only" = sparse ]; then
	start_hog sparse 256 64
	case_ "-p 256GiB sparse" -p "$hogpid"
	kill -9 "$hogpid"; wait "$hogpid" 2>/dev/null || true; hogpid=
fi
