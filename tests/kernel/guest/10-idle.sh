# pgtool idle mark/read on a process's pages, a PFN range and a memcg; THP-free (4 KiB pages).
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
R="0x$A+$(printf %x $((N * 4096)))"

out=$(pgtool idle mark --pid $P --addr $R 2>&1); rc=$?
check idle.mark "rc=$rc $out" [ $rc = 0 ]
j=$(pgtool idle read --pid $P --addr $R --json)
check idle.read.fields "exactly pages, idle_pages, accessed_pages: $j" \
  sh -c "echo '$j' | grep -qx '{\"pages\":[0-9]*,\"idle_pages\":[0-9]*,\"accessed_pages\":[0-9]*}'"
pg=$(echo "$j" | jfield pages) id=$(echo "$j" | jfield idle_pages) ac=$(echo "$j" | jfield accessed_pages)
check idle.read.all-idle "after mark: pages=$pg idle=$id accessed=$ac (want $N/$N/0)" \
  [ "$pg" = $N -a "$id" = $N -a "$ac" = 0 ]

kill -USR1 $P; wait_file /tmp/tp.info.2 || fail idle.setup "touch step 2 timed out"
j=$(pgtool idle read --pid $P --addr $R --json)
id=$(echo "$j" | jfield idle_pages) ac=$(echo "$j" | jfield accessed_pages)
check idle.read.half "after touching half: idle=$id accessed=$ac (want $((N/2)) each)" \
  [ "$id" = $((N / 2)) -a "$ac" = $((N / 2)) ]
# -L: the accessed pages are exactly the first half
pgtool idle read --pid $P --addr $R -L --csv > /tmp/list.csv
bad=$(tail -n +2 /tmp/list.csv | head -n $((N / 2)) | grep -c ',1$')
bad=$((bad + $(tail -n +2 /tmp/list.csv | tail -n $((N / 2)) | grep -c ',0$')))
rows=$(($(wc -l < /tmp/list.csv) - 1))
[ $rows = $N ] || bad="$bad (and $rows rows, want $N)"
check idle.list.exact-half "-L: $bad page(s) in the wrong state (first half accessed, second idle)" [ "$bad" = 0 ]

# --vma selects the mapping by name: the anonymous region must be in it
out=$(pgtool idle read --pid $P --vma '[anon]' --json)
pg=$(echo "$out" | jfield pages)
check idle.vma "--vma [anon]: pages=$pg (>= $N)" [ "${pg:-0}" -ge $N ]

# --pfn: the PFN range of the first page; mark then read
pfn=$(pgtool idle read --pid $P --addr 0x$A -L --csv | awk -F, 'NR==2{print $2}')
pgtool idle mark --pfn "$pfn+64" 2>/dev/null
j=$(pgtool idle read --pfn "$pfn+64" --json)
pg=$(echo "$j" | jfield pages) id=$(echo "$j" | jfield idle_pages) ac=$(echo "$j" | jfield accessed_pages)
# (the range is clipped to System RAM, so near the end of memory it holds fewer than 64 pages)
check idle.pfn "--pfn $pfn+64: $j" [ "${pg:-0}" -ge 1 -a "${pg:-0}" -le 64 -a $((id + ac)) = "${pg:-0}" ]
j=$(pgtool idle read --pid $P --addr 0x$A --json)
check idle.pfn.marks-that-page "page at 0x$A after --pfn mark: $j" [ "$(echo "$j" | jfield idle_pages)" = 1 ]

# --cgroup: the memcg holds the touched pages: half idle, half accessed (plus a few kernel pages)
pgtool idle mark --cgroup /sys/fs/cgroup/kt 2>/dev/null
kill -USR1 $P; wait_file /tmp/tp.info.3  # step 3 reads page 0 only
j=$(pgtool idle read --cgroup /sys/fs/cgroup/kt --json); rc=$?
id=$(echo "$j" | jfield idle_pages) ac=$(echo "$j" | jfield accessed_pages)
check idle.cgroup "memcg kt: $j (want idle in [$((N - 1)), $((N + 64))], accessed >= 1)" \
  [ $rc = 0 -a "${id:-0}" -ge $((N - 1)) -a "${id:-0}" -le $((N + 64)) -a "${ac:-0}" -ge 1 ]

# all of memory (read in chunks): every System RAM page of the 512 MiB guest, holes skipped
t0=$(uptime_ms); j=$(pgtool idle read --pfn 0-0x1000000 --json); rc=$?; t1=$(uptime_ms)
pg=$(echo "$j" | jfield pages)
check idle.pfn.all "rc=$rc $j in $((t1 - t0)) ms (want 100000..131072 pages)" \
  [ $rc = 0 -a "${pg:-0}" -ge 100000 -a "${pg:-0}" -le 131072 ]

# errors: a pid that does not exist
pgtool idle read --pid 999999 >/dev/null 2>&1; rc=$?
check idle.nopid "read --pid 999999 exits 1 (got $rc)" [ $rc = 1 ]
kill $P
finish
