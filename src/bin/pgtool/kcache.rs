//! `pgtool kcache`: one SLUB cache's slabs and free lists, read from kernel memory.

use crate::Global;
use crate::output::FormatArgs;
use pgtool::Error;
use pgtool::kmem::{Slub, cache};
use pgtool::output::Sink;

/// A slab cache's kmem_cache, its CPU and node slab lists and free lists, walked in kernel memory.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Reads /proc/kcore (CONFIG_PROC_KCORE, root), the running kernel's BTF (CONFIG_DEBUG_INFO_BTF)
and /proc/kallsyms (data symbols: CONFIG_KALLSYMS_ALL). Free pointers are decoded as the kernel
does when CONFIG_SLAB_FREELIST_HARDENED obfuscates them. The lists change while they are read:
on a busy cache the counts are a snapshot of a moving target.

Fields (JSON/CSV, the same): cache, list (cpu: a CPU's active slab, cpu_partial, node_partial),
cpu, node, slab_addr, pfn, objects, inuse (as the slab counts them: all, for a CPU slab), free
(walked: for a CPU slab the CPU's free list plus the slab's own), frozen, freelist_end (null,
cycle, outside ADDR, unreadable ADDR), kmem_cache {addr, size_bytes, object_size_bytes,
free_pointer_offset, flags_raw, order, objects_per_slab, hardened}. The table ends with the totals and
what /sys/kernel/slab/NAME/objects and partial count (total_objects minus the node partial
slabs' free objects; nr_partial).

--objects lists every object of every slab of the cache (slabs found through kpageflags):
cache, addr, slab_addr, pfn, state (allocated or free), free_on (slab or cpu).

Exit status: 0 listed; 1 no such cache; 2 usage or system error (no kcore or BTF, not root,
kernel.kptr_restrict=2).")]
pub struct Args {
    /// The cache's name, as /proc/slabinfo lists it: kmalloc-64, filp, dentry.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// List every object with its state instead of the slab lists.
    #[arg(long)]
    pub objects: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Run `pgtool kcache`.
pub fn run(args: Args, g: &Global) -> Result<i32, Error> {
    if args.name.is_empty() {
        return Err(Error::Usage(
            "an empty cache name: give one as /proc/slabinfo lists it (kmalloc-64, filp)".into(),
        ));
    }
    let root = g.sysroot();
    let slub = Slub::open(&root)?;
    let mut sink = Sink::stdout(args.format.format());
    if args.objects {
        let c = slub.find_cache(&args.name)?;
        cache::objects(&slub, &root, &c, |r| sink.write(r))?;
        sink.finish()?;
        return Ok(0);
    }
    let (c, rows, t) = cache::lists(&slub, &args.name)?;
    sink.text(&format!(
        "{}: kmem_cache {:#x}, size {}, object_size {}, free pointer at {}, flags {:#x}, order {} ({} objects a slab), free pointers {}",
        c.name,
        c.addr,
        c.size,
        c.object_size,
        c.offset,
        c.flags,
        c.order,
        c.objects_per_slab,
        if c.random.is_some() { "hardened" } else { "plain" },
    ))?;
    for r in &rows {
        sink.write(r)?;
    }
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    sink.text(&format!(
        "free on CPU slabs {}; CPU partial slabs {} (free {}); node partial slabs {} (free {}, nr_partial {}); nodes' nr_slabs {}, total_objects {}; /sys/kernel/slab/{}/objects counts {}, partial {}",
        t.cpu_free,
        t.cpu_partial_slabs,
        t.cpu_partial_free,
        t.node_partial_slabs,
        t.node_partial_free,
        t.nr_partial,
        opt(t.nr_slabs),
        opt(t.total_objects),
        c.name,
        opt(t.sysfs_objects()),
        t.nr_partial,
    ))?;
    sink.finish()?;
    Ok(0)
}
