//! `pgtool page PFN...`: what the kernel's `struct page` says about a page, decoded through
//! BTF and followed through /proc/kcore, beside kpageflags' names.
//!
//! - flags: the raw word; node and zone from its top bits (page-flags-layout.h with
//!   SPARSEMEM_VMEMMAP, which x86-64 always has: no section bits; NODES_SHIFT from the length
//!   of `kmem_cache.node[MAX_NUMNODES]`, ZONES_SHIFT from `pglist_data.node_zones[MAX_NR_ZONES]`),
//!   the zone's name read from `node_data[nid]->node_zones[zid].name`.
//! - mapping: low bits 1 = anon (`anon_vma`; its first VMA's range and the mm's owner task are
//!   followed), 3 = KSM, 2 = movable; otherwise an `address_space` whose host inode gives the
//!   inode number, the filesystem type and a path inside that filesystem (dentry names up to
//!   its root).
//! - memcg_data: a `mem_cgroup` (low bits clear) whose cgroup's kernfs id is the inode
//!   kpagecgroup reports; slab pages name their kmem_cache instead.

use super::slub::Slub;
use crate::error::{Error, Result};
use crate::kernel::Btf;
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;

/// The deepest dentry chain followed for a path.
const MAX_PATH_DEPTH: usize = 64;

/// One page.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRow {
    /// The PFN.
    pub pfn: u64,
    /// Address of its struct page.
    pub page_addr: u64,
    /// kpageflags' names.
    pub flags: Vec<String>,
    /// `page->flags`.
    pub page_flags_raw: u64,
    /// The same, in hex (JSON readers round numbers above 2^53).
    pub page_flags_raw_hex: String,
    /// NUMA node from the flags.
    pub node: u64,
    /// Zone from the flags, by name.
    pub zone: Option<String>,
    /// `_refcount`.
    pub refcount: i64,
    /// `_mapcount + 1` (page tables mapping it; meaningless for slab and typed pages).
    pub mapcount: i64,
    /// `mapping`, raw.
    pub mapping_raw: u64,
    /// `anon`, `ksm`, `movable`, `file` or null (no mapping).
    pub mapping_type: Option<&'static str>,
    /// The anon_vma (anon pages).
    pub anon_vma_addr: Option<u64>,
    /// First VMA of the anon_vma: start.
    pub vma_start: Option<u64>,
    /// First VMA of the anon_vma: end.
    pub vma_end: Option<u64>,
    /// That VMA's mm's owner task: PID.
    pub owner_pid: Option<u32>,
    /// Its comm.
    pub owner_comm: Option<String>,
    /// File pages: the inode number.
    pub file_ino: Option<u64>,
    /// File pages: the filesystem type.
    pub fs_type: Option<String>,
    /// File pages: the path inside that filesystem (from its dentry).
    pub file_path: Option<String>,
    /// `index` (file: page offset in the file; anon: virtual page number).
    pub index: u64,
    /// `private`, raw.
    pub private_raw: u64,
    /// `memcg_data`, raw.
    pub memcg_data_raw: u64,
    /// The mem_cgroup (pages charged to one).
    pub memcg_addr: Option<u64>,
    /// Its cgroup's inode (what kpagecgroup reports).
    pub memcg_ino: Option<u64>,
    /// Its path under the cgroup mount.
    pub memcg_path: Option<String>,
    /// Slab pages: the cache's name.
    pub slab_cache: Option<String>,
    /// Tail pages: the head's PFN.
    pub compound_head_pfn: Option<u64>,
    /// Head pages: the compound order.
    pub compound_order: Option<u32>,
}

impl Record for PageRow {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "pfn",
        "zone",
        "refcount",
        "mapcount",
        "mapping_type",
        "owner_pid",
        "owner_comm",
        "file_path",
        "index",
        "memcg_path",
        "slab_cache",
        "flags",
    ];
}

/// Field offsets and the flags layout.
struct Offs {
    page_size: u64,
    flags: u64,
    mapping: u64,
    index: u64,
    private: u64,
    refcount: u64,
    mapcount: u64,
    memcg: Option<u64>,
    compound_head: u64,
    compound_order: Option<u64>,
    node_shift: u32,
    zone_shift: u32,
}

fn log2_ceil(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// Check that `btf` has every struct page field `page` decodes.
pub fn check_layout(btf: &Btf) -> Result<()> {
    offs(btf).map(|_| ())
}

fn offs(btf: &Btf) -> Result<Offs> {
    let p = |f: &str| btf.field("page", f).map(|f| f.offset());
    let alen = |t: &str, f: &str| -> Result<u64> {
        let fl = btf.field(t, f)?;
        match btf.kind(fl.ty) {
            crate::kernel::Kind::Array { len, .. } => Ok(u64::from(len)),
            _ => Err(Error::NotFound(format!(
                "{t}.{f} is not an array in the BTF"
            ))),
        }
    };
    Ok(Offs {
        page_size: btf.size_of(btf.struct_id("page")?).unwrap_or(64),
        flags: p("flags")?,
        mapping: p("mapping")?,
        index: p("index").or_else(|_| p("__folio_index"))?,
        private: p("private")?,
        refcount: p("_refcount")?,
        mapcount: p("_mapcount")?,
        memcg: p("memcg_data").ok(),
        compound_head: p("compound_head")?,
        compound_order: p("compound_order").ok(),
        node_shift: log2_ceil(alen("kmem_cache", "node")?),
        zone_shift: log2_ceil(alen("pglist_data", "node_zones")?),
    })
}

/// Describe each PFN of `ranges`, calling `f` with each row.
pub fn pages(
    slub: &Slub,
    root: &SysRoot,
    ranges: &[std::ops::Range<u64>],
    mut f: impl FnMut(&PageRow) -> Result<()>,
) -> Result<()> {
    let o = offs(&slub.btf)?;
    let kpf = U64File::open_kpage(root, KpageFile::Flags)?;
    let cgroups = crate::cgroup::CgroupIndex::build(root).ok();
    for r in ranges {
        for pfn in r.clone() {
            let Some(kflags) = kpf.get(pfn)? else {
                return Err(Error::NotFound(format!(
                    "PFN {pfn:#x} is past the end of {} (beyond the last page of memory)",
                    kpf.path().display()
                )));
            };
            let mut row = one(slub, &o, pfn, PageFlags::from_bits_retain(kflags))?;
            if let (Some(ix), Some(ino)) = (&cgroups, row.memcg_ino) {
                row.memcg_path = ix.path_of(ino).map(|p| p.display().to_string());
            }
            f(&row)?;
        }
    }
    Ok(())
}

fn one(slub: &Slub, o: &Offs, pfn: u64, kflags: PageFlags) -> Result<PageRow> {
    let k = &slub.kcore;
    let addr = slub.page_addr(pfn);
    let mut b = vec![0u8; o.page_size as usize];
    k.read_virt(addr, &mut b).map_err(|_| {
        Error::NotFound(format!(
            "PFN {pfn:#x} has no struct page in kernel memory (a hole: {addr:#x} is not mapped)"
        ))
    })?;
    let w = |off: u64| {
        let i = off as usize;
        u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default())
    };
    let i32_at = |off: u64| {
        let i = off as usize;
        i64::from(i32::from_le_bytes(
            b[i..i + 4].try_into().unwrap_or_default(),
        ))
    };
    let flags_raw = w(o.flags);
    let node = if o.node_shift == 0 {
        0
    } else {
        flags_raw >> (64 - o.node_shift)
    };
    let zid = (flags_raw >> (64 - o.node_shift - o.zone_shift)) & ((1u64 << o.zone_shift) - 1);
    let mut row = PageRow {
        pfn,
        page_addr: addr,
        flags: kflags.listing_names(None),
        page_flags_raw: flags_raw,
        page_flags_raw_hex: crate::output::hex(flags_raw),
        node,
        zone: zone_name(slub, node, zid),
        refcount: i32_at(o.refcount),
        mapcount: i32_at(o.mapcount) + 1,
        mapping_raw: w(o.mapping),
        index: w(o.index),
        private_raw: w(o.private),
        memcg_data_raw: o.memcg.map_or(0, w),
        ..PageRow::default()
    };
    let head = w(o.compound_head);
    if head & 1 == 1 {
        // a tail page: its head holds the mapping, memcg and slab
        row.compound_head_pfn = slub.pfn_of(head - 1);
        return Ok(row);
    }
    if kflags.contains(PageFlags::COMPOUND_HEAD)
        && let Some(co) = o.compound_order
    {
        let mut c = [0u8; 1];
        if k.read_virt(addr + o.page_size + co, &mut c).is_ok() {
            row.compound_order = Some(u32::from(c[0]));
        }
    }
    if kflags.contains(PageFlags::SLAB) {
        // struct slab overlays struct page: its slab_cache word
        if let Ok(h) = slub.read_head(addr) {
            row.slab_cache = slub.read_cache(h.cache).ok().map(|c| c.name);
        }
        row.mapcount = 0;
        return Ok(row);
    }
    let m = row.mapping_raw;
    if m != 0 {
        match m & 3 {
            1 => {
                row.mapping_type = Some("anon");
                row.anon_vma_addr = Some(m & !3);
                let _ = anon_owner(slub, &mut row, m & !3);
            }
            3 => row.mapping_type = Some("ksm"),
            2 => row.mapping_type = Some("movable"),
            _ => {
                row.mapping_type = Some("file");
                let _ = file_of(slub, &mut row, m);
            }
        }
    }
    let md = row.memcg_data_raw;
    if md != 0 && md & 1 == 0 {
        // MEMCG_DATA_OBJCGS (1) is a slab's objcg vector; MEMCG_DATA_KMEM (2) marks a
        // kernel page charged to the memcg: the pointer is the same
        let memcg = md & !3;
        row.memcg_addr = Some(memcg);
        row.memcg_ino = memcg_ino(slub, memcg).ok();
    }
    Ok(row)
}

fn fo(slub: &Slub, t: &str, f: &str) -> Result<u64> {
    slub.btf.field(t, f).map(|f| f.offset())
}

fn zone_name(slub: &Slub, node: u64, zid: u64) -> Option<String> {
    let nd = slub.syms.address_of("node_data")?;
    let pgdat = slub.kcore.read_u64(nd + 8 * node).ok()?;
    let zsize = slub.btf.size_of(slub.btf.struct_id("zone").ok()?)?;
    let zones = fo(slub, "pglist_data", "node_zones").ok()?;
    let name = fo(slub, "zone", "name").ok()?;
    let p = slub
        .kcore
        .read_u64(pgdat + zones + zid * zsize + name)
        .ok()?;
    Some(slub.read_cstr(p, 32))
}

/// The anon_vma's leftmost VMA (anon_vma.rb_root.rb_leftmost -> anon_vma_chain.vma), its
/// range and the owner of its mm.
fn anon_owner(slub: &Slub, row: &mut PageRow, av: u64) -> Result<()> {
    let k = &slub.kcore;
    let leftmost = fo(slub, "anon_vma", "rb_root")? + fo(slub, "rb_root_cached", "rb_leftmost")?;
    let node = k.read_u64(av + leftmost)?;
    if node == 0 {
        return Ok(());
    }
    let avc = node - fo(slub, "anon_vma_chain", "rb")?;
    let vma = k.read_u64(avc + fo(slub, "anon_vma_chain", "vma")?)?;
    row.vma_start = Some(k.read_u64(vma + fo(slub, "vm_area_struct", "vm_start")?)?);
    row.vma_end = Some(k.read_u64(vma + fo(slub, "vm_area_struct", "vm_end")?)?);
    let mm = k.read_u64(vma + fo(slub, "vm_area_struct", "vm_mm")?)?;
    let owner = k.read_u64(mm + fo(slub, "mm_struct", "owner")?)?;
    if owner != 0 {
        row.owner_pid = Some(k.read_u32(owner + fo(slub, "task_struct", "pid")?)?);
        row.owner_comm = Some(slub.read_cstr(owner + fo(slub, "task_struct", "comm")?, 16));
    }
    Ok(())
}

/// The host inode of an address_space: number, filesystem type, path (first dentry alias).
fn file_of(slub: &Slub, row: &mut PageRow, mapping: u64) -> Result<()> {
    let k = &slub.kcore;
    let inode = k.read_u64(mapping + fo(slub, "address_space", "host")?)?;
    if inode == 0 {
        return Ok(());
    }
    row.file_ino = Some(k.read_u64(inode + fo(slub, "inode", "i_ino")?)?);
    let sb = k.read_u64(inode + fo(slub, "inode", "i_sb")?)?;
    let ty = k.read_u64(sb + fo(slub, "super_block", "s_type")?)?;
    let name = k.read_u64(ty + fo(slub, "file_system_type", "name")?)?;
    row.fs_type = Some(slub.read_cstr(name, 32));
    let first = k.read_u64(inode + fo(slub, "inode", "i_dentry")?)?;
    if first == 0 {
        return Ok(());
    }
    let alias = fo(slub, "dentry", "d_u")?; // d_u.d_alias is the union's first member
    let (parent, dname) = (
        fo(slub, "dentry", "d_parent")?,
        fo(slub, "dentry", "d_name")?,
    );
    let qname = fo(slub, "qstr", "name")?;
    let mut d = first - alias;
    let mut parts = Vec::new();
    for _ in 0..MAX_PATH_DEPTH {
        let p = k.read_u64(d + parent)?;
        if p == d || p == 0 {
            break;
        }
        parts.push(slub.read_cstr(k.read_u64(d + dname + qname)?, 256));
        d = p;
    }
    parts.reverse();
    row.file_path = Some(format!("/{}", parts.join("/")));
    Ok(())
}

/// mem_cgroup -> css.cgroup -> kn -> id: the cgroup's inode number.
fn memcg_ino(slub: &Slub, memcg: u64) -> Result<u64> {
    let k = &slub.kcore;
    let css = fo(slub, "mem_cgroup", "css")?;
    let cg = k.read_u64(memcg + css + fo(slub, "cgroup_subsys_state", "cgroup")?)?;
    let kn = k.read_u64(cg + fo(slub, "cgroup", "kn")?)?;
    k.read_u64(kn + fo(slub, "kernfs_node", "id")?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn log2_ceil() {
        assert_eq!(super::log2_ceil(1), 0);
        assert_eq!(super::log2_ceil(2), 1);
        assert_eq!(super::log2_ceil(4), 2);
        assert_eq!(super::log2_ceil(5), 3);
        assert_eq!(super::log2_ceil(1024), 10);
    }
}
