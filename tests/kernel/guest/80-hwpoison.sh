# pgtool hwpoison: guards, inject on a process's page (-> HWPoison flag, SIGBUS on access),
# unpoison, soft-offline.
. /ktest/lib.sh
HWP=19 SLAB=7
poisoned() { [ -n "$1" ] && hasbit "$1" $HWP; }
clean() { [ -n "$1" ] && ! hasbit "$1" $HWP; }
# the plan names each page as typed: "--addr A in pid P -> PFN 0x..." (or "PFN 0x...")
pfn_of() { sed -n 's/.*PFN \(0x[0-9a-f]*\).*/\1/p' | head -1; }

touchpages 4 /tmp/hp.info > /tmp/hp.out 2>&1 &
P=$!
wait_file /tmp/hp.info || { fail hwpoison.setup "touchpages did not start"; finish; }
kill -USR1 $P; wait_file /tmp/hp.info.1
set -- $(cat /tmp/hp.info); A=0x$2

# without --yes: describes the page, does nothing, exits 2
out=$(pgtool hwpoison inject --pid $P --addr $A 2>&1); rc=$?
pfn=$(echo "$out" | pfn_of)
echo "$out"
dry_ok() { [ $rc = 2 ] && clean "$pfn"; }
check hwpoison.dry-run "no --yes: rc=$rc (want 2), PFN ${pfn:-?} not poisoned" dry_ok
desc_ok() { echo "$out" | grep -q anon && echo "$out" | grep -q "mapped by pid $P (touchpages) at $A"; }
check hwpoison.describe "shows flags and pid/addr" desc_ok

# a slab page is refused without --force, even with --yes
spfn=$(kpf find $SLAB 10)
out=$(pgtool hwpoison inject --yes $spfn 2>&1); rc=$?
slab_ok() { [ $rc = 2 ] && echo "$out" | grep -q slab && clean "$spfn"; }
check hwpoison.guard.slab "slab PFN $spfn, --yes without --force: rc=$rc: $out" slab_ok
out=$(pgtool hwpoison inject --yes 0x0 2>&1); rc=$?
check hwpoison.guard.pfn0 "PFN 0: rc=$rc: $out" [ $rc = 2 ]

# inject for real, with debugfs unmounted and DEBUGFS_PATH elsewhere: pgtool mounts it there
umount /sys/kernel/debug 2>/dev/null; mkdir -p /tmp/dbg
out=$(DEBUGFS_PATH=/tmp/dbg pgtool hwpoison inject --yes --pid $P --addr $A 2>&1); rc=$?
check hwpoison.debugfs-mounted "DEBUGFS_PATH=/tmp/dbg was mounted: $(grep ' /tmp/dbg ' /proc/mounts)" \
  grep -q ' /tmp/dbg debugfs ' /proc/mounts
echo "$out"
inj_ok() { [ $rc = 0 ] && poisoned "$pfn"; }
check hwpoison.inject "rc=$rc; kpageflags of $pfn = $(kpf get $pfn)" inj_ok
# the process touches the page: SIGBUS with si_code BUS_MCEERR_AR (4)
kill -USR1 $P; wait $P; prc=$?
bus_ok() { [ $prc = 42 ] && grep -q 'SIGBUS si_code=4' /tmp/hp.out; }
check hwpoison.sigbus "program exit $prc (want 42): $(cat /tmp/hp.out)" bus_ok

# unpoison
out=$(pgtool hwpoison unpoison $pfn 2>&1); rc=$?
undry_ok() { [ $rc = 2 ] && poisoned "$pfn"; }
check hwpoison.unpoison.dry-run "no --yes: rc=$rc, still poisoned" undry_ok
out=$(pgtool hwpoison unpoison --yes $pfn 2>&1); rc=$?
echo "$out"
unp_ok() { [ $rc = 0 ] && clean "$pfn"; }
check hwpoison.unpoison "rc=$rc; kpageflags of $pfn = $(kpf get $pfn)" unp_ok

# soft-offline a page of a new process: contents migrate, the old frame gets poisoned
touchpages 4 /tmp/so.info > /tmp/so.out 2>&1 &
Q=$!
wait_file /tmp/so.info; kill -USR1 $Q; wait_file /tmp/so.info.1
set -- $(cat /tmp/so.info); B=0x$2
if [ ! -e /sys/devices/system/memory/soft_offline_page ]; then
  out=$(pgtool hwpoison soft-offline --yes --pid $Q --addr $B 2>&1); rc=$?
  nofile_ok() { [ $rc = 2 ] && echo "$out" | grep -q 'CONFIG_MEMORY_HOTPLUG'; }
  check hwpoison.soft-offline.unsupported "no soft_offline_page: rc=$rc, says why: $(echo "$out" | tail -1)" nofile_ok
  skip hwpoison.soft-offline "this kernel has no /sys/devices/system/memory/soft_offline_page (needs CONFIG_MEMORY_HOTPLUG)"
else
  qpfn=$(pgtool hwpoison soft-offline --pid $Q --addr $B 2>&1 | pfn_of)
  out=$(pgtool hwpoison soft-offline --yes --pid $Q --addr $B 2>&1); rc=$?
  echo "$out"
  npfn=$(pgtool hwpoison soft-offline --pid $Q --addr $B 2>&1 | pfn_of)
  so_ok() { [ $rc = 0 ] && [ -n "$npfn" ] && [ "$npfn" != "$qpfn" ] && poisoned "$qpfn"; }
  check hwpoison.soft-offline "rc=$rc; old PFN $qpfn flags $(kpf get $qpfn), page now at $npfn" so_ok
  kill -USR1 $Q; sleep 0.3
  check hwpoison.soft-offline.survives "process alive after reading the migrated page" kill -0 $Q
  pgtool hwpoison unpoison --yes $qpfn > /dev/null 2>&1
fi
kill $Q 2>/dev/null
finish
