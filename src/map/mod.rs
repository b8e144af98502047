//! `pgtool map`: physical memory one pageblock at a time, each block classified by the worst
//! tenant for compaction, from `/proc/kpageflags` (and `/proc/kpagecount` for pages without
//! flags, `/proc/kpagecgroup` when colouring by memcg).
//!
//! Page classes, from least to most in the way of a 2 MiB allocation ([`Class`]): free (a
//! buddy page, or a page without flags and with count 0 inside a free buddy run), no flags
//! (count 0 but not inside a run that starts with a buddy page: on a per-CPU free list, or
//! never initialised: user space cannot tell them apart), file (page cache), anon, THP,
//! hugetlb, page table, slab, kernel (other allocated pages: vmalloc, kernel stacks,
//! drivers), reserved/offline, hwpoison. A block is shown by its worst class.
//!
//! Memory stays bounded: blocks are computed in chunks of [`CHUNK_BLOCKS`] and handed to the
//! caller in physical-address order; nothing is held per page or per block of the machine.

mod class;
pub mod render;
pub mod zones;

use class::classify;
pub use class::{CLASSES, Class};

use crate::addr::page_size;
use crate::error::{Error, Result};
use crate::iomem::Iomem;
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;
use std::ops::Range;
pub use zones::Zone;

/// Blocks computed per chunk (per thread and step).
pub const CHUNK_BLOCKS: u64 = 64;
/// A free buddy block is at most this many pages (MAX_ORDER 10 on Linux >= 6.4; 11 before,
/// whose largest block is also 1024 pages): runs of flagless pages after a buddy page end at
/// this alignment.
const MAX_BUDDY_PAGES: u64 = 1024;

/// One pageblock: where it is, what it holds, and its worst class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    /// First PFN of the block.
    pub start_pfn: u64,
    /// Physical address of the block.
    pub phys_addr: u64,
    /// NUMA node (null when /proc/zoneinfo is not readable).
    pub node: Option<u32>,
    /// Zone name.
    pub zone: Option<String>,
    /// The block's worst class for compaction.
    pub class: Class,
    /// Pages of the block that are RAM (a block at the edge of a RAM range has fewer).
    pub pages: u64,
    /// Pages per class, in [`CLASSES`] order.
    pub free_pages: u64,
    /// See [`Class::Noflags`].
    pub noflags_pages: u64,
    /// Page cache pages.
    pub file_pages: u64,
    /// Anonymous pages.
    pub anon_pages: u64,
    /// THP pages.
    pub thp_pages: u64,
    /// hugetlbfs pages.
    pub hugetlb_pages: u64,
    /// Page-table pages.
    pub pgtable_pages: u64,
    /// Slab pages.
    pub slab_pages: u64,
    /// Other kernel pages.
    pub kernel_pages: u64,
    /// Reserved or offline pages.
    pub reserved_pages: u64,
    /// Pages with a memory error.
    pub hwpoison_pages: u64,
    /// The memcg most of the block's charged pages belong to (`--by memcg` only).
    pub memcg_ino: Option<u64>,
}

impl Record for Block {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "start_pfn",
        "node",
        "zone",
        "class",
        "free_pages",
        "file_pages",
        "anon_pages",
        "thp_pages",
        "slab_pages",
        "kernel_pages",
    ];
}

impl Block {
    /// Pages of class `c`.
    pub fn count(&self, c: Class) -> u64 {
        match c {
            Class::Free => self.free_pages,
            Class::Noflags => self.noflags_pages,
            Class::File => self.file_pages,
            Class::Anon => self.anon_pages,
            Class::Thp => self.thp_pages,
            Class::Hugetlb => self.hugetlb_pages,
            Class::Pgtable => self.pgtable_pages,
            Class::Slab => self.slab_pages,
            Class::Kernel => self.kernel_pages,
            Class::Reserved => self.reserved_pages,
            Class::Hwpoison => self.hwpoison_pages,
        }
    }

    fn add(&mut self, c: Class, n: u64) {
        let slot = match c {
            Class::Free => &mut self.free_pages,
            Class::Noflags => &mut self.noflags_pages,
            Class::File => &mut self.file_pages,
            Class::Anon => &mut self.anon_pages,
            Class::Thp => &mut self.thp_pages,
            Class::Hugetlb => &mut self.hugetlb_pages,
            Class::Pgtable => &mut self.pgtable_pages,
            Class::Slab => &mut self.slab_pages,
            Class::Kernel => &mut self.kernel_pages,
            Class::Reserved => &mut self.reserved_pages,
            Class::Hwpoison => &mut self.hwpoison_pages,
        };
        *slot += n;
        self.pages += n;
    }

    /// Every RAM page of the block is free.
    pub fn entirely_free(&self) -> bool {
        self.pages > 0 && self.free_pages + self.noflags_pages == self.pages
    }

    /// Free but for unmovable pages: no movable page, at least one free page and at least one
    /// unmovable one. Compaction cannot make this block a free 2 MiB block: these are the blocks
    /// that fragment memory.
    pub fn blocked_by_unmovable(&self) -> bool {
        let free = self.free_pages + self.noflags_pages;
        let movable = self.file_pages + self.anon_pages + self.thp_pages;
        free > 0 && movable == 0 && free + movable < self.pages
    }
}

/// How the map was cut: block size and the RAM ranges, known before the scan (pictures need
/// their size up front).
#[derive(Clone, Debug)]
pub struct Layout {
    /// Pages per block (2^pageblock order).
    pub block_pages: u64,
    /// System RAM PFN ranges, sorted and merged.
    pub ram: Vec<Range<u64>>,
    /// Zones, for the node/zone of each block.
    pub zones: Vec<Zone>,
}

impl Layout {
    /// Read the layout of `root`: pageblock order, System RAM ranges, zones.
    pub fn read(root: &SysRoot) -> Result<Layout> {
        let order = zones::pageblock_order(root)?;
        let io = Iomem::read(root)?;
        if io.addresses_hidden() {
            return Err(Error::io_hint(
                root.iomem(),
                std::io::Error::from_raw_os_error(libc::EPERM),
                "needs root: /proc/iomem shows every address as 0 to other users",
            ));
        }
        let ram: Vec<Range<u64>> = io
            .system_ram_pfns()
            .into_iter()
            .map(|r| r.start.0..r.end.0)
            .collect();
        if ram.is_empty() {
            return Err(Error::NotFound(format!(
                "{}: no System RAM region",
                root.iomem().display()
            )));
        }
        Ok(Layout {
            block_pages: 1 << order,
            ram,
            zones: zones::read_zones(root),
        })
    }

    /// The blocks of one RAM range: block-aligned starts covering it.
    pub fn blocks_of(&self, r: &Range<u64>) -> Range<u64> {
        let b = self.block_pages;
        (r.start / b)..r.end.div_ceil(b)
    }

    /// Blocks in all.
    pub fn total_blocks(&self) -> u64 {
        self.ram
            .iter()
            .map(|r| {
                let b = self.blocks_of(r);
                b.end - b.start
            })
            .sum()
    }

    /// Bytes per block.
    pub fn block_bytes(&self) -> u64 {
        self.block_pages * page_size()
    }
}

/// What to read besides the flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanOptions {
    /// Read kpagecgroup and set each block's majority memcg.
    pub memcg: bool,
    /// Worker threads (0: the CPUs available, at most 8).
    pub threads: usize,
}

/// The open kpage files.
struct Files {
    flags: U64File,
    count: Option<U64File>,
    cgroup: Option<U64File>,
}

/// Scan every block in physical order and hand each to `f`.
pub fn scan(
    root: &SysRoot,
    layout: &Layout,
    opts: ScanOptions,
    mut f: impl FnMut(&Block) -> Result<()>,
) -> Result<()> {
    let files = Files {
        flags: U64File::open_kpage(root, KpageFile::Flags)?,
        count: U64File::open_kpage(root, KpageFile::Count).ok(),
        cgroup: if opts.memcg {
            Some(U64File::open_kpage(root, KpageFile::Cgroup)?)
        } else {
            None
        },
    };
    let threads = crate::threads::pick(opts.threads, 8);
    // Chunks of blocks, clipped to the RAM ranges, in physical order.
    let mut chunks: Vec<(Range<u64>, Range<u64>)> = Vec::new(); // (blocks, ram pfns)
    for r in &layout.ram {
        let blocks = layout.blocks_of(r);
        let mut b = blocks.start;
        while b < blocks.end {
            let e = (b + CHUNK_BLOCKS).min(blocks.end);
            chunks.push((b..e, r.clone()));
            b = e;
        }
    }
    // Persistent workers take chunks in order from a counter and send each result back; the
    // caller's thread hands blocks to `f` in physical order. A worker takes a new chunk only
    // after its last result was accepted by the bounded channel, so at most `threads` results
    // plus the channel's capacity wait here: memory is bounded whatever the RAM size.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Vec<Block>>)>(threads.max(1));
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads.max(1) {
            let (tx, files, chunks, next, stop) = (tx.clone(), &files, &chunks, &next, &stop);
            s.spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                while !stop.load(Relaxed) {
                    let i = next.fetch_add(1, Relaxed);
                    let Some((blocks, ram)) = chunks.get(i) else {
                        break;
                    };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        scan_chunk(files, layout, blocks.clone(), ram.clone())
                    }))
                    .unwrap_or_else(|_| {
                        Err(Error::Usage("internal: a map worker panicked".into()))
                    });
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting: std::collections::BTreeMap<usize, Result<Vec<Block>>> = Default::default();
        let mut want = 0;
        let result = (|| -> Result<()> {
            for (i, r) in rx.iter() {
                waiting.insert(i, r);
                while let Some(r) = waiting.remove(&want) {
                    for b in r? {
                        f(&b)?;
                    }
                    want += 1;
                }
            }
            Ok(())
        })();
        // On an error, stop the workers and drain the channel so none blocks on a send.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for _ in rx.iter() {}
        result
    })?;
    Ok(())
}

/// Words read per `pread`.
const BATCH: usize = 1 << 15;

fn scan_chunk(
    files: &Files,
    layout: &Layout,
    blocks: Range<u64>,
    ram: Range<u64>,
) -> Result<Vec<Block>> {
    let bp = layout.block_pages;
    let first = (blocks.start * bp).max(ram.start);
    let end = (blocks.end * bp).min(ram.end);
    let mut out: Vec<Block> = (blocks.start..blocks.end)
        .map(|b| {
            let start = b * bp;
            // The zone of the block's first RAM page (a block at a range's edge starts in a hole).
            let zone = layout
                .zones
                .iter()
                .find(|z| z.contains(start.max(ram.start)));
            Block {
                start_pfn: start,
                phys_addr: start.saturating_mul(page_size()),
                node: zone.map(|z| z.node),
                zone: zone.map(|z| z.zone.clone()),
                class: Class::Free,
                pages: 0,
                free_pages: 0,
                noflags_pages: 0,
                file_pages: 0,
                anon_pages: 0,
                thp_pages: 0,
                hugetlb_pages: 0,
                pgtable_pages: 0,
                slab_pages: 0,
                kernel_pages: 0,
                reserved_pages: 0,
                hwpoison_pages: 0,
                memcg_ino: None,
            }
        })
        .collect();
    let mut flags = vec![0u64; BATCH];
    let mut cg = vec![0u64; if files.cgroup.is_some() { BATCH } else { 0 }];
    let mut memcgs: Vec<hashbrown::HashMap<u64, u64>> =
        vec![hashbrown::HashMap::new(); if files.cgroup.is_some() { out.len() } else { 0 }];
    let mut in_run = false;
    let mut pending: Vec<u64> = Vec::new();
    let mut pfn = first;
    // A free run cannot have started before `first` unless `first` is not MAX_BUDDY-aligned:
    // look back to the alignment for the run's state.
    let back = first - first % MAX_BUDDY_PAGES;
    if back < first && back >= ram.start {
        let mut prev = vec![0u64; (first - back) as usize];
        let n = files.flags.read_at(back, &mut prev)?;
        for w in &prev[..n] {
            in_run = match *w {
                0 => in_run,
                w => PageFlags::from_bits_retain(w).contains(PageFlags::BUDDY),
            };
        }
    }
    while pfn < end {
        let n = ((end - pfn) as usize).min(BATCH);
        let got = files.flags.read_at(pfn, &mut flags[..n])?;
        if got == 0 {
            break;
        }
        if let Some(c) = &files.cgroup {
            let g = c.read_at(pfn, &mut cg[..got])?;
            cg[g..got].fill(0);
        }
        pending.clear();
        for (i, &w) in flags[..got].iter().enumerate() {
            let p = pfn + i as u64;
            if p.is_multiple_of(MAX_BUDDY_PAGES) {
                in_run = false;
            }
            if w != 0 {
                in_run = PageFlags::from_bits_retain(w).contains(PageFlags::BUDDY);
            }
            let bi = (p / bp - blocks.start) as usize;
            match classify(w, in_run) {
                Some(c) => out[bi].add(c, 1),
                None => pending.push(p),
            }
            if let Some(m) = memcgs.get_mut(bi)
                && cg[i] != 0
            {
                *m.entry(cg[i]).or_insert(0) += 1;
            }
        }
        if !pending.is_empty() {
            // Only the pending pages' counts, gathered with the small read-through gap that
            // pays for kpagecount (each word read costs the kernel a page lookup).
            let counts = match &files.count {
                Some(c) => c.gather_gap(&pending, KpageFile::Count.gather_gap())?,
                None => vec![None; pending.len()],
            };
            for (p, c) in pending.iter().zip(counts) {
                let bi = (p / bp - blocks.start) as usize;
                out[bi].add(
                    if c.unwrap_or(0) == 0 {
                        Class::Noflags
                    } else {
                        Class::Kernel
                    },
                    1,
                );
            }
        }
        pfn += got as u64;
        if got < n {
            break;
        }
    }
    for (i, b) in out.iter_mut().enumerate() {
        b.class = CLASSES
            .iter()
            .rev()
            .copied()
            .find(|&c| b.count(c) > 0)
            .unwrap_or(Class::Free);
        if let Some(m) = memcgs.get(i) {
            b.memcg_ino = m
                .iter()
                .max_by_key(|(ino, n)| (**n, std::cmp::Reverse(**ino)))
                .map(|(ino, _)| *ino);
        }
    }
    Ok(out)
}

/// Totals of one zone (or of everything when `zone` is null).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZoneTotals {
    /// NUMA node.
    pub node: Option<u32>,
    /// Zone name; null for blocks outside every zone and for the grand total's row.
    pub zone: Option<String>,
    /// Blocks.
    pub blocks: u64,
    /// Blocks whose every page is free.
    pub free_blocks: u64,
    /// Blocks free but for unmovable pages ([`Block::blocked_by_unmovable`]).
    pub blocked_by_unmovable_blocks: u64,
    /// Blocks by worst class, in [`CLASSES`] order.
    pub blocks_by_class: ClassCounts,
    /// RAM pages.
    pub pages: u64,
    /// Free pages (free and no-flags).
    pub free_pages: u64,
}

impl Record for ZoneTotals {}

/// A count per class, serialized as an object with every class in rank order (`{"free": 3,
/// "noflags": 0, ...}`), so CSV columns are the same in every row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts(pub [u64; CLASSES.len()]);

impl ClassCounts {
    /// The count of `c`.
    pub fn get(&self, c: Class) -> u64 {
        CLASSES
            .iter()
            .position(|x| *x == c)
            .map_or(0, |i| self.0[i])
    }
}

impl Serialize for ClassCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(CLASSES.len()))?;
        for (c, n) in CLASSES.iter().zip(self.0) {
            m.serialize_entry(c.name(), &n)?;
        }
        m.end()
    }
}

impl ZoneTotals {
    /// Count one block.
    pub fn add(&mut self, b: &Block) {
        self.blocks += 1;
        self.free_blocks += u64::from(b.entirely_free());
        self.blocked_by_unmovable_blocks += u64::from(b.blocked_by_unmovable());
        self.pages += b.pages;
        self.free_pages += b.free_pages + b.noflags_pages;
        self.blocks_by_class.0[CLASSES.iter().position(|c| *c == b.class).unwrap_or(0)] += 1;
    }
}
