//! The pages tracked by idle marking and reading: a process's present pages (per VMA), a PFN
//! range or a memcg's pages, each tied to the folio head whose idle bit stands for it.

use super::{IdleBitmap, PART_MIN, PART_THREADS, drain_lru_batches};
use crate::addr::{Pfn, VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::{Vma, read_maps};
use crate::pagemap::Pagemap;
use crate::root::SysRoot;
use std::io;
use std::ops::Range;

/// One tracked page: where it is mapped (when known), its PFN and the PFN whose idle bit
/// stands for it (the folio head for THP tails, else itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackedPage {
    /// The virtual address (for a process source), else `None`.
    pub vaddr: Option<VirtAddr>,
    /// The page frame.
    pub pfn: Pfn,
    /// The frame whose bit is read for this page (head of its large folio).
    pub head: Pfn,
}

/// A set of pages, optionally grouped by VMA, to mark and read.
#[derive(Clone, Debug, Default)]
pub struct PageSet {
    /// The groups: a VMA (for a process) or `None` (PFN range, cgroup), and its pages.
    pub groups: Vec<(Option<Vma>, Vec<TrackedPage>)>,
}

/// Idle/accessed counts of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Pages tracked.
    pub pages: u64,
    /// Pages whose (head's) bit is still set.
    pub idle_pages: u64,
    /// Pages accessed since marked (bit clear).
    pub accessed_pages: u64,
}

impl PageSet {
    /// All pages.
    pub fn pages(&self) -> impl Iterator<Item = &TrackedPage> {
        self.groups.iter().flat_map(|g| g.1.iter())
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.1.len()).sum()
    }

    /// True when no page is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The present pages of `pid`'s mappings selected by `select`, clipped to `range` when
    /// given, from pagemap (read in batches per VMA). Heads are resolved with
    /// [`PageSet::resolve_heads`].
    pub fn from_pid(
        root: &SysRoot,
        pid: u32,
        select: &dyn Fn(&Vma) -> bool,
        range: Option<Range<VirtAddr>>,
    ) -> Result<PageSet> {
        let vmas = read_maps(root, pid)?
            .into_iter()
            .filter(|v| select(v))
            .collect();
        PageSet::from_vmas(root, pid, vmas, range)
    }

    /// The present pages of the mappings `vmas` of `pid` (one group each, `[vsyscall]` left
    /// out), clipped to `range` when given.
    pub fn from_vmas(
        root: &SysRoot,
        pid: u32,
        vmas: Vec<Vma>,
        range: Option<Range<VirtAddr>>,
    ) -> Result<PageSet> {
        let pm = Pagemap::open(root, pid)?;
        let mut set = PageSet::default();
        let mut hidden = false;
        for vma in vmas {
            if vma.path == "[vsyscall]" {
                continue;
            }
            let (mut s, mut e) = (vma.start, vma.end);
            if let Some(r) = &range {
                s = s.max(r.start);
                e = e.min(r.end);
                if s >= e {
                    continue;
                }
            }
            let mut pages = Vec::new();
            pm.for_each_batch(s..e, 4096, |va, entries| {
                for (i, pme) in entries.iter().enumerate() {
                    if !pme.present() {
                        continue;
                    }
                    match pme.pfn() {
                        Some(p) if p.0 != 0 => pages.push(TrackedPage {
                            vaddr: Some(VirtAddr(va.0 + i as u64 * page_size())),
                            pfn: p,
                            head: p,
                        }),
                        _ => hidden |= pme.pfn_hidden(),
                    }
                }
                Ok(())
            })?;
            set.groups.push((Some(vma), pages));
        }
        if hidden && set.is_empty() {
            return Err(Error::io_hint(
                pm.path(),
                io::Error::from_raw_os_error(libc::EPERM),
                crate::error::PFN_HIDDEN,
            ));
        }
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// The pages whose `/proc/kpagecgroup` entry is `memcg_inode`, over System RAM.
    pub fn from_cgroup(root: &SysRoot, memcg_inode: u64) -> Result<PageSet> {
        let cg = U64File::open_kpage(root, KpageFile::Cgroup)?;
        let mut pages = Vec::new();
        for r in ram_ranges(root)? {
            cg.for_each_batch(r.start.0..r.end.0, 1 << 16, |first, words| {
                for (i, &w) in words.iter().enumerate() {
                    if w == memcg_inode {
                        let p = Pfn(first + i as u64);
                        pages.push(TrackedPage {
                            vaddr: None,
                            pfn: p,
                            head: p,
                        });
                    }
                }
                Ok(())
            })?;
        }
        let mut set = PageSet {
            groups: vec![(None, pages)],
        };
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// Every PFN of `range` (clipped to System RAM: holes are skipped).
    pub fn from_pfn_range(root: &SysRoot, range: Range<Pfn>) -> Result<PageSet> {
        let mut pages = Vec::new();
        for r in ram_ranges(root)? {
            let (s, e) = (r.start.max(range.start), r.end.min(range.end));
            for p in s.0..e.0 {
                pages.push(TrackedPage {
                    vaddr: None,
                    pfn: Pfn(p),
                    head: Pfn(p),
                });
            }
        }
        let mut set = PageSet {
            groups: vec![(None, pages)],
        };
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// Set each page's `head` from `/proc/kpageflags`: a COMPOUND_TAIL page of a THP or other
    /// large folio gets the PFN of its COMPOUND_HEAD. Without a readable kpageflags every page
    /// stands for itself.
    pub fn resolve_heads(&mut self, root: &SysRoot) -> Result<()> {
        let Ok(kf) = U64File::open_kpage(root, KpageFile::Flags) else {
            return Ok(());
        };
        let mut pfns: Vec<u64> = self.pages().map(|p| p.pfn.0).collect();
        pfns.sort_unstable();
        pfns.dedup();
        let flags =
            crate::threads::split_map(&pfns, PART_MIN, PART_THREADS, |part| kf.gather(part))
                .into_iter()
                .collect::<Result<Vec<_>>>()?
                .concat();
        let mut heads: Vec<(u64, u64)> = Vec::new(); // (tail pfn, head pfn)
        let mut last_head: Option<u64> = None;
        for (k, &p) in pfns.iter().enumerate() {
            let f = PageFlags::from_bits_retain(flags[k].unwrap_or(0));
            if f.contains(PageFlags::COMPOUND_HEAD) {
                last_head = Some(p);
            } else if f.contains(PageFlags::COMPOUND_TAIL) {
                let h = match last_head {
                    Some(h) if p - h < 1 << 18 && heads_contiguous(&pfns, h, p) => h,
                    _ => find_head(&kf, p)?.unwrap_or(p),
                };
                last_head = Some(h);
                heads.push((p, h));
            } else {
                last_head = None;
            }
        }
        if heads.is_empty() {
            return Ok(());
        }
        for g in &mut self.groups {
            for page in &mut g.1 {
                if let Ok(k) = heads.binary_search_by_key(&page.pfn.0, |x| x.0) {
                    page.head = Pfn(heads[k].1);
                }
            }
        }
        Ok(())
    }

    /// Mark every page idle (by its head's bit). Drains the LRU-add batches first on the live
    /// system so freshly faulted pages can be marked.
    pub fn mark(&self, bitmap: &IdleBitmap) -> Result<()> {
        drain_lru_batches();
        let mut heads: Vec<u64> = self.pages().map(|p| p.head.0).collect();
        heads.sort_unstable();
        crate::threads::split_map(&heads, PART_MIN, PART_THREADS, |part| {
            bitmap.mark_pfns(part)
        })
        .into_iter()
        .collect()
    }

    /// Read the idle bit of each page (its head's bit), group by group, in the order of
    /// [`PageSet::groups`].
    pub fn read(&self, bitmap: &IdleBitmap) -> Result<Vec<Vec<bool>>> {
        let heads: Vec<u64> = self.pages().map(|p| p.head.0).collect();
        let bits = bitmap.read_pfns(&heads)?;
        let mut out = Vec::with_capacity(self.groups.len());
        let mut k = 0;
        for g in &self.groups {
            out.push(bits[k..k + g.1.len()].to_vec());
            k += g.1.len();
        }
        Ok(out)
    }
}

fn heads_contiguous(pfns: &[u64], h: u64, p: u64) -> bool {
    // The head is known good for p only if every PFN between them is in the (sorted) set.
    match (pfns.binary_search(&h), pfns.binary_search(&p)) {
        (Ok(a), Ok(b)) => (b - a) as u64 == p - h,
        _ => false,
    }
}

/// The head of the folio holding a tail PFN (the one folio resolver).
fn find_head(kf: &U64File, tail: u64) -> Result<Option<u64>> {
    let flags = PageFlags::from_bits_retain(kf.get(tail)?.unwrap_or(0));
    Ok(crate::folio::folio_of(kf, Pfn(tail), flags)?.map(|f| f.head.0))
}

/// System RAM PFN ranges from iomem (falling back to `[0, end of kpageflags)` when iomem shows
/// no RAM, e.g. addresses hidden from non-root).
pub fn ram_ranges(root: &SysRoot) -> Result<Vec<Range<Pfn>>> {
    let r = crate::iomem::Iomem::read(root)
        .map(|io| io.system_ram_pfns())
        .unwrap_or_default();
    if !r.is_empty() && r.iter().any(|x| x.end.0 > 0) {
        return Ok(r);
    }
    let path = root.kpageflags();
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok(vec![Pfn(0)..Pfn(len / 8)])
}

/// Count idle and accessed pages of one group's bits.
pub fn count(bits: &[bool]) -> Counts {
    let idle = bits.iter().filter(|b| **b).count() as u64;
    Counts {
        pages: bits.len() as u64,
        idle_pages: idle,
        accessed_pages: bits.len() as u64 - idle,
    }
}
