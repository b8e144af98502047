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

# the cost of a full scan of a cache of 100,000 objects: time and peak RSS
q=$(kmem_msgs 100000 | awk '{print $2}')
kmem_rusage pgtool slab --objects kmalloc-cg-256 --top 1 > /tmp/kb.txt 2>/tmp/kb.err; rc=$?
head -2 /tmp/kb.txt
ru=$(grep kmem_rusage /tmp/kb.err)
n=$(pgtool slab --objects kmalloc-cg-256 --top 1 --json | jfield objects)
[ -n "$q" ] && kmem_msgs rm "$q"
big_ok() { [ $rc = 0 ] && [ "${n:-0}" -ge 100000 ]; }
check kmem.objects_100k "100,000 messages: biggest group ${n:-none}; $ru; $(head -1 /tmp/kb.txt)" big_ok
finish
