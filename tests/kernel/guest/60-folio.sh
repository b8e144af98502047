# One folio resolver: for a tail page of a THP, v2p, who and idle report the same head PFN, and
# v2p and who the same size (issue 10). The host test (tests/folio_agree.rs) does v2p and who
# there; this kernel has the idle bitmap too.
. /ktest/lib.sh
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
echo madvise > /sys/kernel/mm/transparent_hugepage/defrag
wsprog 16 4 /tmp/fo.ctl /tmp/fo.info &
P=$!
wait_file /tmp/fo.info 300 || { fail folio.setup "wsprog did not start"; finish; }
set -- $(cat /tmp/fo.info); B=$((0x$4))
T=$(printf 0x%x $((B + 5 * 4096)))      # the sixth page of the THP region: a tail
v=$(pgtool v2p $P $T --json)
vpfn=$(echo "$v" | jfield pfn) vhead=$(echo "$v" | jfield head_pfn) vpages=$(echo "$v" | jfield folio_pages)
check folio.v2p "v2p $T: pfn=$vpfn head_pfn=$vhead folio_pages=$vpages (a 512-page THP)" \
  [ -n "$vhead" -a "$vpages" = 512 -a "${vpfn:-0}" != "${vhead:-0}" ]
w=$(pgtool who $(printf 0x%x ${vpfn:-0}) --json | grep "\"pid\":$P," | head -1)
whead=$(echo "$w" | sed -n 's/.*"folio":{"head_pfn":\([0-9]*\).*/\1/p') wpages=$(echo "$w" | sed -n 's/.*"folio":{[^}]*"pages":\([0-9]*\).*/\1/p')
check folio.who "who $vpfn: head_pfn=$whead pages=$wpages (v2p: $vhead $vpages)" \
  [ -n "$whead" -a "$whead" = "$vhead" -a "$wpages" = "$vpages" ]
ihead=$(pgtool idle read --pid $P --addr "$T+4K" -L --csv | csvcol head_pfn | head -1)
check folio.idle "idle read -L $T: head_pfn=$ihead (v2p: $(printf 0x%x ${vhead:-0}))" \
  [ -n "$ihead" ] && [ $((ihead)) = "${vhead:-x}" ]
kill $P
finish
