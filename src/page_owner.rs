//! page_owner dumps (`/sys/kernel/debug/page_owner`, kernel booted with `page_owner=on`).
//!
//! Two consumers share the streaming block reader here:
//! - [`sort`]: a byte-exact re-implementation of the kernel's `tools/vm/page_owner_sort` (6.1),
//!   including its quirks (see `notes/page-types-spec.md` Part B), with memory bounded by the
//!   number of *distinct* records it has to print (distinct block texts without `--cull`,
//!   distinct cull keys with it), not by the number of records read.
//! - [`report`]: pgtool's own report: top allocation stacks by pages, by order, gfp, module,
//!   pid/tgid/comm, with the PFN of every record available for a join with `/proc/kpageflags`.
//!
//! The 6.1 record format:
//! ```text
//! Page allocated via order 0, mask 0x152cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), pid 1, tgid 1 (init), ts 1234 ns, free_ts 0 ns
//! PFN 4096 type Movable Block 8 type Movable Flags 0x...(uptodate|lru|...)
//!  prep_new_page+0x7c/0x90
//!  ...
//!
//! ```

use std::io::{self, BufRead};

pub mod report;
pub mod sort;

/// page_owner_sort's line buffer size: a block of this many bytes (without its PFN line) ends
/// the reading, as in the C tool.
pub const BUF_SIZE: usize = 128 * 1024;

/// Streaming reader of page_owner blocks, with page_owner_sort's exact framing rules:
/// lines are read `fgets`-style into a 128 KiB block buffer, a line starting with `PFN` is
/// kept apart (the "PFN line", which persists into later blocks that lack one), an empty line
/// ends a block, a block that hits EOF (or fills the buffer) is dropped and ends the input,
/// and a NUL byte truncates the line it is in.
pub struct BlockReader<R> {
    r: R,
    /// The block text followed by the '\n' of the empty line that ended it.
    buf: Vec<u8>,
    /// The last PFN line seen (including its newline).
    pfn_line: Vec<u8>,
    done: bool,
    chunk: Vec<u8>,
    fresh: bool,
    /// Strict mode (pgtool's report): stop at binary data, over-long lines or [`Self::limit`]
    /// bytes instead of reading on as the C tool does.
    strict: bool,
    limit: u64,
    offset: u64,
    line: u64,
    end: End,
}

/// Why a [`BlockReader`] stopped (strict mode tells these apart; the compatible mode only ever
/// reports [`End::Eof`], [`End::Full`] and [`End::Error`]).
#[derive(Debug, Default)]
pub enum End {
    /// Still reading.
    #[default]
    Running,
    /// The end of the input.
    Eof,
    /// A block filled [`BUF_SIZE`] bytes (the C tool stops there too).
    Full {
        /// Byte offset where the block ended.
        offset: u64,
    },
    /// A read error (the C tool treats it as EOF).
    Error(io::Error),
    /// Strict: a NUL byte, which no page_owner dump contains.
    Binary {
        /// Byte offset of the NUL.
        offset: u64,
        /// Its line (1-based).
        line: u64,
    },
    /// Strict: a line longer than [`MAX_LINE`] bytes.
    LongLine {
        /// The line (1-based).
        line: u64,
    },
    /// Strict: more than the byte limit was read.
    Limit {
        /// The limit in bytes.
        limit: u64,
    },
}

/// The longest line strict mode accepts (real page_owner lines are under 300 bytes).
pub const MAX_LINE: usize = 64 * 1024;

impl<R: BufRead> BlockReader<R> {
    /// A reader over `r`.
    pub fn new(r: R) -> BlockReader<R> {
        BlockReader {
            r,
            buf: Vec::with_capacity(4096),
            pfn_line: Vec::new(),
            done: false,
            chunk: Vec::with_capacity(512),
            fresh: false,
            strict: false,
            limit: u64::MAX,
            offset: 0,
            line: 0,
            end: End::Running,
        }
    }

    /// A strict reader for pgtool's own report: it stops (see [`Self::end`]) at a NUL byte, at
    /// a line longer than [`MAX_LINE`] and after `limit` bytes, so that binary files, endless
    /// streams and lines without newlines end quickly with a reason.
    pub fn strict(r: R, limit: u64) -> BlockReader<R> {
        let mut b = BlockReader::new(r);
        b.strict = true;
        b.limit = limit;
        b
    }

    /// Why the reader stopped ([`End::Running`] while blocks are still coming).
    pub fn end(&self) -> &End {
        &self.end
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// After `next_block` returned None at the end of the input: the text of a last block
    /// that had no terminating empty line (the C tool drops it), if any.
    pub fn take_partial(&mut self) -> Option<Block<'_>> {
        if !matches!(self.end, End::Eof) || self.buf.is_empty() {
            return None;
        }
        let len = self.buf.len();
        self.buf.push(b'\n');
        let b = Block {
            search: &self.buf,
            len,
            pfn_line: &self.pfn_line,
            pfn_fresh: self.fresh,
        };
        Some(b)
    }

    /// fgets(s, n): up to n-1 bytes, stopping after a newline. Ok(false) at EOF with nothing read.
    /// A read error ends the input like EOF (as fgets returning NULL does).
    fn fgets(&mut self, n: usize) -> bool {
        self.chunk.clear();
        let max = n.saturating_sub(1);
        while self.chunk.len() < max {
            let avail = match self.r.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.end = End::Error(e);
                    break;
                }
            };
            if avail.is_empty() {
                break;
            }
            let want = max - self.chunk.len();
            let take = avail.len().min(want);
            match memchr::memchr(b'\n', &avail[..take]) {
                Some(i) => {
                    self.chunk.extend_from_slice(&avail[..=i]);
                    self.r.consume(i + 1);
                    return true;
                }
                None => {
                    self.chunk.extend_from_slice(&avail[..take]);
                    self.r.consume(take);
                }
            }
        }
        !self.chunk.is_empty()
    }

    /// The next block, or None at the end of the input.
    pub fn next_block(&mut self) -> Option<Block<'_>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        self.fresh = false;
        loop {
            // while (buf_end - curr > 1 && fgets(curr, buf_end - curr, fin))
            let room = BUF_SIZE - self.buf.len();
            if room <= 1 {
                self.done = true;
                self.end = End::Full {
                    offset: self.offset,
                };
                return None;
            }
            let n = if self.strict {
                room.min(MAX_LINE + 2)
            } else {
                room
            };
            if !self.fgets(n) {
                self.done = true;
                if matches!(self.end, End::Running) {
                    self.end = End::Eof;
                }
                return None;
            }
            self.offset += self.chunk.len() as u64;
            self.line += 1;
            if self.strict {
                let stop = if let Some(i) = memchr::memchr(0, &self.chunk) {
                    Some(End::Binary {
                        offset: self.offset - (self.chunk.len() - i) as u64,
                        line: self.line,
                    })
                } else if self.chunk.len() > MAX_LINE {
                    Some(End::LongLine { line: self.line })
                } else if self.offset > self.limit {
                    Some(End::Limit { limit: self.limit })
                } else {
                    None
                };
                if let Some(e) = stop {
                    self.done = true;
                    self.end = e;
                    return None;
                }
            }
            let eff_len = memchr::memchr(0, &self.chunk).unwrap_or(self.chunk.len());
            let eff = &self.chunk[..eff_len];
            if eff.first() == Some(&b'\n') {
                let len = self.buf.len();
                self.buf.push(b'\n');
                return Some(Block {
                    search: &self.buf,
                    len,
                    pfn_line: &self.pfn_line,
                    pfn_fresh: self.fresh,
                });
            }
            if eff.starts_with(b"PFN") {
                self.pfn_line.clear();
                self.pfn_line.extend_from_slice(eff);
                self.fresh = true;
                continue;
            }
            self.buf.extend_from_slice(eff);
        }
    }
}

/// One page_owner block as page_owner_sort sees it.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The block text followed by one '\n' (the C tool's buffer as a string).
    search: &'a [u8],
    len: usize,
    /// The PFN line in force for this block (the last one read, possibly from an earlier block).
    pub pfn_line: &'a [u8],
    /// Whether the PFN line was read inside this block (false: inherited from an earlier one).
    pub pfn_fresh: bool,
}

impl<'a> Block<'a> {
    /// The block's text: its lines except the PFN line, each with its newline.
    pub fn text(&self) -> &'a [u8] {
        &self.search[..self.len]
    }
    /// The text plus the '\n' of the empty line that ended it (what the C tool's regexes see).
    pub fn search_buf(&self) -> &'a [u8] {
        self.search
    }
    /// The stack trace as page_owner_sort defines it: the text after its first line.
    pub fn stacktrace(&self) -> &'a [u8] {
        let t = self.text();
        match memchr::memchr(b'\n', t) {
            Some(i) => &t[i + 1..],
            None => &[],
        }
    }
}

/// A memmem searcher built once per literal (building one per search shows in profiles).
macro_rules! finder {
    ($lit:expr) => {{
        static F: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($lit));
        &*F
    }};
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    i
}

fn skip_digits(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Result of one of page_owner_sort's regex searches: the capture of the leftmost match.
pub type Capture<'a> = Option<&'a [u8]>;

/// Leftmost match of `LIT\s*([0-9]*)TAIL` where TAIL is a literal starting with a non-space,
/// non-digit byte (`order`, `pid`).
fn find_num_then<'a>(
    s: &'a [u8],
    lit: &memchr::memmem::Finder<'static>,
    tail: &[u8],
) -> Capture<'a> {
    for pos in lit.find_iter(s) {
        let a = skip_ws(s, pos + lit.needle().len());
        let b = skip_digits(s, a);
        if s[b..].starts_with(tail) {
            return Some(&s[a..b]);
        }
    }
    None
}

/// `ts\s*([0-9]*)\s*ns,` and `free_ts\s*([0-9]*)\s*ns`.
fn find_ts<'a>(s: &'a [u8], lit: &memchr::memmem::Finder<'static>, tail: &[u8]) -> Capture<'a> {
    for pos in lit.find_iter(s) {
        let a = skip_ws(s, pos + lit.needle().len());
        let b = skip_digits(s, a);
        let c = skip_ws(s, b);
        if s[c..].starts_with(tail) {
            return Some(&s[a..b]);
        }
    }
    None
}

/// `tgid\s*([0-9]*) ` (the space is literal; POSIX longest match semantics).
pub fn find_tgid(s: &[u8]) -> Capture<'_> {
    for pos in finder!(b"tgid").find_iter(s) {
        let a0 = pos + 4;
        let a = skip_ws(s, a0);
        let b = skip_digits(s, a);
        if b > a && s.get(b) == Some(&b' ') {
            return Some(&s[a..b]);
        }
        // \s* shorter, [0-9]* empty, then a literal space inside the whitespace run.
        if s[a0..a].contains(&b' ') {
            return Some(&[]);
        }
    }
    None
}

/// `tgid\s*[0-9]*\s*\((.*)\),\s*ts` with REG_NEWLINE (`.` stops at newlines), longest match.
pub fn find_comm(s: &[u8]) -> Capture<'_> {
    for pos in finder!(b"tgid").find_iter(s) {
        let i = skip_ws(s, skip_digits(s, skip_ws(s, pos + 4)));
        if s.get(i) != Some(&b'(') {
            continue;
        }
        let start = i + 1;
        let line_end = memchr::memchr(b'\n', &s[start..]).map_or(s.len(), |e| start + e);
        // The last "),\s*ts" whose ")" lies on this line.
        let mut best = None;
        for r in finder!(b"),").find_iter(&s[start..line_end]) {
            let r = start + r;
            let w = skip_ws(s, r + 2);
            if s[w..].starts_with(b"ts") {
                best = Some(r);
            }
        }
        if let Some(r) = best {
            return Some(&s[start..r]);
        }
    }
    None
}

/// The order capture (`order\s*([0-9]*),`).
pub fn find_order(s: &[u8]) -> Capture<'_> {
    find_num_then(s, finder!(b"order"), b",")
}
/// The pid capture (`pid\s*([0-9]*),`).
pub fn find_pid(s: &[u8]) -> Capture<'_> {
    find_num_then(s, finder!(b"pid"), b",")
}
/// The ts capture (`ts\s*([0-9]*)\s*ns,`).
pub fn find_ts_nsec(s: &[u8]) -> Capture<'_> {
    find_ts(s, finder!(b"ts"), b"ns,")
}
/// The free_ts capture (`free_ts\s*([0-9]*)\s*ns`).
pub fn find_free_ts(s: &[u8]) -> Capture<'_> {
    find_ts(s, finder!(b"free_ts"), b"ns")
}

/// strtol/strtoull of an all-digit capture: None when empty or out of range (errno set).
fn parse_digits(d: &[u8], max: u64) -> Option<u64> {
    if d.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in d {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Pages of a block as page_owner_sort computes them (`1 << order`, 0 for a bad order).
pub fn pages_of(order: Capture<'_>) -> i32 {
    match order.and_then(|d| parse_digits(d, i64::MAX as u64)) {
        Some(v) => {
            // long -> int truncation, then `1 << order` as x86 executes it (count masked to 5 bits).
            let o = v as i64 as i32;
            if o > 64 {
                0
            } else {
                1i32.wrapping_shl(o as u32)
            }
        }
        None => 0,
    }
}

/// A pid/tgid as page_owner_sort reads it: -1 when missing or out of `long` range.
pub fn pid_of(c: Capture<'_>) -> i32 {
    match c.and_then(|d| parse_digits(d, i64::MAX as u64)) {
        Some(v) => v as i64 as i32,
        None => -1,
    }
}

/// A timestamp as page_owner_sort reads it: all-ones when missing or out of range.
pub fn ts_of(c: Capture<'_>) -> u64 {
    c.and_then(|d| parse_digits(d, u64::MAX))
        .unwrap_or(u64::MAX)
}

/// page_owner_sort's allocator bits.
pub mod allocator {
    /// Allocated from CMA (the PFN line says `CMA`).
    pub const CMA: i32 = 1 << 1;
    /// A slab page (the PFN line says `slab`).
    pub const SLAB: i32 = 1 << 2;
    /// vmalloc (`__vmalloc_node_range` with `alloc_pages` on the line before).
    pub const VMALLOC: i32 = 1 << 3;
    /// None of the above.
    pub const OTHERS: i32 = 1 << 4;
}

/// The allocator bitmask page_owner_sort derives from a block and its PFN line.
///
/// The C tool scans backwards from `__vmalloc_node_range` to the start of the previous line
/// without a bound (undefined behaviour when the match is on the first two lines); here the
/// scan stops at the start of the block.
pub fn allocator_of(search: &[u8], pfn_line: &[u8]) -> i32 {
    let mut a = 0;
    if finder!(b"CMA").find(pfn_line).is_some() {
        a |= allocator::CMA;
    }
    if finder!(b"slab").find(pfn_line).is_some() {
        a |= allocator::SLAB;
    }
    if let Some(second) = finder!(b"__vmalloc_node_range").find(search) {
        let mut p = second;
        while p > 0 && search[p] != b'\n' {
            p -= 1;
        }
        let first = if p == 0 {
            0
        } else {
            p -= 1;
            while p > 0 && search[p] != b'\n' {
                p -= 1;
            }
            if search[p] == b'\n' { p + 1 } else { 0 }
        };
        if let Some(t) = finder!(b"alloc_pages").find(&search[first..])
            && first + t < second
        {
            a |= allocator::VMALLOC;
        }
    }
    if a == 0 {
        a = allocator::OTHERS;
    }
    a
}
