# Kernel memory from user space (issue 12): ktask finds this shell's task_struct through
# /proc/kcore and BTF, and what is read there agrees with /proc; ksym round-trips symbols with
# /proc/kallsyms; kstruct's layout agrees with the kernel's own size of struct kmem_cache.
. /ktest/lib.sh
for f in /proc/kcore /sys/kernel/btf/vmlinux; do
  [ -e $f ] || { skip kernel.setup "$f missing (CONFIG_PROC_KCORE / CONFIG_DEBUG_INFO_BTF)"; finish; }
done
ME=$$ COMM=$(cat /proc/$$/comm)

# ktask: the task_struct of this shell, its pid and comm read back from kernel memory
t=$(pgtool ktask $ME --csv --field comm --field tgid)
T=$(echo "$t" | csvcol task_addr) MM=$(echo "$t" | csvcol mm_addr) PGD=$(echo "$t" | csvcol pgd_addr)
check kernel.ktask "ktask $ME: task=$T mm=$MM pgd=$PGD pid=$(echo "$t" | csvcol pid) comm=$(echo "$t" | csvcol comm) (/proc: $COMM)" \
  [ "$(echo "$t" | csvcol pid)" = "$ME" -a "$(echo "$t" | csvcol comm)" = "$COMM" -a -n "$T" -a -n "$MM" -a -n "$PGD" ]
j=$(pgtool ktask $ME --json --field comm --field tgid)
fields_ok() { echo "$j" | grep -qF "\"tgid\":\"$ME\"" && echo "$j" | grep -qF "\"comm\":\"\\\"$COMM\\\"\""; }
check kernel.ktask_field "ktask --field tgid --field comm: $j" fields_ok

# kstruct with an address: fields of the task and its mm agree with /proc/PID/stat
pid=$(pgtool kstruct task_struct.pid "$T" --json | jfield value_raw)
check kernel.kstruct_pid "kstruct task_struct.pid $T: $pid" [ "$pid" = "$ME" ]
stack=$(pgtool kstruct mm_struct.start_stack "$MM" --json | jfield value_raw)
want=$(awk '{print $28}' /proc/$ME/stat)
check kernel.kstruct_mm "kstruct mm_struct.start_stack $MM: $stack (/proc/$ME/stat: $want)" [ -n "$stack" -a "$stack" = "$want" ]
mmp=$(pgtool kstruct task_struct.mm "$T" --csv | csvcol value_raw)
check kernel.kstruct_ptr "kstruct task_struct.mm: $mmp (ktask: $MM)" [ "$mmp" = "$MM" ]
sc=$(pgtool kstruct task_struct.sched_class "$T" --csv | csvcol symbol)
want=$(awk '$3 == "fair_sched_class" { print $3; exit }' /proc/kallsyms)
check kernel.kstruct_symbol "kstruct task_struct.sched_class of a shell: $sc (a CFS task: fair_sched_class)" \
  [ -n "$want" -a "${sc%%+*}" = "$want" ]
pgtool kstruct task_struct 0xffffffffff000000 >/dev/null 2>/tmp/ks.err; rc=$?
unmapped_ok() { [ $rc = 1 ] && grep -q "not mapped" /tmp/ks.err; }
check kernel.kstruct_unmapped "an unmapped address: exit $rc, $(head -1 /tmp/ks.err)" unmapped_ok

# ksym: both ways against /proc/kallsyms, and the base
for s in init_task schedule; do
  want=$(awk -v s=$s '$3 == s && NF == 3 { print "0x" $1; exit }' /proc/kallsyms | sed 's/0x0*/0x/')
  got=$(pgtool ksym $s --csv | csvcol addr)
  back=$(pgtool ksym "$got" --csv | csvcol symbol)
  check kernel.ksym_$s "ksym $s: $got (kallsyms $want) -> $back" [ -n "$got" -a "$got" = "$want" -a "$back" = "$s" ]
done
text=$(awk '$3 == "_text" { print "0x" $1; exit }' /proc/kallsyms | sed 's/0x0*/0x/')
base=$(pgtool ksym --base --csv | csvcol kernel_base_addr)
check kernel.ksym_base "ksym --base: $base (_text $text), kaslr $(pgtool ksym --base --csv | csvcol kaslr_offset_hex)" [ "$base" = "$text" ]

# kstruct layout vs the kernel's size of struct kmem_cache: its boot cache holds
# offsetof(struct kmem_cache, node) + nr_node_ids pointers (mm/slub.c kmem_cache_init)
S=/sys/kernel/slab/kmem_cache
if [ -d $S ] && [ ! -L $S ] && [ "$(cat $S/aliases)" = 0 ]; then
  nodes=$(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l); [ "$nodes" -gt 0 ] || nodes=1
  off=$(pgtool kstruct kmem_cache.node --json | head -1 | jfield offset)
  obj=$(cat $S/object_size)
  size_ok() { [ -n "$off" ] && [ $((off + 8 * nodes)) = "$obj" ]; }
  check kernel.kstruct_size "kmem_cache.node at $off + $nodes node pointers = $obj (object_size)" size_ok
else
  skip kernel.kstruct_size "$S is merged or absent"
fi
# a kernel thread has no mm; PID 0 is init_task (swapper/0)
k=$(pgtool ktask 2 --csv)
check kernel.ktask_kthread "ktask 2: comm=$(echo "$k" | csvcol comm) mm=$(echo "$k" | csvcol mm_addr) (/proc/2/comm: $(cat /proc/2/comm))" \
  [ "$(echo "$k" | csvcol comm)" = "$(cat /proc/2/comm)" -a -z "$(echo "$k" | csvcol mm_addr)" ]
z=$(pgtool ktask 0 --csv)
check kernel.ktask_0 "ktask 0: comm=$(echo "$z" | csvcol comm) task=$(echo "$z" | csvcol task_addr) (init_task $(pgtool ksym init_task --csv | csvcol addr))" \
  [ "$(echo "$z" | csvcol task_addr)" = "$(pgtool ksym init_task --csv | csvcol addr)" ]
pgtool ktask 999999 >/dev/null 2>/tmp/kt.err; rc=$?
nosuch_ok() { [ $rc = 1 ] && grep -q "no such process 999999" /tmp/kt.err; }
check kernel.ktask_nosuch "ktask 999999: exit $rc, $(head -1 /tmp/kt.err)" nosuch_ok

# kernel.kptr_restrict=2 hides addresses even from root: a clear error, not a wrong answer
old=$(cat /proc/sys/kernel/kptr_restrict)
echo 2 > /proc/sys/kernel/kptr_restrict
pgtool ksym _text >/dev/null 2>/tmp/kp.err; rc=$?
echo "$old" > /proc/sys/kernel/kptr_restrict
kptr_ok() { [ $rc = 2 ] && grep -q "kernel.kptr_restrict is 2" /tmp/kp.err; }
check kernel.kptr_restrict "kptr_restrict=2: exit $rc, $(head -1 /tmp/kp.err)" kptr_ok
finish
