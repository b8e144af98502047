# pgtool idle heatmap: a 64 MiB buffer whose first half is touched every 50 ms and whose second
# half never (after one first touch). With both methods, the hot cells of the buffer must be
# exactly the first half's: every cell of the first half accessed in every interval, no cell
# of the second half ever.
. /ktest/lib.sh
halfhot 64 /tmp/hh.info &
P=$!
wait_file /tmp/hh.info 300 || { fail heatmap.setup "halfhot did not start"; finish; }
set -- $(cat /tmp/hh.info); A=$((0x$1)) L=$2 M=$((0x$1 + $2 / 2)) E=$((0x$1 + $2))
for method in idle refs; do
  pgtool idle heatmap --pid $P --method $method --interval 500ms --count 3 --cells 256 --csv > /tmp/hm.csv 2>/tmp/hm.err
  rc=$?
  [ $rc = 0 ] || { fail heatmap.$method "rc=$rc $(head -c 300 /tmp/hm.err)"; continue; }
  hot=0 cold=0 bad=0 first=""
  while IFS=, read -r t s e pages acc; do
    [ "$t" = time ] && continue
    s=$((s)) e=$((e))
    if [ $s -ge $A ] && [ $e -le $M ]; then
      if [ "$pages" -gt 0 ] && [ "$acc" = "$pages" ]; then hot=$((hot + 1)); else bad=$((bad + 1)); first=${first:-"hot-half cell $s-$e: $acc of $pages"}; fi
    elif [ $s -ge $M ] && [ $e -le $E ]; then
      if [ "$pages" -gt 0 ] && [ "$acc" = 0 ]; then cold=$((cold + 1)); else bad=$((bad + 1)); first=${first:-"cold-half cell $s-$e: $acc of $pages"}; fi
    fi
  done < /tmp/hm.csv
  check heatmap.$method "hot cells $hot, cold cells $cold, wrong $bad ${first}" \
    [ $bad = 0 -a $hot -ge 24 -a $cold -ge 24 ]
done
pgtool idle heatmap --pid $P --method idle --interval 300ms --count 2 -o /tmp/hm.svg 2>/tmp/hm.err
check heatmap.svg "svg written: $(head -c 200 /tmp/hm.err)" sh -c "grep -q '<svg' /tmp/hm.svg && grep -q 'accessed' /tmp/hm.svg"
kill $P
finish
