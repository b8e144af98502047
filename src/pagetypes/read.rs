//! page-types' `do_u64_read` (one `pread`, fatal on errors and partial words) and a batched
//! scattered lookup that behaves, page by page, as page-types' one-entry reads would.

use super::Stop;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

fn strerror(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A u64-per-index file with the name page-types prints in its errors.
pub struct Src {
    /// The open file.
    pub file: File,
    /// The name in messages.
    pub name: String,
}

fn pread(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn as_bytes_mut(buf: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(buf);
    // SAFETY: u64 has no padding and any byte pattern is a valid u64; same memory, same
    // lifetime, exclusive borrow.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), len) }
}

impl Src {
    /// `do_u64_read(fd, name, buf, index, buf.len())`: the number of words read.
    pub fn read(&self, buf: &mut [u64], index: u64) -> Result<usize, Stop> {
        self.read_named(&self.name, buf, index)
    }

    /// The same with another name in the error messages (page-types names the flags file when
    /// a kpagecgroup read fails).
    pub fn read_named(&self, name: &str, buf: &mut [u64], index: u64) -> Result<usize, Stop> {
        if index > u64::MAX / 8 {
            return Err(Stop::Fatal(
                format!("index overflow: {index}\n").into_bytes(),
            ));
        }
        let n = pread(&self.file, as_bytes_mut(buf), index.wrapping_mul(8))
            .map_err(|e| Stop::Fatal(format!("{name}: {}\n", strerror(&e)).into_bytes()))?;
        if n % 8 != 0 {
            return Err(Stop::Fatal(
                format!("partial read: {n} bytes\n").into_bytes(),
            ));
        }
        Ok(n / 8)
    }
}

/// What a one-entry read at an index gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    /// The word.
    Val(u64),
    /// Past the end of the file (0 words).
    Eof,
    /// Read it alone when it is needed (the batched read failed).
    Retry,
}

/// Scattered lookups at sorted unique indices, read in coalesced spans (gaps up to `GAP`
/// words are read through) and answered per index as a one-word read would be.
pub struct Gather {
    idx: Vec<u64>,
    val: Vec<Word>,
    buf: Vec<u64>,
}

const GAP: u64 = 16;
const SPAN: u64 = 16 << 10;

impl Default for Gather {
    fn default() -> Self {
        Gather {
            idx: Vec::new(),
            val: Vec::new(),
            buf: vec![0; SPAN as usize],
        }
    }
}

impl Gather {
    /// Read the words at `indices` (any order, duplicates allowed) from `src`.
    pub fn load(&mut self, src: &Src, indices: impl Iterator<Item = u64>) {
        self.idx.clear();
        self.idx.extend(indices);
        self.idx.sort_unstable();
        self.idx.dedup();
        self.val.clear();
        self.val.resize(self.idx.len(), Word::Retry);
        let mut i = 0;
        while i < self.idx.len() {
            let start = self.idx[i];
            let mut j = i + 1;
            while j < self.idx.len()
                && self.idx[j] - self.idx[j - 1] <= GAP
                && self.idx[j] - start < SPAN
            {
                j += 1;
            }
            let len = (self.idx[j - 1] - start + 1) as usize;
            let got = if start > u64::MAX / 8 {
                None
            } else {
                pread(
                    &src.file,
                    as_bytes_mut(&mut self.buf[..len]),
                    start.wrapping_mul(8),
                )
                .ok()
            };
            if let Some(n) = got {
                let words = (n / 8) as u64;
                for k in i..j {
                    let off = self.idx[k] - start;
                    self.val[k] = if off < words {
                        Word::Val(self.buf[off as usize])
                    } else if n % 8 == 0 || off > words {
                        Word::Eof
                    } else {
                        Word::Retry
                    };
                }
            }
            i = j;
        }
    }

    /// The word at `index` (which must have been loaded): read alone if the batch could
    /// not answer, with page-types' errors. `None` past the end of the file.
    pub fn get(&self, src: &Src, name: &str, index: u64) -> Result<Option<u64>, Stop> {
        let w = match self.idx.binary_search(&index) {
            Ok(k) => self.val[k],
            Err(_) => Word::Retry,
        };
        match w {
            Word::Val(v) => Ok(Some(v)),
            Word::Eof => Ok(None),
            Word::Retry => {
                let mut one = [0u64; 1];
                Ok((src.read_named(name, &mut one, index)? == 1).then_some(one[0]))
            }
        }
    }
}
