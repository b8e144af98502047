//! `pgtool kcache NAME`: one SLUB cache as the slub gdb plugin's `kcache` shows it: the
//! kmem_cache's geometry, each CPU's slab and free list, each CPU's partial slabs, each node's
//! partial slabs, every free list walked (hardened pointers decoded) and counted. `--objects`:
//! every object of the cache with its state.
//!
//! How the counts relate to /sys/kernel/slab/NAME (mm/slub.c 6.1, `show_slab_objects`):
//! `partial` is the nodes' `nr_partial`; `objects` is the nodes' `total_objects` minus the free
//! objects of the node partial slabs (`objects - inuse` of each); a CPU slab and CPU partial
//! slabs count as fully in use there. [`Totals::sysfs_objects`] computes that figure from the
//! walked free lists, so the two can be compared.

use super::objects::{cpu_free_objects, for_each_slab};
use super::slub::{Cache, SlabHead, Slub, WalkEnd};
use crate::error::Result;
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;
use std::collections::HashSet;

/// The kmem_cache's own fields.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct CacheInfo {
    /// Address of the struct kmem_cache.
    pub addr: u64,
    /// Bytes per object with metadata (the stride).
    pub size_bytes: u64,
    /// Bytes asked for.
    pub object_size_bytes: u64,
    /// Offset of the free pointer in a free object.
    pub free_pointer_offset: u64,
    /// SLAB_* flags.
    pub flags_raw: u64,
    /// Page order of a slab.
    pub order: u32,
    /// Objects per slab.
    pub objects_per_slab: u64,
    /// Free pointers are obfuscated (CONFIG_SLAB_FREELIST_HARDENED).
    pub hardened: bool,
}

impl From<&Cache> for CacheInfo {
    fn from(c: &Cache) -> CacheInfo {
        CacheInfo {
            addr: c.addr,
            size_bytes: c.size,
            object_size_bytes: c.object_size,
            free_pointer_offset: c.offset,
            flags_raw: c.flags,
            order: c.order,
            objects_per_slab: c.objects_per_slab,
            hardened: c.random.is_some(),
        }
    }
}

/// One slab on a list of the cache (or one CPU's free list).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct SlabRow {
    /// The cache.
    pub cache: String,
    /// `cpu` (a CPU's active slab), `cpu_partial` or `node_partial`.
    pub list: &'static str,
    /// The CPU, for `cpu` and `cpu_partial`.
    pub cpu: Option<u32>,
    /// The node, for `node_partial`.
    pub node: Option<u32>,
    /// Address of its struct slab.
    pub slab_addr: u64,
    /// Its first PFN.
    pub pfn: Option<u64>,
    /// Objects in it.
    pub objects: u64,
    /// Objects in use as the slab counts them (all of them for a CPU slab).
    pub inuse: u64,
    /// Free objects found by walking its free list(s) (a CPU slab: the CPU's and the slab's).
    pub free: u64,
    /// On a CPU.
    pub frozen: bool,
    /// How the walk ended: `null`, `cycle`, `outside 0x..` or `unreadable 0x..`.
    pub freelist_end: String,
    /// The cache's fields (the same in every row).
    pub kmem_cache: CacheInfo,
}

impl Record for SlabRow {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "list",
        "cpu",
        "node",
        "slab_addr",
        "pfn",
        "objects",
        "inuse",
        "free",
        "frozen",
        "freelist_end",
    ];
}

/// Sums over the lists, and the kernel's own counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Free objects on the CPUs' active slabs (CPU and slab free lists).
    pub cpu_free: u64,
    /// CPU partial slabs and their free objects.
    pub cpu_partial_slabs: u64,
    /// Free objects on CPU partial slabs.
    pub cpu_partial_free: u64,
    /// Node partial slabs walked.
    pub node_partial_slabs: u64,
    /// Free objects on them (walked).
    pub node_partial_free: u64,
    /// The nodes' `nr_partial`.
    pub nr_partial: u64,
    /// The nodes' `nr_slabs` (CONFIG_SLUB_DEBUG).
    pub nr_slabs: Option<u64>,
    /// The nodes' `total_objects` (CONFIG_SLUB_DEBUG).
    pub total_objects: Option<u64>,
}

impl Totals {
    /// What /sys/kernel/slab/NAME/objects shows: total_objects minus the node partial slabs'
    /// free objects (walked here).
    pub fn sysfs_objects(&self) -> Option<u64> {
        Some(self.total_objects?.saturating_sub(self.node_partial_free))
    }
}

fn end_text(e: &WalkEnd) -> String {
    match e {
        WalkEnd::Null => "null".into(),
        WalkEnd::Cycle => "cycle".into(),
        WalkEnd::Outside(a) => format!("outside {a:#x}"),
        WalkEnd::Unreadable(a) => format!("unreadable {a:#x}"),
    }
}

/// Walk `first` (a free list through the slab `h`): count and end.
fn walk(slub: &Slub, c: &Cache, h: &SlabHead, first: u64) -> (u64, WalkEnd) {
    match slub.slab_span(c, h) {
        Some((base, span)) => {
            let (v, e) = slub.walk_free(c, first, base, span, None);
            (v.len() as u64, e)
        }
        None => (0, WalkEnd::Unreadable(h.addr)),
    }
}

/// The cache called `name`: its slab rows and totals.
pub fn lists(slub: &Slub, name: &str) -> Result<(Cache, Vec<SlabRow>, Totals)> {
    let c = slub.find_cache(name)?;
    let info = CacheInfo::from(&c);
    let mut rows = Vec::new();
    let mut t = Totals::default();
    let row = |list, cpu, node, h: &SlabHead, free, end: &WalkEnd| SlabRow {
        cache: c.name.clone(),
        list,
        cpu,
        node,
        slab_addr: h.addr,
        pfn: slub.pfn_of(h.addr),
        objects: h.objects,
        inuse: h.inuse,
        free,
        frozen: h.frozen,
        freelist_end: end_text(end),
        kmem_cache: info.clone(),
    };
    for (cpu, (fl, slab, partial)) in slub.cpu_slabs(&c)?.into_iter().enumerate() {
        let cpu = cpu as u32;
        if slab != 0 {
            let h = slub.read_head(slab)?;
            let (a, e1) = walk(slub, &c, &h, fl);
            let (b, e2) = walk(slub, &c, &h, h.freelist);
            let end = if e1 == WalkEnd::Null { e2 } else { e1 };
            t.cpu_free += a + b;
            rows.push(row("cpu", Some(cpu), None, &h, a + b, &end));
        }
        let mut next = partial;
        let mut seen = 0usize;
        while next != 0 && seen < super::slub::MAX_LIST {
            let h = slub.read_head(next)?;
            let (n, e) = walk(slub, &c, &h, h.freelist);
            t.cpu_partial_slabs += 1;
            t.cpu_partial_free += n;
            rows.push(row("cpu_partial", Some(cpu), None, &h, n, &e));
            next = h.next;
            seen += 1;
        }
    }
    for node in slub.nodes(&c)? {
        t.nr_partial += node.nr_partial;
        if let Some(v) = node.nr_slabs {
            *t.nr_slabs.get_or_insert(0) += v;
        }
        if let Some(v) = node.total_objects {
            *t.total_objects.get_or_insert(0) += v;
        }
        for s in &node.partial {
            let h = slub.read_head(*s)?;
            let (n, e) = walk(slub, &c, &h, h.freelist);
            t.node_partial_slabs += 1;
            t.node_partial_free += n;
            rows.push(row("node_partial", None, Some(node.node), &h, n, &e));
        }
    }
    Ok((c, rows, t))
}

/// One object of the cache (`kcache --objects`).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// The cache.
    pub cache: String,
    /// The object's address.
    pub addr: u64,
    /// Its slab's struct slab.
    pub slab_addr: u64,
    /// The slab's first PFN.
    pub pfn: Option<u64>,
    /// `allocated` or `free`.
    pub state: &'static str,
    /// Where a free object is listed: `slab` (its slab's free list) or `cpu` (a CPU's).
    pub free_on: Option<&'static str>,
}

impl Record for ObjectRow {}

/// Every object of `cache` with its state, slab by slab (KFENCE's objects are left out: they
/// are not in SLUB's slabs); `f` gets each row.
pub fn objects(
    slub: &Slub,
    root: &SysRoot,
    c: &Cache,
    mut f: impl FnMut(&ObjectRow) -> Result<()>,
) -> Result<()> {
    let cpu_free = cpu_free_objects(slub, c);
    let kfence = super::kfence::pool(slub);
    for_each_slab(slub, root, c, &kfence, |h| {
        let Some((base, span)) = slub.slab_span(c, h) else {
            return Ok(());
        };
        let free: HashSet<u64> = slub
            .walk_free(c, h.freelist, base, span, None)
            .0
            .into_iter()
            .collect();
        let n = span.saturating_sub(c.red_left_pad) / c.size.max(1);
        for i in 0..n {
            let addr = base + c.red_left_pad + i * c.size;
            let free_on = if free.contains(&addr) {
                Some("slab")
            } else if cpu_free.contains(&addr) {
                Some("cpu")
            } else {
                None
            };
            f(&ObjectRow {
                cache: c.name.clone(),
                addr,
                slab_addr: h.addr,
                pfn: Some(h.pfn),
                state: if free_on.is_some() {
                    "free"
                } else {
                    "allocated"
                },
                free_on,
            })?;
        }
        Ok(())
    })?;
    Ok(())
}
