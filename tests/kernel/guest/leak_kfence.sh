#!/bin/sh
# Guest test (busybox sh): with a small kfence.sample_interval, `pgtool kfence` groups the
# allocated objects of the real /sys/kernel/debug/kfence/objects by stack: the counts add up to
# the allocated objects in the file, and the leaking workload's stacks (pipes, sockets, files)
# are among them. Needs pgtool ($PGTOOL, default /bin/pgtool) and leak_pipes.
PGTOOL=${PGTOOL:-/bin/pgtool}
name=leak_kfence
fail() { echo "FAIL $name: $*"; exit 1; }
prog() { for d in /bin /usr/bin /progs /data /tests; do [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }; done; command -v "$1"; }
LP=$(prog leak_pipes) || fail "leak_pipes not found"
F=/sys/kernel/debug/kfence/objects
[ -r $F ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -r $F ] || fail "$F missing (CONFIG_KFENCE, debugfs)"
"$LP" 150 20 16 >/tmp/lp.out 2>&1 &
lp=$!
sleep 5
cat $F >/tmp/kf.txt
"$PGTOOL" kfence --json --top 0 /tmp/kf.txt >/tmp/kf.json 2>/tmp/kf.err || fail "pgtool kfence exited $?: $(cat /tmp/kf.err)"
"$PGTOOL" kfence --top 3 >/tmp/kf.table 2>/tmp/kf.err || fail "pgtool kfence (live file) exited $?: $(cat /tmp/kf.err)"
kill $lp; wait $lp 2>/dev/null
want=$(awk '/^kfence-#/ { if (cur) a++; cur = 1 } /^freed by task/ { cur = 0 } END { if (cur) a++; print a + 0 }' /tmp/kf.txt)
got=$(sed 's/.*"objects":\([0-9]*\).*/\1/' /tmp/kf.json | awk '{ s += $1 } END { print s + 0 }')
[ "$want" -gt 0 ] || fail "no allocated object in $F (kfence.sample_interval too large?)"
[ "$got" = "$want" ] || fail "groups hold $got objects, the file has $want allocated"
grep -qE 'pipe|sock|alloc_file|path_openat|do_sys_open|alloc_inode|d_alloc' /tmp/kf.json ||
  fail "no pipe/socket/file allocation stack among $(wc -l </tmp/kf.json) groups"
echo "PASS $name ($want allocated objects in $(wc -l </tmp/kf.json) stacks)"
