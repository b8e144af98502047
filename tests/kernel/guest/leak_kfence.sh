#!/bin/sh
# Guest test (busybox sh): with a small kfence.sample_interval, `pgtool kfence` groups the
# allocated objects of the real /sys/kernel/debug/kfence/objects by stack: the counts add up to
# the allocated objects in the file, and the leaking workload's OWN objects (those the file says
# were "allocated by task <leak_pipes' pid>" and never freed) are all there: each of their stacks
# is a group with at least as many objects, naming their cache; and they come from the
# program's syscalls (pipe2, socketpair, openat). Needs pgtool ($PGTOOL, default /bin/pgtool)
# and leak_pipes.
# field names from the guest library (defaults for a run outside the harness)
if [ -r /ktest/lib.sh ]; then . /ktest/lib.sh; else F_KF_OBJECTS=objects F_KF_STACK=stack F_KF_CACHES=caches; fi
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
# allocated objects: headers not followed by "freed by task"; "kfence-#N unused" slots hold none
want=$(awk '/^kfence-#/ { if (cur) a++; cur = !/ unused$/ } /^freed by task/ { cur = 0 } END { if (cur) a++; print a + 0 }' /tmp/kf.txt)
got=$(sed "s/.*\"$F_KF_OBJECTS\":\([0-9]*\).*/\1/" /tmp/kf.json | awk '{ s += $1 } END { print s + 0 }')
[ "$want" -gt 0 ] || fail "no allocated object in $F (kfence.sample_interval too large?)"
[ "$got" = "$want" ] || fail "groups hold $got objects, the file has $want allocated"

# the workload's own live objects: "CACHE<TAB>frame|frame|..." per object, from the raw file
awk -v pid="$lp" '
  function flush() { if (obj && mine && !freed) print cache "\t" stack; obj = 0 }
  /^kfence-#/ { flush(); obj = 1; mine = 0; freed = 0; stack = ""; part = 0
                cache = $0; sub(/.*cache=/, "", cache); sub(/[ ,].*/, "", cache) }
  /^allocated by task / { mine = ($4 == pid); part = 1; next }
  /^freed by task / { freed = 1; part = 2; next }
  /^ / && part == 1 { f = $0; sub(/^ +/, "", f); stack = stack (stack == "" ? "" : "|") f; next }
  /^$/ { part = 0 }
  END { flush() }' /tmp/kf.txt | sort | uniq -c > /tmp/kf.mine
n=$(awk '{ s += $1 } END { print s + 0 }' /tmp/kf.mine)
[ "$n" -gt 0 ] || fail "no live object allocated by leak_pipes (pid $lp) among $want in $F"
grep -qE 'do_pipe2|__do_sys_pipe|socketpair|do_sys_openat2|do_sys_open' /tmp/kf.mine ||
  fail "leak_pipes' $n objects come from none of its syscalls (pipe2, socketpair, openat): $(head -c 600 /tmp/kf.mine)"
# pgtool's groups as "objects<TAB>stack<TAB>caches-json"
sed -n "s/.*\"$F_KF_STACK\":\[\([^]]*\)\].*/\1/p" /tmp/kf.json | sed 's/","/|/g; s/"//g' > /tmp/kf.stacks
sed "s/.*\"$F_KF_OBJECTS\":\([0-9]*\).*/\1/" /tmp/kf.json > /tmp/kf.objs
# caches: ["cache:count", ...]
sed "s/.*\"$F_KF_CACHES\":\(\[[^]]*\]\).*/\1/" /tmp/kf.json > /tmp/kf.caches
[ "$(wc -l </tmp/kf.stacks)" = "$(wc -l </tmp/kf.json)" ] || fail "not every group has a \"$F_KF_STACK\" array: $(head -c 300 /tmp/kf.json)"
paste /tmp/kf.objs /tmp/kf.stacks /tmp/kf.caches > /tmp/kf.groups
ok=0
while read -r cnt rest; do
  cache=${rest%%	*} stack=${rest#*	}
  line=$(awk -F'\t' -v s="$stack" '$2 == s' /tmp/kf.groups | head -1)
  [ -n "$line" ] || fail "leak_pipes' stack ($cnt object(s), cache $cache) is no group of pgtool: $stack"
  objs=${line%%	*}
  [ "$objs" -ge "$cnt" ] || fail "group of leak_pipes' stack has $objs objects, the file has $cnt of leak_pipes alone: $stack"
  echo "$line" | grep -q "\"$cache:[1-9]" || fail "group of leak_pipes' stack does not name cache $cache: $line"
  ok=$((ok + 1))
done < /tmp/kf.mine
echo "PASS $name ($want allocated objects in $(wc -l </tmp/kf.json) stacks; leak_pipes' own $n objects in $ok stacks, each a group naming its cache)"
