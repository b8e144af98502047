//! The working-set method for kernels without the page_idle bitmap: `/proc/PID/clear_refs`
//! and the per-VMA `Referenced:` lines of `/proc/PID/smaps`.
//!
//! Writing `1` to `clear_refs` clears the referenced/young bits of the process's pages and
//! flushes its TLB: it *changes* what reclaim sees of the process, so it is refused under
//! `--root` (a snapshot is read-only) and callers say what it touches before doing it.

use crate::error::{Error, Result};
use crate::maps::Vma;
use crate::root::SysRoot;
use std::path::Path;

/// Which working-set method to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The page_idle bitmap (does not disturb the process).
    Idle,
    /// clear_refs + smaps Referenced (clears the process's referenced bits).
    Refs,
}

/// Pick [`Method::Idle`] when the bitmap exists, else [`Method::Refs`].
pub fn auto_method(root: &SysRoot) -> Method {
    if root.page_idle_bitmap().exists() {
        Method::Idle
    } else {
        Method::Refs
    }
}

/// Clear the referenced bits of every page of `pid` (writes `1` to `/proc/PID/clear_refs`).
/// Refused under a snapshot root: `--root` is read-only.
pub fn clear_refs(root: &SysRoot, pid: u32) -> Result<()> {
    let path = root.pid_file(pid, "clear_refs");
    if !root.is_live() {
        return Err(refused_under_root(&path));
    }
    // Not through safe_file: this is a kernel control file written in place, never created.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::pid_io(pid, &path, e))?;
    std::io::Write::write_all(&mut f, b"1\n").map_err(|e| Error::pid_io(pid, &path, e))
}

/// The error for the refs method under `--root`.
pub fn refused_under_root(clear_refs: &Path) -> Error {
    Error::Usage(format!(
        "--method refs writes {} (it clears the process's referenced bits), and --root is \
         read-only: sample the live system, or use --method idle on it",
        clear_refs.display()
    ))
}

/// One VMA's sample from smaps: resident and referenced bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmapsSample {
    /// The mapping.
    pub vma: Vma,
    /// `Rss:` in bytes.
    pub rss: u64,
    /// `Referenced:` in bytes.
    pub referenced: u64,
}

/// The longest smaps file read (a process with 100,000 mappings writes about 110 MiB).
const MAX_SMAPS: u64 = 256 << 20;

/// Read `/proc/PID/smaps`: every VMA with its `Rss:` and `Referenced:`.
pub fn refs_sample(root: &SysRoot, pid: u32) -> Result<Vec<SmapsSample>> {
    let path = root.pid_file(pid, "smaps");
    // Bytes, not a String: a mapped file's name need not be UTF-8 (it is shown lossily).
    // Bounded: under --root the file is whatever the snapshot holds.
    let f = std::fs::File::open(&path).map_err(|e| Error::pid_io(pid, &path, e))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_SMAPS + 1), &mut bytes)
        .map_err(|e| Error::pid_io(pid, &path, e))?;
    if bytes.len() as u64 > MAX_SMAPS {
        return Err(Error::Parse {
            path,
            line: 0,
            msg: format!("longer than {} MiB: not an smaps file", MAX_SMAPS >> 20),
        });
    }
    parse_smaps(&String::from_utf8_lossy(&bytes), &path)
}

/// Parse smaps text (header lines as in maps, then `Key: value kB` lines).
pub fn parse_smaps(text: &str, path: &Path) -> Result<Vec<SmapsSample>> {
    let mut out: Vec<SmapsSample> = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            let vma = crate::maps::parse_line(line).map_err(|msg| Error::Parse {
                path: path.to_path_buf(),
                line: no + 1,
                msg,
            })?;
            out.push(SmapsSample {
                vma,
                rss: 0,
                referenced: 0,
            });
            continue;
        }
        let kb = |rest: &str| -> u64 {
            rest.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_mul(1024)
        };
        if let Some(cur) = out.last_mut() {
            if let Some(rest) = line.strip_prefix("Rss:") {
                cur.rss = kb(rest);
            } else if let Some(rest) = line.strip_prefix("Referenced:") {
                cur.referenced = kb(rest);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_parse() {
        let t = "7f00-7f10 rw-p 00000000 00:00 0 \nRss:                  8 kB\nReferenced:            4 kB\n\
                 7f20-7f30 r--p 00000000 08:01 12 /lib/x.so\nRss: 0 kB\nReferenced: 0 kB\nVmFlags: rd mr\n";
        let v = parse_smaps(t, Path::new("smaps")).expect("test value");
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].rss, v[0].referenced), (8192, 4096));
        assert_eq!(v[1].vma.path, "/lib/x.so");
    }
}
