# pgtool idle wss: a process with a known, changing working set, 4 KiB pages and THP.
. /ktest/lib.sh
NA=4096 MB=32
# the kernel turns THP off by default below 512 MiB of RAM: allow it for madvised regions
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
echo madvise > /sys/kernel/mm/transparent_hugepage/defrag
wsprog $NA $MB /tmp/ws.ctl /tmp/ws.info &
P=$!
wait_file /tmp/ws.info 300 || { fail wss.setup "wsprog did not start"; finish; }
set -- $(cat /tmp/ws.info); A=$2 NB=$5 B=$4
# wss_get INTERVAL VMA_START: the accessed pages of that row of /tmp/ws.csv (columns found by
# their header names; an empty VMA_START is the whole-process row)
wss_get() {
  awk -F, -v i="$1" -v s="$2" -v fi="$F_WSS_INTERVAL" -v fs="$F_WSS_START" -v fa="$F_WSS_ACCESSED" '
    NR == 1 { for (k = 1; k <= NF; k++) { if ($k == fi) ci = k; if ($k == fs) cs = k; if ($k == fa) ca = k }
              if (!ci || !cs || !ca) exit 3; next }
    $ci == i && $cs == s { print $ca }' /tmp/ws.csv
}
thp=$(awk -v b="$B" '$1 ~ "^"b"-" {f=1} f && /^AnonHugePages:/ {print $2; exit}' /proc/$P/smaps)
check wss.thp-present "THP region AnonHugePages: ${thp:-?} kB (want $((MB * 1024)))" [ "${thp:-0}" = $((MB * 1024)) ]
for method in idle refs; do
  for phase in "25 50" "75 25" "10 100" "0 0"; do
    set -- $phase; pa=$1 pb=$2
    rm -f /tmp/ws.info.ack; echo "$pa $pb" > /tmp/ws.ctl
    wait_file /tmp/ws.info.ack 50; sleep 0.2
    t0=$(uptime_ms)
    pgtool idle wss --pid $P --interval 1s --count 2 --method $method --csv > /tmp/ws.csv 2>/tmp/ws.err
    rc=$? t1=$(uptime_ms)
    [ $rc = 0 ] || { fail wss.$method "rc=$rc $(cat /tmp/ws.err)"; continue; }
    for iv in 1 2; do
      ga=$(wss_get $iv 0x$A) gb=$(wss_get $iv 0x$B) tot=$(wss_get $iv "")
      wa=$((NA * pa / 100)) wb=$((NB * pb / 100))
      check wss.$method.small.$pa "interval $iv: accessed ${ga:-?} of $NA 4K pages, want $wa (5%)" \
        within 5 "${ga:--99999}" $wa
      check wss.$method.thp.$pb "interval $iv: accessed ${gb:-?} of $NB pages in THP, want $wb (5%)" \
        within 5 "${gb:--99999}" $wb
      # the whole process: the two regions plus what its loop touches (text, stack, data)
      o=$(( ${tot:-0} - ${ga:-0} - ${gb:-0} ))
      check wss.$method.total.$pa.$pb "interval $iv: process accessed ${tot:-?} = regions + $o other pages (want 0..64 others)" \
        [ -n "$tot" -a $o -ge 0 -a $o -le 64 ]
    done
    echo "wss.$method phase $pa/$pb: 2 intervals in $((t1 - t0)) ms"
  done
done
# JSON: one object per VMA per interval and a total whose vma fields are null; the documented fields
pgtool idle wss --pid $P --interval 300ms --count 1 --json > /tmp/ws.json
n=$(grep -c '"vma":{"start":null' /tmp/ws.json); nv=$(grep -c '"vma":{"start":[0-9]' /tmp/ws.json)
f=$(grep '"vma":{"start":null' /tmp/ws.json)
ok=1; for k in interval pid pages accessed_pages idle_pages accessed_bytes; do
  echo "$f" | grep -q "\"$k\":[0-9]" || ok=0; done
check wss.json "$n total object(s), $nv VMA objects: $f" [ "$n" = 1 -a "$nv" -ge 2 -a $ok = 1 ]
# Prometheus textfile: written atomically, bounded labels (comm, mapping; no pid or address)
pgtool idle wss --pid $P --interval 300ms --count 2 --prometheus /tmp/wss.prom > /dev/null
check wss.prometheus "$(grep -c '^pgtool_wss_' /tmp/wss.prom 2>/dev/null) samples: $(grep '^pgtool_wss_accessed_bytes' /tmp/wss.prom | head -2 | tr '\n' ' ')" \
  sh -c "grep -q '^pgtool_wss_accessed_bytes{comm=\"wsprog\",mapping=\"\[anon\]\"} [0-9]' /tmp/wss.prom && ! grep -q 'pid=' /tmp/wss.prom && ! ls /tmp/.wss.prom.*.tmp 2>/dev/null"
kill $P
finish
