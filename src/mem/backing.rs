//! Which pages mapped once (PM_MMAP_EXCLUSIVE) of a mapping can be counted without their
//! kpageflags ([`Lean`]):
//!
//! - anonymous ones (not PM_FILE), unless the mapping is hugetlb (smaps keeps hugetlb out of
//!   Rss). Every hugetlb mapping has a file on a hugetlbfs superblock, anonymous
//!   `MAP_HUGETLB` and `SHM_HUGETLB` ones included (`/anon_hugepage`, `/SYSV...`), so a
//!   mapping without a file, or with one whose file system is known not to be hugetlbfs, is
//!   not hugetlb. (PMD-mapped ranges are left out by the walk: see `scan.rs`.)
//! - page cache (PM_FILE) of files not on shmem: a page of a file VMA that pagemap marks
//!   PM_FILE is that file's page cache (a private mapping's copied pages are anonymous,
//!   without PM_FILE), and page cache is swap-backed (shmem, counted as `Pss_Shmem`) only on
//!   shmem: tmpfs, memfd, SysV shm, shared anonymous memory (all on a tmpfs-type
//!   superblock), and driver objects mapped through device files (on devtmpfs, tmpfs too).
//!
//! The file system type is asked once per device number (one superblock) per run, with
//! `statfs` through `/proc/PID/map_files/`, which names the mapped file even when it was
//! deleted or lives in another mount namespace.

use crate::maps::{Vma, VmaKind};
use crate::root::SysRoot;
use std::collections::HashMap;

const TMPFS_MAGIC: i64 = 0x0102_1994;
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Which pages mapped once of a mapping may be counted from pagemap alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lean {
    /// Anonymous ones (not PM_FILE).
    pub anon: bool,
    /// Page cache ones (PM_FILE).
    pub file: bool,
}

/// The file system kind behind a device number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fs {
    /// Page cache that is not swap-backed.
    Plain,
    /// tmpfs/shmem or ramfs: page cache may be swap-backed.
    Shmem,
    /// hugetlbfs.
    Hugetlb,
}

/// Per device number, its file system kind (asked once per run).
#[derive(Debug, Default)]
pub struct Backing {
    by_dev: HashMap<String, Fs>,
}

impl Backing {
    /// What of `v` (a mapping of `pid`) may be counted from pagemap alone; nothing where the
    /// file system cannot be told.
    pub fn lean(&mut self, root: &SysRoot, pid: u32, v: &Vma) -> Lean {
        let anon_only = Lean {
            anon: true,
            file: false,
        };
        match v.kind {
            VmaKind::Anon | VmaKind::Heap | VmaKind::Stack if v.inode == 0 => return anon_only,
            VmaKind::File if v.inode != 0 && root.is_live() => {}
            _ => return Lean::default(),
        }
        let fs = match self.by_dev.get(&v.dev) {
            Some(&fs) => fs,
            None => {
                let link = root.pid_file(pid, &format!("map_files/{:x}-{:x}", v.start.0, v.end.0));
                let Ok(st) = nix::sys::statfs::statfs(&link) else {
                    return Lean::default(); // not cached: another process may tell
                };
                // `__fsword_t` is i64 on x86-64 but narrower or unsigned elsewhere.
                #[allow(clippy::unnecessary_cast)]
                let fs = match st.filesystem_type().0 as i64 {
                    HUGETLBFS_MAGIC => Fs::Hugetlb,
                    TMPFS_MAGIC | RAMFS_MAGIC => Fs::Shmem,
                    _ => Fs::Plain,
                };
                self.by_dev.insert(v.dev.clone(), fs);
                fs
            }
        };
        match fs {
            Fs::Plain => Lean {
                anon: true,
                file: true,
            },
            Fs::Shmem => anon_only,
            Fs::Hugetlb => Lean::default(),
        }
    }
}
