//! Virtual-to-physical translation: every fact the kernel exposes about the pages behind
//! virtual addresses of a process.
//!
//! For each page: its VMA, the pagemap entry decoded (present, swapped, PFN, soft-dirty,
//! exclusive, uffd-wp, file/shared-anon, guard, swap type/offset), and for a present page with a
//! known PFN: `kpagecount`, `kpageflags` (raw word and names), the memcg inode and cgroup path
//! (`kpagecgroup`), the `/proc/iomem` region, and for compound pages (THP, hugetlb, large
//! folios) the head PFN and the folio size in pages.
//!
//! Reads are batched: pagemap in runs of [`BATCH_PAGES`] entries, then per kpage file and batch
//! the PFNs sorted and read in spans (PFNs up to 256 words apart share one `pread`, as
//! [`U64File::gather`] does for consecutive ones).
//!
//! ```no_run
//! use pgtool::{v2p::{Translator, parse_spec}, SysRoot};
//! let x = 42u64;
//! let spec = parse_spec(&format!("{:#x}", &x as *const u64 as u64))?;
//! let mut t = Translator::new(&SysRoot::live(), std::process::id())?;
//! t.translate(&spec, |rec| {
//!     println!("{:#x} -> {:?}", rec.vaddr, rec.phys_addr);
//!     Ok(())
//! })?;
//! for note in t.notes() { eprintln!("note: {note}"); }
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::addr::{Pfn, VirtAddr, page_shift, page_size};
use crate::cgroup::CgroupIndex;
use crate::error::{Error, PFN_HIDDEN, Result};
use crate::iomem::Iomem;
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::{self, Vma};
use crate::pagemap::{Pagemap, PagemapEntry};
use crate::root::SysRoot;
use serde::Serialize;

/// Pages translated per batch (one pagemap `pread`, one gather per kpage file).
pub const BATCH_PAGES: usize = 4096;

/// The lowest kernel-space address on x86-64 (4-level paging: user space ends at
/// 0x7fff_ffff_ffff). Other architectures: addresses with the top bit set.
#[cfg(target_arch = "x86_64")]
pub const KERNEL_START: u64 = 0x8000_0000_0000;
/// The lowest kernel-space address (architectures other than x86-64: top bit set).
#[cfg(not(target_arch = "x86_64"))]
pub const KERNEL_START: u64 = 1 << 63;

/// An address spec from the command line: one address, or a byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrSpec {
    /// The first byte asked for (its page offset is kept in the first record).
    pub start: u64,
    /// One past the last byte asked for (`start + 1` for a single address).
    pub end: u64,
    /// True for a single address, false for a range.
    pub single: bool,
}

/// Parse one number: hex with `0x`/`0X`, else decimal.
pub fn parse_addr(s: &str) -> Result<u64> {
    crate::addr::parse_number(s).ok_or_else(|| {
        Error::Usage(format!(
            "bad address {s:?}: expected hex with 0x (0x7ffc1000), decimal, ADDR+LEN or START-END"
        ))
    })
}

/// Parse `ADDR`, `ADDR+LEN` or `START-END` (END exclusive).
///
/// ```
/// use pgtool::v2p::parse_spec;
/// let r = parse_spec("0x1000+0x2000")?;
/// assert_eq!((r.start, r.end, r.single), (0x1000, 0x3000, false));
/// assert_eq!(parse_spec("4096")?.end, 4097);
/// # Ok::<(), pgtool::Error>(())
/// ```
pub fn parse_spec(s: &str) -> Result<AddrSpec> {
    let t = s.trim();
    // Name the whole spec in errors, not just the part that failed.
    let parse_addr = |part: &str| {
        parse_addr(part).map_err(|_| {
            Error::Usage(format!(
                "bad address {s:?}: expected hex with 0x (0x7ffc1000), decimal, ADDR+LEN or START-END"
            ))
        })
    };
    if let Some((a, l)) = t.split_once('+') {
        let start = parse_addr(a)?;
        let len = parse_addr(l)?;
        if len == 0 {
            return Err(Error::Usage(format!("bad range {s:?}: length is 0")));
        }
        let end = start.checked_add(len).ok_or_else(|| {
            Error::Usage(format!(
                "bad range {s:?}: runs past the end of the address space"
            ))
        })?;
        return Ok(AddrSpec {
            start,
            end,
            single: false,
        });
    }
    if let Some((a, b)) = t.split_once('-') {
        let start = parse_addr(a)?;
        let end = parse_addr(b)?;
        if end <= start {
            return Err(Error::Usage(format!(
                "bad range {s:?}: end {end:#x} is not above start {start:#x} (END is exclusive)"
            )));
        }
        return Ok(AddrSpec {
            start,
            end,
            single: false,
        });
    }
    let start = parse_addr(t)?;
    Ok(AddrSpec {
        start,
        end: start.saturating_add(1),
        single: true,
    })
}

/// Parse a PID argument: a positive number, or `self` (the calling process, live system only).
pub fn parse_pid(s: &str, root: &SysRoot) -> Result<u32> {
    if s == "self" {
        if !root.is_live() {
            return Err(Error::Usage(
                "`self` names the live pgtool process; with --root give a PID saved in the snapshot"
                    .into(),
            ));
        }
        return Ok(std::process::id());
    }
    match s.parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::Usage(format!(
            "bad PID {s:?}: expected a positive number or `self`"
        ))),
    }
}

/// The VMA part of a [`PageRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VmaInfo {
    /// First byte of the mapping.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// `rwxp` / `rwxs`.
    pub perms: String,
    /// The path or `[heap]`-style name; empty for anonymous memory.
    pub path: String,
}

impl From<&Vma> for VmaInfo {
    fn from(v: &Vma) -> VmaInfo {
        VmaInfo {
            start: v.start.0,
            end: v.end.0,
            perms: v.perms.clone(),
            path: v.path.clone(),
        }
    }
}

/// Everything known about one virtual page. Field names are pgtool's stable JSON names;
/// `None` (JSON `null`) means unknown or not applicable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PageRecord {
    /// The process.
    pub pid: u32,
    /// The address asked for (the first page of a range keeps its offset; later pages are
    /// page-aligned).
    pub vaddr: u64,
    /// Pagemap bit 63.
    pub present: bool,
    /// Pagemap bit 62.
    pub swapped: bool,
    /// The page frame, when present and readable (null when hidden from non-root readers).
    pub pfn: Option<u64>,
    /// `pfn << page_shift | (vaddr & page_mask)`.
    pub phys_addr: Option<u64>,
    /// Pagemap bit 55.
    pub soft_dirty: bool,
    /// Pagemap bit 56 (mapped by this process only).
    pub exclusive: bool,
    /// Pagemap bit 57.
    pub uffd_wp: bool,
    /// Pagemap bit 61 (file page or shared anonymous).
    pub file_shared: bool,
    /// Pagemap bit 58 (guard region, Linux >= 6.15).
    pub guard: bool,
    /// Swap type, for a swapped page.
    pub swap_type: Option<u64>,
    /// Swap offset, for a swapped page.
    pub swap_offset: Option<u64>,
    /// `/proc/kpagecount`: how many times the page is mapped.
    pub kpagecount: Option<u64>,
    /// Names of the `/proc/kpageflags` bits set (overloaded bits expanded as page-types -r
    /// does, without the pagemap-derived bits 61-63).
    pub flags: Option<Vec<String>>,
    /// The `/proc/kpageflags` word as the kernel gave it.
    pub flags_raw: Option<u64>,
    /// `/proc/kpagecgroup`: inode of the page's memcg (0: not charged).
    pub memcg_ino: Option<u64>,
    /// The cgroup directory with that inode.
    pub memcg_path: Option<String>,
    /// The `/proc/iomem` regions holding the physical address, outermost first, joined by ` > `.
    pub iomem: Option<String>,
    /// For a compound page (THP, hugetlb, large folio): the head page's PFN.
    pub head_pfn: Option<u64>,
    /// For a compound page: the number of base pages in the folio.
    pub folio_pages: Option<u64>,
    /// The raw pagemap word.
    pub pagemap_raw: u64,
    /// The mapping holding the page.
    pub vma: VmaInfo,
}

/// Translates addresses of one process; keeps the open files and caches between specs.
pub struct Translator {
    root: SysRoot,
    pid: u32,
    vmas: Vec<Vma>,
    pagemap: Pagemap,
    kpage: [KpageSlot; 3],
    iomem: Option<Option<Iomem>>,
    cgroups: Option<Option<CgroupIndex>>,
    folios: crate::folio::FolioCache,
    notes: Vec<String>,
    pfn_hidden: bool,
}

enum KpageSlot {
    Unopened,
    Open(U64File),
    Failed,
}

impl Translator {
    /// Open the maps and pagemap of `pid` under `root`.
    pub fn new(root: &SysRoot, pid: u32) -> Result<Translator> {
        if !root.is_live() && !root.proc().is_dir() {
            return Err(Error::io_hint(
                root.proc(),
                std::io::Error::from_raw_os_error(libc::ENOENT),
                "--root DIR must hold proc/ as `pgtool snapshot DIR` writes it",
            ));
        }
        if !root.pid_dir(pid).is_dir() {
            return Err(Error::NoSuchProcess { pid });
        }
        let vmas = maps::read_maps(root, pid)?;
        let pm_path = root.pid_file(pid, "pagemap");
        if !root.is_live() && !pm_path.exists() {
            let dir = root.snapshot_dir().map(|d| d.display().to_string());
            return Err(Error::io_hint(
                &pm_path,
                std::io::Error::from_raw_os_error(libc::ENOENT),
                format!(
                    "the snapshot has no pagemap for {pid}: save it with `pgtool snapshot {} --pid {pid}`",
                    dir.unwrap_or_default()
                ),
            ));
        }
        let pagemap = Pagemap::open(root, pid)?;
        Ok(Translator {
            root: root.clone(),
            pid,
            vmas,
            pagemap,
            kpage: [
                KpageSlot::Unopened,
                KpageSlot::Unopened,
                KpageSlot::Unopened,
            ],
            iomem: None,
            cgroups: None,
            folios: crate::folio::FolioCache::new(),
            notes: Vec::new(),
            pfn_hidden: false,
        })
    }

    /// The process's mappings.
    pub fn vmas(&self) -> &[Vma] {
        &self.vmas
    }

    /// Things worth telling the user once (PFNs hidden, a kpage file unreadable, iomem
    /// addresses hidden), in the order met.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// True when some present page's PFN read as 0 (reader lacks CAP_SYS_ADMIN).
    pub fn pfn_hidden(&self) -> bool {
        self.pfn_hidden
    }

    /// The mappings whose name matches (see [`Vma::matches_name`]), as specs.
    pub fn vma_specs(&self, name: &str) -> Result<Vec<AddrSpec>> {
        let v: Vec<AddrSpec> = self
            .vmas
            .iter()
            .filter(|v| v.matches_name(name) && !v.is_empty())
            .map(|v| AddrSpec {
                start: v.start.0,
                end: v.end.0,
                single: false,
            })
            .collect();
        if v.is_empty() {
            return Err(Error::NotFound(format!(
                "no mapping of {} matches {name:?} (see {})",
                self.pid,
                self.root.pid_file(self.pid, "maps").display()
            )));
        }
        Ok(v)
    }

    /// Translate every page of `spec`, calling `f` per page in address order. An address (or a
    /// range) no mapping covers is [`Error::NotMapped`]; pages in holes inside a range are
    /// skipped.
    pub fn translate(
        &mut self,
        spec: &AddrSpec,
        mut f: impl FnMut(&PageRecord) -> Result<()>,
    ) -> Result<()> {
        let pieces: Vec<(u64, u64, usize)> = self
            .vmas
            .iter()
            .enumerate()
            .filter(|(_, v)| v.start.0 < spec.end && spec.start < v.end.0)
            .map(|(i, v)| (spec.start.max(v.start.0), spec.end.min(v.end.0), i))
            .collect();
        if pieces.is_empty() {
            if spec.start >= KERNEL_START {
                return Err(Error::Usage(format!(
                    "address {:#x} is a kernel address: v2p translates user-space addresses of a \
                     process (user space ends below {KERNEL_START:#x})",
                    spec.start
                )));
            }
            return Err(Error::NotMapped {
                pid: self.pid,
                addr: spec.start,
            });
        }
        for (start, end, vi) in pieces {
            let vma = VmaInfo::from(&self.vmas[vi]);
            let ps = page_size();
            let first_vpn = VirtAddr(start).vpn();
            let end_vpn = end.div_ceil(ps);
            let mut vpn = first_vpn;
            while vpn < end_vpn {
                let stop = (vpn + BATCH_PAGES as u64).min(end_vpn);
                let mut batch: Vec<(u64, PagemapEntry)> = Vec::with_capacity((stop - vpn) as usize);
                self.pagemap.for_each_batch(
                    VirtAddr(vpn * ps)..VirtAddr(stop.saturating_mul(ps)),
                    BATCH_PAGES,
                    |first, es| {
                        for (k, e) in es.iter().enumerate() {
                            let page = first.0 + k as u64 * ps;
                            batch.push((page.max(start), *e));
                        }
                        Ok(())
                    },
                )?;
                // Past the end of user space (e.g. [vsyscall]) the kernel returns no entries.
                while (batch.len() as u64) < stop - vpn {
                    let page = (vpn + batch.len() as u64) * ps;
                    batch.push((page.max(start), PagemapEntry::from_raw(0)));
                }
                self.process_batch(&batch, &vma, &mut f)?;
                vpn = stop;
            }
        }
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &[(u64, PagemapEntry)],
        vma: &VmaInfo,
        f: &mut impl FnMut(&PageRecord) -> Result<()>,
    ) -> Result<()> {
        let pfns: Vec<u64> = batch
            .iter()
            .filter_map(|(_, e)| e.pfn())
            .map(|p| p.0)
            .collect();
        if batch.iter().any(|(_, e)| e.pfn_hidden()) && !self.pfn_hidden {
            self.pfn_hidden = true;
            self.notes.push(format!(
                "{}: {PFN_HIDDEN}; pfn, flags, kpagecount, memcg and iomem are unknown",
                self.pagemap.path().display()
            ));
        }
        let (flags, counts, cgroups) = if pfns.is_empty() {
            (None, None, None)
        } else {
            (
                self.gather(KpageFile::Flags, &pfns)?,
                self.gather(KpageFile::Count, &pfns)?,
                self.gather(KpageFile::Cgroup, &pfns)?,
            )
        };
        let shift = page_shift();
        let mask = page_size() - 1;
        let mut k = 0usize;
        for (vaddr, e) in batch {
            let mut rec = PageRecord {
                pid: self.pid,
                vaddr: *vaddr,
                present: e.present(),
                swapped: e.swapped(),
                pfn: None,
                phys_addr: None,
                soft_dirty: e.soft_dirty(),
                exclusive: e.exclusive(),
                uffd_wp: e.uffd_wp(),
                file_shared: e.file_shared(),
                guard: e.guard(),
                swap_type: e.swap_type(),
                swap_offset: e.swap_offset(),
                kpagecount: None,
                flags: None,
                flags_raw: None,
                memcg_ino: None,
                memcg_path: None,
                iomem: None,
                head_pfn: None,
                folio_pages: None,
                pagemap_raw: e.raw(),
                vma: vma.clone(),
            };
            if let Some(pfn) = e.pfn() {
                // A 55-bit PFN field can exceed 64-bit physical addresses only in a corrupt
                // file; leave phys_addr unknown then rather than wrap.
                let phys = (pfn.0 < 1 << (64 - shift)).then(|| (pfn.0 << shift) | (vaddr & mask));
                rec.pfn = Some(pfn.0);
                rec.phys_addr = phys;
                let fl = flags.as_ref().and_then(|v| v.get(k).copied().flatten());
                rec.kpagecount = counts.as_ref().and_then(|v| v.get(k).copied().flatten());
                rec.memcg_ino = cgroups.as_ref().and_then(|v| v.get(k).copied().flatten());
                k += 1;
                if let Some(raw) = fl {
                    let pf = PageFlags::from_bits_retain(raw);
                    rec.flags_raw = Some(raw);
                    rec.flags = Some(
                        pf.expand_overloaded(PagemapEntry::from_raw(0))
                            .names()
                            .map(|c| c.into_owned())
                            .collect(),
                    );
                    if pf.is_compound()
                        && let Some((head, pages)) = self.folio_of(pfn.0, pf)?
                    {
                        rec.head_pfn = Some(head);
                        rec.folio_pages = Some(pages);
                    }
                }
                if let Some(ino) = rec.memcg_ino.filter(|i| *i != 0) {
                    rec.memcg_path = self.cgroup_path(ino);
                }
                rec.iomem = phys.and_then(|p| self.iomem_of(p));
            }
            f(&rec)?;
        }
        Ok(())
    }

    fn slot(which: KpageFile) -> usize {
        match which {
            KpageFile::Flags => 0,
            KpageFile::Count => 1,
            KpageFile::Cgroup => 2,
        }
    }

    fn file(&mut self, which: KpageFile) -> Option<&U64File> {
        let i = Self::slot(which);
        if matches!(self.kpage[i], KpageSlot::Unopened) {
            self.kpage[i] = match U64File::open_kpage(&self.root, which) {
                Ok(f) => KpageSlot::Open(f),
                Err(e) => {
                    self.notes.push(format!("{e}; {} unknown", field_of(which)));
                    KpageSlot::Failed
                }
            };
        }
        match &self.kpage[i] {
            KpageSlot::Open(f) => Some(f),
            _ => None,
        }
    }

    fn gather(&mut self, which: KpageFile, pfns: &[u64]) -> Result<Option<Vec<Option<u64>>>> {
        let Some(file) = self.file(which) else {
            return Ok(None);
        };
        match file.gather(pfns) {
            Ok(v) => Ok(Some(v)),
            Err(e @ Error::Truncated { .. }) => Err(e),
            Err(e) => {
                self.notes.push(format!("{e}; {} unknown", field_of(which)));
                self.kpage[Self::slot(which)] = KpageSlot::Failed;
                Ok(None)
            }
        }
    }

    /// The head PFN and size of the compound page holding `pfn` (the one folio resolver).
    fn folio_of(&mut self, pfn: u64, flags: PageFlags) -> Result<Option<(u64, u64)>> {
        if self.file(KpageFile::Flags).is_none() {
            return Ok(None);
        }
        let KpageSlot::Open(file) = &self.kpage[Self::slot(KpageFile::Flags)] else {
            return Ok(None);
        };
        Ok(self
            .folios
            .folio_of(file, crate::addr::Pfn(pfn), flags)?
            .map(|f| (f.head.0, f.pages)))
    }

    fn cgroup_path(&mut self, ino: u64) -> Option<String> {
        if self.cgroups.is_none() {
            self.cgroups = Some(match CgroupIndex::build(&self.root) {
                Ok(i) => Some(i),
                Err(e) => {
                    self.notes.push(format!("{e}; memcg_path unknown"));
                    None
                }
            });
        }
        self.cgroups
            .as_ref()
            .and_then(|c| c.as_ref())
            .and_then(|c| c.path_of(ino))
            .map(|p| p.display().to_string())
    }

    fn iomem_of(&mut self, phys: u64) -> Option<String> {
        if self.iomem.is_none() {
            self.iomem = Some(match Iomem::read(&self.root) {
                Ok(io) if io.addresses_hidden() => {
                    self.notes.push(format!(
                        "{}: addresses read as 0 ({}); iomem unknown",
                        self.root.iomem().display(),
                        crate::error::NEEDS_ROOT
                    ));
                    None
                }
                Ok(io) => Some(io),
                Err(e) => {
                    self.notes.push(format!("{e}; iomem unknown"));
                    None
                }
            });
        }
        self.iomem
            .as_ref()
            .and_then(|i| i.as_ref())
            .and_then(|i| i.describe(phys))
    }
}

fn field_of(which: KpageFile) -> &'static str {
    match which {
        KpageFile::Flags => "flags",
        KpageFile::Count => "kpagecount",
        KpageFile::Cgroup => "memcg",
    }
}

/// The pagemap PFN of a record as a [`Pfn`], for callers that want the newtype.
pub fn record_pfn(r: &PageRecord) -> Option<Pfn> {
    r.pfn.map(Pfn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_addr("0x10").ok(), Some(16));
        assert_eq!(parse_addr("10").ok(), Some(10));
        assert!(parse_addr("0x").is_err());
        assert!(parse_addr("-1").is_err());
        assert!(parse_addr("1e3").is_err());
        let r = parse_spec("0x1000-0x3000").expect("range");
        assert_eq!((r.start, r.end, r.single), (0x1000, 0x3000, false));
        assert!(parse_spec("0x3000-0x1000").is_err());
        assert!(parse_spec("0x1000+0").is_err());
        assert!(parse_spec("0xffffffffffffffff+2").is_err());
    }
}
