//! page-types' `do_u64_read` (one `pread`, fatal on errors and partial words) and a batched
//! scattered lookup that behaves, page by page, as page-types' one-entry reads would.

use super::cerr::perror;
use super::config::Stop;
use crate::bytes::u64s_as_bytes_mut as as_bytes_mut;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The per-PFN files a walk reads: kpageflags, and kpagecgroup / kpagecount when asked for.
pub struct Sides {
    /// kpageflags (or `-F FILE`).
    pub flags: Src,
    /// kpagecgroup, for `-c` / `-C`.
    pub cgroup: Option<Src>,
    /// kpagecount, for `-M` with a listing.
    pub count: Option<Src>,
    /// The kpageflags name page-types prints in errors (also for kpagecgroup's).
    pub flags_name: String,
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
            .map_err(|e| Stop::Fatal(perror(name, &e)))?;
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

const VAL: u8 = 0;
const EOF: u8 = 1;
const RETRY: u8 = 2;

/// Scattered lookups, read in coalesced spans (gaps up to `GAP` words are read through) and
/// answered per lookup as a one-word read at that index would be.
///
/// The caller passes `(index, slot)` pairs sorted by index; answers are stored by slot, so
/// the lookups in walk order cost nothing.
pub struct Gather {
    val: Vec<u64>,
    state: Vec<u8>,
    kval: Vec<u64>,
    kstate: Vec<u8>,
    buf: Vec<u64>,
}

fn load_part(src: &Src, keys: &[(u64, u32)], kval: &mut [u64], kstate: &mut [u8], buf: &mut [u64]) {
    let mut i = 0;
    while i < keys.len() {
        let start = keys[i].0;
        let mut j = i + 1;
        while j < keys.len() && keys[j].0 - keys[j - 1].0 <= GAP && keys[j].0 - start < SPAN {
            j += 1;
        }
        let len = (keys[j - 1].0 - start + 1) as usize;
        let got = if start > u64::MAX / 8 {
            None
        } else {
            pread(
                &src.file,
                as_bytes_mut(&mut buf[..len]),
                start.wrapping_mul(8),
            )
            .ok()
        };
        if let Some(n) = got {
            let words = (n / 8) as u64;
            for k in i..j {
                let off = keys[k].0 - start;
                if off < words {
                    kval[k] = buf[off as usize];
                    kstate[k] = VAL;
                } else if n % 8 == 0 || off > words {
                    kstate[k] = EOF;
                }
            }
        }
        i = j;
    }
}

/// Words read through between two wanted indices rather than starting a new `pread`.
pub const GAP: u64 = 4;
const SPAN: u64 = 8 << 10;

impl Default for Gather {
    fn default() -> Self {
        Gather {
            val: Vec::new(),
            state: Vec::new(),
            kval: Vec::new(),
            kstate: Vec::new(),
            buf: vec![0; SPAN as usize],
        }
    }
}

impl Gather {
    /// Read the words at the indices of `keys` (`(index, slot)`, sorted by index, slots below
    /// `slots`) from `src`, splitting the reads over up to `threads` threads.
    pub fn load(&mut self, src: &Src, keys: &[(u64, u32)], slots: usize, threads: usize) {
        self.kval.clear();
        self.kval.resize(keys.len(), 0);
        self.kstate.clear();
        self.kstate.resize(keys.len(), RETRY);
        let parts = if keys.len() >= 4096 {
            threads.clamp(1, 8)
        } else {
            1
        };
        if parts == 1 {
            load_part(src, keys, &mut self.kval, &mut self.kstate, &mut self.buf);
        } else {
            let per = keys.len().div_ceil(parts);
            std::thread::scope(|s| {
                let mut kv: &mut [u64] = &mut self.kval;
                let mut ks: &mut [u8] = &mut self.kstate;
                let mut k: &[(u64, u32)] = keys;
                let mut first = Some(&mut self.buf);
                while !k.is_empty() {
                    let n = per.min(k.len());
                    let (k0, k1) = k.split_at(n);
                    let (v0, v1) = std::mem::take(&mut kv).split_at_mut(n);
                    let (s0, s1) = std::mem::take(&mut ks).split_at_mut(n);
                    (k, kv, ks) = (k1, v1, s1);
                    match first.take() {
                        Some(buf) => {
                            s.spawn(move || load_part(src, k0, v0, s0, buf));
                        }
                        None => {
                            s.spawn(move || {
                                let mut buf = vec![0u64; SPAN as usize];
                                load_part(src, k0, v0, s0, &mut buf)
                            });
                        }
                    }
                }
            });
        }
        self.val.clear();
        self.val.resize(slots, 0);
        self.state.clear();
        self.state.resize(slots, RETRY);
        for (i, &(_, slot)) in keys.iter().enumerate() {
            self.val[slot as usize] = self.kval[i];
            self.state[slot as usize] = self.kstate[i];
        }
    }

    /// What the batch found for `slot`.
    pub fn word(&self, slot: usize) -> Word {
        match self.state.get(slot) {
            Some(&VAL) => Word::Val(self.val[slot]),
            Some(&EOF) => Word::Eof,
            _ => Word::Retry,
        }
    }

    /// The word for `slot` (index `index`): read alone if the batch could not answer, with
    /// page-types' errors. `None` past the end of the file.
    pub fn get(&self, src: &Src, name: &str, slot: usize, index: u64) -> Result<Option<u64>, Stop> {
        match self.word(slot) {
            Word::Val(v) => Ok(Some(v)),
            Word::Eof => Ok(None),
            Word::Retry => {
                let mut one = [0u64; 1];
                Ok((src.read_named(name, &mut one, index)? == 1).then_some(one[0]))
            }
        }
    }
}

/// page-types' `checked_open`: open read-only or fail with `perror(name)`.
pub fn checked_open(path: &Path, name: &str) -> Result<File, Stop> {
    File::open(path).map_err(|e| Stop::Fatal(perror(name, &e)))
}
