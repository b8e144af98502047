#!/bin/sh
# Guest test (busybox sh, page_owner=on): pgtool as page_owner_sort (symlink) on the real dump
# gives the same output file, stdout, stderr and exit status as the reference C tool
# (/bin/ref-page_owner_sort: built statically by run.sh from the reference sources in
# $PGTOOL_REF_DIR/src; its absence is a SKIP, a failure under CI).
if [ -r /ktest/lib.sh ]; then . /ktest/lib.sh; else skip() { echo "SKIP $1: $2"; }; fi
PGTOOL=${PGTOOL:-/bin/pgtool}
name=leak_page_owner_sort
REF=/bin/ref-page_owner_sort
if [ ! -x $REF ]; then
  skip $name "no $REF in the guest (run.sh could not build the reference page_owner_sort)"
  [ -z "${KT_CI:-}" ] || exit 1
  exit 0
fi
F=/sys/kernel/debug/page_owner
[ -r $F ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -r $F ] || { echo "FAIL $name: $F missing (boot with page_owner=on)"; exit 1; }
mkdir -p /tmp/pos && cd /tmp/pos || exit 1
cat $F >po.txt
ln -sf "$PGTOOL" page_owner_sort
ln -sf "$REF" ref
rc=0 n=0
for opts in "" "-m" "-t" "-a" "-r" "-p" "-P" "-n" "-s" "-f" "--cull=st" "--cull=p,tg,n,st,f,ator" \
            "--cull=st -m" "--cull=n,f" "--cull=ator --sort=ft" "--sort=-tg,+at,T" "--pid 1,2 -m" "-x"; do
  ./ref $opts po.txt r.out >r.so 2>r.se; echo $? >r.rc
  ./page_owner_sort $opts po.txt p.out >p.so 2>p.se; echo $? >p.rc
  sed -i 's#\./ref#X#; s#\./page_owner_sort#X#' r.se p.se
  n=$((n + 1))
  for f in out so se rc; do
    if ! cmp -s r.$f p.$f; then echo "FAIL $name: page_owner_sort $opts: $f differs"; rc=1; fi
  done
done
[ $rc = 0 ] && echo "PASS $name ($n option sets on a $(wc -c <po.txt)-byte dump)"
exit $rc
