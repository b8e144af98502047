//! Memory-error injection: `<debugfs>/hwpoison/corrupt-pfn` and `unpoison-pfn`
//! (`CONFIG_HWPOISON_INJECT`, module `hwpoison_inject`) and
//! `/sys/devices/system/memory/soft_offline_page` (`CONFIG_MEMORY_FAILURE`), with the checks a
//! caller should make before poisoning a page ([`PageInfo::refusal`]).
//!
//! Poisoning a page the kernel itself uses (slab, page tables, reserved memory...) can crash the
//! machine; poisoning a process's page kills the process when it next touches it (SIGBUS).

mod plan;

pub use plan::{Action, Aim, PlanRecord, Step, aim_addr, aims_from_pfn_args, pfn_at, plan};

use crate::addr::{Pfn, PhysAddr};
use crate::error::{Error, Result};
use crate::folio::Folio;
use crate::iomem::Iomem;
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::root::SysRoot;
use std::path::{Path, PathBuf};

/// The hwpoison injection files.
#[derive(Clone, Debug)]
pub struct Injector {
    corrupt: PathBuf,
    unpoison: PathBuf,
}

/// Is `dir` a mount point (its device differs from its parent's)?
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(dir), dir.parent().map(std::fs::metadata)) {
        (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Mount debugfs at `root.debugfs()` when `root` is live and nothing is mounted there yet.
pub fn ensure_debugfs(root: &SysRoot) -> Result<()> {
    let dir = root.debugfs();
    if !root.is_live() || is_mount_point(dir) {
        return Ok(());
    }
    nix::mount::mount(
        Some("debugfs"),
        dir,
        Some("debugfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| {
        Error::io_hint(
            dir,
            std::io::Error::from(e),
            "debugfs is not mounted and mounting it failed: mount -t debugfs none \
             /sys/kernel/debug (needs root), or set DEBUGFS_PATH",
        )
    })
}

impl Injector {
    /// Find the injection files, mounting debugfs first when needed (live system only).
    pub fn open(root: &SysRoot) -> Result<Injector> {
        ensure_debugfs(root)?;
        let dir = root.debugfs().join("hwpoison");
        let corrupt = dir.join("corrupt-pfn");
        let unpoison = dir.join("unpoison-pfn");
        if !corrupt.exists() {
            return Err(Error::Unsupported {
                path: corrupt,
                what: "hwpoison injection".into(),
                hint: "run `modprobe hwpoison_inject` (kernel needs CONFIG_MEMORY_FAILURE and \
                       CONFIG_HWPOISON_INJECT)"
                    .into(),
            });
        }
        Ok(Injector { corrupt, unpoison })
    }

    /// Poison `pfn` (as a software-simulated memory failure).
    pub fn inject(&self, pfn: Pfn) -> Result<()> {
        write_hex(&self.corrupt, pfn.0)
    }

    /// Undo a software-injected poison of `pfn`.
    pub fn unpoison(&self, pfn: Pfn) -> Result<()> {
        write_hex(&self.unpoison, pfn.0)
    }
}

/// Migrate the contents of the page at physical address `addr` away and take the page
/// offline (`/sys/devices/system/memory/soft_offline_page`).
pub fn soft_offline(root: &SysRoot, addr: PhysAddr) -> Result<()> {
    let path = root.sys().join("devices/system/memory/soft_offline_page");
    if !path.exists() {
        return Err(Error::Unsupported {
            path,
            what: "soft offlining".into(),
            hint: "the kernel needs CONFIG_MEMORY_FAILURE and CONFIG_MEMORY_HOTPLUG (the file belongs to the memory block devices)".into(),
        });
    }
    write_hex(&path, addr.0)
}

/// Write `0x%lx\n` as page-types does.
fn write_hex(path: &Path, v: u64) -> Result<()> {
    std::fs::write(path, format!("{v:#x}\n")).map_err(|e| {
        let what = if path.ends_with("soft_offline_page") {
            "physical address"
        } else {
            "PFN"
        };
        Error::io_hint(
            path,
            e,
            format!("writing {what} {v:#x}: the kernel refused it (see dmesg); needs root"),
        )
    })
}

/// What a page is, as far as the guards need to know.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PageInfo {
    /// The page.
    pub pfn: Pfn,
    /// Its kpageflags, when readable.
    pub flags: Option<PageFlags>,
    /// Its kpagecount, when readable.
    pub count: Option<u64>,
    /// The innermost iomem region holding it (e.g. "System RAM", "Kernel code").
    pub region: Option<String>,
    /// True when a top-level "System RAM" region holds it; `None` when iomem addresses are
    /// hidden (not root).
    pub system_ram: Option<bool>,
    /// The compound page (THP, hugetlb page...) holding it: poisoning one of its pages
    /// affects the whole folio.
    pub folio: Option<Folio>,
}

impl PageInfo {
    /// Read flags, count and iomem region of `pfn`.
    pub fn read(root: &SysRoot, pfn: Pfn) -> Result<PageInfo> {
        let flags_file = U64File::open_kpage(root, KpageFile::Flags).ok();
        let flags = flags_file
            .as_ref()
            .and_then(|f| f.get(pfn.0).ok().flatten())
            .map(PageFlags::from_bits_retain);
        let folio = match (&flags_file, flags) {
            (Some(file), Some(f)) if f.is_compound() => {
                crate::folio::folio_of(file, pfn, f).ok().flatten()
            }
            _ => None,
        };
        let count = U64File::open_kpage(root, KpageFile::Count)
            .ok()
            .and_then(|f| f.get(pfn.0).ok().flatten());
        let (region, system_ram) = match Iomem::read(root) {
            Ok(io) if !io.addresses_hidden() => {
                let addr = pfn.phys_addr().map_or(u64::MAX, |a| a.0);
                let ram = io
                    .system_ram_pfns()
                    .iter()
                    .any(|r| r.start <= pfn && pfn < r.end);
                (io.describe(addr), Some(ram))
            }
            _ => (None, None),
        };
        Ok(PageInfo {
            pfn,
            flags,
            count,
            region,
            system_ram,
            folio,
        })
    }

    /// Why poisoning this page would be dangerous, or `None` when it looks like a user page
    /// (on an LRU list, anonymous, mapped, swap-backed) or a free page. Refused: pages outside
    /// System RAM, slab, reserved, page-table, offline, zero and nonexistent pages, pages
    /// already poisoned, and any page with none of the user-page flags.
    pub fn refusal(&self) -> Option<String> {
        if self.system_ram == Some(false) {
            return Some(format!(
                "PFN {:#x} is not System RAM ({})",
                self.pfn.0,
                self.region.as_deref().unwrap_or("no iomem region")
            ));
        }
        let Some(f) = self.flags else {
            return Some(format!(
                "PFN {:#x}: kpageflags is unreadable or too short, cannot tell what the page is",
                self.pfn.0
            ));
        };
        let bad = [
            (PageFlags::NOPAGE, "no struct page (nopage)"),
            (PageFlags::SLAB, "a slab page (kernel objects)"),
            (PageFlags::RESERVED, "a reserved page"),
            (PageFlags::PGTABLE, "a page table"),
            (PageFlags::OFFLINE, "an offline page"),
            (PageFlags::ZERO_PAGE, "the shared zero page"),
            (PageFlags::HWPOISON, "already poisoned"),
        ];
        for (bit, what) in bad {
            if f.contains(bit) {
                return Some(format!("PFN {:#x} is {what}", self.pfn.0));
            }
        }
        let user = PageFlags::LRU
            | PageFlags::ANON
            | PageFlags::MMAP
            | PageFlags::SWAPBACKED
            | PageFlags::SWAPCACHE
            | PageFlags::BUDDY;
        if !f.intersects(user) {
            return Some(format!(
                "PFN {:#x} looks kernel-owned (none of lru, anonymous, mmap, swapbacked, \
                 swapcache, buddy: flags {})",
                self.pfn.0,
                if f.is_empty() {
                    "none".to_string()
                } else {
                    f.listing_names(None).join("|")
                }
            ));
        }
        None
    }

    /// One line for people: PFN, physical address, region, flags and count.
    pub fn describe(&self) -> String {
        let flags = match self.flags {
            Some(f) if f.is_empty() => "(none)".to_string(),
            Some(f) => f.listing_names(None).join("|"),
            None => "(unreadable)".to_string(),
        };
        let count = self
            .count
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into());
        format!(
            "PFN {:#x} (phys {:#x}, {}): flags {flags}, mapcount {count}",
            self.pfn.0,
            self.pfn.phys_addr().map_or(u64::MAX, |a| a.0),
            self.region.as_deref().unwrap_or("region unknown"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(flags: PageFlags) -> PageInfo {
        PageInfo {
            pfn: Pfn(0x1234),
            flags: Some(flags),
            count: Some(1),
            region: Some("System RAM".into()),
            system_ram: Some(true),
            folio: None,
        }
    }

    #[test]
    fn guards() {
        assert_eq!(info(PageFlags::LRU | PageFlags::ANON).refusal(), None);
        assert_eq!(info(PageFlags::BUDDY).refusal(), None);
        assert!(
            info(PageFlags::SLAB)
                .refusal()
                .expect("test value")
                .contains("slab")
        );
        assert!(
            info(PageFlags::empty())
                .refusal()
                .expect("test value")
                .contains("kernel-owned")
        );
        assert!(
            info(PageFlags::LRU | PageFlags::HWPOISON)
                .refusal()
                .expect("test value")
                .contains("poisoned")
        );
        let mut i = info(PageFlags::LRU);
        i.system_ram = Some(false);
        i.region = Some("PCI Bus 0000:00".into());
        assert!(i.refusal().expect("test value").contains("not System RAM"));
    }
}
