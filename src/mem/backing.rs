//! Which file mappings hold only page cache that is not swap-backed, so that a page of theirs
//! mapped once (PM_MMAP_EXCLUSIVE with PM_FILE) can be counted as a file page without its
//! kpageflags: a page of a file VMA that pagemap marks PM_FILE is that file's page cache
//! (a private mapping's copied pages are anonymous, without PM_FILE), and page cache is
//! swap-backed (shmem, counted as `Pss_Shmem`) only on shmem: tmpfs, memfd, SysV shm, shared
//! anonymous memory (all on a tmpfs-type superblock), and driver objects mapped through
//! device files (on devtmpfs, tmpfs too). hugetlbfs is left to the page-flag path as well.
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

/// Per device: may its page cache be swap-backed (or is it unknown)?
#[derive(Debug, Default)]
pub struct Backing {
    by_dev: HashMap<String, bool>,
}

impl Backing {
    /// True when every PM_FILE page of `v` (of live process `pid`) is page cache that is not
    /// swap-backed; false when it may be shmem, or cannot be told.
    pub fn plain_page_cache(&mut self, root: &SysRoot, pid: u32, v: &Vma) -> bool {
        if !root.is_live() || v.kind != VmaKind::File || v.inode == 0 {
            return false;
        }
        if let Some(&plain) = self.by_dev.get(&v.dev) {
            return plain;
        }
        let link = root.pid_file(pid, &format!("map_files/{:x}-{:x}", v.start.0, v.end.0));
        let Ok(st) = nix::sys::statfs::statfs(&link) else {
            return false; // not cached: another process may tell
        };
        // `__fsword_t` is i64 on x86-64 but narrower or unsigned elsewhere.
        #[allow(clippy::unnecessary_cast)]
        let t = st.filesystem_type().0 as i64;
        let plain = !matches!(t, TMPFS_MAGIC | HUGETLBFS_MAGIC | RAMFS_MAGIC);
        self.by_dev.insert(v.dev.clone(), plain);
        plain
    }
}
