//! One batched reader for the per-PFN (and per-VPN) files of native-endian u64 words:
//! `/proc/kpageflags`, `/proc/kpagecount`, `/proc/kpagecgroup`, and `/proc/PID/pagemap`.
//!
//! Reads are large `pread`s (never one u64 per syscall); streaming keeps memory bounded by the
//! batch, not by the size of RAM. Scattered lookups coalesce runs of consecutive indices into
//! one read each.
//!
//! ```no_run
//! use pgtool::{kpage::{KpageFile, U64File}, SysRoot};
//! let flags = U64File::open_kpage(&SysRoot::live(), KpageFile::Flags)?;
//! let mut buddy = 0u64;
//! flags.for_each_batch(0..u64::MAX, 64 << 10, |_first, words| {
//!     buddy += words.iter().filter(|w| *w & (1 << 10) != 0).count() as u64;
//!     Ok(())
//! })?;
//! println!("{buddy} free buddy heads");
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Default number of entries per `pread` (512 KiB), as page-types.
pub const BATCH: usize = 64 << 10;

/// In [`U64File::gather`] of a file other than the kpage files (a pagemap, a fixture), gaps of
/// up to this many words between wanted indices are read through rather than split into
/// another `pread` (2 KiB: far cheaper than a syscall where a word costs little).
pub const GATHER_GAP: u64 = 256;

/// Which of the three `/proc/kpage*` files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KpageFile {
    /// `/proc/kpageflags`
    Flags,
    /// `/proc/kpagecount`
    Count,
    /// `/proc/kpagecgroup`
    Cgroup,
}

impl KpageFile {
    /// The largest gap (in words) worth reading through when gathering scattered PFNs from
    /// this file, from its cost per word against the cost of one more `pread` (about 0.4 us
    /// on Linux 6.18, x86-64). Measured reading 1M words in 512 KiB chunks: kpageflags
    /// ~220 ns/word, kpagecount ~130 ns/word, kpagecgroup ~70 ns/word (each word of it costs
    /// the kernel a memcg lookup). Reading through more than a few unwanted words costs
    /// more than the syscall it saves, so the gaps are small: 2, 4 and 6.
    pub fn gather_gap(self) -> u64 {
        match self {
            KpageFile::Flags => 2,
            KpageFile::Count => 4,
            KpageFile::Cgroup => 6,
        }
    }

    /// The file's path under `root`.
    pub fn path(self, root: &SysRoot) -> PathBuf {
        match self {
            KpageFile::Flags => root.kpageflags(),
            KpageFile::Count => root.kpagecount(),
            KpageFile::Cgroup => root.kpagecgroup(),
        }
    }
}

/// An open file of u64 words, read by index with `pread`.
#[derive(Debug)]
pub struct U64File {
    file: File,
    path: PathBuf,
    /// The gap [`U64File::gather`] reads through: the kpage file's own
    /// ([`KpageFile::gather_gap`]), else [`GATHER_GAP`].
    gap: u64,
}

impl U64File {
    /// Open `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<U64File> {
        let path = path.as_ref().to_path_buf();
        match File::open(&path) {
            Ok(file) => Ok(U64File {
                file,
                path,
                gap: GATHER_GAP,
            }),
            Err(e) => Err(open_error(&path, e)),
        }
    }

    /// Wrap an already open file (e.g. a pagemap opened with PID-aware error handling).
    pub fn from_file(file: File, path: impl Into<PathBuf>) -> U64File {
        U64File {
            file,
            path: path.into(),
            gap: GATHER_GAP,
        }
    }

    /// Open one of the `/proc/kpage*` files under `root`.
    pub fn open_kpage(root: &SysRoot, which: KpageFile) -> Result<U64File> {
        let mut f = U64File::open(which.path(root))?;
        f.gap = which.gather_gap();
        Ok(f)
    }

    /// The path this file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying file (for ioctls such as PAGEMAP_SCAN).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Read raw bytes at a byte offset, retrying short reads until `buf` is full or EOF.
    /// Returns the number of bytes read.
    pub fn read_bytes_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Read the words at `index..index + buf.len()` into `buf`; returns how many were read
    /// (fewer at the end of the file, 0 past it). A file ending inside a word is
    /// [`Error::Truncated`].
    pub fn read_at(&self, index: u64, buf: &mut [u64]) -> Result<usize> {
        let offset = index
            .checked_mul(8)
            .ok_or_else(|| past_end(&self.path, index))?;
        let bytes = crate::bytes::u64s_as_bytes_mut(buf);
        let n = self
            .read_bytes_at(offset, bytes)
            .map_err(|e| self.error_at(index, e))?;
        if n % 8 != 0 {
            return Err(Error::Truncated {
                path: self.path.clone(),
                len: offset + n as u64,
                index: index + (n / 8) as u64,
            });
        }
        Ok(n / 8)
    }

    /// The word at `index`, or `None` past the end of the file.
    pub fn get(&self, index: u64) -> Result<Option<u64>> {
        let mut w = [0u64; 1];
        Ok(if self.read_at(index, &mut w)? == 1 {
            Some(w[0])
        } else {
            None
        })
    }

    /// Stream the words of `range` in batches of `batch` entries, calling `f(first_index,
    /// words)` for each. Stops early at the end of the file. Returns the number of words read.
    pub fn for_each_batch(
        &self,
        range: Range<u64>,
        batch: usize,
        mut f: impl FnMut(u64, &[u64]) -> Result<()>,
    ) -> Result<u64> {
        let mut buf = vec![0u64; batch.max(1)];
        let mut index = range.start;
        while index < range.end {
            let want = usize::try_from(range.end - index)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = self.read_at(index, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            f(index, &buf[..n])?;
            index += n as u64;
            if n < want {
                break;
            }
        }
        Ok(index - range.start)
    }

    /// Look up many indices at once, in any order (duplicates allowed). The indices are sorted
    /// and nearby ones (gaps up to [`KpageFile::gather_gap`] words for a kpage file, whose
    /// every word costs the kernel a page lookup, else [`GATHER_GAP`]; runs up to [`BATCH`]
    /// words) are read with one `pread`: pages of a process or a page_owner dump are
    /// physically close but rarely consecutive. `out[i]` is `None` when `indices[i]` is past
    /// the end of the file.
    pub fn gather(&self, indices: &[u64]) -> Result<Vec<Option<u64>>> {
        self.gather_gap(indices, self.gap)
    }

    /// [`U64File::gather`] reading through gaps of at most `max_gap` words between wanted
    /// indices (1: only consecutive indices share a `pread`). Choose it from the file's cost
    /// per word against the cost of a syscall: see [`KpageFile::gather_gap`].
    pub fn gather_gap(&self, indices: &[u64], max_gap: u64) -> Result<Vec<Option<u64>>> {
        let (mut buf, mut words) = (Vec::new(), Vec::new());
        if indices.is_sorted() {
            // Callers often sort first (PFN lists, folio heads): no second, indirect sort.
            self.gather_sorted(indices, max_gap, &mut buf, &mut words)?;
            return Ok(words);
        }
        let mut order: Vec<usize> = (0..indices.len()).collect();
        order.sort_unstable_by_key(|&i| indices[i]);
        let sorted: Vec<u64> = order.iter().map(|&i| indices[i]).collect();
        self.gather_sorted(&sorted, max_gap, &mut buf, &mut words)?;
        let mut out = vec![None; indices.len()];
        for (&k, w) in order.iter().zip(words) {
            out[k] = w;
        }
        Ok(out)
    }

    /// The words at `sorted` (ascending, duplicates allowed), in that order, into `out`
    /// (cleared first): one `pread` into `buf` per span whose wanted indices are at most
    /// `max_gap` words apart and at most [`BATCH`] words long. For callers that sort once and
    /// keep `buf` and `out` from one batch to the next.
    pub fn gather_sorted(
        &self,
        sorted: &[u64],
        max_gap: u64,
        buf: &mut Vec<u64>,
        out: &mut Vec<Option<u64>>,
    ) -> Result<()> {
        let max_gap = max_gap.max(1);
        out.clear();
        out.reserve(sorted.len());
        let mut i = 0;
        while i < sorted.len() {
            let start = sorted[i];
            let mut j = i + 1;
            while j < sorted.len()
                && sorted[j] - sorted[j - 1] <= max_gap
                && sorted[j] - start < BATCH as u64
            {
                j += 1;
            }
            let len = (sorted[j - 1] - start + 1) as usize;
            buf.resize(len, 0);
            let got = self.read_at(start, &mut buf[..len])? as u64;
            out.extend(sorted[i..j].iter().map(|&p| {
                let off = p - start;
                (off < got).then(|| buf[off as usize])
            }));
            i = j;
        }
        Ok(())
    }

    fn error_at(&self, index: u64, e: io::Error) -> Error {
        let what = if is_pagemap(&self.path) {
            "page"
        } else {
            "PFN"
        };
        let hint = match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => crate::error::NEEDS_ROOT.to_string(),
            Some(libc::EINVAL) => {
                format!("reading {what} {index:#x}: offset must be 8-byte aligned")
            }
            _ => format!("reading {what} {index:#x}"),
        };
        Error::io_hint(&self.path, e, hint)
    }
}

fn is_pagemap(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "pagemap")
}

fn past_end(path: &Path, index: u64) -> Error {
    Error::NotFound(format!(
        "{}: index {index:#x} is past any file's end",
        path.display()
    ))
}

fn open_error(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound && path.starts_with("/proc") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("kpage") {
            let hint = if name == "kpagecgroup" {
                "the kernel lacks CONFIG_MEMCG or CONFIG_PROC_PAGE_MONITOR"
            } else {
                "the kernel lacks CONFIG_PROC_PAGE_MONITOR"
            };
            return Error::io_hint(path, e, hint);
        }
    }
    Error::io(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gather_sorted_handles_duplicates_gaps_and_the_end() {
        let mut t = tempfile::NamedTempFile::new().expect("tempfile");
        for w in 0..100u64 {
            t.write_all(&(w * 3).to_ne_bytes()).expect("write");
        }
        let f = U64File::open(t.path()).expect("open");
        let idx = [2, 2, 3, 9, 50, 99, 99, 100, 5000];
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        for gap in [1, 4, 1000] {
            f.gather_sorted(&idx, gap, &mut buf, &mut got)
                .expect("gather");
            let want: Vec<Option<u64>> = idx.iter().map(|&i| (i < 100).then_some(i * 3)).collect();
            assert_eq!(got, want, "gap {gap}");
        }
    }

    fn file_of(words: &[u64], extra: &[u8]) -> (tempfile::NamedTempFile, U64File) {
        let mut t = tempfile::NamedTempFile::new().expect("tempfile");
        for w in words {
            t.write_all(&w.to_ne_bytes()).expect("write");
        }
        t.write_all(extra).expect("write");
        let f = U64File::open(t.path()).expect("open");
        (t, f)
    }

    #[test]
    fn batches_cover_the_file_exactly() {
        let words: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        let (_t, f) = file_of(&words, &[]);
        let mut seen = Vec::new();
        let n = f
            .for_each_batch(10..u64::MAX, 64, |first, w| {
                assert_eq!(first, 10 + seen.len() as u64);
                seen.extend_from_slice(w);
                Ok(())
            })
            .expect("read");
        assert_eq!(n, 990);
        assert_eq!(seen, words[10..]);
        assert_eq!(f.get(999).expect("get"), Some(2997));
        assert_eq!(f.get(1000).expect("get"), None);
    }

    #[test]
    fn gather_coalesces_and_marks_past_end() {
        let words: Vec<u64> = (0..100).collect();
        let (_t, f) = file_of(&words, &[]);
        let got = f.gather(&[5, 6, 7, 50, 2, 99, 100, 101]).expect("gather");
        assert_eq!(
            got,
            vec![
                Some(5),
                Some(6),
                Some(7),
                Some(50),
                Some(2),
                Some(99),
                None,
                None
            ]
        );
    }

    #[test]
    fn gather_of_sorted_indices_with_duplicates() {
        let words: Vec<u64> = (0..100).map(|i| i * 3).collect();
        let (_t, f) = file_of(&words, &[]);
        let got = f.gather(&[2, 5, 5, 6, 99, 100, 100]).expect("gather");
        assert_eq!(
            got,
            vec![Some(6), Some(15), Some(15), Some(18), Some(297), None, None]
        );
    }

    #[test]
    fn gather_gap_splits_reads_but_gives_the_same_words() {
        let words: Vec<u64> = (0..100).map(|i| i * 2).collect();
        let (_t, f) = file_of(&words, &[]);
        let idx = [9, 3, 4, 40, 41, 43, 99, 100];
        let want = f.gather(&idx).expect("gather");
        for gap in [1, 2, 6, 1000] {
            assert_eq!(f.gather_gap(&idx, gap).expect("gather"), want, "gap {gap}");
        }
        assert_eq!(want[0], Some(18));
        assert_eq!(want[7], None);
    }

    #[test]
    fn partial_word_is_truncated_error() {
        let (_t, f) = file_of(&[1, 2], &[0xff, 0xff, 0xff]);
        assert_eq!(f.get(1).expect("get"), Some(2));
        let e = f.get(2).expect_err("partial");
        assert!(
            matches!(
                e,
                Error::Truncated {
                    len: 19,
                    index: 2,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn missing_file_names_path() {
        let e = U64File::open("/nonexistent/kpageflags").expect_err("missing");
        assert_eq!(
            e.to_string(),
            "/nonexistent/kpageflags: No such file or directory"
        );
    }
}
