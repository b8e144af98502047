# `pgtool types -i/-X/-x` against the reference page-types (/bin/ref-page-types) in the same VM.
# A `types` that rejects page-types' options is a FAIL (types.argv), never a SKIP.
. /ktest/lib.sh
HWP=19
poisoned() { [ -n "$1" ] && hasbit "$1" $HWP; }
clean() { [ -n "$1" ] && ! hasbit "$1" $HWP; }
# the plan names each page as typed: "--addr A in pid P -> PFN 0x..." (or "PFN 0x...")
pfn_of() { sed -n 's/.*PFN \(0x[0-9a-f]*\).*/\1/p' | head -1; }
# page-types' own argv: -p PID -a RANGE -L -N must be accepted (exit 0, the listing header)
probe=$(pgtool types -p 1 -a 0x400+16 -L -N 2>&1); prc=$?
argv_ok() { [ $prc = 0 ] && echo "$probe" | head -1 | grep -q '^voffset'; }
check types.argv "pgtool types -p 1 -a 0x400+16 -L -N: rc $prc: $(echo "$probe" | head -3 | tr '\n' ' ')" argv_ok
argv_ok || finish
[ -x /bin/ref-page-types ] || { skip types.ref "no /bin/ref-page-types in the guest (the static reference page-types did not build: see run.sh's output)"; finish; }

# -i: both tools mark the same pages idle; the listings of the two tools agree afterwards
N=256
touchpages $N /tmp/ti.info &
P=$!
wait_file /tmp/ti.info || { fail types.setup "touchpages did not start"; finish; }
kill -USR1 $P; wait_file /tmp/ti.info.1
set -- $(cat /tmp/ti.info); A=$2
VR="0x$(printf %x $((0x$A / 4096)))+$N"
R="0x$A+$((N * 4096))"
ref-page-types -p $P -a $VR -i > /tmp/ref-i.out 2>&1; rrc=$?
j=$(pgtool idle read --pid $P --addr $R --json | tail -n 1)
check types.idle.ref-marks "page-types -i (rc $rrc: $(tail -2 /tmp/ref-i.out | tr '\n' ' ')): $j" [ "$(echo "$j" | jfield idle_pages)" = $N ]
ref-page-types -p $P -a $VR -L -N > /tmp/ref-L.1 2>&1
pgtool types -p $P -a $VR -L -N > /tmp/pg-L.1 2>&1
check types.idle.list-agrees "after page-types -i: pgtool types -L equals page-types -L" cmp -s /tmp/ref-L.1 /tmp/pg-L.1
kill -USR1 $P; wait_file /tmp/ti.info.2          # touch the first half
j=$(pgtool idle read --pid $P --addr $R --json | tail -n 1)
check types.idle.half "after touching half: $j" [ "$(echo "$j" | jfield accessed_pages)" = $((N / 2)) ]
pgtool types -p $P -a $VR -i > /tmp/pg-i.out 2>&1; prc=$?
j=$(pgtool idle read --pid $P --addr $R --json | tail -n 1)
check types.idle.pgtool-marks "pgtool types -i (rc $prc): $j" [ $prc = 0 -a "$(echo "$j" | jfield idle_pages)" = $N ]
ref-page-types -p $P -a $VR -L -N > /tmp/ref-L.2 2>&1
pgtool types -p $P -a $VR -L -N > /tmp/pg-L.2 2>&1
check types.idle.list-agrees-2 "after pgtool types -i: listings agree" cmp -s /tmp/ref-L.2 /tmp/pg-L.2
kill $P

# -X / -x: the same effect on one page of each of two processes
touchpages 2 /tmp/x1.info > /dev/null 2>&1 & P1=$!
touchpages 2 /tmp/x2.info > /dev/null 2>&1 & P2=$!
wait_file /tmp/x1.info; wait_file /tmp/x2.info
kill -USR1 $P1 $P2; wait_file /tmp/x1.info.1; wait_file /tmp/x2.info.1
A1=0x$(cut -d' ' -f2 /tmp/x1.info) A2=0x$(cut -d' ' -f2 /tmp/x2.info)
F1=$(pgtool hwpoison inject --pid $P1 --addr $A1 2>&1 | pfn_of)
F2=$(pgtool hwpoison inject --pid $P2 --addr $A2 2>&1 | pfn_of)
ref-page-types -p $P1 -a "0x$(printf %x $((A1 / 4096)))" -X > /tmp/ref-X.out 2>&1; rrc=$?
pgtool types -p $P2 -a "0x$(printf %x $((A2 / 4096)))" -X > /tmp/pg-X.out 2>&1; prc=$?
x_ok() { poisoned "$F1" && poisoned "$F2" && [ $rrc = $prc ]; }
check types.hwpoison.X "page-types -X rc $rrc -> $F1 $(kpf get $F1); pgtool types -X rc $prc -> $F2 $(kpf get $F2)" x_ok
ref-page-types -a "$F1" -x > /tmp/ref-x.out 2>&1; rrc=$?
pgtool types -a "$F2" -x > /tmp/pg-x.out 2>&1; prc=$?
ux_ok() { clean "$F1" && clean "$F2" && [ $rrc = $prc ]; }
check types.hwpoison.x "page-types -x rc $rrc -> $(kpf get $F1); pgtool types -x rc $prc -> $(kpf get $F2)" ux_ok
kill $P1 $P2 2>/dev/null
finish
