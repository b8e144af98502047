#!/usr/bin/env bash
# bench/map.sh [--runs N] [--report]
#
# `pgtool map --json` (the whole-memory scan behind the picture) against `pgtool types` (the
# whole-memory page-types summary: the same kpageflags scan) on this machine: median wall time
# of N (default 5) alternating runs, the ratio, and peak RSS of both. Target: map <= 1.2x types.
# Exits 1 when the target is missed (--report: print only). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=5 report=0
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--report) report=1; shift ;;
	*) echo "usage: $0 [--runs N] [--report]" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "map.sh: needs root (reads /proc/kpageflags)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "map.sh: needs /usr/bin/time (Debian package time)" >&2; exit 2; }
pg=${PGTOOL:-$("$here/tools/dist.sh")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# one timed run: prints "microseconds rss_kib"; a failing command aborts the bench
timed() {
	local t0 t1
	t0=$(date +%s%N)
	/usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
		echo "map.sh: failed: $*" >&2; cat "$tmp/err" >&2; exit 1; }
	t1=$(date +%s%N)
	echo "$(( (t1 - t0) / 1000 )) $(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Both must describe the same memory: the map's page count equals the RAM page-types counts.
"$pg" map --json --totals > "$tmp/totals"
map_pages=$(tail -n 1 "$tmp/totals" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pages"])')
[ "$map_pages" -gt 0 ] || { echo "map.sh: map counted no pages" >&2; exit 1; }

a=() b=() ra=0 rb=0
"$pg" types >/dev/null; "$pg" map --json >/dev/null
for _ in $(seq "$runs"); do
	read -r x y < <(timed "$pg" types); a+=("$x"); [ "$y" -gt "$ra" ] && ra=$y
	read -r x y < <(timed "$pg" map --json); b+=("$x"); [ "$y" -gt "$rb" ] && rb=$y
done
ma=$(printf '%s\n' "${a[@]}" | median)
mb=$(printf '%s\n' "${b[@]}" | median)
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); runs=$runs; map counted $map_pages RAM pages"
awk -v a="$ma" -v b="$mb" -v ra="$ra" -v rb="$rb" 'BEGIN {
	printf "types %.3f s %.1f MiB   map --json %.3f s %.1f MiB   ratio %.2f (target <= 1.2)\n",
		a/1e6, ra/1024, b/1e6, rb/1024, b/a }'
ok=$(awk -v a="$ma" -v b="$mb" 'BEGIN { print (b <= 1.2 * a) ? 1 : 0 }')
if [ "$ok" = 0 ] && [ "$report" = 0 ]; then
	echo "map.sh: target missed" >&2
	exit 1
fi
