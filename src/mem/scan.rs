//! Walk one address space page by page: maps -> pagemap (only the populated ranges: PAGEMAP_SCAN
//! live, the data extents of a snapshot's sparse pagemap file) -> kpageflags, kpagecount and
//! (for `--by memcg`) kpagecgroup, gathered per batch of PFNs. Memory is bounded by the batch.

use super::backing::{Backing, Lean};
use super::lookup::{Pending, Scratch, SharedCache, lookup};
use super::usage::{Counted, Usage};
use crate::addr::{VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::{Vma, VmaKind};
use crate::pagemap::{Pagemap, PagemapEntry, ScanFilter, category};
use crate::root::SysRoot;
use std::collections::HashMap;
use std::ops::Range;
use std::os::fd::AsRawFd;

/// Pagemap entries read per `pread` (and PFNs gathered per batch): 512 KiB of words.
pub const BATCH_PAGES: usize = 64 << 10;

/// VMAs up to this many pages are read whole; larger ones only where pages are populated.
const SMALL_VMA_PAGES: u64 = 64;

/// Swap types at or above this are migration, device or hwpoison entries, not swap
/// (`MAX_SWAPFILES` on x86-64 with device-private, migration, hwpoison and PTE markers).
pub const MAX_SWAPFILES: u64 = 23;

/// The per-PFN files, open.
#[derive(Debug)]
pub struct PageFiles {
    pub(super) flags: U64File,
    pub(super) count: U64File,
    pub(super) cgroup: Option<U64File>,
}

impl PageFiles {
    /// Open kpageflags and kpagecount (and kpagecgroup when `memcg`).
    pub fn open(root: &SysRoot, memcg: bool) -> Result<PageFiles> {
        Ok(PageFiles {
            flags: U64File::open_kpage(root, KpageFile::Flags)?,
            count: U64File::open_kpage(root, KpageFile::Count)?,
            cgroup: if memcg {
                Some(U64File::open_kpage(root, KpageFile::Cgroup)?)
            } else {
                None
            },
        })
    }
}

/// What one walk saw besides the figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Present pages whose PFN read as 0 (the reader lacks CAP_SYS_ADMIN).
    pub hidden: u64,
    /// Resident pages in large folios (KPF_THP).
    pub large_folio_pages: u64,
    /// Present pages whose PFN lies past the end of kpageflags (counted as small, unshared).
    pub past_end: u64,
    /// Two neighbouring pages of one large folio had different kpagecounts: the kernel reports
    /// per-page map counts (CONFIG_NO_PAGE_MAPCOUNT is off).
    pub folio_counts_differ: bool,
}

/// True for mappings smaps counts pages of: not `[vvar]`/`[vvar_vclock]` (VM_PFNMAP: smaps
/// shows Rss 0 there though pagemap reports PFNs), not `[vsyscall]` (the gate area is no VMA).
pub fn counted_vma(v: &Vma) -> bool {
    !matches!(v.kind, VmaKind::Vvar | VmaKind::Vsyscall) && !v.is_empty()
}

/// Key of a swap slot: type in the low 5 bits, offset above.
pub fn swap_key(e: PagemapEntry) -> Option<u64> {
    let t = e.swap_type()?;
    (t < MAX_SWAPFILES).then(|| e.raw() & ((1 << 55) - 1))
}

/// One address space's walker.
pub struct Walker<'a> {
    /// The per-PFN files.
    pub files: &'a PageFiles,
    /// Page-table references per swap slot, over every process (see [`count_swap_refs`]).
    pub swap_refs: &'a HashMap<u64, u32>,
    /// Entries per read.
    pub batch: usize,
    /// The kpage words of shared pages already read in this run.
    pub cache: SharedCache,
    /// Count pages mapped once (PM_MMAP_EXCLUSIVE) from pagemap alone, without kpageflags or
    /// kpagecount, where pagemap tells all smaps needs: anonymous pages (not PM_FILE), and
    /// page cache of files not on shmem ([`Backing`]). Every smaps figure stays exact (such a
    /// page is a normal page of map count 1: its PSS is the whole page), but THP, KSM and
    /// dirty are not read. hugetlb mappings, those whose file system cannot be told, and
    /// PMD-mapped ranges are looked up as usual.
    pub lean: bool,
    /// Which file mappings hold only page cache that is not swap-backed (lean walks count
    /// their pages mapped once from pagemap alone too).
    pub backing: Backing,
    /// Lookup buffers, kept across batches and processes.
    pub(super) scratch: Scratch,
}

impl Walker<'_> {
    /// Walk `vmas` of `pid`, calling `f(vma_index, memcg_inode, usage)` once per VMA and memcg
    /// seen in it (memcg 0 when kpagecgroup is not read) with that VMA's figures, in VMA order;
    /// a VMA with nothing resident is reported once, empty. PFNs are gathered across ranges
    /// and VMAs, a batch at a time, so a fragmented address space costs few reads.
    pub fn walk(
        &mut self,
        root: &SysRoot,
        pid: u32,
        vmas: &[Vma],
        mut f: impl FnMut(usize, u64, &Usage),
    ) -> Result<WalkStats> {
        let pm = Pagemap::open(root, pid)?;
        let ps = page_size();
        let mut st = State {
            stats: WalkStats::default(),
            parts: HashMap::new(),
            pending: Vec::new(),
        };
        for (i, v) in vmas.iter().enumerate() {
            if !counted_vma(v) {
                continue;
            }
            // Pages mapped once, counted from pagemap alone (lean walks): anonymous ones, and
            // page cache of files not on shmem.
            let (mut lean_anon, mut lean_file) = (0u64, 0u64);
            let lean = if self.lean {
                self.backing.lean(root, pid, v)
            } else {
                Lean::default()
            };
            for (r, maybe_pmd) in ranges(root, &pm, v)? {
                let lean = if maybe_pmd { Lean::default() } else { lean };
                let pages = (r.end.0 - r.start.0).div_ceil(ps);
                // Half a batch read, flushed at half a batch pending: at most a batch of pages
                // waits for its kpage words.
                let half = self.batch.div_ceil(2);
                let batch = half.min(pages as usize).max(1);
                pm.for_each_batch(r, batch, |_, entries| {
                    for e in entries {
                        let once = e.exclusive() && e.pfn().is_some();
                        if once && lean.anon && !e.file_shared() {
                            lean_anon += 1;
                        } else if once && lean.file && e.file_shared() {
                            lean_file += 1;
                        } else if let Some(p) = e.pfn() {
                            st.pending.push(Pending {
                                pfn: p.0,
                                vma: i,
                                exclusive: e.exclusive(),
                                plain_file: lean.file && e.file_shared(),
                            });
                        } else if e.pfn_hidden() {
                            st.stats.hidden += 1;
                        } else if let Some(k) = swap_key(*e) {
                            let refs = self.swap_refs.get(&k).copied().unwrap_or(1);
                            st.parts
                                .entry((i, 0))
                                .or_default()
                                .add_swap(ps, u64::from(refs));
                        }
                    }
                    if st.pending.len() >= half {
                        self.flush(&mut st)?;
                    }
                    Ok(())
                })?;
            }
            if lean_anon + lean_file > 0 {
                let u = st.parts.entry((i, 0)).or_default();
                u.add_exclusive_anon(lean_anon * ps);
                u.add_exclusive_file(lean_file * ps);
            }
        }
        self.flush(&mut st)?;
        let mut parts: Vec<((usize, u64), Usage)> = st.parts.into_iter().collect();
        parts.sort_unstable_by_key(|(k, _)| *k);
        // VMAs with nothing resident are still mappers (librank counts their processes).
        let mut parts = parts.iter().peekable();
        for (i, v) in vmas.iter().enumerate() {
            let mut any = false;
            while let Some(((_, cg), u)) = parts.next_if(|((j, _), _)| *j == i) {
                f(i, *cg, u);
                any = true;
            }
            if !any && counted_vma(v) {
                f(i, 0, &Usage::default());
            }
        }
        Ok(st.stats)
    }

    /// Look up the pending PFNs' flags, counts (and memcgs) and count them.
    fn flush(&mut self, st: &mut State) -> Result<()> {
        if st.pending.is_empty() {
            return Ok(());
        }
        let ps = page_size();
        lookup(self.files, &mut self.cache, &st.pending, &mut self.scratch)?;
        let words = std::mem::take(&mut self.scratch.words);
        let mut prev: Option<(u64, u64)> = None;
        // Pages come in VMA order: sum a run of one (VMA, memcg) locally, not a map entry per
        // page.
        let mut run: Option<((usize, u64), Usage)> = None;
        for (p, w) in st.pending.iter().zip(&words) {
            let (pfn, vma) = (p.pfn, p.vma);
            let (fl, n, cg) = match w.flags {
                Some(fl) => (PageFlags::from_bits_retain(fl), w.count, w.cgroup),
                None => {
                    st.stats.past_end += 1;
                    (PageFlags::empty(), 1, 0)
                }
            };
            if fl.contains(PageFlags::COMPOUND_TAIL | PageFlags::THP)
                && let Some((pp, pn)) = prev
                && pp + 1 == pfn
                && pn != n
            {
                st.stats.folio_counts_differ = true;
            }
            prev = fl.contains(PageFlags::THP).then_some((pfn, n));
            let key = (vma, cg);
            if run.as_ref().is_some_and(|(k, _)| *k != key)
                && let Some((k, u)) = run.take()
            {
                st.parts.entry(k).or_default().merge(&u);
            }
            let u = &mut run.get_or_insert_with(|| (key, Usage::default())).1;
            if u.add_page(ps, fl, n) == Counted::Resident && fl.contains(PageFlags::THP) {
                st.stats.large_folio_pages += 1;
            }
        }
        if let Some((k, u)) = run {
            st.parts.entry(k).or_default().merge(&u);
        }
        self.scratch.words = words;
        st.pending.clear();
        Ok(())
    }
}

/// A walk in progress: figures per (VMA index, memcg), PFNs waiting for their kpage words.
struct State {
    stats: WalkStats,
    parts: HashMap<(usize, u64), Usage>,
    pending: Vec<Pending>,
}

/// Populated ranges closer than this are read as one (a pread costs more than reading a few
/// hundred empty entries).
const MERGE_GAP_PAGES: u64 = 256;

/// A range to read, and whether it may hold PMD-mapped pages (PAGEMAP_SCAN's PAGE_IS_HUGE,
/// or not known): pagemap marks every page of a PMD mapping PM_MMAP_EXCLUSIVE or none by the
/// whole folio, not page by page (seen on 6.18: a THP whose pages a fork's child shares but
/// one reads exclusive throughout), so they are looked up as usual.
type ReadRange = (Range<VirtAddr>, bool);

fn merge_near(rs: impl Iterator<Item = ReadRange>, gap: u64) -> Vec<ReadRange> {
    let mut out: Vec<ReadRange> = Vec::new();
    for (r, huge) in rs {
        match out.last_mut() {
            Some((last, h)) if r.start.0 <= last.end.0.saturating_add(gap) => {
                last.end = last.end.max(r.end);
                *h |= huge;
            }
            _ => out.push((r, huge)),
        }
    }
    out
}

/// The parts of `v` worth reading: all of a small VMA (too small for a PMD mapping); else the
/// populated ranges (live: PAGEMAP_SCAN; snapshot: the pagemap file's data extents; all of it
/// when neither works).
fn ranges(root: &SysRoot, pm: &Pagemap, v: &Vma) -> Result<Vec<ReadRange>> {
    let ps = page_size();
    if v.len() / ps <= SMALL_VMA_PAGES {
        return Ok(vec![(v.start..v.end, false)]);
    }
    if root.is_live() {
        return Ok(match pm.populated_ranges(v.start..v.end)? {
            Some(rs) => merge_near(
                rs.into_iter()
                    .map(|r| (r.start..r.end, r.categories & category::HUGE != 0)),
                MERGE_GAP_PAGES * ps,
            ),
            None => vec![(v.start..v.end, true)],
        });
    }
    data_extents(pm.path(), v.start.0 / ps * 8..v.end.0.div_ceil(ps) * 8).map(|rs| {
        rs.into_iter()
            .map(|r| {
                (
                    VirtAddr(r.start / 8 * ps)..VirtAddr(r.end.div_ceil(8) * ps),
                    true,
                )
            })
            .collect()
    })
}

/// The byte ranges inside `range` of the file at `path` that hold data (SEEK_DATA/SEEK_HOLE);
/// the whole range when the file system cannot say.
fn data_extents(path: &std::path::Path, range: Range<u64>) -> Result<Vec<Range<u64>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let Ok(off) = libc::off_t::try_from(pos) else {
            break;
        };
        // SAFETY: lseek on an open fd takes and returns plain integers.
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data past pos
            }
            return Ok(vec![range]); // no SEEK_DATA here: read it all
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let (data, hole) = (data as u64, if hole < 0 { u64::MAX } else { hole as u64 });
        if data >= range.end {
            break;
        }
        out.push(data.max(range.start)..hole.min(range.end));
        pos = hole;
    }
    Ok(out)
}

/// Page-table references to each swap slot, over `pids` (all processes, for SwapPss to divide
/// by). Processes that vanish or cannot be read are skipped (their references are missed).
pub fn count_swap_refs(root: &SysRoot, pids: &[u32]) -> HashMap<u64, u32> {
    let mut refs: HashMap<u64, u32> = HashMap::new();
    let filter = ScanFilter {
        inverted: 0,
        required: category::SWAPPED,
        any_of: 0,
    };
    for &pid in pids {
        let Ok(vmas) = crate::maps::read_maps(root, pid) else {
            continue;
        };
        let Ok(pm) = Pagemap::open(root, pid) else {
            continue;
        };
        for v in vmas.iter().filter(|v| counted_vma(v)) {
            let rs = if root.is_live() {
                match pm.scan_ranges(v.start..v.end, filter) {
                    Ok(Some(rs)) => rs.into_iter().map(|r| r.start..r.end).collect(),
                    Ok(None) => vec![v.start..v.end],
                    Err(_) => break,
                }
            } else {
                match ranges(root, &pm, v) {
                    Ok(rs) => rs.into_iter().map(|(r, _)| r).collect(),
                    Err(_) => break,
                }
            };
            for r in rs {
                let _ = pm.for_each_batch(r, BATCH_PAGES, |_, es| {
                    for e in es {
                        if let Some(k) = swap_key(*e) {
                            *refs.entry(k).or_insert(0) += 1;
                        }
                    }
                    Ok(())
                });
            }
        }
    }
    refs
}
