#!/bin/sh
# Guest test (busybox sh, kernel booted with page_owner=on): `pgtool page-owner` on the live
# /sys/kernel/debug/page_owner has the workload's page allocations (leak_pipes maps and touches
# 4096 anonymous pages) under its comm, joined with kpageflags: its pages are anon now.
if [ -r /ktest/lib.sh ]; then . /ktest/lib.sh; else F_PO_COMM=comm F_PO_PAGES=pages F_PO_NOW=now F_PO_ANON=anon; fi
PGTOOL=${PGTOOL:-/bin/pgtool}
name=leak_page_owner
fail() { echo "FAIL $name: $*"; exit 1; }
prog() { for d in /bin /usr/bin /progs /data /tests; do [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }; done; command -v "$1"; }
LP=$(prog leak_pipes) || fail "leak_pipes not found"
F=/sys/kernel/debug/page_owner
[ -r $F ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -r $F ] || fail "$F missing (boot with page_owner=on)"
"$LP" 1 10 4096 >/tmp/lp.out 2>&1 &
lp=$!
i=0
while ! grep -q ready /tmp/lp.out && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
"$PGTOOL" page-owner --by comm --top 0 --json >/tmp/po.json 2>/tmp/po.err || { kill $lp; fail "exited $?: $(cat /tmp/po.err)"; }
"$PGTOOL" page-owner --by comm,stack --top 5 >/tmp/po.table 2>/tmp/po.err || { kill $lp; fail "table exited $?: $(cat /tmp/po.err)"; }
kill $lp; wait $lp 2>/dev/null
line=$(grep "\"$F_PO_COMM\":\"leak_pipes\"" /tmp/po.json) || fail "no group for $F_PO_COMM leak_pipes"
pages=$(echo "$line" | sed "s/.*\"$F_PO_PAGES\":\([0-9]*\).*/\1/")
anon=$(echo "$line" | sed -n "s/.*\"$F_PO_NOW\":{[^}]*\"$F_PO_ANON\":\([0-9]*\).*/\1/p")
[ "$pages" -ge 4096 ] || fail "leak_pipes has $pages pages, want >= 4096: $line"
[ -n "$anon" ] && [ "$anon" -ge 4000 ] || fail "leak_pipes pages are not anon now: $line"
grep -q leak_pipes /tmp/po.table || fail "table lacks leak_pipes"
echo "PASS $name (leak_pipes: $pages pages, $anon anon now)"
