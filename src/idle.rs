//! Idle page tracking (`/sys/kernel/mm/page_idle/bitmap`, `CONFIG_IDLE_PAGE_TRACKING`) and the
//! working-set sampler built on it.
//!
//! The bitmap holds one bit per PFN, packed in 64-bit words (word `i` covers PFNs
//! `64*i .. 64*i+63`, bit `n` of the word is PFN `64*i+n`). Writing a 1 bit marks the page idle
//! (clearing its young bits in every mapping); a 0 bit is ignored. Reading returns 1 for pages
//! still idle, 0 for pages accessed since (or pages that cannot be tracked: not on an LRU list).
//! The kernel accepts only 8-byte aligned offsets and lengths and caps one read or write at the
//! 4 KiB it maps at a time, so [`IdleBitmap`] loops in [`MAX_WORDS`] words per syscall.
//!
//! Large folios (THP) are tracked by their head page: [`PageSet`] resolves every tail page to its
//! head (via `/proc/kpageflags`) and weights the head's bit over the whole folio.
//!
//! [`refs_sample`] is the fallback working-set method for kernels without the bitmap: it writes
//! `1` to `/proc/PID/clear_refs` (which clears the referenced/young bits of the process's pages
//! and flushes its TLB: this *changes* what reclaim sees of the process) and later reads the
//! per-VMA `Referenced:` lines of `/proc/PID/smaps`.

use crate::addr::{Pfn, VirtAddr, page_size};
use crate::error::{Error, Result};
use crate::kpage::{KpageFile, U64File};
use crate::kpageflags::PageFlags;
use crate::maps::{Vma, read_maps};
use crate::pagemap::Pagemap;
use crate::root::SysRoot;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Most bitmap words the kernel handles in one read or write (4 KiB of bitmap).
pub const MAX_WORDS: usize = 512;
/// PFNs per bitmap word.
pub const PFNS_PER_WORD: u64 = 64;

/// The open page_idle bitmap.
#[derive(Debug)]
pub struct IdleBitmap {
    file: File,
    path: PathBuf,
}

fn as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and any byte pattern is a valid u8; length is exact.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

fn as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: as above; every byte pattern is a valid u64.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

impl IdleBitmap {
    /// Open the bitmap of `root`, read-only or read-write (marking needs write).
    pub fn open(root: &SysRoot, writable: bool) -> Result<IdleBitmap> {
        let path = root.page_idle_bitmap();
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => Error::Unsupported {
                    path: path.clone(),
                    what: "idle page tracking".into(),
                    hint: "the kernel needs CONFIG_IDLE_PAGE_TRACKING=y; without it use \
                           `pgtool idle wss --method refs`"
                        .into(),
                },
                _ => Error::io(&path, e),
            })?;
        Ok(IdleBitmap { file, path })
    }

    /// The bitmap file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the words `first_word..first_word + buf.len()` into `buf`, at most [`MAX_WORDS`] per
    /// syscall. Returns how many words were read: fewer at the end of memory (the kernel returns
    /// nothing for the last partial 64-PFN word, and nothing past `max_pfn`).
    pub fn read_words(&self, first_word: u64, buf: &mut [u64]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(MAX_WORDS);
            let off = (first_word + done as u64) * 8;
            let chunk = as_bytes_mut(&mut buf[done..done + n]);
            let got = loop {
                match self.file.read_at(chunk, off) {
                    Ok(g) => break g,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.err(first_word + done as u64, e)),
                }
            };
            done += got / 8;
            if got < n * 8 {
                break;
            }
        }
        Ok(done)
    }

    /// Write `words` at `first_word`, at most [`MAX_WORDS`] per syscall. 1 bits mark pages idle,
    /// 0 bits are ignored by the kernel. Words past the end of memory are dropped.
    pub fn write_words(&self, first_word: u64, words: &[u64]) -> Result<()> {
        let mut done = 0;
        while done < words.len() {
            let n = (words.len() - done).min(MAX_WORDS);
            let off = (first_word + done as u64) * 8;
            let chunk = as_bytes(&words[done..done + n]);
            let put = loop {
                match self.file.write_at(chunk, off) {
                    Ok(p) => break p,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // Past max_pfn (ENXIO) or the last partial word (EIO): end of memory.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENXIO) | Some(libc::EIO)) => {
                        break 0;
                    }
                    Err(e) => return Err(self.err(first_word + done as u64, e)),
                }
            };
            if put == 0 {
                return Ok(());
            }
            done += put.div_ceil(8);
        }
        Ok(())
    }

    fn err(&self, word: u64, e: io::Error) -> Error {
        let hint = format!(
            "at bitmap word {word} (PFN {:#x}); needs root",
            word * PFNS_PER_WORD
        );
        Error::io_hint(&self.path, e, hint)
    }

    /// Mark the PFNs of `range` idle, in batches, writing all-ones words (partial edge words
    /// carry only the bits inside the range).
    pub fn mark_range(&self, range: Range<Pfn>) -> Result<()> {
        let (start, end) = (range.start.0, range.end.0);
        if start >= end {
            return Ok(());
        }
        let (w0, w1) = (start / PFNS_PER_WORD, end.div_ceil(PFNS_PER_WORD));
        let mut buf = vec![0u64; MAX_WORDS];
        let mut w = w0;
        while w < w1 {
            let n = ((w1 - w) as usize).min(MAX_WORDS);
            for (i, word) in buf[..n].iter_mut().enumerate() {
                *word = word_mask(w + i as u64, start, end);
            }
            self.write_words(w, &buf[..n])?;
            w += n as u64;
        }
        Ok(())
    }

    /// Mark the given PFNs idle. `pfns` need not be sorted; duplicates are fine. Words are
    /// built in memory and written in runs of consecutive words, one syscall per
    /// [`MAX_WORDS`].
    pub fn mark_pfns(&self, pfns: &[u64]) -> Result<()> {
        let mut words: Vec<(u64, u64)> = Vec::new(); // (word index, bits)
        let mut sorted = pfns.to_vec();
        sorted.sort_unstable();
        for p in sorted {
            let (w, b) = (p / PFNS_PER_WORD, 1u64 << (p % PFNS_PER_WORD));
            match words.last_mut() {
                Some((lw, bits)) if *lw == w => *bits |= b,
                _ => words.push((w, b)),
            }
        }
        let mut i = 0;
        let mut run = Vec::with_capacity(MAX_WORDS);
        while i < words.len() {
            let first = words[i].0;
            run.clear();
            // Bridge small holes with zero words (ignored by the kernel): fewer syscalls.
            while i < words.len() && run.len() < MAX_WORDS {
                let gap = words[i].0 - (first + run.len() as u64);
                if gap > 8 || run.len() + gap as usize >= MAX_WORDS {
                    break;
                }
                run.extend(std::iter::repeat_n(0, gap as usize));
                run.push(words[i].1);
                i += 1;
            }
            self.write_words(first, &run)?;
        }
        Ok(())
    }

    /// The idle bit of each PFN in `pfns` (any order). Needed words are read in runs (small
    /// holes bridged), at most [`MAX_WORDS`] per syscall. PFNs past the end of the bitmap read
    /// as not idle.
    pub fn read_pfns(&self, pfns: &[u64]) -> Result<Vec<bool>> {
        let mut need: Vec<u64> = pfns.iter().map(|p| p / PFNS_PER_WORD).collect();
        need.sort_unstable();
        need.dedup();
        let mut have: Vec<(u64, u64)> = Vec::with_capacity(need.len());
        let mut buf = vec![0u64; MAX_WORDS];
        let mut i = 0;
        while i < need.len() {
            let first = need[i];
            let mut last = first;
            let mut j = i + 1;
            while j < need.len() && need[j] - first < MAX_WORDS as u64 && need[j] - last <= 8 {
                last = need[j];
                j += 1;
            }
            let len = (last - first + 1) as usize;
            let n = self.read_words(first, &mut buf[..len])?;
            for &w in &need[i..j] {
                let k = (w - first) as usize;
                have.push((w, if k < n { buf[k] } else { 0 }));
            }
            i = j;
        }
        Ok(pfns
            .iter()
            .map(|p| {
                let w = p / PFNS_PER_WORD;
                have.binary_search_by_key(&w, |x| x.0)
                    .map(|k| have[k].1 >> (p % PFNS_PER_WORD) & 1 == 1)
                    .unwrap_or(false)
            })
            .collect())
    }
}

/// The bits of word `w` that fall inside PFNs `[start, end)`.
fn word_mask(w: u64, start: u64, end: u64) -> u64 {
    let base = w * PFNS_PER_WORD;
    let lo = start.saturating_sub(base).min(64);
    let hi = end.saturating_sub(base).min(64);
    if hi <= lo {
        return 0;
    }
    let upto = |n: u64| if n >= 64 { !0u64 } else { (1u64 << n) - 1 };
    upto(hi) & !upto(lo)
}

/// Make freshly faulted pages markable: pages still sitting in a CPU's LRU-add batch are not on
/// an LRU list yet, and the kernel cannot mark those idle. `mlock(2)` drains the batch of the
/// CPU it runs on (`lru_add_drain`), so this moves the calling thread to each CPU it may run on
/// in turn, locks and unlocks one page of its own stack there, and restores the affinity.
/// Best effort: errors are ignored.
pub fn drain_lru_batches() {
    let probe = [0u8; 1];
    let ps = page_size() as usize;
    let addr = (std::hint::black_box(probe.as_ptr()) as usize & !(ps - 1)) as *const libc::c_void;
    let lock_unlock = || {
        // SAFETY: mlock/munlock only change residency attributes of our own mapped stack page.
        unsafe {
            if libc::mlock(addr, ps) == 0 {
                libc::munlock(addr, ps);
            }
        }
    };
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity(0, ...) act on this thread.
    unsafe {
        let mut orig: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut orig) != 0 {
            lock_unlock();
            return;
        }
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if !libc::CPU_ISSET(cpu, &orig) {
                continue;
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0 {
                lock_unlock();
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &orig);
    }
    std::hint::black_box(probe);
}

/// One tracked page: where it is mapped (when known), its PFN and the PFN whose idle bit
/// stands for it (the folio head for THP tails, else itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackedPage {
    /// The virtual address (for a process source), else `None`.
    pub vaddr: Option<VirtAddr>,
    /// The page frame.
    pub pfn: Pfn,
    /// The frame whose bit is read for this page (head of its large folio).
    pub head: Pfn,
}

/// A set of pages, optionally grouped by VMA, to mark and read.
#[derive(Clone, Debug, Default)]
pub struct PageSet {
    /// The groups: a VMA (for a process) or `None` (PFN range, cgroup), and its pages.
    pub groups: Vec<(Option<Vma>, Vec<TrackedPage>)>,
}

/// Idle/accessed counts of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Pages tracked.
    pub pages: u64,
    /// Pages whose (head's) bit is still set.
    pub idle_pages: u64,
    /// Pages accessed since marked (bit clear).
    pub accessed_pages: u64,
}

impl PageSet {
    /// All pages.
    pub fn pages(&self) -> impl Iterator<Item = &TrackedPage> {
        self.groups.iter().flat_map(|g| g.1.iter())
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.1.len()).sum()
    }

    /// True when no page is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The present pages of `pid`'s mappings selected by `select`, clipped to `range` when
    /// given, from pagemap (read in batches per VMA). Heads are resolved with
    /// [`PageSet::resolve_heads`].
    pub fn from_pid(
        root: &SysRoot,
        pid: u32,
        select: &dyn Fn(&Vma) -> bool,
        range: Option<Range<VirtAddr>>,
    ) -> Result<PageSet> {
        let vmas = read_maps(root, pid)?;
        let pm = Pagemap::open(root, pid)?;
        let mut set = PageSet::default();
        let mut hidden = false;
        for vma in vmas {
            if !select(&vma) || vma.path == "[vsyscall]" {
                continue;
            }
            let (mut s, mut e) = (vma.start, vma.end);
            if let Some(r) = &range {
                s = s.max(r.start);
                e = e.min(r.end);
                if s >= e {
                    continue;
                }
            }
            let mut pages = Vec::new();
            pm.for_each_batch(s..e, 4096, |va, entries| {
                for (i, pme) in entries.iter().enumerate() {
                    if !pme.present() {
                        continue;
                    }
                    match pme.pfn() {
                        Some(p) if p.0 != 0 => pages.push(TrackedPage {
                            vaddr: Some(VirtAddr(va.0 + i as u64 * page_size())),
                            pfn: p,
                            head: p,
                        }),
                        _ => hidden |= pme.pfn_hidden(),
                    }
                }
                Ok(())
            })?;
            set.groups.push((Some(vma), pages));
        }
        if hidden && set.is_empty() {
            return Err(Error::io_hint(
                pm.path(),
                io::Error::from_raw_os_error(libc::EPERM),
                crate::error::PFN_HIDDEN,
            ));
        }
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// The pages whose `/proc/kpagecgroup` entry is `memcg_inode`, over System RAM.
    pub fn from_cgroup(root: &SysRoot, memcg_inode: u64) -> Result<PageSet> {
        let cg = U64File::open_kpage(root, KpageFile::Cgroup)?;
        let mut pages = Vec::new();
        for r in ram_ranges(root)? {
            cg.for_each_batch(r.start.0..r.end.0, 1 << 16, |first, words| {
                for (i, &w) in words.iter().enumerate() {
                    if w == memcg_inode {
                        let p = Pfn(first + i as u64);
                        pages.push(TrackedPage {
                            vaddr: None,
                            pfn: p,
                            head: p,
                        });
                    }
                }
                Ok(())
            })?;
        }
        let mut set = PageSet {
            groups: vec![(None, pages)],
        };
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// Every PFN of `range` (clipped to System RAM: holes are skipped).
    pub fn from_pfn_range(root: &SysRoot, range: Range<Pfn>) -> Result<PageSet> {
        let mut pages = Vec::new();
        for r in ram_ranges(root)? {
            let (s, e) = (r.start.max(range.start), r.end.min(range.end));
            for p in s.0..e.0 {
                pages.push(TrackedPage {
                    vaddr: None,
                    pfn: Pfn(p),
                    head: Pfn(p),
                });
            }
        }
        let mut set = PageSet {
            groups: vec![(None, pages)],
        };
        set.resolve_heads(root)?;
        Ok(set)
    }

    /// Set each page's `head` from `/proc/kpageflags`: a COMPOUND_TAIL page of a THP or other
    /// large folio gets the PFN of its COMPOUND_HEAD. Without a readable kpageflags every page
    /// stands for itself.
    pub fn resolve_heads(&mut self, root: &SysRoot) -> Result<()> {
        let Ok(kf) = U64File::open_kpage(root, KpageFile::Flags) else {
            return Ok(());
        };
        let mut pfns: Vec<u64> = self.pages().map(|p| p.pfn.0).collect();
        pfns.sort_unstable();
        pfns.dedup();
        let flags = kf.gather(&pfns)?;
        let mut heads: Vec<(u64, u64)> = Vec::new(); // (tail pfn, head pfn)
        let mut last_head: Option<u64> = None;
        for (k, &p) in pfns.iter().enumerate() {
            let f = PageFlags::from_bits_retain(flags[k].unwrap_or(0));
            if f.contains(PageFlags::COMPOUND_HEAD) {
                last_head = Some(p);
            } else if f.contains(PageFlags::COMPOUND_TAIL) {
                let h = match last_head {
                    Some(h) if p - h < 1 << 18 && heads_contiguous(&pfns, h, p) => h,
                    _ => find_head(&kf, p)?.unwrap_or(p),
                };
                last_head = Some(h);
                heads.push((p, h));
            } else {
                last_head = None;
            }
        }
        if heads.is_empty() {
            return Ok(());
        }
        for g in &mut self.groups {
            for page in &mut g.1 {
                if let Ok(k) = heads.binary_search_by_key(&page.pfn.0, |x| x.0) {
                    page.head = Pfn(heads[k].1);
                }
            }
        }
        Ok(())
    }

    /// Mark every page idle (by its head's bit). Drains the LRU-add batches first on the live
    /// system so freshly faulted pages can be marked.
    pub fn mark(&self, bitmap: &IdleBitmap) -> Result<()> {
        drain_lru_batches();
        let heads: Vec<u64> = self.pages().map(|p| p.head.0).collect();
        bitmap.mark_pfns(&heads)
    }

    /// Read the idle bit of each page (its head's bit), group by group, in the order of
    /// [`PageSet::groups`].
    pub fn read(&self, bitmap: &IdleBitmap) -> Result<Vec<Vec<bool>>> {
        let heads: Vec<u64> = self.pages().map(|p| p.head.0).collect();
        let bits = bitmap.read_pfns(&heads)?;
        let mut out = Vec::with_capacity(self.groups.len());
        let mut k = 0;
        for g in &self.groups {
            out.push(bits[k..k + g.1.len()].to_vec());
            k += g.1.len();
        }
        Ok(out)
    }
}

fn heads_contiguous(pfns: &[u64], h: u64, p: u64) -> bool {
    // The head is known good for p only if every PFN between them is in the (sorted) set.
    match (pfns.binary_search(&h), pfns.binary_search(&p)) {
        (Ok(a), Ok(b)) => (b - a) as u64 == p - h,
        _ => false,
    }
}

/// The head of the folio holding a tail PFN (the one folio resolver).
fn find_head(kf: &U64File, tail: u64) -> Result<Option<u64>> {
    let flags = PageFlags::from_bits_retain(kf.get(tail)?.unwrap_or(0));
    Ok(crate::folio::folio_of(kf, Pfn(tail), flags)?.map(|f| f.head.0))
}

/// System RAM PFN ranges from iomem (falling back to `[0, end of kpageflags)` when iomem shows
/// no RAM, e.g. addresses hidden from non-root).
pub fn ram_ranges(root: &SysRoot) -> Result<Vec<Range<Pfn>>> {
    let r = crate::iomem::Iomem::read(root)
        .map(|io| io.system_ram_pfns())
        .unwrap_or_default();
    if !r.is_empty() && r.iter().any(|x| x.end.0 > 0) {
        return Ok(r);
    }
    let path = root.kpageflags();
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok(vec![Pfn(0)..Pfn(len / 8)])
}

/// Count idle and accessed pages of one group's bits.
pub fn count(bits: &[bool]) -> Counts {
    let idle = bits.iter().filter(|b| **b).count() as u64;
    Counts {
        pages: bits.len() as u64,
        idle_pages: idle,
        accessed_pages: bits.len() as u64 - idle,
    }
}

/// Which working-set method to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The page_idle bitmap (does not disturb the process).
    Idle,
    /// clear_refs + smaps Referenced (clears the process's referenced bits).
    Refs,
}

/// Pick [`Method::Idle`] when the bitmap exists, else [`Method::Refs`].
pub fn auto_method(root: &SysRoot) -> Method {
    if root.page_idle_bitmap().exists() {
        Method::Idle
    } else {
        Method::Refs
    }
}

/// Clear the referenced bits of every page of `pid` (writes `1` to `/proc/PID/clear_refs`).
pub fn clear_refs(root: &SysRoot, pid: u32) -> Result<()> {
    let path = root.pid_file(pid, "clear_refs");
    std::fs::write(&path, b"1\n").map_err(|e| Error::pid_io(pid, &path, e))
}

/// One VMA's sample from smaps: resident and referenced bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmapsSample {
    /// The mapping.
    pub vma: Vma,
    /// `Rss:` in bytes.
    pub rss: u64,
    /// `Referenced:` in bytes.
    pub referenced: u64,
}

/// Read `/proc/PID/smaps`: every VMA with its `Rss:` and `Referenced:`.
pub fn refs_sample(root: &SysRoot, pid: u32) -> Result<Vec<SmapsSample>> {
    let path = root.pid_file(pid, "smaps");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::pid_io(pid, &path, e))?;
    parse_smaps(&text, &path)
}

/// Parse smaps text (header lines as in maps, then `Key: value kB` lines).
pub fn parse_smaps(text: &str, path: &Path) -> Result<Vec<SmapsSample>> {
    let mut out: Vec<SmapsSample> = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            let vma = crate::maps::parse_line(line).map_err(|msg| Error::Parse {
                path: path.to_path_buf(),
                line: no + 1,
                msg,
            })?;
            out.push(SmapsSample {
                vma,
                rss: 0,
                referenced: 0,
            });
            continue;
        }
        let kb = |rest: &str| -> u64 {
            rest.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_mul(1024)
        };
        if let Some(cur) = out.last_mut() {
            if let Some(rest) = line.strip_prefix("Rss:") {
                cur.rss = kb(rest);
            } else if let Some(rest) = line.strip_prefix("Referenced:") {
                cur.referenced = kb(rest);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(word_mask(0, 0, 64), !0);
        assert_eq!(word_mask(0, 1, 3), 0b110);
        assert_eq!(word_mask(1, 0, 65), 1);
        assert_eq!(word_mask(2, 0, 65), 0);
        assert_eq!(word_mask(1, 100, 200), !((1u64 << 36) - 1));
    }

    #[test]
    fn smaps_parse() {
        let t = "7f00-7f10 rw-p 00000000 00:00 0 \nRss:                  8 kB\nReferenced:            4 kB\n\
                 7f20-7f30 r--p 00000000 08:01 12 /lib/x.so\nRss: 0 kB\nReferenced: 0 kB\nVmFlags: rd mr\n";
        let v = parse_smaps(t, Path::new("smaps")).expect("test value");
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].rss, v[0].referenced), (8192, 4096));
        assert_eq!(v[1].vma.path, "/lib/x.so");
    }
}
