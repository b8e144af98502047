//! The options of the `page_owner_sort` drop-in: sort keys, filter and cull arguments, and the
//! C tool's number parsing, with the C tool's exact semantics.

use super::cull;

/// A sort comparator of the C tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Full block text (strcmp).
    Txt,
    /// Task comm (strcmp).
    Comm,
    /// Stack trace (strcmp).
    Stacktrace,
    /// Allocation timestamp (never equal).
    AllocTs,
    /// Free timestamp (never equal).
    FreeTs,
    /// Times seen.
    Num,
    /// Pages.
    PageNum,
    /// Pid.
    Pid,
    /// Tgid.
    Tgid,
    /// Allocator bits.
    Allocator,
}

/// The key names `--cull` and `--sort` accept (`get_arg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// txt / T
    Txt,
    /// name / n
    Comm,
    /// stacktrace / st
    Stacktrace,
    /// alloc_ts / at
    AllocTs,
    /// free_ts / ft
    FreeTs,
    /// pid / p
    Pid,
    /// tgid / tg
    Tgid,
    /// free / f
    Free,
    /// allocator / ator
    Allocator,
}

/// `get_arg_type`: exact names only.
pub fn arg_type(s: &[u8]) -> Option<ArgType> {
    Some(match s {
        b"pid" | b"p" => ArgType::Pid,
        b"tgid" | b"tg" => ArgType::Tgid,
        b"name" | b"n" => ArgType::Comm,
        b"stacktrace" | b"st" => ArgType::Stacktrace,
        b"free" | b"f" => ArgType::Free,
        b"txt" | b"T" => ArgType::Txt,
        b"free_ts" | b"ft" => ArgType::FreeTs,
        b"alloc_ts" | b"at" => ArgType::AllocTs,
        b"allocator" | b"ator" => ArgType::Allocator,
        _ => return None,
    })
}

/// What page_owner_sort was asked to do (after option parsing).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Sort comparators with their signs (+1 ascending, -1 descending), in order.
    pub sort: Vec<(SortKey, i32)>,
    /// Cull bits.
    pub cull: u32,
    /// Filter bits.
    pub filter: u32,
    /// `--pid` list.
    pub pids: Vec<i32>,
    /// `--tgid` list.
    pub tgids: Vec<i32>,
    /// `--name` list.
    pub comms: Vec<Vec<u8>>,
    /// `-d`.
    pub debug: bool,
}

impl Options {
    /// `set_single_cmp`.
    pub fn set_single(&mut self, key: SortKey, sign: i32) {
        self.sort = vec![(key, sign)];
    }

    /// `parse_cull_args`; false on an unknown key.
    pub fn parse_cull(&mut self, arg: &[u8]) -> bool {
        for a in arg.split(|&c| c == b',') {
            self.cull |= match arg_type(a) {
                Some(ArgType::Pid) => cull::PID,
                Some(ArgType::Tgid) => cull::TGID,
                Some(ArgType::Comm) => cull::COMM,
                Some(ArgType::Stacktrace) => cull::STACKTRACE,
                Some(ArgType::Free) => cull::UNRELEASE,
                Some(ArgType::Allocator) => cull::ALLOCATOR,
                _ => return false,
            };
        }
        if self.sort.is_empty() {
            self.set_single(SortKey::Num, -1);
        }
        true
    }

    /// `parse_sort_args`; false on an unknown key.
    pub fn parse_sort(&mut self, arg: &[u8]) -> bool {
        let mut v = Vec::new();
        for a in arg.split(|&c| c == b',') {
            let (sign, name) = match a.first() {
                Some(b'-') => (-1, &a[1..]),
                Some(b'+') => (1, &a[1..]),
                _ => (1, a),
            };
            let key = match arg_type(name) {
                Some(ArgType::Pid) => SortKey::Pid,
                Some(ArgType::Tgid) => SortKey::Tgid,
                Some(ArgType::Comm) => SortKey::Comm,
                Some(ArgType::Stacktrace) => SortKey::Stacktrace,
                Some(ArgType::AllocTs) => SortKey::AllocTs,
                Some(ArgType::FreeTs) => SortKey::FreeTs,
                Some(ArgType::Txt) => SortKey::Txt,
                Some(ArgType::Allocator) => SortKey::Allocator,
                _ => {
                    self.sort.clear();
                    return false;
                }
            };
            v.push((key, sign));
        }
        self.sort = v;
        true
    }
}

/// `strtol` as `parse_nums_list` uses it: leading spaces, optional sign, decimal digits, and
/// nothing after them. None when invalid or out of `long` range; the value is then truncated
/// to `int` like the C assignment.
pub fn strtol_int(s: &[u8]) -> Option<i32> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let d = &s[i..];
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i128 = 0;
    for &c in d {
        v = v * 10 + i128::from(c - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    if v > i128::from(i64::MAX) || v < i128::from(i64::MIN) {
        return None;
    }
    Some(v as i64 as i32)
}
