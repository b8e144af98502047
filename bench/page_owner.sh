#!/usr/bin/env bash
# bench/page_owner.sh -- wall time and peak RSS of pgtool vs the reference page_owner_sort on a
# ~100 MB page_owner dump: RUNS (default 5) runs of each side, medians of the wall
# time (nanosecond clock), the largest peak RSS; outputs compared before the figures count.
#
# The dump is made by concatenating copies of a real 6.1 dump taken in the qemu kernel
# (tests/fixtures/page_owner/qemu-6.1-page_owner.txt.gz, or $PO_DUMP if set), else of the
# golden vectors' synthetic inputs. Prints, for each mode, both timings, the ratio
# pgtool/reference (target <= 0.2) and both peak RSS values.
#
# Usage: bench/page_owner.sh [--report] [SIZE_MB]     (default 100)
#   A failing command or differing outputs abort (exit 1); a ratio above 0.2 exits 1 unless
#   --report (print the figures, exit 0).
# Env: PGTOOL (default: the shipped binary, built by tools/dist.sh), PGTOOL_REF_DIR (reference tools,
#      default ~/.cache/pgtool-ref), PO_DUMP (a plain-text or .gz dump to use), RUNS.
# Needs GNU time (/usr/bin/time, Debian package "time").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
report=0
if [ "${1:-}" = --report ]; then report=1; shift; fi
size_mb=${1:-100}
RUNS=${RUNS:-5}
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page_owner_sort
PGTOOL=${PGTOOL:-$("$here/tools/dist.sh")}
[ -x "$REF" ] || { echo "reference not found: $REF (tools/build-reference.sh)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=${PO_DUMP:-$here/tests/fixtures/page_owner/qemu-6.1-page_owner.txt.gz}
if [ -f "$src" ]; then
  case $src in *.gz) gzip -dc "$src" >"$tmp/one" ;; *) cp "$src" "$tmp/one" ;; esac
  what="real qemu 6.1 dump $(basename "$src")"
else
  cat "$here"/tests/vectors/page_owner_sort/inputs/*.txt >"$tmp/one"
  what="vector inputs"
fi
one=$(stat -c %s "$tmp/one")
copies=$(( (size_mb * 1000000 + one - 1) / one ))
for _ in $(seq "$copies"); do cat "$tmp/one"; done >"$tmp/big"
ln -s "$PGTOOL" "$tmp/page_owner_sort"
big=$(stat -c %s "$tmp/big")
echo "runs per side: $RUNS (medians)"
echo "input: $copies copies of $what = $big bytes ($(grep -c '^Page allocated' "$tmp/big") records)"
cat "$tmp/big" >/dev/null   # warm the page cache for both

# measure NAME CMD...: RUNS runs; sets T (median wall seconds) and M (largest peak RSS KiB);
# the output files are those of the last run. Any failure aborts.
measure() {
  local name=$1 i s e; shift
  : >"$tmp/walls"; M=0
  for i in $(seq "$RUNS"); do
    s=$(date +%s%N)
    /usr/bin/time -o "$tmp/time" -f "%M" "$@" >/dev/null 2>"$tmp/err" || {
      echo "$name failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    e=$(date +%s%N)
    echo $((e - s)) >>"$tmp/walls"
    local m; m=$(tail -n 1 "$tmp/time")
    [ "$m" -gt "$M" ] && M=$m
  done
  T=$(sort -n "$tmp/walls" | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] / 1e9 }')
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "inf" }'; }
fail=0
row() {   # row MODE REF_T REF_M OUR_T OUR_M
  local r; r=$(ratio "$4" "$2")
  printf '%-34s ref %7.3fs %7d KiB   pgtool %7.3fs %7d KiB   ratio %s %s\n' "$1" "$2" "$3" "$4" "$5" "$r" \
    "$(awk -v r="$r" 'BEGIN { print (r <= 0.2) ? "(ok <= 0.2)" : "(ABOVE 0.2)" }')"
  awk -v r="$r" 'BEGIN { exit !(r > 0.2) }' && fail=1 || true
}
for opts in "" "-m" "--cull=st -m"; do
  # shellcheck disable=SC2086
  measure ref bash -c 'exec -a page_owner_sort "$0" "$@"' "$REF" $opts "$tmp/big" "$tmp/r1"
  rt=$T rm_=$M
  # shellcheck disable=SC2086
  measure pgtool "$tmp/page_owner_sort" $opts "$tmp/big" "$tmp/r2"
  cmp -s "$tmp/r1" "$tmp/r2" || { echo "output differs for page_owner_sort $opts" >&2; exit 1; }
  row "page_owner_sort ${opts:-(default)}" "$rt" "$rm_" "$T" "$M"
done
# Worst case for the drop-in's memory: every record distinct (each copy's timestamps made
# unique), no --cull. The output then holds every record, so pgtool keeps every distinct text,
# like the reference. Informational: not counted against the 0.2 target.
for i in $(seq "$copies"); do sed "s/, ts \([0-9]*\) ns/, ts \1$i ns/" "$tmp/one"; done >"$tmp/uniq"
measure ref bash -c 'exec -a page_owner_sort "$0" "$@"' "$REF" "$tmp/uniq" "$tmp/r1"
rt=$T rm_=$M
measure pgtool "$tmp/page_owner_sort" "$tmp/uniq" "$tmp/r2"
cmp -s "$tmp/r1" "$tmp/r2" || { echo "output differs for page_owner_sort (all distinct)" >&2; exit 1; }
save=$fail
row "(info) all records distinct" "$rt" "$rm_" "$T" "$M"
fail=$save
rm -f "$tmp/uniq"
# The report: pgtool page-owner (top stacks by pages) vs the reference's closest equivalent,
# page_owner_sort --cull=st -m.
measure ref bash -c 'exec -a page_owner_sort "$0" "$@"' "$REF" --cull=st -m "$tmp/big" "$tmp/r1"
rt=$T rm_=$M
measure pgtool "$PGTOOL" page-owner --no-join --top 0 "$tmp/big"
row "report (page-owner --by stack)" "$rt" "$rm_" "$T" "$M"
measure pgtool "$PGTOOL" page-owner --no-join --top 0 --by comm,order,gfp,module "$tmp/big"
row "report (--by comm,order,gfp,module)" "$rt" "$rm_" "$T" "$M"
[ $fail = 0 ] || [ $report = 1 ] || exit 1
exit 0
