//! What `pgtool idle mark` and `pgtool idle read` ask for ([`Source`]), the records they list
//! ([`IdleCountRecord`], [`IdlePageRecord`]) and the resolved [`Selection`] a mark shows
//! before it writes.
//!
//! Every way of naming nothing is an error, as in `v2p` and `who`: an address no mapping holds
//! is [`Error::NotMapped`], a PFN range without System RAM, a `--vma` no mapping matches, a
//! zombie or a kernel thread (no user memory) and a selection without one resident page are
//! [`Error::NotFound`] (exit 1).

use super::pageset::{Counts, PageSet, count, ram_ranges};
use super::{IdleBitmap, drain_lru_batches};
use crate::addr::{Pfn, VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::maps::{Vma, read_maps};
use crate::output::Record;
use crate::root::SysRoot;
use serde::Serialize;
use std::ops::Range;

pub use crate::v2p::VmaInfo as VmaRecord;

/// PFNs read per chunk when a PFN range is counted or listed: bounded memory whatever the range.
const PFN_CHUNK: u64 = 1 << 18;

/// Which pages to mark or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The present pages of a process.
    Pid {
        /// The process.
        pid: u32,
        /// Only mappings matching one of these names ([`Vma::matches_name`]); empty: all.
        vma: Vec<String>,
        /// Only this virtual address range `[start, end)` (widened to whole pages).
        addr: Option<Range<u64>>,
    },
    /// PFN ranges `[start, end)` (sorted, merged: as `input::parse_pfn_args` returns them);
    /// holes in System RAM are skipped.
    Pfns(Vec<Range<u64>>),
    /// The pages charged to a memcg.
    Cgroup {
        /// The memcg's inode (as in `/proc/kpagecgroup`).
        inode: u64,
        /// How the user named it (for messages).
        name: String,
    },
}

/// `vma` of a record: the mapping, or an object of nulls (the total row, PFN and memcg
/// sources), so every row has the same keys and CSV columns stay aligned with the header.
pub fn vma_or_nulls<S: serde::Serializer>(
    v: &Option<VmaRecord>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match v {
        Some(v) => v.serialize(s),
        None => {
            let mut m = s.serialize_struct("VmaInfo", 4)?;
            for k in ["start", "end", "perms", "path"] {
                m.serialize_field(k, &None::<u64>)?;
            }
            m.end()
        }
    }
}

/// Counts of one mapping (or of everything selected: `vma` of nulls): `idle read`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdleCountRecord {
    /// The mapping; nulls on the total row (and for PFN and memcg sources).
    #[serde(serialize_with = "vma_or_nulls")]
    pub vma: Option<VmaRecord>,
    /// Pages tracked.
    pub pages: u64,
    /// Pages whose (folio head's) bit is still set since they were marked.
    pub idle_pages: u64,
    /// Pages accessed since they were marked (or not trackable: not on an LRU list).
    pub accessed_pages: u64,
}

impl IdleCountRecord {
    fn new(vma: Option<VmaRecord>, c: Counts) -> IdleCountRecord {
        IdleCountRecord {
            vma,
            pages: c.pages,
            idle_pages: c.idle_pages,
            accessed_pages: c.accessed_pages,
        }
    }
}

impl Record for IdleCountRecord {
    const TABLE_COLUMNS: &'static [&'static str] = &[
        "vma_start",
        "vma_perms",
        "vma_path",
        "pages",
        "idle_pages",
        "accessed_pages",
    ];
}

/// One tracked page: `idle read -L`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdlePageRecord {
    /// Where the page is mapped (process sources), else `null`.
    pub vaddr: Option<u64>,
    /// The page frame.
    pub pfn: u64,
    /// The frame whose idle bit stands for this page: the head of its large folio, else itself.
    pub head_pfn: u64,
    /// Still idle since it was marked.
    pub idle: bool,
}

impl Record for IdlePageRecord {}

/// The mappings of `pid`, or why it has none: a zombie or a kernel thread has no user memory
/// to track ([`Error::NotFound`], exit 1), a missing process is [`Error::NoSuchProcess`].
pub fn process_vmas(root: &SysRoot, pid: u32) -> Result<Vec<Vma>> {
    let vmas = read_maps(root, pid)?;
    if !vmas.is_empty() {
        return Ok(vmas);
    }
    let who = describe_pid(root, pid);
    let status = std::fs::read(root.pid_file(pid, "status")).unwrap_or_default();
    let status = String::from_utf8_lossy(&status);
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    let kthread = field("Kthread:").as_deref() == Some("1")
        || crate::process::get(root, pid).is_ok_and(|p| p.kernel_thread);
    let why = if field("State:").is_some_and(|s| s.starts_with('Z')) {
        "is a zombie: it has exited and has no memory left to track"
    } else if kthread {
        "is a kernel thread: it has no user memory (its pages are kernel memory; see `pgtool types`)"
    } else {
        "has no mappings"
    };
    Err(Error::NotFound(format!("{who} {why}")))
}

/// `pid 1234 (comm)`, or `pid 1234` when its comm cannot be read.
pub fn describe_pid(root: &SysRoot, pid: u32) -> String {
    match comm_of(root, pid) {
        Some(c) => format!("pid {pid} ({c})"),
        None => format!("pid {pid}"),
    }
}

/// The process's `comm` (lossy UTF-8), if readable.
pub fn comm_of(root: &SysRoot, pid: u32) -> Option<String> {
    let b = std::fs::read(root.pid_file(pid, "comm")).ok()?;
    let s = String::from_utf8_lossy(&b)
        .trim_end_matches('\n')
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// The mappings of `vmas` selected by `names` (all when empty); an error naming the names when
/// none matches.
pub fn select_vmas(root: &SysRoot, pid: u32, vmas: Vec<Vma>, names: &[String]) -> Result<Vec<Vma>> {
    if names.is_empty() {
        return Ok(vmas);
    }
    let n = vmas.len();
    let sel: Vec<Vma> = vmas
        .into_iter()
        .filter(|v| names.iter().any(|name| v.matches_name(name)))
        .collect();
    if sel.is_empty() {
        return Err(Error::NotFound(format!(
            "no mapping of {} matches --vma {} (it has {n} mappings; see /proc/{pid}/maps: \
             give a path, a file-name substring, [heap], [stack] or [anon])",
            describe_pid(root, pid),
            names
                .iter()
                .map(|s| crate::input::quote(s))
                .collect::<Vec<_>>()
                .join(", "),
        )));
    }
    Ok(sel)
}

fn page_range(r: &Range<u64>) -> Range<VirtAddr> {
    let ps = page_size();
    VirtAddr(r.start & !(ps - 1))..VirtAddr(r.end.div_ceil(ps).saturating_mul(ps).max(r.end))
}

/// The System RAM parts of PFN ranges, or an error when no page of them is RAM.
fn ram_parts(root: &SysRoot, ranges: &[Range<u64>]) -> Result<Vec<Range<u64>>> {
    let ram = ram_ranges(root)?;
    let mut out = Vec::new();
    for r in ranges {
        for m in &ram {
            let (s, e) = (r.start.max(m.start.0), r.end.min(m.end.0));
            if s < e {
                out.push(s..e);
            }
        }
    }
    if out.is_empty() {
        let last = ram.iter().map(|r| r.end.0).max().unwrap_or(0);
        return Err(Error::NotFound(format!(
            "{} holds no System RAM (RAM ends at PFN {last:#x}; see /proc/iomem)",
            describe_pfns(ranges)
        )));
    }
    Ok(out)
}

fn describe_pfns(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .take(4)
        .map(|r| {
            if r.end - r.start == 1 {
                format!("{:#x}", r.start)
            } else {
                format!("{:#x}-{:#x}", r.start, r.end - 1)
            }
        })
        .collect();
    let more = if ranges.len() > 4 { ", ..." } else { "" };
    let word = if ranges.len() == 1 && ranges[0].end - ranges[0].start == 1 {
        "PFN"
    } else {
        "PFN range"
    };
    format!("{word} {}{more}", parts.join(", "))
}

impl Source {
    /// The pages of a process source, grouped by VMA, or why there are none.
    fn pid_pages(
        root: &SysRoot,
        pid: u32,
        names: &[String],
        addr: &Option<Range<u64>>,
    ) -> Result<PageSet> {
        let vmas = select_vmas(root, pid, process_vmas(root, pid)?, names)?;
        let range = addr.as_ref().map(page_range);
        if let (Some(r), Some(a)) = (&range, addr)
            && !vmas.iter().any(|v| v.start < r.end && r.start < v.end)
        {
            return Err(Error::NotMapped { pid, addr: a.start });
        }
        let set = PageSet::from_vmas(root, pid, vmas, range)?;
        if set.is_empty() {
            return Err(Error::NotFound(format!(
                "{}: no resident page in {}: nothing to track",
                describe_pid(root, pid),
                Source::Pid {
                    pid,
                    vma: names.to_vec(),
                    addr: addr.clone()
                }
                .describe_selection()
            )));
        }
        Ok(set)
    }

    fn describe_selection(&self) -> String {
        match self {
            Source::Pid { vma, addr, .. } => {
                let mut parts = Vec::new();
                if let Some(a) = addr {
                    parts.push(format!("{:#x}-{:#x}", a.start, a.end));
                }
                if !vma.is_empty() {
                    parts.push(format!("--vma {}", vma.join(",")));
                }
                if parts.is_empty() {
                    "its mappings".into()
                } else {
                    parts.join(" ")
                }
            }
            Source::Pfns(r) => describe_pfns(r),
            Source::Cgroup { inode, name } => format!("memcg {name} (inode {inode})"),
        }
    }

    /// The whole page set of a process or memcg source (PFN sources: of their RAM parts).
    pub fn page_set(&self, root: &SysRoot) -> Result<PageSet> {
        match Selection::new(root, self)?.target {
            Target::Set(set) => Ok(set),
            Target::Ranges(parts) => {
                let mut set = PageSet::default();
                for r in parts {
                    let part = PageSet::from_pfn_range(root, Pfn(r.start)..Pfn(r.end))?;
                    set.groups.extend(part.groups);
                }
                Ok(set)
            }
        }
    }
}

fn for_each_chunk(r: Range<u64>, mut f: impl FnMut(u64, u64) -> Result<()>) -> Result<()> {
    let mut s = r.start;
    while s < r.end {
        let e = r.end.min(s.saturating_add(PFN_CHUNK));
        f(s, e)?;
        s = e;
    }
    Ok(())
}

/// The pages a [`Source`] names, resolved before the bitmap is touched: what `idle mark` shows
/// before it writes, and what `idle read` reads. Naming nothing is an error here.
#[derive(Debug)]
pub struct Selection {
    what: String,
    pages: u64,
    target: Target,
}

#[derive(Debug)]
enum Target {
    /// PFN ranges (System RAM parts): all-ones words to mark, read in chunks, no page list.
    Ranges(Vec<Range<u64>>),
    /// A process's or memcg's pages (marked and read by their folio heads' bits).
    Set(PageSet),
}

impl Selection {
    /// Resolve `source` to the pages it names, or say why it names none.
    pub fn new(root: &SysRoot, source: &Source) -> Result<Selection> {
        let (pages, target) = match source {
            Source::Pfns(ranges) => {
                let parts = ram_parts(root, ranges)?;
                let n = parts.iter().map(|r| r.end - r.start).sum();
                (n, Target::Ranges(parts))
            }
            Source::Pid { pid, vma, addr } => {
                let set = Source::pid_pages(root, *pid, vma, addr)?;
                (set.len() as u64, Target::Set(set))
            }
            Source::Cgroup { inode, .. } => {
                let set = PageSet::from_cgroup(root, *inode)?;
                if set.is_empty() {
                    return Err(Error::NotFound(format!(
                        "no page is charged to {} (see /proc/kpagecgroup)",
                        source.describe_selection()
                    )));
                }
                (set.len() as u64, Target::Set(set))
            }
        };
        let what = match source {
            Source::Pid { pid, .. } => format!(
                "the {pages} resident pages of {} in {}",
                describe_pid(root, *pid),
                source.describe_selection()
            ),
            Source::Pfns(_) => format!(
                "{pages} pages of System RAM in {}",
                source.describe_selection()
            ),
            Source::Cgroup { .. } => format!(
                "the {pages} pages charged to {}",
                source.describe_selection()
            ),
        };
        Ok(Selection {
            what,
            pages,
            target,
        })
    }

    /// Pages selected.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// What is selected, in the user's units (pid and addresses, PFNs or memcg).
    pub fn describe(&self) -> &str {
        &self.what
    }

    /// Mark the pages idle (large folios by their head's bit).
    pub fn mark(&self, bitmap: &IdleBitmap) -> Result<()> {
        match &self.target {
            Target::Ranges(parts) => {
                drain_lru_batches();
                for r in parts {
                    bitmap.mark_range(Pfn(r.start)..Pfn(r.end))?;
                }
                Ok(())
            }
            Target::Set(set) => set.mark(bitmap),
        }
    }

    /// Count idle and accessed pages: one record per mapping with resident pages (process
    /// sources), then the total (a `vma` of nulls). PFN ranges are read in chunks.
    pub fn read_counts(&self, root: &SysRoot, bitmap: &IdleBitmap) -> Result<Vec<IdleCountRecord>> {
        let mut out = Vec::new();
        let mut total = Counts::default();
        let mut add = |vma: Option<&Vma>, bits: &[bool], out: &mut Vec<IdleCountRecord>| {
            let c = count(bits);
            total.pages += c.pages;
            total.idle_pages += c.idle_pages;
            total.accessed_pages += c.accessed_pages;
            if let Some(v) = vma
                && c.pages > 0
            {
                out.push(IdleCountRecord::new(Some(VmaRecord::from(v)), c));
            }
        };
        match &self.target {
            Target::Ranges(parts) => {
                for r in parts {
                    for_each_chunk(r.clone(), |s, e| {
                        let set = PageSet::from_pfn_range(root, Pfn(s)..Pfn(e))?;
                        add(None, &set.read(bitmap)?.concat(), &mut out);
                        Ok(())
                    })?;
                }
            }
            Target::Set(set) => {
                for ((vma, _), bits) in set.groups.iter().zip(set.read(bitmap)?) {
                    add(vma.as_ref(), &bits, &mut out);
                }
            }
        }
        out.push(IdleCountRecord::new(None, total));
        Ok(out)
    }

    /// Every selected page with its idle bit, in order, handed to `emit`; returns how many.
    /// PFN ranges are read in chunks, never held whole.
    pub fn read_pages(
        &self,
        root: &SysRoot,
        bitmap: &IdleBitmap,
        emit: &mut dyn FnMut(&IdlePageRecord) -> Result<()>,
    ) -> Result<u64> {
        let mut n = 0u64;
        let mut each = |set: &PageSet| -> Result<()> {
            let bits = set.read(bitmap)?;
            for (g, b) in set.groups.iter().zip(&bits) {
                for (p, idle) in g.1.iter().zip(b) {
                    emit(&IdlePageRecord {
                        vaddr: p.vaddr.map(|v| v.0),
                        pfn: p.pfn.0,
                        head_pfn: p.head.0,
                        idle: *idle,
                    })?;
                    n += 1;
                }
            }
            Ok(())
        };
        match &self.target {
            Target::Ranges(parts) => {
                for r in parts {
                    for_each_chunk(r.clone(), |s, e| {
                        each(&PageSet::from_pfn_range(root, Pfn(s)..Pfn(e))?)
                    })?;
                }
            }
            Target::Set(set) => each(set)?,
        }
        Ok(n)
    }
}
