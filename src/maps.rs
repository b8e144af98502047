//! `/proc/PID/maps` as a list of [`Vma`]s.
//!
//! pgtool parses maps itself rather than through procfs: it needs each bad line reported with
//! its file and line number (procfs fails the whole file without saying where), and it keeps
//! the path exactly as the kernel wrote it, spaces and `(deleted)` included.
//!
//! ```no_run
//! use pgtool::{maps, SysRoot};
//! for vma in maps::read_maps(&SysRoot::live(), std::process::id())? {
//!     println!("{:#x}-{:#x} {} {:?}", vma.start.0, vma.end.0, vma.perms, vma.kind);
//! }
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::root::SysRoot;
use serde::Serialize;
use std::path::Path;

/// What a mapping is, from its path column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmaKind {
    /// `[heap]`
    Heap,
    /// `[stack]` (or a thread's `[stack:TID]` on old kernels)
    Stack,
    /// `[vdso]`
    Vdso,
    /// `[vvar]` and friends
    Vvar,
    /// `[vsyscall]`
    Vsyscall,
    /// No path: anonymous memory.
    Anon,
    /// A file mapping.
    File,
    /// Another bracketed name (`[anon:NAME]`, `[uprobes]`, ...).
    Special,
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vma {
    /// First byte.
    pub start: VirtAddr,
    /// One past the last byte.
    pub end: VirtAddr,
    /// `rwxp` / `rwxs` as the kernel prints it.
    pub perms: String,
    /// File offset of `start`.
    pub offset: u64,
    /// Device major:minor of the file, as printed (hex).
    pub dev: String,
    /// Inode of the file (0 for anonymous memory).
    pub inode: u64,
    /// The path column, empty for anonymous memory.
    pub path: String,
    /// What kind of mapping this is.
    pub kind: VmaKind,
}

impl Vma {
    /// True when `addr` is inside this mapping.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.start <= addr && addr < self.end
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }
    /// True for an empty mapping (never produced by the kernel).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// Shared (`s`) rather than private (`p`).
    pub fn is_shared(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's')
    }
    /// The name shown to users: the path, or `[anon]` for anonymous memory.
    pub fn display_name(&self) -> &str {
        if self.path.is_empty() {
            "[anon]"
        } else {
            &self.path
        }
    }
    /// Does `name` select this mapping? An exact path, a bracketed name (`[stack]`), or a
    /// substring of the file name (`libc` matches `/usr/lib/x86_64-linux-gnu/libc.so.6`).
    pub fn matches_name(&self, name: &str) -> bool {
        if name.is_empty() {
            return false;
        }
        if self.path == name || (name == "[anon]" && self.path.is_empty()) {
            return true;
        }
        if name.starts_with('[') {
            return false;
        }
        let file = self.path.rsplit('/').next().unwrap_or("");
        self.kind == VmaKind::File && file.contains(name)
    }
}

/// Parse one maps line. The error says what is wrong (the caller adds file and line).
pub fn parse_line(line: &str) -> std::result::Result<Vma, String> {
    let mut rest = line;
    let mut field = |what: &str| -> std::result::Result<&str, String> {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        if end == 0 {
            return Err(format!("missing {what}"));
        }
        let (f, r) = t.split_at(end);
        rest = r;
        Ok(f)
    };
    let range = field("address range")?;
    let perms = field("permissions")?.to_string();
    let offset = field("offset")?;
    let dev = field("device")?.to_string();
    let inode = field("inode")?;
    let path = rest.trim_start_matches(' ').to_string();

    let (s, e) = range
        .split_once('-')
        .ok_or_else(|| format!("bad address range {range:?}"))?;
    let hex =
        |v: &str, what: &str| u64::from_str_radix(v, 16).map_err(|_| format!("bad {what} {v:?}"));
    let start = hex(s, "start address")?;
    let end = hex(e, "end address")?;
    if end < start {
        return Err(format!("end {end:#x} below start {start:#x}"));
    }
    let pb = perms.as_bytes();
    let perms_ok = pb.len() == 4
        && matches!(pb[0], b'r' | b'-')
        && matches!(pb[1], b'w' | b'-')
        && matches!(pb[2], b'x' | b'-')
        && matches!(pb[3], b'p' | b's');
    if !perms_ok {
        return Err(format!("bad permissions {perms:?}"));
    }
    let offset = hex(offset, "offset")?;
    if !dev.split_once(':').is_some_and(|(a, b)| {
        u32::from_str_radix(a, 16).is_ok() && u32::from_str_radix(b, 16).is_ok()
    }) {
        return Err(format!("bad device {dev:?}"));
    }
    let inode = inode
        .parse::<u64>()
        .map_err(|_| format!("bad inode {inode:?}"))?;
    let kind = kind_of(&path);
    Ok(Vma {
        start: VirtAddr(start),
        end: VirtAddr(end),
        perms,
        offset,
        dev,
        inode,
        path,
        kind,
    })
}

fn kind_of(path: &str) -> VmaKind {
    match path {
        "" => VmaKind::Anon,
        "[heap]" => VmaKind::Heap,
        "[vdso]" => VmaKind::Vdso,
        "[vsyscall]" => VmaKind::Vsyscall,
        p if p == "[stack]" || p.starts_with("[stack:") => VmaKind::Stack,
        p if p.starts_with("[vvar") => VmaKind::Vvar,
        p if p.starts_with('[') && p.ends_with(']') => VmaKind::Special,
        _ => VmaKind::File,
    }
}

/// Parse a whole maps file's text; `path` is only used in error messages.
pub fn parse_maps(text: &str, path: &Path) -> Result<Vec<Vma>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            parse_line(l).map_err(|msg| Error::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            })
        })
        .collect()
}

/// Read and parse `/proc/PID/maps` under `root`.
pub fn read_maps(root: &SysRoot, pid: u32) -> Result<Vec<Vma>> {
    let path = root.pid_file(pid, "maps");
    let bytes = std::fs::read(&path).map_err(|e| Error::pid_io(pid, &path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    parse_maps(&text, &path)
}

/// The mapping holding `addr`, by binary search over sorted `vmas`.
pub fn find(vmas: &[Vma], addr: VirtAddr) -> Option<&Vma> {
    let i = vmas.partition_point(|v| v.end <= addr);
    vmas.get(i).filter(|v| v.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_lines() {
        let v = parse_line("7f1c2a000000-7f1c2a021000 r-xp 00002000 fd:01 1835030    /usr/lib/x86_64-linux-gnu/ld linux.so (deleted)")
            .expect("parse");
        assert_eq!(v.start, VirtAddr(0x7f1c2a000000));
        assert_eq!(v.len(), 0x21000);
        assert_eq!(v.offset, 0x2000);
        assert_eq!(v.inode, 1835030);
        assert_eq!(v.path, "/usr/lib/x86_64-linux-gnu/ld linux.so (deleted)");
        assert_eq!(v.kind, VmaKind::File);
        let s = parse_line(
            "7ffd5c000000-7ffd5c021000 rw-p 00000000 00:00 0                          [stack]",
        )
        .expect("stack");
        assert_eq!(s.kind, VmaKind::Stack);
        let a = parse_line("7f0000000000-7f0000001000 rw-s 00000000 00:01 5").expect("anon");
        assert_eq!(
            (&a.kind, a.is_shared(), a.display_name()),
            (&VmaKind::Anon, true, "[anon]")
        );
    }

    #[test]
    fn rejects_garbage_with_reason() {
        for (line, want) in [
            ("", "missing address range"),
            ("zz-10 r--p 0 00:00 0", "bad start address \"zz\""),
            ("10 r--p 0 00:00 0", "bad address range \"10\""),
            ("20-10 r--p 0 00:00 0", "end 0x10 below start 0x20"),
            ("10-20 rwzp 0 00:00 0", "bad permissions \"rwzp\""),
            ("10-20 r--p 0 0000 0", "bad device \"0000\""),
            ("10-20 r--p 0 00:00", "missing inode"),
            ("10-20 r--p 0 00:00 x", "bad inode \"x\""),
        ] {
            assert_eq!(parse_line(line).expect_err(line), want, "{line}");
        }
        let e =
            parse_maps("10-20 r--p 0 00:00 0\nbad\n", Path::new("/proc/1/maps")).expect_err("bad");
        assert_eq!(e.to_string(), "/proc/1/maps:2: missing permissions");
    }

    #[test]
    fn find_and_match() {
        let vmas = parse_maps(
            "1000-2000 r--p 0 00:00 0 /usr/lib/libc.so.6\n3000-4000 rw-p 0 00:00 0 [stack]\n",
            Path::new("m"),
        )
        .expect("parse");
        assert_eq!(
            find(&vmas, VirtAddr(0x1fff)).map(|v| v.start.0),
            Some(0x1000)
        );
        assert!(find(&vmas, VirtAddr(0x2000)).is_none());
        assert!(vmas[0].matches_name("libc") && vmas[1].matches_name("[stack]"));
        assert!(!vmas[1].matches_name("stack"));
    }
}
