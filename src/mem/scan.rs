//! Walk one address space page by page: maps -> pagemap (only the populated ranges: PAGEMAP_SCAN
//! live, the data extents of a snapshot's sparse pagemap file) -> kpageflags, kpagecount and
//! (for `--by memcg`) kpagecgroup, gathered per batch of PFNs. Memory is bounded by the batch.

use super::backing::{Backing, Lean};
use super::lookup::{Scratch, SharedCache};
use super::part::{self, Part, Piece};
use super::usage::Usage;
use crate::addr::{VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::kpage::{KpageFile, U64File};
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
    /// Threads a large address space may be split over (1: never split).
    pub threads: usize,
}

impl Walker<'_> {
    /// Walk `vmas` of `pid`, calling `f(vma_index, memcg_inode, usage)` once per VMA and memcg
    /// seen in it (memcg 0 when kpagecgroup is not read) with that VMA's figures, in VMA order;
    /// a VMA with nothing resident is reported once, empty. PFNs are gathered across ranges
    /// and VMAs, a batch at a time, so a fragmented address space costs few reads. A large
    /// address space is split into contiguous parts read by up to [`Walker::threads`] threads
    /// (each with its own batch buffers), whose figures are summed.
    pub fn walk(
        &mut self,
        root: &SysRoot,
        pid: u32,
        vmas: &[Vma],
        mut f: impl FnMut(usize, u64, &Usage),
    ) -> Result<WalkStats> {
        let pm = Pagemap::open(root, pid)?;
        let mut plan = Vec::new();
        for (i, v) in vmas.iter().enumerate() {
            if !counted_vma(v) {
                continue;
            }
            // Pages mapped once, counted from pagemap alone (lean walks): anonymous ones, and
            // page cache of files not on shmem.
            let lean = if self.lean {
                self.backing.lean(root, pid, v)
            } else {
                Lean::default()
            };
            for (range, maybe_pmd) in ranges(root, &pm, v)? {
                let lean = if maybe_pmd { Lean::default() } else { lean };
                plan.push(Piece {
                    vma: i,
                    range,
                    lean,
                });
            }
        }
        let (files, swap_refs, batch) = (self.files, self.swap_refs, self.batch);
        let pieces = part::split(&plan, self.threads, part::SPLIT_MIN_PAGES);
        let mut first = Part {
            files,
            swap_refs,
            batch,
            cache: &mut self.cache,
            scratch: &mut self.scratch,
        };
        let st = match pieces.split_first() {
            Some((own, rest)) if !rest.is_empty() => {
                // The first part on this thread with the kept buffers, the others on workers
                // with their own (a shared page seen by two parts is looked up by each).
                let pm = &pm;
                std::thread::scope(|s| -> Result<part::State> {
                    let workers: Vec<_> = rest
                        .iter()
                        .map(|p| {
                            s.spawn(move || {
                                let mut cache = SharedCache::new(batch);
                                let mut scratch = Scratch::default();
                                Part {
                                    files,
                                    swap_refs,
                                    batch,
                                    cache: &mut cache,
                                    scratch: &mut scratch,
                                }
                                .run(pm, p)
                            })
                        })
                        .collect();
                    let mut st = first.run(pm, own)?;
                    for w in workers {
                        let o = w.join().map_err(|_| {
                            Error::Usage("internal: a mem worker panicked".into())
                        })??;
                        st.absorb(o);
                    }
                    Ok(st)
                })?
            }
            _ => first.run(&pm, &plan)?,
        };
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
