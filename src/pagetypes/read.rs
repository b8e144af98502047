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
    /// The process's pagemap, for a walk of its own (a duplicate descriptor; `pread`s only).
    pub fn pagemap(file: &File) -> Result<Src, Stop> {
        let file = file.try_clone().map_err(|e| {
            Stop::Fatal(format!("/proc/pid/pagemap: {}\n", super::cerr::strerror(&e)).into_bytes())
        })?;
        Ok(Src {
            file,
            name: "/proc/pid/pagemap".into(),
        })
    }

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

/// Scattered lookups, read in coalesced spans (gaps up to [`GAP`] words are read through) and
/// answered per lookup as a one-word read at that index would be.
///
/// The caller passes runs made by [`run_key`] (consecutive indices for consecutive slots, in
/// one word), sorted; answers are stored by slot, so the lookups in walk order cost nothing.
/// Sorting runs rather than single lookups costs a fraction: a process's pages come in runs
/// of physically consecutive pages (6 on average for a 2 GiB anonymous process here, 512 for
/// a huge page). The buffers are kept between batches: a walk allocates them once.
pub struct Gather {
    val: Vec<u64>,
    state: Vec<u8>,
    buf: Vec<u64>,
}

/// The longest run a key holds.
pub const MAX_RUN: usize = 1 << LEN_BITS;
const LEN_BITS: u32 = 9;
const SLOT_BITS: u32 = 15;
/// The most slots a batch may have.
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;
const INDEX_SHIFT: u32 = LEN_BITS + SLOT_BITS;

/// The sort key of a run of `len` lookups (1 to [`MAX_RUN`]) of indices `index..` for slots
/// `slot..` (below [`MAX_SLOTS`]): index, slot and length in one word, so a batch sorts plain
/// u64s. `None` for an index past 2^40 (no real PFN: 52 physical address bits with 4 KiB
/// pages): such lookups are left to [`Gather::get`], which reads each alone.
pub fn run_key(index: u64, slot: usize, len: usize) -> Option<u64> {
    (index < 1 << (64 - INDEX_SHIFT) && slot < MAX_SLOTS && (1..=MAX_RUN).contains(&len))
        .then(|| index << INDEX_SHIFT | (slot as u64) << LEN_BITS | (len - 1) as u64)
}

fn unkey(k: u64) -> (u64, usize, u64) {
    (
        k >> INDEX_SHIFT,
        ((k >> LEN_BITS) as usize) & (MAX_SLOTS - 1),
        (k & (MAX_RUN as u64 - 1)) + 1,
    )
}

/// Words read through between two wanted indices rather than starting a new `pread`: a
/// `pread` of kpageflags costs about what 8-10 more words in it cost (350 ns vs 40 ns a
/// word, measured here), so shorter gaps are cheaper read through.
pub const GAP: u64 = 8;
/// The longest read (words): long enough that the call's own cost is noise, short enough to
/// keep the buffer small. At least [`MAX_RUN`].
const SPAN: u64 = 1 << 10;

impl Gather {
    /// A gather with room for `slots` lookups a batch.
    pub fn with_capacity(slots: usize) -> Gather {
        Gather {
            val: Vec::with_capacity(slots),
            state: Vec::with_capacity(slots),
            buf: vec![0; if slots > 0 { SPAN as usize } else { 0 }],
        }
    }

    /// Read the words of the runs `keys` (made by [`run_key`], sorted, slots below `slots`)
    /// from `src`.
    pub fn load(&mut self, src: &Src, keys: &[u64], slots: usize) {
        self.val.clear();
        self.val.resize(slots, 0);
        self.state.clear();
        self.state.resize(slots, RETRY);
        let mut i = 0;
        while i < keys.len() {
            let (start, _, len) = unkey(keys[i]);
            let mut end = start + len;
            let mut j = i + 1;
            while j < keys.len() {
                let (at, _, len) = unkey(keys[j]);
                if at > end + GAP || at + len - start > SPAN {
                    break;
                }
                end = end.max(at + len);
                j += 1;
            }
            // an index past 2^40 cannot be packed, so the offset never overflows
            let got = pread(
                &src.file,
                as_bytes_mut(&mut self.buf[..(end - start) as usize]),
                start * 8,
            )
            .ok();
            if let Some(n) = got {
                let words = (n / 8) as u64;
                for &k in &keys[i..j] {
                    let (at, slot, len) = unkey(k);
                    for t in 0..len {
                        let (off, slot) = (at - start + t, slot + t as usize);
                        if off < words {
                            self.val[slot] = self.buf[off as usize];
                            self.state[slot] = VAL;
                        } else if n % 8 == 0 || off > words {
                            self.state[slot] = EOF;
                        }
                    }
                }
            }
            i = j;
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
