//! Reverse lookup: which processes map these physical pages (PFN -> pid, comm, virtual
//! address, VMA).
//!
//! The kernel has an rmap but does not export it; user space has to read every process's
//! page tables. [`who`] does that in **one pass** over the processes for any number of PFNs:
//!
//! 1. The PFNs' `kpageflags`/`kpagecount`/`kpagecgroup` words are read with a few batched
//!    preads. A PFN inside a compound page (THP, mTHP, hugetlb) is widened to its folio: the
//!    head is the nearest `COMPOUND_HEAD` at or below it, the folio ends at the first PFN after
//!    it that is not `COMPOUND_TAIL`. Processes mapping *any* page of the folio match, and each
//!    match says which subpage it maps.
//! 2. The folios become a sorted list of disjoint PFN intervals; a pagemap PFN is matched with a
//!    bounds check, a bitmap test over the targets' span and, for the few that pass, a binary
//!    search, so 1 PFN or 10,000 cost about the same pass.
//! 3. Processes are listed once ([`crate::process`]); kernel threads are skipped, processes
//!    sharing one `mm` (CLONE_VM) are read once and reported under every sharing PID.
//! 4. Per address space: `maps`; mappings larger than [`DIRECT_READ_MAX`] are narrowed to
//!    their populated (present, non-zero-page) ranges with PAGEMAP_SCAN (Linux >= 6.7), smaller
//!    ones are read whole (measured faster: a pagemap read over a hole is cheap and adjacent
//!    small mappings merge into one read); then batched pagemap reads of those ranges. Without
//!    PAGEMAP_SCAN every mapping is read whole, in batches. Address spaces are read by the
//!    calling thread, joined by worker threads when the pass lasts (see `pass`).
//! 5. A process that exits mid-walk is skipped and counted ([`ScanStats::exited`]), one we may
//!    not read (EACCES, or PFNs hidden without CAP_SYS_ADMIN) is counted in
//!    [`ScanStats::denied`]; neither is fatal.
//!
//! ```no_run
//! use pgtool::{rmap, Pfn, SysRoot};
//! let report = rmap::who(&SysRoot::live(), &rmap::Query::pfns(vec![Pfn(0x1c20b)]))?;
//! for m in &report.mappings {
//!     println!("{} {} {} {:#x}", report.targets[m.target].pfn, m.pid, m.comm, m.vaddr.0);
//! }
//! # Ok::<(), pgtool::Error>(())
//! ```

mod notes;
mod pass;
mod records;
mod scan;

use crate::addr::{Pfn, VirtAddr};
use crate::error::{Error, Result};
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::Vma;
use crate::process::{self, ProcInfo};
use crate::root::SysRoot;
use pass::Pass;
use scan::Intervals;
use serde::Serialize;

use crate::folio::folio_of;
pub use crate::folio::{Folio, FolioKind, MAX_FOLIO_PAGES};
pub use notes::{Note, explain};
pub use records::{FolioRecord, TargetFacts, VmaRecord, WhoRecord};
pub use scan::{DIRECT_READ_MAX, scan_filter};

/// What to look up and where.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// The PFNs (any order, duplicates allowed).
    pub pfns: Vec<Pfn>,
    /// Only these PIDs (all processes when `None`).
    pub pids: Option<Vec<u32>>,
    /// Only processes whose `comm` equals this (a 15-character `comm` also matches a longer
    /// name it is the prefix of, since the kernel truncates `comm`).
    pub comm: Option<String>,
    /// Worker threads reading address spaces; 0 picks one per CPU (at most 8).
    pub threads: usize,
    /// Read every address space. Otherwise, when every PFN is a small page with a nonzero
    /// kpagecount, the pass stops once that many mappings were found for each PFN (kpagecount
    /// counts every mapping, so no other process can map it unless the page changes meanwhile).
    pub exhaustive: bool,
}

impl Query {
    /// Look up `pfns` in every process.
    pub fn pfns(pfns: Vec<Pfn>) -> Query {
        Query {
            pfns,
            ..Query::default()
        }
    }
}

/// One PFN asked about, with what the kernel says about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The PFN.
    pub pfn: Pfn,
    /// Past the end of memory (kpageflags has no entry for it).
    pub past_end: bool,
    /// Its kpageflags word (serialized as the names every listing uses,
    /// [`PageFlags::listing_names`]).
    #[serde(serialize_with = "listing_names")]
    pub flags: PageFlags,
    /// Its kpagecount: how many page-table mappings the kernel counts (for pages of large
    /// folios newer kernels may report an average).
    pub count: u64,
    /// Its kpagecgroup word (memcg inode, 0 when uncharged), if the file is readable.
    pub cgroup: Option<u64>,
    /// The folio when the page is part of a compound page.
    pub folio: Option<Folio>,
}

impl Target {
    /// The PFN range that matches this target: its folio, or just the page.
    pub fn extent(&self) -> (u64, u64) {
        match self.folio {
            Some(f) => (f.head.0, f.head.0 + f.pages),
            None => (self.pfn.0, self.pfn.0 + 1),
        }
    }
}

/// One mapping found: process `pid` maps page(s) of target `target` at `vaddr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// Index into [`Report::targets`].
    pub target: usize,
    /// The process.
    pub pid: u32,
    /// Its `comm`.
    pub comm: String,
    /// The lowest PID sharing this address space (equal to `pid` unless CLONE_VM sharers).
    pub mm: u32,
    /// The virtual address of the target PFN in this process when it maps that exact page;
    /// otherwise of the first page of the run it maps from the same folio.
    pub vaddr: VirtAddr,
    /// The PFN mapped at `vaddr` (the target itself, or another page of its folio).
    pub mapped_pfn: Pfn,
    /// `mapped_pfn - head` for a compound page.
    pub subpage: Option<u64>,
    /// Length of the run of consecutive folio pages mapped at consecutive addresses around
    /// `vaddr` (1 for a small page, 512 for a whole PMD-sized THP).
    pub pages: u64,
    /// Pagemap bit 56 at `vaddr`: mapped exclusively by this process.
    pub exclusive: bool,
    /// The mapping (`None` if `maps` changed under us).
    pub vma: Option<Vma>,
}

impl Mapping {
    /// True when this mapping maps the target PFN itself (not another page of its folio).
    pub fn maps_target(&self, targets: &[Target]) -> bool {
        targets.get(self.target).map(|t| t.pfn) == Some(self.mapped_pfn)
    }
}

/// What the pass over the processes saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Processes considered (after `pids`/`comm` filters).
    pub processes: u64,
    /// Address spaces read.
    pub address_spaces: u64,
    /// Kernel threads skipped.
    pub kernel_threads: u64,
    /// Processes read through another PID sharing their address space.
    pub shared_mm: u64,
    /// Processes that exited (or turned zombie) during the scan.
    pub exited: u64,
    /// Processes we were not allowed to read (EACCES/EPERM, or PFNs hidden).
    pub denied: u64,
    /// Processes that failed for another reason (first message kept in `errors`).
    pub failed: u64,
    /// Whether PAGEMAP_SCAN was used (false: plain batched reads).
    pub pagemap_scan: bool,
    /// The pass ended before reading every address space, because every mapping kpagecount
    /// counts had been found (see [`Query::exhaustive`]).
    pub stopped_early: bool,
    /// Messages of the failures counted in `failed` (at most 10).
    pub errors: Vec<String>,
    /// PIDs of the `pids` filter that name no process.
    pub missing_pids: Vec<u32>,
}

fn listing_names<S: serde::Serializer>(f: &PageFlags, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(f.listing_names(None))
}

/// Everything [`who`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The `pids` filter of the query, if any.
    pub pids: Option<Vec<u32>>,
    /// The `comm` filter of the query, if any.
    pub comm: Option<String>,
    /// The PFNs asked about, sorted, without duplicates.
    pub targets: Vec<Target>,
    /// Every mapping, sorted by target, then PID, then address.
    pub mappings: Vec<Mapping>,
    /// What the pass saw.
    pub stats: ScanStats,
}

impl Report {
    /// Mappings of the exact target PFN `i`, counted once per address space (what kpagecount
    /// counts).
    pub fn found_mappings(&self, i: usize) -> u64 {
        self.mappings_slice(i)
            .iter()
            .filter(|m| m.mm == m.pid && m.maps_target(&self.targets))
            .count() as u64
    }

    /// The mappings of target `i` (a binary search: `mappings` is sorted by target).
    pub fn mappings_of(&self, i: usize) -> impl Iterator<Item = &Mapping> {
        self.mappings_slice(i).iter()
    }

    fn mappings_slice(&self, i: usize) -> &[Mapping] {
        let lo = self.mappings.partition_point(|m| m.target < i);
        let hi = self.mappings.partition_point(|m| m.target <= i);
        &self.mappings[lo..hi.max(lo)]
    }
}

/// Find every process mapping the PFNs of `q` (see the module docs).
pub fn who(root: &SysRoot, q: &Query) -> Result<Report> {
    let targets = read_targets(root, &q.pfns)?;
    let intervals = Intervals::new(&targets);
    let mut stats = ScanStats::default();

    // Processes.
    let procs: Vec<ProcInfo> = match &q.pids {
        Some(pids) => {
            let mut v = Vec::new();
            let mut pids = pids.clone();
            pids.sort_unstable();
            pids.dedup();
            for pid in pids {
                match process::get(root, pid) {
                    Ok(p) => v.push(p),
                    Err(e) if e.is_process_gone() => {
                        stats.exited += 1;
                        stats.missing_pids.push(pid);
                    }
                    Err(e) => {
                        stats.failed += 1;
                        push_error(&mut stats, e.to_string());
                    }
                }
            }
            v
        }
        None => {
            let (v, ls) = process::list_with_stats(root)?;
            stats.exited += ls.exited;
            stats.failed += ls.unreadable;
            v
        }
    };
    let procs: Vec<ProcInfo> = procs
        .into_iter()
        .filter(|p| q.comm.as_deref().is_none_or(|c| comm_matches(&p.comm, c)))
        .collect();
    stats.processes = procs.len() as u64;
    stats.kernel_threads = procs.iter().filter(|p| p.kernel_thread).count() as u64;
    let groups = process::group_by_mm(&procs, root.is_live());
    stats.shared_mm = groups.iter().map(|g| g.len() as u64 - 1).sum();

    if intervals.is_empty() {
        return Ok(Report {
            pids: q.pids.clone(),
            comm: q.comm.clone(),
            targets,
            mappings: Vec::new(),
            stats,
        });
    }

    let mut groups = groups;
    // Early stop: when every target is a small page that kpagecount says is mapped, the pass
    // ends once that many mappings (one per address space) have been found for each.
    let early = !q.exhaustive
        && targets.iter().any(|t| !t.past_end)
        && targets
            .iter()
            .filter(|t| !t.past_end)
            .all(|t| t.count > 0 && t.folio.is_none() && !t.flags.contains(PageFlags::ZERO_PAGE));
    if early && root.is_live() {
        // The pass may end as soon as every mapping is found: read the smallest address
        // spaces first (resident pages from the listing's `stat`), so a page of a small
        // process is found without waiting for the large ones, and a large one being read
        // when the last mapping turns up is left at its next batch (see scan_mm's `stop`).
        groups.sort_by_key(|g| (g[0].rss_pages.unwrap_or(u64::MAX), g[0].pid));
    }
    let pass = Pass::new(root, &targets, &intervals, &groups, early);
    // Asked only when the pass outlives its inline start (it reads cgroup files).
    let found = pass.run(|| crate::threads::pick(q.threads, 8));
    merge_stats(&mut stats, found.stats);
    stats.stopped_early = pass.stopped_early();
    let mut mappings = found.mappings;
    // (target, pid, vaddr) is unique, so an unstable sort gives the one order.
    mappings.sort_unstable_by_key(|m| (m.target, m.pid, m.vaddr));
    Ok(Report {
        pids: q.pids.clone(),
        comm: q.comm.clone(),
        targets,
        mappings,
        stats,
    })
}

/// The message for a process of a snapshot whose files are missing: name the file.
fn snapshot_gap(root: &SysRoot, pid: u32, e: &Error) -> String {
    for name in ["maps", "pagemap"] {
        let f = root.pid_file(pid, name);
        if !f.exists() {
            return format!("{}: missing from the snapshot", f.display());
        }
    }
    e.to_string()
}

fn push_error(st: &mut ScanStats, msg: String) {
    if st.errors.len() < 10 {
        st.errors.push(msg);
    }
}

fn merge_stats(into: &mut ScanStats, from: ScanStats) {
    into.address_spaces += from.address_spaces;
    into.exited += from.exited;
    into.denied += from.denied;
    into.failed += from.failed;
    into.pagemap_scan |= from.pagemap_scan;
    for e in from.errors {
        push_error(into, e);
    }
}

fn is_permission(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)))
}

/// Does the process name `comm` (as the kernel keeps it, at most 15 bytes) match `want`?
pub fn comm_matches(comm: &str, want: &str) -> bool {
    comm == want || (comm.len() == 15 && want.starts_with(comm))
}

/// Read flags, count, cgroup and folio extent of each PFN (sorted, deduplicated). Many PFNs
/// are split over worker threads, each with its own file descriptors (the kernel's per-PFN
/// cost, not the syscalls, dominates scattered lookups).
pub fn read_targets(root: &SysRoot, pfns: &[Pfn]) -> Result<Vec<Target>> {
    let mut pfns = pfns.to_vec();
    pfns.sort_unstable();
    pfns.dedup();
    // Below two parts' worth, no thread is started, and the CPU count (which reads cgroup
    // files) is not asked for.
    if pfns.len() < 2 * TARGETS_PER_THREAD {
        return read_targets_sorted(root, &pfns);
    }
    // The first part is read in this thread (threads::split_map).
    let parts = crate::threads::split_map(&pfns, TARGETS_PER_THREAD, 8, |c| {
        read_targets_sorted(root, c)
    });
    let mut out = Vec::new();
    out.try_reserve_exact(pfns.len())
        .map_err(|_| too_many(pfns.len()))?;
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// The fewest PFNs worth a thread of their own in [`read_targets`].
const TARGETS_PER_THREAD: usize = 256;

/// The error of a lookup too big for the memory pgtool may use (`ulimit -v`).
fn too_many(n: usize) -> Error {
    Error::Usage(format!(
        "not enough memory to look up {n} PFNs; split the range"
    ))
}

fn read_targets_sorted(root: &SysRoot, pfns: &[Pfn]) -> Result<Vec<Target>> {
    // A lookup of millions of PFNs under a memory limit fails with a message, not an abort:
    // try the whole working set of this function (targets, indices, three gathered words)
    // at once before allocating any of it.
    let per_pfn = std::mem::size_of::<Target>() + 8 + 3 * std::mem::size_of::<Option<u64>>();
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(pfns.len().saturating_mul(per_pfn))
        .map_err(|_| too_many(pfns.len()))?;
    drop(probe);
    let idx: Vec<u64> = pfns.iter().map(|p| p.0).collect();
    let flags_file = U64File::open_kpage(root, KpageFile::Flags)?;
    let count_file = U64File::open_kpage(root, KpageFile::Count)?;
    let cgroup_file = U64File::open_kpage(root, KpageFile::Cgroup).ok();
    let flags = flags_file.gather(&idx)?;
    let counts = count_file.gather(&idx)?;
    let cgroups = match &cgroup_file {
        Some(f) => f.gather(&idx).unwrap_or_else(|_| vec![None; idx.len()]),
        None => vec![None; idx.len()],
    };
    let mut out = Vec::new();
    out.try_reserve_exact(pfns.len())
        .map_err(|_| too_many(pfns.len()))?;
    let mut last_folio: Option<Folio> = None;
    for (i, pfn) in pfns.iter().enumerate() {
        let Some(raw) = flags[i] else {
            out.push(Target {
                pfn: *pfn,
                past_end: true,
                flags: PageFlags::empty(),
                count: 0,
                cgroup: None,
                folio: None,
            });
            continue;
        };
        let f = PageFlags::from_bits_retain(raw);
        let folio = if f.is_compound() {
            // PFNs are sorted: many queries in one folio reuse the previous extent.
            match last_folio {
                Some(lf) if lf.head.0 <= pfn.0 && pfn.0 < lf.head.0 + lf.pages => Some(lf),
                _ => folio_of(&flags_file, *pfn, f)?,
            }
        } else {
            None
        };
        if folio.is_some() {
            last_folio = folio;
        }
        out.push(Target {
            pfn: *pfn,
            past_end: false,
            flags: f,
            count: counts[i].unwrap_or(0),
            cgroup: cgroups[i],
            folio,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_truncation() {
        assert!(comm_matches("bash", "bash"));
        assert!(!comm_matches("bash", "ba"));
        assert!(comm_matches("0123456789abcde", "0123456789abcdefgh"));
    }
}
