# Kernel memory allocators from user space (issue 12, second half): slab --objects finds what a
# slab cache is full of; kcache walks a cache's free lists; page decodes a struct page.
. /ktest/lib.sh
for f in /proc/kcore /sys/kernel/btf/vmlinux; do
  [ -e $f ] || { skip kmem.setup "$f missing (CONFIG_PROC_KCORE / CONFIG_DEBUG_INFO_BTF)"; finish; }
done

# slab --objects: 10,000 identical SysV messages (208-byte payload + 48-byte msg_msg header: one
# kmalloc-cg-256 object each) form a group of at least 10,000 whose hexdump shows the payload
echo 40000000 > /proc/sys/kernel/msgmnb
q=$(kmem_msgs 10000 | awk '{print $2}')
pgtool slab --objects kmalloc-cg-256 --top 3 > /tmp/ko.txt 2>&1; rc=$?
head -40 /tmp/ko.txt
pgtool slab --objects kmalloc-cg-256 --top 1 --json > /tmp/ko.json 2>&1
n=$(jfield objects < /tmp/ko.json)
payload_ok() { [ $rc = 0 ] && [ "${n:-0}" -ge 10000 ] && grep -q '|PGTOOL-KMEM-MSG!|"' /tmp/ko.json; }
check kmem.objects_msgs "kmalloc-cg-256 biggest group: ${n:-none} objects, exit $rc, payload in its hexdump: $(grep -c 'PGTOOL-KMEM-MSG!' /tmp/ko.json)" payload_ok
[ -n "$q" ] && kmem_msgs rm "$q"

# with many open pipes, the filp cache's biggest group names pipefifo_fops
kmem_pipes 3000 > /tmp/kp.out & KP=$!
wait_file /tmp/kp.out; sleep 0.5
pgtool slab --objects filp --top 3 > /tmp/kf.txt 2>&1; rc=$?
head -30 /tmp/kf.txt
pgtool slab --objects filp --top 1 --json > /tmp/kf.json 2>&1
kill $KP; wait $KP 2>/dev/null
n=$(jfield objects < /tmp/kf.json)
fops_ok() { [ $rc = 0 ] && [ "${n:-0}" -ge 3000 ] && grep -q 'pipefifo_fops+0x0/' /tmp/kf.json; }
check kmem.objects_pipes "filp biggest group: ${n:-none} objects, symbols: $(sed -n 's/.*"symbols":\(\[[^]]*\]\).*/\1/p' /tmp/kf.json | cut -c1-300)" fops_ok

# errors: an unknown cache exits 1 naming it
pgtool slab --objects no-such-cache >/dev/null 2>/tmp/ke.err; rc=$?
unknown_ok() { [ $rc = 1 ] && grep -q 'no slab cache "no-such-cache"' /tmp/ke.err; }
check kmem.objects_unknown "unknown cache: exit $rc, $(head -1 /tmp/ke.err)" unknown_ok

# slab --objects without a cache: the leak suspects' caches (leak_pipes leaks files: filp)
leak_pipes 100000 100 16 > /tmp/lp.out 2>&1 & LP=$!
sleep 1
pgtool slab --objects --interval 1 --count 4 --top 2 > /tmp/ks.txt 2>&1; rc=$?
kill $LP; wait $LP 2>/dev/null
grep ': kmem_cache 0x' /tmp/ks.txt | cut -c1-160
sus_ok() { [ $rc = 0 ] && grep -q '^filp: kmem_cache 0x' /tmp/ks.txt; }
check kmem.objects_suspects "slab --objects (no cache): exit $rc, caches $(sed -n 's/^\([^ :]*\): kmem_cache 0x.*/\1/p' /tmp/ks.txt | tr '\n' ' ')" sus_ok

# kcache: the walked free lists give what /sys/kernel/slab/NAME counts (6.1 show_slab_objects:
# objects = nodes' total_objects - free objects of node partial slabs; partial = nr_partial),
# read while sysfs stays the same before and after (the cache is quiet: only our messages use it)
C=kmalloc-cg-256 S=/sys/kernel/slab/kmalloc-cg-256
kcache_vs_sysfs() { # NAME-SUFFIX
  for try in 1 2 3 4 5; do
    a="$(cut -d' ' -f1 $S/objects) $(cut -d' ' -f1 $S/partial)"
    pgtool kcache $C > /tmp/kc.txt 2>&1; rc=$?
    pgtool kcache $C --json > /tmp/kc.json 2>&1
    b="$(cut -d' ' -f1 $S/objects) $(cut -d' ' -f1 $S/partial)"
    [ "$a" = "$b" ] && break
  done
  head -3 /tmp/kc.txt; tail -1 /tmp/kc.txt
  got=$(sed -n 's#.*/objects counts \([0-9]*\), partial \([0-9]*\)$#\1 \2#p' /tmp/kc.txt)
  rows=$(grep -c '"list":"node_partial"' /tmp/kc.json)
  check kmem.kcache_$1 "kcache $C: objects/partial $got, node partial rows $rows; sysfs $a (then $b, try $try), exit $rc" \
    [ $rc = 0 -a -n "$got" -a "$got" = "$a" -a "$a" = "$b" -a "$rows" = "${a#* }" ]
}
q=$(kmem_msgs 5000 | awk '{print $2}')
kcache_vs_sysfs msgs
[ -n "$q" ] && kmem_msgs rm "$q"
kcache_vs_sysfs freed
# --objects: one row per object of every slab: as many as the nodes' total_objects
tot=$(cut -d' ' -f1 $S/total_objects)
pgtool kcache $C --objects --csv > /tmp/kco.csv; rc=$?
n=$(($(wc -l < /tmp/kco.csv) - 1)) al=$(grep -c ',allocated,' /tmp/kco.csv) fr=$(grep -c ',free,' /tmp/kco.csv)
check kmem.kcache_objects "kcache --objects: $n objects ($al allocated, $fr free), total_objects $tot, exit $rc" [ $rc = 0 -a "$n" = "$tot" -a $((al + fr)) = "$n" ]
pgtool kcache no-such-cache >/dev/null 2>/tmp/kce.err; rc=$?
kunknown_ok() { [ $rc = 1 ] && grep -q 'no slab cache "no-such-cache"' /tmp/kce.err; }
check kmem.kcache_unknown "kcache no-such-cache: exit $rc, $(head -1 /tmp/kce.err)" kunknown_ok

# page: an anon page of a process in a child memcg names that process's anon mapping and memcg;
# a file page names its file; a slab page its cache
jstr() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" | head -1; }
CG=/sys/fs/cgroup/kmemtest
echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; mkdir -p $CG
rm -f /tmp/tp.info*; touchpages 16 /tmp/tp.info & TP=$!
wait_file /tmp/tp.info; echo $TP > $CG/cgroup.procs
kill -USR1 $TP; wait_file /tmp/tp.info.1
read P A N < /tmp/tp.info
v=$(pgtool v2p $P 0x$A --csv --fields pfn,memcg_ino)
pfn=$(echo "$v" | csvcol pfn | head -1) kino=$(echo "$v" | csvcol memcg_ino | head -1)
pgtool page "$pfn" > /tmp/pg.txt 2>&1; cat /tmp/pg.txt
j=$(pgtool page "$pfn" --json 2>&1)
echo "$j"
vs=$(echo "$j" | jfield vma_start) ve=$(echo "$j" | jfield vma_end) ix=$(echo "$j" | jfield index)
anon_ok() {
  [ "$(echo "$j" | jstr mapping_type)" = anon -a "$(echo "$j" | jfield owner_pid)" = "$P" ] &&
  [ $((vs)) -le $((0x$A)) -a $((0x$A)) -lt $((ve)) -a "$ix" = $((0x$A / 4096)) ] &&
  [ "$(echo "$j" | jstr memcg_path)" = $CG -a "$(echo "$j" | jfield memcg_ino)" = "$kino" ]
}
check kmem.page_anon "page $pfn (pid $P at 0x$A, /proc/$P/cgroup $(cat /proc/$P/cgroup)): type $(echo "$j" | jstr mapping_type) owner $(echo "$j" | jfield owner_pid) $(echo "$j" | jstr owner_comm) vma $vs-$ve index $ix memcg $(echo "$j" | jstr memcg_path) ino $(echo "$j" | jfield memcg_ino) (kpagecgroup: $kino)" anon_ok
# the zone from the flags' top bits against /proc/zoneinfo's spans
zi=$(awk -v p=$((pfn)) '/^Node/ { z = $4 } /spanned/ { s = $2 } /start_pfn:/ { if (p >= $2 && p < $2 + s) print z }' /proc/zoneinfo | head -1)
check kmem.page_zone "page $pfn: node $(echo "$j" | jfield node) zone $(echo "$j" | jstr zone) (/proc/zoneinfo: $zi)" [ -n "$zi" -a "$(echo "$j" | jstr zone)" = "$zi" ]
fpfn=$(pgtool v2p $P --vma touchpages --csv | csvcol pfn | grep -v '^$' | head -1)
f=$(pgtool page "$fpfn" --json 2>&1)
file_ok() { [ "$(echo "$f" | jstr mapping_type)" = file ] && echo "$f" | jstr file_path | grep -q 'touchpages$'; }
check kmem.page_file "page $fpfn (touchpages' text): $(echo "$f" | jstr mapping_type) $(echo "$f" | jstr fs_type) $(echo "$f" | jstr file_path) inode $(echo "$f" | jfield file_ino)" file_ok
kill $TP; wait $TP 2>/dev/null
spfn=$(kpf find 7 100)
s=$(pgtool page "$spfn" --json 2>&1); sc=$(echo "$s" | jstr slab_cache)
check kmem.page_slab "page $spfn (a slab page): slab_cache $sc" [ -n "$sc" -a -d "/sys/kernel/slab/$sc" ]
pgtool page 0xffffffffff >/dev/null 2>/tmp/pe.err; rc=$?
check kmem.page_range "page 0xffffffffff: exit $rc, $(head -1 /tmp/pe.err)" [ $rc = 1 ]

# the cost of a full scan of a cache of 100,000 objects: time and peak RSS
q=$(kmem_msgs 100000 | awk '{print $2}')
kmem_rusage pgtool slab --objects kmalloc-cg-256 --top 1 > /tmp/kb.txt 2>/tmp/kb.err; rc=$?
head -2 /tmp/kb.txt
ru=$(grep kmem_rusage /tmp/kb.err)
# the baseline: the same readers (BTF, kallsyms, kcore) without the scan
kmem_rusage pgtool kcache kmalloc-cg-256 >/dev/null 2>/tmp/kb0.err
ru0=$(grep kmem_rusage /tmp/kb0.err | sed 's/kmem_rusage/kcache (no scan):/')
n=$(pgtool slab --objects kmalloc-cg-256 --top 1 --json | jfield objects)
[ -n "$q" ] && kmem_msgs rm "$q"
big_ok() { [ $rc = 0 ] && [ "${n:-0}" -ge 100000 ]; }
check kmem.objects_100k "100,000 messages: biggest group ${n:-none}; $ru; $ru0; $(head -1 /tmp/kb.txt)" big_ok

# kernel.kptr_restrict=2 hides symbol addresses even from root: a clear error, exit 2
old=$(cat /proc/sys/kernel/kptr_restrict)
echo 2 > /proc/sys/kernel/kptr_restrict
pgtool slab --objects filp >/dev/null 2>/tmp/kr.err; rc1=$?
pgtool kcache filp >/dev/null 2>/tmp/kr2.err; rc2=$?
echo "$old" > /proc/sys/kernel/kptr_restrict
kptr_ok() { [ $rc1 = 2 -a $rc2 = 2 ] && grep -q 'kptr_restrict is 2' /tmp/kr.err && grep -q 'kptr_restrict is 2' /tmp/kr2.err; }
check kmem.kptr_restrict "kptr_restrict=2: slab --objects exit $rc1, kcache exit $rc2: $(head -1 /tmp/kr.err)" kptr_ok
finish
