//! `/proc/PID/pagemap`: one u64 per virtual page, decoded as [`PagemapEntry`]; batched reads
//! over address ranges; and the PAGEMAP_SCAN ioctl (Linux >= 6.7) to find the populated ranges
//! of a sparse address space without reading one entry per page.
//!
//! ```no_run
//! use pgtool::{pagemap::Pagemap, SysRoot, VirtAddr};
//! let pm = Pagemap::open(&SysRoot::live(), std::process::id())?;
//! let x = 42u64;
//! let e = pm.entry(VirtAddr(&x as *const u64 as u64))?;
//! println!("present {} pfn {:?}", e.present(), e.pfn());
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::addr::{Pfn, VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::kpage::U64File;
use crate::root::SysRoot;
use serde::Serialize;
use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::path::Path;

/// One pagemap word (see the kernel's Documentation/admin-guide/mm/pagemap.rst).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct PagemapEntry(u64);

const PFN_MASK: u64 = (1 << 55) - 1;

impl PagemapEntry {
    /// Wrap a raw word.
    pub const fn from_raw(raw: u64) -> PagemapEntry {
        PagemapEntry(raw)
    }
    /// The raw word.
    pub fn raw(self) -> u64 {
        self.0
    }
    fn bit(self, b: u32) -> bool {
        self.0 & (1 << b) != 0
    }
    /// Bit 63: the page is present in RAM.
    pub fn present(self) -> bool {
        self.bit(63)
    }
    /// Bit 62: the page is swapped out.
    pub fn swapped(self) -> bool {
        self.bit(62)
    }
    /// Bit 61: a file page or shared anonymous page.
    pub fn file_shared(self) -> bool {
        self.bit(61)
    }
    /// Bit 58: a guard region (MADV_GUARD_INSTALL, Linux >= 6.15).
    pub fn guard(self) -> bool {
        self.bit(58)
    }
    /// Bit 57: write-protected by userfaultfd.
    pub fn uffd_wp(self) -> bool {
        self.bit(57)
    }
    /// Bit 56: mapped exclusively (by this process only).
    pub fn exclusive(self) -> bool {
        self.bit(56)
    }
    /// Bit 55: soft-dirty (written since the last clear_refs 4).
    pub fn soft_dirty(self) -> bool {
        self.bit(55)
    }
    /// Bits 0-54 as a PFN, for a present page. `None` when not present, and also when the
    /// field reads 0: the kernel zeroes it for readers without CAP_SYS_ADMIN, and PFN 0 is
    /// never a user page, so 0 means "hidden", not PFN 0 (see [`PagemapEntry::pfn_hidden`]).
    pub fn pfn(self) -> Option<Pfn> {
        let pfn = self.0 & PFN_MASK;
        (self.present() && pfn != 0).then_some(Pfn(pfn))
    }
    /// Present, but the PFN field reads 0: the reader lacks CAP_SYS_ADMIN.
    pub fn pfn_hidden(self) -> bool {
        self.present() && self.0 & PFN_MASK == 0
    }
    /// Bits 0-4: swap type, for a swapped page.
    pub fn swap_type(self) -> Option<u64> {
        self.swapped().then_some(self.0 & 0x1f)
    }
    /// Bits 5-54: swap offset, for a swapped page.
    pub fn swap_offset(self) -> Option<u64> {
        self.swapped().then_some((self.0 & PFN_MASK) >> 5)
    }
    /// Neither present nor swapped: never touched, or dropped.
    pub fn is_none(self) -> bool {
        !self.present() && !self.swapped()
    }
}

/// An open `/proc/PID/pagemap`.
#[derive(Debug)]
pub struct Pagemap {
    pid: u32,
    words: U64File,
}

impl Pagemap {
    /// Open the pagemap of `pid` under `root`. A missing process is [`Error::NoSuchProcess`].
    pub fn open(root: &SysRoot, pid: u32) -> Result<Pagemap> {
        let path = root.pid_file(pid, "pagemap");
        if !root.pid_dir(pid).exists() {
            return Err(Error::NoSuchProcess { pid });
        }
        let file = File::open(&path).map_err(|e| Error::pid_io(pid, &path, e))?;
        Ok(Pagemap {
            pid,
            words: U64File::from_file(file, path),
        })
    }

    /// The process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        self.words.path()
    }

    /// The entry for the page holding `addr`. Past the end of user space (e.g. `[vsyscall]`)
    /// the kernel returns nothing; that reads as an empty entry.
    pub fn entry(&self, addr: VirtAddr) -> Result<PagemapEntry> {
        let w = self.words.get(addr.vpn()).map_err(|e| self.pid_error(e))?;
        Ok(PagemapEntry(w.unwrap_or(0)))
    }

    /// Read the entries for the pages of `range` (byte addresses, rounded out to pages) in
    /// batches, calling `f(page_address, entries)` for each batch.
    pub fn for_each_batch(
        &self,
        range: Range<VirtAddr>,
        batch: usize,
        mut f: impl FnMut(VirtAddr, &[PagemapEntry]) -> Result<()>,
    ) -> Result<()> {
        let ps = page_size();
        let first = range.start.vpn();
        let end = range.end.0.div_ceil(ps);
        self.words
            .for_each_batch(first..end, batch, |vpn, words| {
                f(VirtAddr(vpn * ps), as_entries(words))
            })
            .map_err(|e| self.pid_error(e))?;
        Ok(())
    }

    /// The populated (present or swapped) page ranges inside `range`, found with PAGEMAP_SCAN.
    /// `Ok(None)` when the kernel lacks the ioctl (before 6.7): read every entry instead.
    pub fn populated_ranges(&self, range: Range<VirtAddr>) -> Result<Option<Vec<ScanRegion>>> {
        let mut out = Vec::new();
        match scan(self.words.file(), range, |r| out.push(r)) {
            Ok(true) => Ok(Some(out)),
            Ok(false) => Ok(None),
            Err(e) => Err(self.pid_error(Error::io(self.path(), e))),
        }
    }

    /// [`Pagemap::populated_ranges`] with a caller-chosen [`ScanFilter`]. `Ok(None)` when the
    /// kernel lacks PAGEMAP_SCAN.
    pub fn scan_ranges(
        &self,
        range: Range<VirtAddr>,
        filter: ScanFilter,
    ) -> Result<Option<Vec<ScanRegion>>> {
        let mut out = Vec::new();
        match scan_filtered(self.words.file(), range, filter, |r| out.push(r)) {
            Ok(true) => Ok(Some(out)),
            Ok(false) => Ok(None),
            Err(e) => Err(self.pid_error(Error::io(self.path(), e))),
        }
    }

    fn pid_error(&self, e: Error) -> Error {
        match e {
            Error::Io { source, .. }
                if matches!(
                    source.raw_os_error(),
                    Some(libc::ESRCH) | Some(libc::ENOENT)
                ) =>
            {
                Error::NoSuchProcess { pid: self.pid }
            }
            other => other,
        }
    }
}

fn as_entries(words: &[u64]) -> &[PagemapEntry] {
    // SAFETY: PagemapEntry is #[repr(transparent)] over u64, so the slices have the same layout.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<PagemapEntry>(), words.len()) }
}

/// PAGEMAP_SCAN page categories (include/uapi/linux/fs.h).
pub mod category {
    /// A file page or shared anonymous page (not `PageAnon`).
    pub const FILE: u64 = 1 << 2;
    /// The page is present.
    pub const PRESENT: u64 = 1 << 3;
    /// The page is swapped out.
    pub const SWAPPED: u64 = 1 << 4;
    /// The page maps the shared zero page.
    pub const PFNZERO: u64 = 1 << 5;
    /// PMD-mapped THP or hugetlb.
    pub const HUGE: u64 = 1 << 6;
}

/// One region PAGEMAP_SCAN returned: pages `start..end` sharing the `categories` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScanRegion {
    /// First byte.
    pub start: VirtAddr,
    /// One past the last byte.
    pub end: VirtAddr,
    /// [`category`] bits.
    pub categories: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

// _IOWR('f', 16, struct pm_scan_arg): dir 3 << 30 | size 96 << 16 | 'f' << 8 | 16.
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | (0x66 << 8) | 16;

/// At most 512 regions per call: with more, Linux (reproduced on 6.18) can report a stale
/// `walk_end` after its internal 512-entry bounce buffer fills, and resuming from it would
/// return regions twice. We also resume from max(walk_end, last region end) to be safe.
const SCAN_VEC_LEN: usize = 512;

/// Which pages PAGEMAP_SCAN reports: a page matches when
/// `(categories ^ inverted) & required == required` and, if `any_of` is not 0,
/// `(categories ^ inverted) & any_of != 0` (the kernel's `category_inverted`, `category_mask`
/// and `category_anyof_mask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanFilter {
    /// Categories whose meaning is inverted (match when clear).
    pub inverted: u64,
    /// Categories that must all be set (after inversion).
    pub required: u64,
    /// Categories of which at least one must be set (after inversion); 0 for no condition.
    pub any_of: u64,
}

impl Default for ScanFilter {
    /// Present or swapped pages: what [`scan`] reports.
    fn default() -> Self {
        ScanFilter {
            inverted: 0,
            required: 0,
            any_of: category::PRESENT | category::SWAPPED,
        }
    }
}

/// Run PAGEMAP_SCAN over `range` for present-or-swapped pages, calling `f` per region in
/// address order. Returns `Ok(false)` if the kernel has no PAGEMAP_SCAN (ENOTTY/EINVAL on the
/// first call).
pub fn scan(
    pagemap: &File,
    range: Range<VirtAddr>,
    f: impl FnMut(ScanRegion),
) -> std::io::Result<bool> {
    scan_filtered(pagemap, range, ScanFilter::default(), f)
}

/// [`scan`] with a caller-chosen [`ScanFilter`] (e.g. present anonymous pages only).
pub fn scan_filtered(
    pagemap: &File,
    range: Range<VirtAddr>,
    filter: ScanFilter,
    mut f: impl FnMut(ScanRegion),
) -> std::io::Result<bool> {
    let ps = page_size();
    let mut start = range.start.0 & !(ps - 1);
    let end = range.end.0.div_ceil(ps) * ps;
    let mut regions = [PageRegion::default(); SCAN_VEC_LEN];
    let mut first = true;
    let mut prev_end = start;
    while start < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: SCAN_VEC_LEN as u64,
            category_inverted: filter.inverted,
            category_mask: filter.required,
            category_anyof_mask: filter.any_of,
            return_mask: category::PRESENT | category::SWAPPED | category::PFNZERO | category::HUGE,
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` (96 bytes, the size it checks) and writes at most
        // `vec_len` page_region structs to `vec`, which points to `regions` of that length;
        // both outlive the call. The fd is an open pagemap file.
        let n = unsafe {
            libc::ioctl(
                pagemap.as_raw_fd(),
                PAGEMAP_SCAN as _,
                &mut arg as *mut PmScanArg,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if first && matches!(e.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL)) {
                return Ok(false);
            }
            return Err(e);
        }
        first = false;
        let n = n as usize;
        for r in &regions[..n.min(SCAN_VEC_LEN)] {
            if r.end <= prev_end {
                continue; // a duplicate from a stale walk_end
            }
            let s = r.start.max(prev_end);
            f(ScanRegion {
                start: VirtAddr(s),
                end: VirtAddr(r.end),
                categories: r.categories,
            });
            prev_end = r.end;
        }
        let next = arg.walk_end.max(prev_end);
        if n < SCAN_VEC_LEN && arg.walk_end >= end || next <= start {
            break;
        }
        start = next;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_present_and_swapped() {
        let e = PagemapEntry::from_raw(1 << 63 | 1 << 56 | 1 << 55 | 0x1c20b);
        assert!(e.present() && e.exclusive() && e.soft_dirty() && !e.file_shared());
        assert_eq!(e.pfn(), Some(Pfn(0x1c20b)));
        assert_eq!(e.swap_type(), None);
        let s = PagemapEntry::from_raw(1 << 62 | (0x1234 << 5) | 3);
        assert_eq!((s.swap_type(), s.swap_offset()), (Some(3), Some(0x1234)));
        assert_eq!(s.pfn(), None);
        let hidden = PagemapEntry::from_raw(1 << 63);
        assert!(hidden.pfn_hidden() && hidden.pfn().is_none());
        assert!(PagemapEntry::from_raw(0).is_none());
        assert!(PagemapEntry::from_raw(1 << 58).guard());
    }

    #[test]
    fn ioctl_number_matches_kernel() {
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
        assert_eq!(PAGEMAP_SCAN, 0xC060_6610);
    }
}
