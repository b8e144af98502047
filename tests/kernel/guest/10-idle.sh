# pgtool idle mark/read on a process's pages, a PFN range and a memcg; THP-free (4 KiB pages).
# Exact counts wherever the workload fixes them (touchpages is stopped between steps).
. /ktest/lib.sh
N=1024
touchpages $N /tmp/tp.info &
P=$!
wait_file /tmp/tp.info || { fail idle.setup "touchpages did not start"; finish; }
# charge its pages to a fresh memcg before they are touched
echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
mkdir -p /sys/fs/cgroup/kt && echo $P > /sys/fs/cgroup/kt/cgroup.procs
kill -USR1 $P; wait_file /tmp/tp.info.1 || fail idle.setup "touch step 1 timed out"
set -- $(cat /tmp/tp.info); A=$2
R="0x$A+$((N * 4096))"   # LEN is decimal (or 0x hex), as everywhere
# read3 ARGS...: "pages idle accessed rc" of `pgtool idle read ARGS --json` (its last record: the total)
read3() {
  _j=$(pgtool idle read "$@" --json 2>/tmp/read3.err); _rc=$?
  _j=$(echo "$_j" | tail -n 1)
  echo "$(echo "$_j" | jfield $F_PAGES) $(echo "$_j" | jfield $F_IDLE) $(echo "$_j" | jfield $F_ACCESSED) $_rc"
}

out=$(pgtool idle mark --pid $P --addr $R 2>&1); rc=$?
check idle.mark "rc=$rc $out" [ $rc = 0 ]
j=$(pgtool idle read --pid $P --addr $R --json | tail -n 1)
check idle.read.fields "the total: exactly vma (nulls), $F_PAGES, $F_IDLE, $F_ACCESSED: $j" \
  sh -c "echo '$j' | grep -qx '{\"vma\":{\"start\":null,\"end\":null,\"perms\":null,\"path\":null},\"$F_PAGES\":[0-9]*,\"$F_IDLE\":[0-9]*,\"$F_ACCESSED\":[0-9]*}'"
set -- $(read3 --pid $P --addr $R)
check idle.read.all-idle "after mark: pages=$1 idle=$2 accessed=$3 rc=$4 (want $N $N 0 0)" \
  [ "$1 $2 $3 $4" = "$N $N 0 0" ]

kill -USR1 $P; wait_file /tmp/tp.info.2 || fail idle.setup "touch step 2 timed out"
set -- $(read3 --pid $P --addr $R)
check idle.read.half "after touching half: pages=$1 idle=$2 accessed=$3 (want $N $((N / 2)) $((N / 2)))" \
  [ "$1 $2 $3 $4" = "$N $((N / 2)) $((N / 2)) 0" ]
# -L: the accessed pages are exactly the first half (rows in address order)
pgtool idle read --pid $P --addr $R -L --csv > /tmp/list.csv; rc=$?
csvcol $F_LIST_IDLE /tmp/list.csv > /tmp/list.idle
csvcol $F_LIST_PFN /tmp/list.csv | while read -r p; do echo $((p)); done > /tmp/list.pfn  # decimal
bad=$(head -n $((N / 2)) /tmp/list.idle | grep -cvxE 'false|0')
bad=$((bad + $(tail -n $((N / 2)) /tmp/list.idle | grep -cvxE 'true|1')))
rows=$(wc -l < /tmp/list.idle)
check idle.list.exact-half "-L (rc $rc, $rows rows, want $N): $bad page(s) in the wrong state (first half accessed, second idle)" \
  [ $rc = 0 -a "$rows" = $N -a "$bad" = 0 ]

# --vma [anon]: exactly the present pages of the process's unnamed mappings (smaps Rss)
want=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { anon = (NF == 5) } anon && /^Rss:/ { s += $2 } END { print s / 4 }' /proc/$P/smaps)
set -- $(read3 --pid $P --vma '[anon]')
check idle.vma "--vma [anon]: pages=$1 rc=$4 (want $want, the Rss of the unnamed mappings)" \
  [ "$1" = "$want" -a "$4" = 0 ]

# --pfn: the longest run of consecutive PFNs among the process's pages (state: first half
# accessed, second half idle). Marking the run by PFN makes exactly its pages idle.
sort -n /tmp/list.pfn | awk '{ v = $1; if (NR > 1 && v == p + 1) n++; else { n = 1; s = v } if (n > bn) { bn = n; bs = s } p = v }
  END { printf "%d %d\n", bs, bn }' > /tmp/run
read -r RSD RN < /tmp/run
RS=$(printf 0x%x "$RSD")
out=$(pgtool idle mark --pfn "$RS+$RN" 2>&1); rc=$?
check idle.pfn.mark "mark --pfn $RS+$RN: rc=$rc $out" [ $rc = 0 ]
set -- $(read3 --pfn "$RS+$RN")
check idle.pfn.read "read --pfn $RS+$RN: pages=$1 idle=$2 accessed=$3 rc=$4 (want $RN $RN 0 0)" \
  [ "$1 $2 $3 $4" = "$RN $RN 0 0" ]
# the run's pages in the first half were accessed and are idle now: the process has that many more
inrun=$(head -n $((N / 2)) /tmp/list.pfn | awk -v s="$RSD" -v n="$RN" '$1 >= s && $1 < s + n { c++ } END { print c + 0 }')
set -- $(read3 --pid $P --addr $R)
check idle.pfn.marks-those-pages "after --pfn mark: idle=$2 accessed=$3 (want $((N / 2 + inrun)) $((N / 2 - inrun)))" \
  [ "$2 $3" = "$((N / 2 + inrun)) $((N / 2 - inrun))" ]

# --cgroup: mark the memcg, then step 3 reads page 0 only: of the process's pages exactly
# page 0 is accessed; the memcg's idle pages are its N-1 untouched pages plus at most its other
# LRU pages (memory.stat anon + file)
out=$(pgtool idle mark --cgroup /sys/fs/cgroup/kt 2>&1); rc=$?
check idle.cgroup.mark "mark --cgroup: rc=$rc $out" [ $rc = 0 ]
kill -USR1 $P; wait_file /tmp/tp.info.3
set -- $(read3 --pid $P --addr $R)
check idle.cgroup.process "after mark --cgroup and reading page 0: idle=$2 accessed=$3 (want $((N - 1)) 1)" \
  [ "$2 $3" = "$((N - 1)) 1" ]
lru=$(awk '$1 == "anon" || $1 == "file" { s += $2 } END { print int(s / 4096) }' /sys/fs/cgroup/kt/memory.stat)
set -- $(read3 --cgroup /sys/fs/cgroup/kt)
check idle.cgroup "memcg kt: pages=$1 idle=$2 accessed=$3 rc=$4 (want idle in [$((N - 1)), $lru], accessed >= 1)" \
  [ "$4" = 0 -a "${2:-0}" -ge $((N - 1)) -a "${2:-0}" -le "$lru" -a "${3:-0}" -ge 1 ]

# all of memory: every System RAM page of /proc/iomem below 0x1000000, holes skipped. A page
# partly in RAM may or may not count; page_idle has no bits for a last partial 64-PFN chunk.
lo=0 hi=0
while read -r range colon what; do   # top-level "START-END : System RAM" lines (hex)
  [ "$colon $what" = ": System RAM" ] || continue
  s=$((0x${range%-*})) e=$((0x${range#*-}))
  lo=$((lo + (e + 1) / 4096 - (s + 4095) / 4096)) hi=$((hi + e / 4096 - s / 4096 + 1))
done < /proc/iomem
set -- $((lo - 63)) $hi
lo=$1 hi=$2
t0=$(uptime_ms); set -- $(read3 --pfn 0-0xffffff); t1=$(uptime_ms)
check idle.pfn.all "read --pfn 0-0xffffff: pages=$1 idle=$2 accessed=$3 rc=$4 in $((t1 - t0)) ms (want $lo..$hi: System RAM)" \
  [ "$4" = 0 -a "${1:-0}" -ge "$lo" -a "${1:-0}" -le "$hi" ]

# errors: a pid that does not exist
pgtool idle read --pid 999999 >/dev/null 2>&1; rc=$?
check idle.nopid "read --pid 999999 exits 1 (got $rc)" [ $rc = 1 ]
kill $P
finish
