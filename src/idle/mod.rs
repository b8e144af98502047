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
//! Where things live:
//! - this file: the bitmap's word I/O and the LRU-batch drain;
//! - [`pageset`]: the tracked pages ([`PageSet`]): a process's present pages per VMA, a PFN
//!   range or a memcg's pages, each tail page of a large folio (THP) resolved to its head by
//!   the one folio resolver ([`crate::folio`]) and weighted by the head's bit;
//! - [`refs`]: the fallback method for kernels without the bitmap (`clear_refs` + smaps);
//! - [`request`]: what `pgtool idle mark` / `read` ask for ([`Source`]) and the records they
//!   list;
//! - [`wss`]: the working-set sampler (`pgtool idle wss`) and its Prometheus families.
//!
//! Anything here that writes (marking, `clear_refs`) refuses a snapshot root: `--root` is
//! read-only.

pub mod pageset;
pub mod refs;
pub mod request;
pub mod wss;

pub use pageset::{Counts, PageSet, TrackedPage, count, ram_ranges};
pub use refs::{Method, SmapsSample, auto_method, clear_refs, parse_smaps, refs_sample};
pub use request::{IdleCountRecord, IdlePageRecord, Selection, Source, VmaRecord};

use crate::addr::{Pfn, page_size};
use crate::error::{Error, Result};
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
/// Pages per thread, and threads at most, for the kernel's share of a large set (kpageflags
/// for the heads, the bitmap's words): every word costs the kernel a page lookup (and an rmap
/// walk to mark or read it), and that work spreads over CPUs.
const PART_MIN: usize = 16 << 10;
const PART_THREADS: usize = 4;

/// The open page_idle bitmap.
#[derive(Debug)]
pub struct IdleBitmap {
    file: File,
    path: PathBuf,
}

impl IdleBitmap {
    /// Open the bitmap of `root`, read-only or read-write (marking needs write). Writing is
    /// refused under a snapshot root (`--root` is read-only); [`IdleBitmap::open_file`] opens
    /// any file, e.g. a fixture.
    pub fn open(root: &SysRoot, writable: bool) -> Result<IdleBitmap> {
        let path = root.page_idle_bitmap();
        if writable && !root.is_live() {
            return Err(Error::Usage(format!(
                "marking pages idle writes {}, and --root is read-only: mark on the live system",
                path.display()
            )));
        }
        IdleBitmap::open_file(path, writable)
    }

    /// Open `path` as an idle bitmap (the live one, or a fixture file standing in for it).
    pub fn open_file(path: impl Into<PathBuf>, writable: bool) -> Result<IdleBitmap> {
        let path = path.into();
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
            let chunk = crate::bytes::u64s_as_bytes_mut(&mut buf[done..done + n]);
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
            let chunk = crate::bytes::u64s_as_bytes(&words[done..done + n]);
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

    /// Mark the given PFNs idle. `pfns` need not be sorted (sorted ones are not copied);
    /// duplicates are fine. Words are built in memory and written in runs of consecutive
    /// words, one syscall per [`MAX_WORDS`].
    pub fn mark_pfns(&self, pfns: &[u64]) -> Result<()> {
        if !pfns.is_sorted() {
            let mut sorted = pfns.to_vec();
            sorted.sort_unstable();
            return self.mark_pfns(&sorted);
        }
        let mut words: Vec<(u64, u64)> = Vec::new(); // (word index, bits)
        for &p in pfns {
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
        // A process's pages come in physically close runs: dropping repeats of the previous
        // word first leaves fewer to sort.
        need.dedup();
        need.sort_unstable();
        need.dedup();
        let have =
            crate::threads::split_map(&need, PART_MIN, PART_THREADS, |part| self.read_needed(part))
                .into_iter()
                .collect::<Result<Vec<_>>>()?
                .concat();
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

    /// The words `need` (ascending, distinct) as (index, word), read in runs.
    fn read_needed(&self, need: &[u64]) -> Result<Vec<(u64, u64)>> {
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
        Ok(have)
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
}
