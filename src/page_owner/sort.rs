//! The engine of the `page_owner_sort` drop-in (Linux 6.1 `tools/vm/page_owner_sort.c`).
//!
//! Same records, filters, cull and sort semantics, output bytes and progress lines as the C tool.
//! What differs is memory: the C tool keeps every record (its text and fields); this engine keeps
//! one entry per record that can appear in the output, i.e. per *distinct* block text without
//! `--cull` (identical texts are merged by the C tool's cull pass anyway) and per distinct cull key
//! with `--cull`. Each entry keeps the fields of the first record (in input order) of its class,
//! which is the one the C tool's stable merge sort keeps. Then the glibc 2.36 `qsort` (a top-down
//! merge sort) is reproduced so that ties, and the timestamp comparators that never return 0,
//! order records exactly as the C tool does.
//!
//! Not emulated (undefined behaviour in C): a comm longer than 15 bytes (the C tool overflows a
//! 16-byte buffer; here the whole capture is kept), numbers longer than 24 digits (same, here they
//! are simply out of range), the unbounded backward scan for `__vmalloc_node_range` on the first
//! lines, and integer comparators overflowing for pids near ±2^31 during the cull pass.

use super::{
    BlockReader, allocator, allocator_of, find_comm, find_free_ts, find_order, find_pid, find_tgid,
    find_ts_nsec, pages_of, pid_of, ts_of,
};
use hashbrown::HashTable;
use std::cmp::Ordering;
use std::io::{self, BufRead, Write};

pub mod cli;

/// Filter bits (`FILTER_*` in the C tool).
pub mod filter {
    /// `-f`: drop blocks freed after their last allocation.
    pub const UNRELEASE: u32 = 1 << 1;
    /// `--pid`.
    pub const PID: u32 = 1 << 2;
    /// `--tgid`.
    pub const TGID: u32 = 1 << 3;
    /// `--name`.
    pub const COMM: u32 = 1 << 4;
}

/// Cull bits (`CULL_*` in the C tool).
pub mod cull {
    /// `free`/`f`.
    pub const UNRELEASE: u32 = 1 << 1;
    /// `pid`/`p`.
    pub const PID: u32 = 1 << 2;
    /// `tgid`/`tg`.
    pub const TGID: u32 = 1 << 3;
    /// `name`/`n`.
    pub const COMM: u32 = 1 << 4;
    /// `stacktrace`/`st`.
    pub const STACKTRACE: u32 = 1 << 5;
    /// `allocator`/`ator`.
    pub const ALLOCATOR: u32 = 1 << 6;
}

mod options;
pub use options::{ArgType, Options, SortKey, arg_type, strtol_int};

/// One output entry: the first record of its class plus the summed counts.
#[derive(Debug, Clone)]
struct Group {
    hash: u64,
    txt: Box<[u8]>,
    stack_off: usize,
    comm: Box<[u8]>,
    ts: u64,
    free_ts: u64,
    num: i32,
    page_num: i32,
    pid: i32,
    tgid: i32,
    allocator: i32,
}

impl Group {
    fn stacktrace(&self) -> &[u8] {
        &self.txt[self.stack_off..]
    }
}

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash_bytes(mut h: u64, b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let mut w = [0u8; 8];
    let r = chunks.remainder();
    w[..r.len()].copy_from_slice(r);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ ((b.len() as u64) << 56)).wrapping_mul(K);
    h
}

fn strcmp(a: &[u8], b: &[u8]) -> i32 {
    match a.cmp(b) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

fn release_cmp(a: &Group, b: &Group) -> i32 {
    match (a.free_ts != 0, b.free_ts != 0) {
        (x, y) if x == y => 0,
        (true, _) => 1,
        _ => -1,
    }
}

fn key_cmp(key: SortKey, a: &Group, b: &Group) -> i32 {
    match key {
        SortKey::Txt => strcmp(&a.txt, &b.txt),
        SortKey::Comm => strcmp(&a.comm, &b.comm),
        SortKey::Stacktrace => strcmp(a.stacktrace(), b.stacktrace()),
        SortKey::AllocTs => {
            if a.ts < b.ts {
                -1
            } else {
                1
            }
        }
        SortKey::FreeTs => {
            if a.free_ts < b.free_ts {
                -1
            } else {
                1
            }
        }
        SortKey::Num => a.num.wrapping_sub(b.num),
        SortKey::PageNum => a.page_num.wrapping_sub(b.page_num),
        SortKey::Pid => a.pid.wrapping_sub(b.pid),
        SortKey::Tgid => a.tgid.wrapping_sub(b.tgid),
        SortKey::Allocator => a.allocator.wrapping_sub(b.allocator),
    }
}

/// `compare_cull_condition`.
fn cull_cmp(c: u32, a: &Group, b: &Group) -> i32 {
    if c == 0 {
        return strcmp(&a.txt, &b.txt);
    }
    let steps: [(u32, SortKey); 4] = [
        (cull::STACKTRACE, SortKey::Stacktrace),
        (cull::PID, SortKey::Pid),
        (cull::TGID, SortKey::Tgid),
        (cull::COMM, SortKey::Comm),
    ];
    for (bit, key) in steps {
        if c & bit != 0 {
            let r = key_cmp(key, a, b);
            if r != 0 {
                return r;
            }
        }
    }
    if c & cull::UNRELEASE != 0 {
        let r = release_cmp(a, b);
        if r != 0 {
            return r;
        }
    }
    if c & cull::ALLOCATOR != 0 {
        let r = key_cmp(SortKey::Allocator, a, b);
        if r != 0 {
            return r;
        }
    }
    0
}

/// glibc 2.36 `qsort` (msort.c, `msort_with_tmp`): top-down merge sort, left half n/2 elements,
/// the left element first when the comparison is <= 0.
pub fn glibc_msort<T: Copy>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> i32) {
    if v.len() <= 1 {
        return;
    }
    let mut tmp = Vec::with_capacity(v.len());
    msort_rec(v, &mut tmp, cmp);
}

fn msort_rec<T: Copy>(v: &mut [T], tmp: &mut Vec<T>, cmp: &mut impl FnMut(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (l, r) = v.split_at_mut(n1);
        msort_rec(l, tmp, cmp);
        msort_rec(r, tmp, cmp);
    }
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp.push(v[i]);
            i += 1;
        } else {
            tmp.push(v[j]);
            j += 1;
        }
    }
    // The rest of the left run goes to tmp; the rest of the right run is already in place.
    tmp.extend_from_slice(&v[i..n1]);
    let k = tmp.len();
    v[..k].copy_from_slice(&tmp[..k]);
}

/// The page_owner_sort state machine: feed blocks, then [`Sorter::finish`].
pub struct Sorter {
    opts: Options,
    groups: Vec<Group>,
    table: HashTable<u32>,
    last: Option<(Vec<u8>, u32)>,
    stored: u64,
    max_size: u64,
}

/// Why reading stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// More records than file_size/100 (the C tool's `max_size too small??`, exit 1).
    MaxSize,
}

impl Sorter {
    /// A sorter for an input file of `file_size` bytes (the C tool's capacity is file_size/100).
    pub fn new(opts: Options, file_size: u64) -> Sorter {
        Sorter {
            opts,
            groups: Vec::new(),
            table: HashTable::new(),
            last: None,
            stored: 0,
            max_size: (file_size / 100).min(i32::MAX as u64),
        }
    }

    /// Records stored so far (the C tool's `list_size`).
    pub fn stored(&self) -> u64 {
        self.stored
    }

    /// Distinct output entries so far.
    pub fn entries(&self) -> usize {
        self.groups.len()
    }

    /// Feed one block read by [`BlockReader`]. `stdout` gets the progress lines, `stderr` the
    /// `-d` messages.
    pub fn add(
        &mut self,
        block: &super::Block<'_>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> io::Result<Result<(), Stop>> {
        let txt = block.text();
        let buf = block.search_buf();
        let dbg = self.opts.debug;
        if let Some((last, gi)) = &self.last
            && last.as_slice() == txt
        {
            let order = find_order(buf);
            let p = pages_of(order);
            if dbg {
                dbg_order(stderr, buf, order)?;
            }
            let g = &mut self.groups[*gi as usize];
            g.num = g.num.wrapping_add(1);
            g.page_num = g.page_num.wrapping_add(p);
            return Ok(Ok(()));
        }
        if self.stored == self.max_size {
            return Ok(Err(Stop::MaxSize));
        }
        // is_need
        let ts_c = find_ts_nsec(buf);
        let fts_c = find_free_ts(buf);
        let ts = ts_of(ts_c);
        let free_ts = ts_of(fts_c);
        if dbg {
            dbg_num(stderr, buf, ts_c, "wrong ts_nsec", ts_c.is_some_and(ts_ok))?;
            dbg_num(
                stderr,
                buf,
                fts_c,
                "wrong free_ts_nsec",
                fts_c.is_some_and(ts_ok),
            )?;
        }
        let f = self.opts.filter;
        if f & filter::UNRELEASE != 0 && free_ts != 0 && ts < free_ts {
            return Ok(Ok(()));
        }
        let pid_c = find_pid(buf);
        let pid = pid_of(pid_c);
        if f & filter::PID != 0 {
            if dbg {
                dbg_num(stderr, buf, pid_c, "wrong/invalid pid", pid_ok(pid_c))?;
            }
            if !self.opts.pids.contains(&pid) {
                return Ok(Ok(()));
            }
        }
        let tgid_c = find_tgid(buf);
        let tgid = pid_of(tgid_c);
        if f & filter::TGID != 0 {
            if dbg {
                dbg_num(stderr, buf, tgid_c, "wrong/invalid tgid", pid_ok(tgid_c))?;
            }
            if !self.opts.tgids.contains(&tgid) {
                return Ok(Ok(()));
            }
        }
        let comm_c = find_comm(buf);
        let comm: &[u8] = comm_c.unwrap_or(&[]);
        if dbg && comm_c.is_none() {
            no_match(stderr, buf)?;
        }
        if f & filter::COMM != 0 && !self.opts.comms.iter().any(|c| c.as_slice() == comm) {
            return Ok(Ok(()));
        }
        // Stored: the C tool re-parses pid, tgid, comm, order, ts, free_ts (debug output again).
        let order = find_order(buf);
        if dbg {
            dbg_num(stderr, buf, pid_c, "wrong/invalid pid", pid_ok(pid_c))?;
            dbg_num(stderr, buf, tgid_c, "wrong/invalid tgid", pid_ok(tgid_c))?;
            if comm_c.is_none() {
                no_match(stderr, buf)?;
            }
            dbg_order(stderr, buf, order)?;
            dbg_num(stderr, buf, ts_c, "wrong ts_nsec", ts_c.is_some_and(ts_ok))?;
            dbg_num(
                stderr,
                buf,
                fts_c,
                "wrong free_ts_nsec",
                fts_c.is_some_and(ts_ok),
            )?;
        }
        let stack_off = memchr::memchr(b'\n', txt).map_or(txt.len(), |i| i + 1);
        let mut cand = Group {
            hash: 0,
            txt: txt.into(),
            stack_off,
            comm: comm.into(),
            ts,
            free_ts,
            num: 1,
            page_num: pages_of(order),
            pid,
            tgid,
            allocator: allocator_of(buf, block.pfn_line),
        };
        let c = self.opts.cull;
        let h = key_hash(c, &cand);
        cand.hash = h;
        let groups = &mut self.groups;
        let gi = match self
            .table
            .find(h, |&i| cull_cmp(c, &groups[i as usize], &cand) == 0)
        {
            Some(&i) => {
                let g = &mut groups[i as usize];
                g.num = g.num.wrapping_add(cand.num);
                g.page_num = g.page_num.wrapping_add(cand.page_num);
                i
            }
            None => {
                let i = groups.len() as u32;
                groups.push(cand);
                let groups = &self.groups;
                self.table.insert_unique(h, i, |&j| groups[j as usize].hash);
                i
            }
        };
        match &mut self.last {
            Some((v, i)) => {
                v.clear();
                v.extend_from_slice(txt);
                *i = gi;
            }
            None => self.last = Some((txt.to_vec(), gi)),
        }
        self.stored += 1;
        if self.stored.is_multiple_of(1000) {
            write!(stdout, "loaded {}\r", self.stored)?;
            stdout.flush()?;
        }
        Ok(Ok(()))
    }

    /// Sort, cull and write the output file, with the closing progress lines on `stdout`.
    pub fn finish(self, stdout: &mut dyn Write, out: &mut dyn Write) -> io::Result<()> {
        write!(stdout, "loaded {}\nsorting ....\n", self.stored)?;
        let c = self.opts.cull;
        let groups = self.groups;
        let mut idx: Vec<u32> = (0..groups.len() as u32).collect();
        glibc_msort(&mut idx, &mut |&a, &b| {
            cull_cmp(c, &groups[a as usize], &groups[b as usize])
        });
        stdout.write_all(b"culling\n")?;
        stdout.flush()?;
        let sort = &self.opts.sort;
        if !sort.is_empty() {
            glibc_msort(&mut idx, &mut |&a, &b| {
                let (ga, gb) = (&groups[a as usize], &groups[b as usize]);
                let mut r = 0i32;
                for &(k, sign) in sort {
                    if r == 0 {
                        r = sign.wrapping_mul(key_cmp(k, ga, gb));
                    }
                }
                r
            });
        }
        let f = self.opts.filter;
        for &i in &idx {
            let g = &groups[i as usize];
            if c == 0 {
                write!(out, "{} times, {} pages, ", g.num, g.page_num)?;
                print_allocator(out, g.allocator)?;
                out.write_all(b":\n")?;
                out.write_all(&g.txt)?;
                out.write_all(b"\n")?;
            } else {
                write!(out, "{} times, {} pages", g.num, g.page_num)?;
                if c & cull::PID != 0 || f & filter::PID != 0 {
                    write!(out, ", PID {}", g.pid)?;
                }
                if c & cull::TGID != 0 || f & filter::TGID != 0 {
                    write!(out, ", TGID {}", g.tgid)?;
                }
                if c & cull::COMM != 0 || f & filter::COMM != 0 {
                    out.write_all(b", task_comm_name: ")?;
                    out.write_all(&g.comm)?;
                }
                if c & cull::ALLOCATOR != 0 {
                    out.write_all(b", ")?;
                    print_allocator(out, g.allocator)?;
                }
                if c & cull::UNRELEASE != 0 {
                    out.write_all(if g.free_ts != 0 {
                        b" (UNRELEASED)"
                    } else {
                        b" (RELEASED)"
                    })?;
                }
                if c & cull::STACKTRACE != 0 {
                    out.write_all(b":\n")?;
                    out.write_all(g.stacktrace())?;
                }
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    }

    /// Read every block of `r` (see [`BlockReader`]).
    pub fn read_all(
        &mut self,
        r: impl BufRead,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> io::Result<Result<(), Stop>> {
        let mut br = BlockReader::new(r);
        while let Some(b) = br.next_block() {
            if let Err(s) = self.add(&b, stdout, stderr)? {
                return Ok(Err(s));
            }
        }
        Ok(Ok(()))
    }
}

fn key_hash(c: u32, g: &Group) -> u64 {
    if c == 0 {
        return fmix(hash_bytes(0, &g.txt));
    }
    let mut h = 0u64;
    if c & cull::STACKTRACE != 0 {
        h = hash_bytes(h, g.stacktrace());
    }
    if c & cull::PID != 0 {
        h = hash_bytes(h, &g.pid.to_le_bytes());
    }
    if c & cull::TGID != 0 {
        h = hash_bytes(h, &g.tgid.to_le_bytes());
    }
    if c & cull::COMM != 0 {
        h = hash_bytes(h, &g.comm);
    }
    if c & cull::UNRELEASE != 0 {
        h = hash_bytes(h, &[u8::from(g.free_ts != 0)]);
    }
    if c & cull::ALLOCATOR != 0 {
        h = hash_bytes(h, &g.allocator.to_le_bytes());
    }
    fmix(h)
}

fn print_allocator(out: &mut dyn Write, a: i32) -> io::Result<()> {
    out.write_all(b"allocated by ")?;
    if a & allocator::CMA != 0 {
        out.write_all(b"CMA ")?;
    }
    if a & allocator::SLAB != 0 {
        out.write_all(b"SLAB ")?;
    }
    if a & allocator::VMALLOC != 0 {
        out.write_all(b"VMALLOC ")?;
    }
    if a & allocator::OTHERS != 0 {
        out.write_all(b"OTHERS ")?;
    }
    Ok(())
}

fn ts_ok(d: &[u8]) -> bool {
    !d.is_empty()
        && d.len() <= 20
        && d.iter()
            .try_fold(0u64, |v, &c| {
                v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            })
            .is_some()
}

fn pid_ok(c: super::Capture<'_>) -> bool {
    c.is_some_and(|d| {
        !d.is_empty()
            && d.iter()
                .try_fold(0u64, |v, &c| {
                    v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
                })
                .is_some_and(|v| v <= i64::MAX as u64)
    })
}

fn no_match(e: &mut dyn Write, buf: &[u8]) -> io::Result<()> {
    e.write_all(b"no matching pattern in ")?;
    e.write_all(buf)?;
    e.write_all(b"\n")
}

fn dbg_num(
    e: &mut dyn Write,
    buf: &[u8],
    c: super::Capture<'_>,
    what: &str,
    ok: bool,
) -> io::Result<()> {
    if c.is_none() {
        no_match(e, buf)?;
    }
    if !ok {
        writeln!(e, "{what} in follow buf:")?;
        e.write_all(buf)?;
        e.write_all(b"\n")?;
    }
    Ok(())
}

fn dbg_order(e: &mut dyn Write, buf: &[u8], order: super::Capture<'_>) -> io::Result<()> {
    let ok = order.is_some_and(|d| {
        !d.is_empty()
            && d.iter()
                .try_fold(0u64, |v, &c| {
                    v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
                })
                .is_some_and(|v| v <= i64::MAX as u64 && (v as i64 as i32) <= 64)
    });
    dbg_num(e, buf, order, "wrong order", ok)
}
