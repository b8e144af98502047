#!/bin/sh
# Guest test (busybox sh): a program leaking pipes, socketpairs and open files in a loop makes
# the slab caches it allocates from leak suspects in `pgtool slab` (/proc/slabinfo and sysfs).
# Needs: pgtool at $PGTOOL (default /bin/pgtool), leak_pipes (tests/kernel/progs/leak_pipes.c)
# in /bin, /usr/bin, /progs, /data or $PATH. Prints PASS/FAIL lines; exits 1 on failure.
PGTOOL=${PGTOOL:-/bin/pgtool}
rc=0
prog() { for d in /bin /usr/bin /progs /data /tests; do [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }; done; command -v "$1"; }
LP=$(prog leak_pipes) || { echo "FAIL leak_slab: leak_pipes not found"; exit 1; }
CACHES='^(filp|pipe_inode_info|sock_inode_cache|UNIX|UNIX-STREAM|dentry|inode_cache|kmalloc-[0-9k]+|kmalloc-cg-[0-9k]+|anon_inode_cache|shmem_inode_cache|files_cache)$'
check() {   # check NAME PGTOOL-SLAB-ARGS...
  name=$1; shift
  "$LP" 100000 100 16 >/tmp/lp.out 2>&1 &   # ~320 files/s: below the fd limit for the whole sampling
  lp=$!
  sleep 1
  "$PGTOOL" slab --interval 1 --count 4 --top 0 --csv "$@" >/tmp/$name.csv 2>/tmp/$name.err
  st=$?
  kill $lp; wait $lp 2>/dev/null
  if [ $st != 0 ]; then echo "FAIL $name: pgtool slab exited $st: $(cat /tmp/$name.err)"; rc=1; return; fi
  hits=$(awk -F, 'NR>1 && $7=="true" {print $1}' /tmp/$name.csv | grep -E "$CACHES" | tr '\n' ' ')
  if [ -z "$hits" ]; then
    echo "FAIL $name: no pipe/socket/file cache among the leak suspects (suspects: $(awk -F, 'NR>1 && $7=="true" {print $1}' /tmp/$name.csv | tr '\n' ' '))"
    rc=1; return
  fi
  echo "PASS $name (suspects: $hits)"
}
check leak_slab
if [ -d /sys/kernel/slab ] && [ -r /sys/kernel/slab/filp/objects ] || ls /sys/kernel/slab/*/objects >/dev/null 2>&1; then
  check leak_slab_sysfs --sysfs
else
  echo "SKIP leak_slab_sysfs: /sys/kernel/slab/*/objects absent (needs CONFIG_SLUB_DEBUG)"
fi
exit $rc
