#!/bin/sh
# Guest test (busybox sh): a program leaking pipes, socketpairs and open files in a loop makes
# exactly the slab caches it allocates from leak suspects in `pgtool slab` (/proc/slabinfo and
# sysfs): filp (every pipe end, socket and /dev/null open), sock_inode_cache and UNIX-STREAM
# (every socket of its AF_UNIX stream socketpairs).
# The kernel boots with slab_nomerge (run.sh), so these caches are not aliases of others.
# Needs: pgtool at $PGTOOL (default /bin/pgtool), leak_pipes (tests/kernel/progs/leak_pipes.c)
# in /bin, /usr/bin, /progs, /data or $PATH. Prints PASS/FAIL lines; exits 1 on failure.
if [ -r /ktest/lib.sh ]; then . /ktest/lib.sh; else
  F_SLAB_NAME=cache F_SLAB_SUSPECT=suspect
  csvcol() { awk -F, -v n="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; if (!c) exit 3; next } { print $c }' ${2:+"$2"}; }
  skip() { echo "SKIP $1: $2"; }
fi
PGTOOL=${PGTOOL:-/bin/pgtool}
rc=0
prog() { for d in /bin /usr/bin /progs /data /tests; do [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }; done; command -v "$1"; }
LP=$(prog leak_pipes) || { echo "FAIL leak_slab: leak_pipes not found"; exit 1; }
NEED="filp sock_inode_cache UNIX-STREAM"
grep -q slab_nomerge /proc/cmdline || echo "note: no slab_nomerge on the kernel command line: caches may be merged"
check() {   # check NAME PGTOOL-SLAB-ARGS...
  name=$1; shift
  "$LP" 100000 100 16 >/tmp/lp.out 2>&1 &   # ~320 files/s: below the fd limit for the whole sampling
  lp=$!
  sleep 1
  "$PGTOOL" slab --interval 1 --count 4 --top 0 --csv "$@" >/tmp/$name.csv 2>/tmp/$name.err
  st=$?
  kill $lp; wait $lp 2>/dev/null
  if [ $st != 0 ]; then echo "FAIL $name: pgtool slab exited $st: $(cat /tmp/$name.err)"; rc=1; return; fi
  csvcol $F_SLAB_NAME /tmp/$name.csv > /tmp/$name.names || { echo "FAIL $name: no column $F_SLAB_NAME: $(head -1 /tmp/$name.csv)"; rc=1; return; }
  csvcol $F_SLAB_SUSPECT /tmp/$name.csv > /tmp/$name.sus || { echo "FAIL $name: no column $F_SLAB_SUSPECT: $(head -1 /tmp/$name.csv)"; rc=1; return; }
  csvcol growth /tmp/$name.csv > /tmp/$name.growth || { echo "FAIL $name: no column growth: $(head -1 /tmp/$name.csv)"; rc=1; return; }
  suspects=$(paste -d' ' /tmp/$name.names /tmp/$name.sus | awk '$2 == "true" || $2 == "1" { print $1 }' | tr '\n' ' ')
  missing=
  for c in $NEED; do
    case " $suspects " in *" $c "*) continue ;; esac
    # In sysfs mode SLUB's objects count moves a slab at a time (per-CPU slabs are not in it),
    # so a cache leaking a few objects a second may show no growth in one interval: there,
    # sock_inode_cache must have grown by at least the leaked sockets of the window instead.
    if [ "$name" = leak_slab_sysfs ] && [ "$c" = sock_inode_cache ]; then
      g=$(paste -d' ' /tmp/$name.names /tmp/$name.growth | awk -v c="$c" '$1 == c { print $2 }')
      [ "${g:-0}" -ge 32 ] && continue
    fi
    missing="$missing $c"
  done
  if [ -n "$missing" ]; then
    echo "FAIL $name: leak_pipes' caches not among the leak suspects:$missing (suspects: $suspects)"
    rc=1; return
  fi
  echo "PASS $name ($NEED are suspects; all suspects: $suspects)"
}
check leak_slab
if ls /sys/kernel/slab/*/objects >/dev/null 2>&1; then
  check leak_slab_sysfs --sysfs
else
  skip leak_slab_sysfs "/sys/kernel/slab/*/objects absent (needs CONFIG_SLUB_DEBUG)"
  [ -z "${KT_CI:-}" ] || rc=1
fi
exit $rc
