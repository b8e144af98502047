//! Virtual-to-physical translation: every fact the kernel exposes about the pages behind
//! virtual addresses of a process.
//!
//! For each page: its VMA, the pagemap entry decoded (present, swapped, PFN, soft-dirty,
//! exclusive, uffd-wp, file/shared-anon, guard, swap type/offset), and for a present page with a
//! known PFN: `kpagecount`, `kpageflags` (raw word and names), the memcg inode and cgroup path
//! (`kpagecgroup`), the `/proc/iomem` region, and for compound pages (THP, hugetlb, large
//! folios) the head PFN and the folio size in pages.
//!
//! Streaming, whatever the range: pagemap is read in batches of [`BATCH_PAGES`] entries, then
//! per kpage file the batch's PFNs are sorted and read in spans (gaps chosen per file from its
//! cost per word, [`crate::kpage::KpageFile::gather_gap`]). Only the files the requested
//! [`Fields`] need are read ([`Needs`]); memcg paths, flag names and iomem regions are cached.
//! [`Collapser`] folds runs of like pages into one record for tables.
//!
//! ```no_run
//! use pgtool::{v2p::Translator, input::parse_addr_range, SysRoot};
//! let x = 42u64;
//! let spec = parse_addr_range(&format!("{:#x}", &x as *const u64 as u64))?;
//! let mut t = Translator::new(&SysRoot::live(), std::process::id())?;
//! t.translate(&spec, |rec| {
//!     eprintln!("{:#x} -> {:?}", rec.vaddr, rec.phys_addr);
//!     Ok(())
//! })?;
//! for note in t.notes() { eprintln!("note: {note}"); }
//! # Ok::<(), pgtool::Error>(())
//! ```

mod fields;
mod runs;
mod translate;

pub use fields::{Fact, Field, Fields, Needs, Projected};
pub use runs::Collapser;
pub use translate::Translator;

use crate::addr::Pfn;
use crate::maps::Vma;
use crate::pagemap::PagemapEntry;
use serde::Serialize;
use std::borrow::Cow;

/// Pages translated per batch (one pagemap `pread`, one gather per kpage file): bounds memory.
pub const BATCH_PAGES: usize = 4096;

/// The lowest kernel-space address on x86-64 (4-level paging: user space ends at
/// 0x7fff_ffff_ffff). Other architectures: addresses with the top bit set.
#[cfg(target_arch = "x86_64")]
pub const KERNEL_START: u64 = 0x8000_0000_0000;
/// The lowest kernel-space address (architectures other than x86-64: top bit set).
#[cfg(not(target_arch = "x86_64"))]
pub const KERNEL_START: u64 = 1 << 63;

/// An address spec: the input grammar's address range.
pub type AddrSpec = crate::input::AddrRange;

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

/// Everything known about one virtual page, or about a run of like pages ([`Collapser`]).
/// `None` means unknown, not applicable or not asked for (see [`Needs`]). Printed through
/// [`Projected`], whose keys are pgtool's stable field names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRecord<'a> {
    /// The process.
    pub pid: u32,
    /// The address asked for (the first page of a range keeps its offset; later pages are
    /// page-aligned).
    pub vaddr: u64,
    /// Pages this record stands for: 1, or the length of a collapsed run.
    pub pages: u64,
    /// The pagemap entry.
    pub entry: PagemapEntry,
    /// The page frame, when present and readable (None when hidden from non-root readers).
    pub pfn: Option<u64>,
    /// The PFN of the last page of a run (the page's own PFN for a single page).
    pub last_pfn: Option<u64>,
    /// `pfn << page_shift | (vaddr & page_mask)`.
    pub phys_addr: Option<u64>,
    /// `/proc/kpagecount`: how many times the page is mapped.
    pub kpagecount: Option<u64>,
    /// The `/proc/kpageflags` word as the kernel gave it.
    pub flags_raw: Option<u64>,
    /// Its names ([`crate::PageFlags::listing_names`] with the pagemap entry).
    pub flags: Option<Cow<'a, [String]>>,
    /// `/proc/kpagecgroup`: inode of the page's memcg (0: not charged).
    pub memcg_ino: Option<u64>,
    /// The cgroup directory with that inode.
    pub memcg_path: Option<Cow<'a, str>>,
    /// The `/proc/iomem` regions holding the physical address, outermost first, joined by ` > `.
    pub iomem: Option<Cow<'a, str>>,
    /// For a compound page (THP, hugetlb, large folio): the head page's PFN.
    pub head_pfn: Option<u64>,
    /// For a compound page: the number of base pages in the folio.
    pub folio_pages: Option<u64>,
    /// The mapping holding the page.
    pub vma: Cow<'a, VmaInfo>,
}

impl PageRecord<'_> {
    /// A copy that borrows nothing (to keep past the callback).
    pub fn into_owned(self) -> PageRecord<'static> {
        PageRecord {
            pid: self.pid,
            vaddr: self.vaddr,
            pages: self.pages,
            entry: self.entry,
            pfn: self.pfn,
            last_pfn: self.last_pfn,
            phys_addr: self.phys_addr,
            kpagecount: self.kpagecount,
            flags_raw: self.flags_raw,
            flags: self.flags.map(|f| Cow::Owned(f.into_owned())),
            memcg_ino: self.memcg_ino,
            memcg_path: self.memcg_path.map(|p| Cow::Owned(p.into_owned())),
            iomem: self.iomem.map(|p| Cow::Owned(p.into_owned())),
            head_pfn: self.head_pfn,
            folio_pages: self.folio_pages,
            vma: Cow::Owned(self.vma.into_owned()),
        }
    }

    /// Pagemap bit 63.
    pub fn present(&self) -> bool {
        self.entry.present()
    }

    /// Pagemap bit 62.
    pub fn swapped(&self) -> bool {
        self.entry.swapped()
    }

    /// `present`, `swapped`, `guard` or `none` (never touched, or dropped).
    pub fn state(&self) -> &'static str {
        if self.entry.present() {
            "present"
        } else if self.entry.swapped() {
            "swapped"
        } else if self.entry.guard() {
            "guard"
        } else {
            "none"
        }
    }
}

/// The pagemap PFN of a record as a [`Pfn`], for callers that want the newtype.
pub fn record_pfn(r: &PageRecord<'_>) -> Option<Pfn> {
    r.pfn.map(Pfn)
}
