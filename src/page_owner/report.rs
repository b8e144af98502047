//! pgtool's page_owner report: records parsed from a dump (streaming), grouped by a key
//! (stack, order, gfp, module, pid, tgid, comm, memcg line, released state, allocator), with
//! pages and record counts, and optionally joined with `/proc/kpageflags` and
//! `/proc/kpagecgroup` to say what each group's pages are *now*.
//!
//! Memory is bounded by the number of distinct groups: records are not kept; PFNs waiting for
//! the kpageflags join are flushed every [`JOIN_BATCH`] records.

use super::{BlockReader, End, allocator_of};
use crate::kpage::U64File;
use crate::kpageflags::PageFlags;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

mod listing;
pub use listing::{NowPages, OwnerGroup};

/// Records buffered before their PFNs are looked up in kpageflags/kpagecgroup.
pub const JOIN_BATCH: usize = 65536;

/// The highest allocation order believed: the buddy allocator's orders stop at 10 on x86-64
/// and below 20 everywhere (4 GiB of 4 KiB pages); a record claiming more is corrupt.
pub const MAX_ORDER: u32 = 20;

/// The most distinct groups a report holds (real dumps have tens of thousands of stacks).
pub const MAX_GROUPS: usize = 1 << 20;

/// The largest dump read (a 1 TiB machine's dump is well under this).
pub const MAX_DUMP_BYTES: u64 = 1 << 40;

/// What every page_owner record starts with.
pub const HEADER: &str = "Page allocated via order ";

/// What a page_owner dump is, for error messages.
pub const EXPECTED: &str = "a page_owner dump (records starting \"Page allocated via order N, mask ...\" separated by empty lines, as in /sys/kernel/debug/page_owner)";

/// One page_owner record, parsed (fields absent from a malformed record are None).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record<'a> {
    /// Allocation order (the block is 2^order pages).
    pub order: Option<u32>,
    /// GFP mask value.
    pub gfp_mask: Option<u64>,
    /// GFP flag names, as printed in parentheses after the mask.
    pub gfp_names: &'a str,
    /// Allocating task's pid.
    pub pid: Option<i64>,
    /// Its tgid.
    pub tgid: Option<i64>,
    /// Its comm.
    pub comm: &'a str,
    /// Allocation time (ns since boot).
    pub ts: Option<u64>,
    /// Last free time (ns since boot; 0 = never freed).
    pub free_ts: Option<u64>,
    /// The PFN of the block's first page (only when the block has its own PFN line).
    pub pfn: Option<u64>,
    /// The stack frames, one per line, leading space stripped.
    pub stack: Vec<&'a str>,
    /// Other lines after the stack (migration reason, memcg charge).
    pub notes: Vec<&'a str>,
    /// page_owner_sort's allocator bits (see [`super::allocator`]); 0 when [`Report::read`] was
    /// not grouping by allocator (the scan is skipped).
    pub allocator: i32,
    /// The record's first line.
    pub head: &'a str,
}

fn field<'a>(line: &'a str, key: &str, end: &str) -> Option<&'a str> {
    let i = line.find(key)? + key.len();
    let rest = &line[i..];
    let j = rest.find(end)?;
    Some(&rest[..j])
}

impl<'a> Record<'a> {
    /// Parse a block's text (as [`super::Block::text`], lossily decoded) and PFN line.
    pub fn parse(text: &'a str, pfn_line: Option<&str>, allocator: i32) -> Record<'a> {
        let mut lines = text.lines();
        let head = lines.next().unwrap_or("");
        let mut r = Record {
            allocator,
            head,
            ..Record::default()
        };
        r.order = field(head, "order ", ",").and_then(|s| s.trim().parse().ok());
        if let Some(m) = field(head, "mask ", "(") {
            r.gfp_mask = u64::from_str_radix(m.trim().trim_start_matches("0x"), 16).ok();
        }
        r.gfp_names = field(head, "mask ", "), pid")
            .and_then(|m| m.split_once('(').map(|x| x.1))
            .unwrap_or("");
        r.pid = field(head, "), pid ", ",").and_then(|s| s.trim().parse().ok());
        r.tgid = field(head, ", tgid ", " ").and_then(|s| s.trim().parse().ok());
        if let Some(i) = head.find(", tgid ") {
            let rest = &head[i..];
            if let (Some(a), Some(b)) = (rest.find(" ("), rest.rfind("), ts "))
                && a + 2 <= b
            {
                r.comm = &rest[a + 2..b];
            }
        }
        // After the comm (which may itself contain "), ts "): the last occurrence.
        let tail = head.rfind("), ts ").map_or(head, |i| &head[i..]);
        r.ts = field(tail, "), ts ", " ns").and_then(|s| s.trim().parse().ok());
        r.free_ts = field(tail, "free_ts ", " ns").and_then(|s| s.trim().parse().ok());
        r.pfn = pfn_line
            .and_then(|p| p.strip_prefix("PFN "))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        for l in lines {
            if let Some(f) = l.strip_prefix(' ')
                && r.notes.is_empty()
            {
                r.stack.push(f);
                continue;
            }
            r.notes.push(l);
        }
        r
    }

    /// Pages in the block: 2^order, or 0 when the order is missing or impossible (above
    /// [`MAX_ORDER`]); such a record is flagged by [`Report`], never counted as one page.
    pub fn pages(&self) -> u64 {
        match self.order {
            Some(o) if o <= MAX_ORDER => 1u64 << o,
            _ => 0,
        }
    }

    /// True when the block's first line is a page_owner record header.
    pub fn is_record(text: &str) -> bool {
        text.starts_with(HEADER)
    }

    /// The first kernel module named in the stack (`[mod]` suffix), or "vmlinux".
    pub fn module(&self) -> &'a str {
        for f in &self.stack {
            if let (Some(a), true) = (f.rfind('['), f.ends_with(']')) {
                return &f[a + 1..f.len() - 1];
            }
        }
        "vmlinux"
    }

    /// The memcg named in a `Charged [(via objcg) ]to [offline ]memcg NAME` note.
    pub fn memcg_note(&self) -> Option<&'a str> {
        self.notes
            .iter()
            .find_map(|n| n.split_once("memcg ").map(|x| x.1.trim()))
    }
}

/// What records are grouped by (page_owner_sort's `--cull` names are aliases).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum GroupKey {
    /// The allocation stack.
    #[value(alias = "st", alias = "stacktrace")]
    Stack,
    /// The order.
    Order,
    /// The GFP mask (with names).
    Gfp,
    /// The first module in the stack.
    #[value(alias = "mod")]
    Module,
    /// The pid.
    #[value(alias = "p")]
    Pid,
    /// The tgid.
    #[value(alias = "tg")]
    Tgid,
    /// The comm.
    #[value(alias = "n", alias = "name")]
    Comm,
    /// The memcg page_owner says it was charged to.
    Memcg,
    /// Released (freed since) or not, as page_owner_sort's `--cull f` (free_ts != 0).
    #[value(alias = "f")]
    Free,
    /// page_owner_sort's allocator class.
    #[value(alias = "ator")]
    Allocator,
}

impl GroupKey {
    /// Parse a key name: pgtool's names and page_owner_sort's `--cull` names.
    pub fn parse(s: &str) -> Option<GroupKey> {
        Some(match s {
            "stack" | "stacktrace" | "st" => GroupKey::Stack,
            "order" => GroupKey::Order,
            "gfp" => GroupKey::Gfp,
            "module" | "mod" => GroupKey::Module,
            "pid" | "p" => GroupKey::Pid,
            "tgid" | "tg" => GroupKey::Tgid,
            "comm" | "name" | "n" => GroupKey::Comm,
            "memcg" => GroupKey::Memcg,
            "free" | "f" => GroupKey::Free,
            "allocator" | "ator" => GroupKey::Allocator,
            _ => return None,
        })
    }

    /// The value of this key for a record, as text.
    pub fn value(self, r: &Record<'_>) -> String {
        let mut b = Vec::new();
        self.write_value(r, &mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Append the value of this key for a record to `b` (no allocation when `b` has room).
    pub fn write_value(self, r: &Record<'_>, b: &mut Vec<u8>) {
        use std::io::Write;
        let opt = |b: &mut Vec<u8>, v: Option<i64>| match v {
            Some(v) => {
                let _ = write!(b, "{v}");
            }
            None => b.push(b'?'),
        };
        match self {
            GroupKey::Stack => {
                for (i, f) in r.stack.iter().enumerate() {
                    if i > 0 {
                        b.push(b'\n');
                    }
                    b.extend_from_slice(f.as_bytes());
                }
            }
            GroupKey::Order => opt(b, r.order.map(i64::from)),
            GroupKey::Gfp => match r.gfp_mask {
                Some(m) => {
                    let _ = write!(b, "{m:#x}({})", r.gfp_names);
                }
                None => b.push(b'?'),
            },
            GroupKey::Module => b.extend_from_slice(r.module().as_bytes()),
            GroupKey::Pid => opt(b, r.pid),
            GroupKey::Tgid => opt(b, r.tgid),
            GroupKey::Comm => b.extend_from_slice(r.comm.as_bytes()),
            GroupKey::Memcg => b.extend_from_slice(r.memcg_note().unwrap_or("-").as_bytes()),
            GroupKey::Free => b.extend_from_slice(if r.free_ts.unwrap_or(0) != 0 {
                b"released"
            } else {
                b"unreleased"
            }),
            GroupKey::Allocator => {
                use super::allocator::*;
                let mut first = true;
                for (bit, n) in [
                    (CMA, "CMA"),
                    (SLAB, "SLAB"),
                    (VMALLOC, "VMALLOC"),
                    (OTHERS, "OTHERS"),
                ] {
                    if r.allocator & bit != 0 {
                        if !first {
                            b.push(b'|');
                        }
                        first = false;
                        b.extend_from_slice(n.as_bytes());
                    }
                }
            }
        }
    }
}

/// What a page is now, from its kpageflags word.
pub fn page_state(flags: Option<u64>) -> &'static str {
    let Some(f) = flags else { return "beyond-end" };
    let f = PageFlags::from_bits_retain(f);
    if f.contains(PageFlags::BUDDY) {
        "free"
    } else if f.contains(PageFlags::SLAB) {
        "slab"
    } else if f.contains(PageFlags::ANON) {
        "anon"
    } else if f.contains(PageFlags::LRU) || f.contains(PageFlags::MAPPEDTODISK) {
        "file"
    } else if f.contains(PageFlags::PGTABLE) {
        "pgtable"
    } else if f.contains(PageFlags::RESERVED) {
        "reserved"
    } else if f.contains(PageFlags::HUGE) || f.contains(PageFlags::COMPOUND_TAIL) {
        "compound"
    } else if f.is_empty() {
        "none"
    } else {
        "other"
    }
}

/// One group of the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Group {
    /// The key values, in the order of the requested keys.
    pub key: Vec<String>,
    /// Records (blocks) in the group.
    pub records: u64,
    /// Pages (sum of 2^order).
    pub pages: u64,
    /// Records with free_ts != 0 (freed at least once before this allocation).
    pub released: u64,
    /// Oldest allocation timestamp (ns).
    pub min_ts: Option<u64>,
    /// Newest allocation timestamp (ns).
    pub max_ts: Option<u64>,
    /// What the first page of each block is now (kpageflags join), in pages.
    pub now: BTreeMap<&'static str, u64>,
    /// Which memcg (kpagecgroup inode) holds the blocks now, in pages.
    pub memcg_inode: BTreeMap<u64, u64>,
}

/// Join sources: kpageflags and (optionally) kpagecgroup.
pub struct Join {
    /// /proc/kpageflags.
    pub flags: U64File,
    /// /proc/kpagecgroup.
    pub cgroup: Option<U64File>,
}

/// The report builder.
pub struct Report {
    keys: Vec<GroupKey>,
    index: HashMap<Vec<u8>, usize>,
    keybuf: Vec<u8>,
    /// The groups, in order of first appearance.
    pub groups: Vec<Group>,
    pending: Vec<(u64, u64, usize)>,
    join: Option<Join>,
    /// Records read.
    pub records: u64,
    /// Pages in all records.
    pub pages: u64,
    /// Records skipped by `only_unreleased`.
    pub filtered: u64,
    /// Keep only records not freed since allocation (page_owner_sort -f semantics).
    pub only_unreleased: bool,
    /// Blocks read (records, malformed blocks and records with a bad order).
    pub blocks: u64,
    /// Records left out because their order is missing or above [`MAX_ORDER`], with the first
    /// one's block number and order text.
    pub bad_order: u64,
    first_bad_order: Option<(u64, String)>,
    /// Blocks that are not page_owner records (their first line is not a record header), with
    /// the first one's block number.
    pub malformed: u64,
    first_malformed: Option<u64>,
    /// The last record had no terminating empty line (a truncated dump); it was counted.
    pub truncated_last: bool,
}

impl Report {
    /// A report grouped by `keys` (stack when empty), joined with `join` when given.
    pub fn new(keys: Vec<GroupKey>, join: Option<Join>) -> Report {
        Report {
            keys: if keys.is_empty() {
                vec![GroupKey::Stack]
            } else {
                keys
            },
            index: HashMap::new(),
            keybuf: Vec::new(),
            groups: Vec::new(),
            pending: Vec::new(),
            join,
            records: 0,
            pages: 0,
            filtered: 0,
            only_unreleased: false,
            blocks: 0,
            bad_order: 0,
            first_bad_order: None,
            malformed: 0,
            first_malformed: None,
            truncated_last: false,
        }
    }

    /// Read every record of `r`, streaming, leniently: whatever is not a record becomes a note
    /// (see [`Report::notes`]), never an error. For in-memory text; files and stdin go through
    /// [`Report::read_dump`].
    pub fn read(&mut self, r: impl BufRead) -> crate::Result<()> {
        let mut br = BlockReader::new(r);
        while let Some(b) = br.next_block() {
            self.add_block(&b)?;
        }
        self.flush()
    }

    /// Read a dump from `path` (a file or stdin; named in errors), strictly: the first block
    /// must be a page_owner record, binary data, lines over [`super::MAX_LINE`] bytes, blocks
    /// over [`super::BUF_SIZE`] and inputs over [`MAX_DUMP_BYTES`] are errors saying that this is
    /// not a page_owner dump. Memory stays bounded by the number of groups.
    pub fn read_dump(&mut self, r: impl BufRead, path: &Path) -> crate::Result<()> {
        let mut br = BlockReader::strict(r, MAX_DUMP_BYTES);
        let not_dump = |line: u64, msg: String| crate::Error::Parse {
            path: path.to_path_buf(),
            line: line as usize,
            msg: format!("not {EXPECTED}: {msg}"),
        };
        let mut first = true;
        let mut line = 1u64;
        loop {
            let (b, last) = match br.next_block() {
                Some(b) => (b, false),
                None => match br.take_partial() {
                    Some(b) => (b, true),
                    None => break,
                },
            };
            if first && !b.text().is_empty() {
                first = false;
                if !Record::is_record(&String::from_utf8_lossy(b.text())) {
                    let head = b.text().split(|&c| c == b'\n').next().unwrap_or_default();
                    return Err(not_dump(
                        line,
                        format!(
                            "it starts with {}",
                            crate::input::quote(&String::from_utf8_lossy(head))
                        ),
                    ));
                }
            }
            line += b.text().iter().filter(|&&c| c == b'\n').count() as u64 + 1;
            self.add_block(&b)?;
            if last {
                self.truncated_last = true;
                break;
            }
        }
        match std::mem::take(&mut br.end) {
            End::Eof | End::Running => {}
            End::Error(e) => return Err(crate::Error::io(path, e)),
            End::Full { offset } => {
                return Err(not_dump(
                    line,
                    format!(
                        "a block longer than {} bytes (ending at byte {offset}) without an empty line",
                        super::BUF_SIZE
                    ),
                ));
            }
            End::Binary { offset, line } => {
                return Err(not_dump(
                    line,
                    format!("binary data (a NUL byte at byte {offset})"),
                ));
            }
            End::LongLine { line } => {
                return Err(not_dump(
                    line,
                    format!("a line longer than {} bytes", super::MAX_LINE),
                ));
            }
            End::Limit { limit } => {
                return Err(not_dump(line, format!("larger than {limit} bytes")));
            }
        }
        self.flush()
    }

    fn add_block(&mut self, b: &super::Block<'_>) -> crate::Result<()> {
        if b.text().is_empty() {
            return Ok(());
        }
        self.blocks += 1;
        let text = String::from_utf8_lossy(b.text());
        if !Record::is_record(&text) {
            self.malformed += 1;
            self.first_malformed.get_or_insert(self.blocks);
            return Ok(());
        }
        let pfn = b.pfn_fresh.then(|| String::from_utf8_lossy(b.pfn_line));
        // The allocator scan reads the whole block: only when it is a key.
        let alloc = if self.keys.contains(&GroupKey::Allocator) {
            allocator_of(b.search_buf(), b.pfn_line)
        } else {
            0
        };
        let rec = Record::parse(&text, pfn.as_deref(), alloc);
        self.add(&rec)
    }

    /// What was left out or doubtful, as sentences (empty when nothing was).
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some((n, o)) = &self.first_bad_order {
            v.push(format!(
                "{} record(s) with a missing or impossible order (above {MAX_ORDER}) left out; the first is block {n}, order {}",
                self.bad_order,
                crate::input::quote(o)
            ));
        }
        if let Some(n) = self.first_malformed {
            v.push(format!(
                "{} block(s) that are not page_owner records left out; the first is block {n}",
                self.malformed
            ));
        }
        if self.truncated_last {
            v.push("the last record has no terminating empty line (a truncated dump?)".into());
        }
        v
    }

    /// Add one record. A record whose order is missing or impossible is counted in
    /// [`Report::bad_order`] and left out of the groups and totals.
    pub fn add(&mut self, rec: &Record<'_>) -> crate::Result<()> {
        if rec.pages() == 0 {
            self.bad_order += 1;
            if self.first_bad_order.is_none() {
                let head = rec.head;
                let o = field(head, "order ", ",").unwrap_or(head);
                self.first_bad_order = Some((self.blocks.max(1), o.to_string()));
            }
            return Ok(());
        }
        if self.only_unreleased
            && let (Some(ts), Some(f)) = (rec.ts, rec.free_ts)
            && f != 0
            && ts < f
        {
            self.filtered += 1;
            return Ok(());
        }
        self.keybuf.clear();
        for k in &self.keys {
            k.write_value(rec, &mut self.keybuf);
            self.keybuf.push(0xff); // never in UTF-8 text: separates the values
        }
        let gi = match self.index.get(self.keybuf.as_slice()) {
            Some(&i) => i,
            None => {
                let i = self.groups.len();
                if i >= MAX_GROUPS {
                    return Err(crate::Error::Usage(format!(
                        "more than {MAX_GROUPS} distinct groups: group by fewer or coarser keys (--by)"
                    )));
                }
                let key = self.keys.iter().map(|k| k.value(rec)).collect();
                self.groups.push(Group {
                    key,
                    ..Group::default()
                });
                self.index.insert(self.keybuf.clone(), i);
                i
            }
        };
        let pages = rec.pages();
        let g = &mut self.groups[gi];
        g.records += 1;
        g.pages = g.pages.saturating_add(pages);
        if rec.free_ts.unwrap_or(0) != 0 {
            g.released += 1;
        }
        if let Some(ts) = rec.ts {
            g.min_ts = Some(g.min_ts.map_or(ts, |m| m.min(ts)));
            g.max_ts = Some(g.max_ts.map_or(ts, |m| m.max(ts)));
        }
        self.records += 1;
        self.pages = self.pages.saturating_add(pages);
        if let (Some(_), Some(pfn)) = (&self.join, rec.pfn) {
            self.pending.push((pfn, pages, gi));
            if self.pending.len() >= JOIN_BATCH {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Look up the pending PFNs (sorted, so runs coalesce into few preads).
    pub fn flush(&mut self) -> crate::Result<()> {
        let Some(j) = &self.join else { return Ok(()) };
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.sort_unstable_by_key(|p| p.0);
        let pfns: Vec<u64> = self.pending.iter().map(|p| p.0).collect();
        let flags = j.flags.gather(&pfns)?;
        let cg = match &j.cgroup {
            Some(c) => Some(c.gather(&pfns)?),
            None => None,
        };
        for (k, &(_, pages, gi)) in self.pending.iter().enumerate() {
            let g = &mut self.groups[gi];
            let n = g.now.entry(page_state(flags[k])).or_default();
            *n = n.saturating_add(pages);
            if let Some(Some(ino)) = cg.as_ref().map(|c| c[k])
                && ino != 0
            {
                let n = g.memcg_inode.entry(ino).or_default();
                *n = n.saturating_add(pages);
            }
        }
        self.pending.clear();
        Ok(())
    }

    /// The keys grouped by.
    pub fn keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// Groups sorted by pages (then records) descending, first-seen order on ties.
    pub fn top(&self) -> Vec<&Group> {
        let mut v: Vec<&Group> = self.groups.iter().collect();
        v.sort_by(|a, b| b.pages.cmp(&a.pages).then(b.records.cmp(&a.records)));
        v
    }
}
