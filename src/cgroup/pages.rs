//! Resident pages per memcg: one pass over `/proc/kpagecgroup` and `/proc/kpageflags`.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::collections::HashMap;

/// Resident pages charged to one memcg, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemcgPages {
    /// The memcg inode from kpagecgroup (0: uncharged, or charged to no memcg we can see).
    pub inode: u64,
    /// All pages counted.
    pub pages: u64,
    /// Anonymous pages (KPF_ANON).
    pub anon: u64,
    /// Page cache and shmem pages (on the LRU or mapped, not anonymous).
    pub file: u64,
    /// Slab pages (KPF_SLAB; modern kernels charge slab per object, so these show as 0).
    pub slab: u64,
    /// Anything else in use (page tables, kernel stacks, hugetlb, reserved...).
    pub other: u64,
}

impl MemcgPages {
    /// Count one page with kpageflags word `flags`.
    pub fn add(&mut self, flags: u64) {
        use crate::kpageflags::PageFlags as F;
        let f = F::from_bits_retain(flags);
        self.pages += 1;
        if f.contains(F::SLAB) {
            self.slab += 1;
        } else if f.contains(F::ANON) {
            self.anon += 1;
        } else if f.intersects(F::LRU | F::MMAP) {
            self.file += 1;
        } else {
            self.other += 1;
        }
    }
}

/// Is a page with these kpageflags/kpagecgroup words in use (counted by [`pages_by_memcg`])?
/// Free pages (buddy), holes (nopage), offline pages, and flagless pages of no memcg (the
/// insides of free buddy blocks) are not.
pub fn page_in_use(flags: u64, cgroup: u64) -> bool {
    use crate::kpageflags::PageFlags as F;
    let f = F::from_bits_retain(flags);
    !(f.intersects(F::BUDDY | F::NOPAGE | F::OFFLINE) || (flags == 0 && cgroup == 0))
}

/// PFNs per work item of [`pages_by_memcg`].
const CHUNK: u64 = 1 << 20;

/// Scan `/proc/kpagecgroup` and `/proc/kpageflags` in lockstep (batched preads, each worker
/// with its own file descriptors, memory bounded by the batch) and count the pages in use per
/// memcg inode. Sorted by pages, largest first. `threads` 0 picks one per CPU (at most 8).
pub fn pages_by_memcg(root: &SysRoot, threads: usize) -> Result<Vec<MemcgPages>> {
    use crate::kpage::{BATCH, KpageFile, U64File};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    // Open once up front so a missing file is reported before any thread starts.
    U64File::open_kpage(root, KpageFile::Cgroup)?;
    U64File::open_kpage(root, KpageFile::Flags)?;
    let threads = crate::threads::pick(threads, 8);
    let next = AtomicU64::new(0);
    let eof = AtomicBool::new(false);
    let results: Vec<Result<HashMap<u64, MemcgPages>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<HashMap<u64, MemcgPages>> {
                    let cg = U64File::open_kpage(root, KpageFile::Cgroup)?;
                    let fl = U64File::open_kpage(root, KpageFile::Flags)?;
                    let mut map: HashMap<u64, MemcgPages> = HashMap::new();
                    let mut cbuf = vec![0u64; BATCH];
                    let mut fbuf = vec![0u64; BATCH];
                    while !eof.load(Ordering::Relaxed) {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        let mut pfn = chunk * CHUNK;
                        let end = pfn + CHUNK;
                        while pfn < end {
                            let want = ((end - pfn) as usize).min(BATCH);
                            let n = cg.read_at(pfn, &mut cbuf[..want])?;
                            let m = fl.read_at(pfn, &mut fbuf[..n])?;
                            for k in 0..m {
                                if page_in_use(fbuf[k], cbuf[k]) {
                                    let e = map.entry(cbuf[k]).or_insert_with(|| MemcgPages {
                                        inode: cbuf[k],
                                        ..MemcgPages::default()
                                    });
                                    e.add(fbuf[k]);
                                }
                            }
                            if m < want {
                                eof.store(true, Ordering::Relaxed);
                                break;
                            }
                            pfn += m as u64;
                        }
                    }
                    Ok(map)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        "<worker thread>",
                        std::io::Error::other(
                            "kpagecgroup scan thread panicked (please report a bug)",
                        ),
                    ))
                })
            })
            .collect()
    });
    let mut total: HashMap<u64, MemcgPages> = HashMap::new();
    for r in results {
        for (ino, p) in r? {
            let e = total.entry(ino).or_insert_with(|| MemcgPages {
                inode: ino,
                ..MemcgPages::default()
            });
            e.pages += p.pages;
            e.anon += p.anon;
            e.file += p.file;
            e.slab += p.slab;
            e.other += p.other;
        }
    }
    let mut v: Vec<MemcgPages> = total.into_values().collect();
    v.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.inode.cmp(&b.inode)));
    Ok(v)
}
