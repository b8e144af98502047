//! `/proc/iomem` as a tree of physical address regions, to answer "which region holds this
//! physical address" and "which PFN ranges are System RAM".
//!
//! Without CAP_SYS_ADMIN the kernel prints every address as zero; [`Iomem::addresses_hidden`]
//! says so, so callers can report it instead of matching nothing.
//!
//! ```
//! let text = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n  00001000-00001fff : Kernel code\n";
//! let io = pgtool::iomem::Iomem::parse(text, std::path::Path::new("iomem"))?;
//! let chain: Vec<_> = io.lookup(0x1800).iter().map(|r| r.name.as_str()).collect();
//! assert_eq!(chain, ["System RAM", "Kernel code"]);
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::addr::{Pfn, page_shift};
use crate::error::{Error, Result};
use crate::root::SysRoot;
use serde::Serialize;
use std::path::Path;

/// One region: an inclusive physical address range and its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive, as the kernel prints it).
    pub end: u64,
    /// "System RAM", "Kernel code", "PCI Bus 0000:00", ...
    pub name: String,
    /// Nesting depth (0 = top level).
    pub depth: usize,
    /// Index of the enclosing region in [`Iomem::regions`].
    #[serde(skip)]
    pub parent: Option<usize>,
}

/// The parsed file: regions in file order (a pre-order walk of the tree).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iomem {
    /// All regions, parents before children.
    pub regions: Vec<Region>,
}

/// Parse one line: indentation (two spaces per level), `start-end : name`.
pub fn parse_line(line: &str) -> std::result::Result<(usize, u64, u64, String), String> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let body = &line[indent..];
    let (range, name) = body
        .split_once(" : ")
        .ok_or("expected \"START-END : NAME\"")?;
    let (s, e) = range
        .split_once('-')
        .ok_or_else(|| format!("bad range {range:?}"))?;
    let hex = |v: &str| u64::from_str_radix(v, 16).map_err(|_| format!("bad address {v:?}"));
    let (start, end) = (hex(s)?, hex(e)?);
    if end < start {
        return Err(format!("end {end:#x} below start {start:#x}"));
    }
    Ok((indent / 2, start, end, name.to_string()))
}

impl Iomem {
    /// Parse the file's text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Iomem> {
        let mut regions: Vec<Region> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (depth, start, end, name) = parse_line(line).map_err(|msg| Error::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            })?;
            if depth > stack.len() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg: format!(
                        "indented {depth} levels under a region at level {}",
                        stack.len()
                    ),
                });
            }
            stack.truncate(depth);
            let parent = stack.last().copied();
            stack.push(regions.len());
            regions.push(Region {
                start,
                end,
                name,
                depth,
                parent,
            });
        }
        Ok(Iomem { regions })
    }

    /// Read `/proc/iomem` under `root`.
    pub fn read(root: &SysRoot) -> Result<Iomem> {
        let path = root.iomem();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Iomem::parse(&text, &path)
    }

    /// True when every region reads 0-0: the reader lacks CAP_SYS_ADMIN.
    pub fn addresses_hidden(&self) -> bool {
        !self.regions.is_empty() && self.regions.iter().all(|r| r.start == 0 && r.end == 0)
    }

    /// The regions holding `addr`, outermost first (empty when none does).
    pub fn lookup(&self, addr: u64) -> Vec<&Region> {
        let mut chain = Vec::new();
        let mut depth = 0;
        for r in &self.regions {
            if r.depth == depth && r.start <= addr && addr <= r.end {
                chain.push(r);
                depth += 1;
            } else if r.depth < depth {
                break;
            }
        }
        chain
    }

    /// The innermost region holding `addr`, as "Outer > Inner" names.
    pub fn describe(&self, addr: u64) -> Option<String> {
        let chain = self.lookup(addr);
        (!chain.is_empty()).then(|| {
            chain
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        })
    }

    /// Top-level "System RAM" ranges as PFN ranges `[first, end)`, sorted and merged.
    pub fn system_ram_pfns(&self) -> Vec<std::ops::Range<Pfn>> {
        let shift = page_shift();
        let mut v: Vec<std::ops::Range<Pfn>> = self
            .regions
            .iter()
            .filter(|r| r.depth == 0 && r.name == "System RAM")
            .map(|r| Pfn(r.start >> shift)..Pfn(r.end.saturating_add(1).div_ceil(1 << shift)))
            .collect();
        v.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<Pfn>> = Vec::new();
        for r in v {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
000a0000-000fffff : PCI Bus 0000:00
  000a0000-000bffff : Video RAM area
00100000-bffdffff : System RAM
  2a000000-2b001fff : Kernel code
  2b200000-2b8fffff : Kernel data
100000000-63fffffff : System RAM
";

    #[test]
    fn tree_lookup_and_ram() {
        let io = Iomem::parse(SAMPLE, Path::new("iomem")).expect("parse");
        assert_eq!(
            io.describe(0x2a000010).as_deref(),
            Some("System RAM > Kernel code")
        );
        assert_eq!(
            io.describe(0xb0000).as_deref(),
            Some("PCI Bus 0000:00 > Video RAM area")
        );
        assert_eq!(io.describe(0xc0000000), None);
        assert_eq!(io.regions[3].parent, Some(2));
        let ram = io.system_ram_pfns();
        assert_eq!(ram.len(), 3);
        assert_eq!(ram[0], Pfn(1)..Pfn(0xa0));
        assert_eq!(ram[2], Pfn(0x100000)..Pfn(0x640000));
        assert!(!io.addresses_hidden());
    }

    #[test]
    fn hidden_and_malformed() {
        let io = Iomem::parse("00000000-00000000 : System RAM\n", Path::new("i")).expect("p");
        assert!(io.addresses_hidden());
        let e = Iomem::parse("0-1 : a\n    2-3 : b\n", Path::new("/proc/iomem")).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "/proc/iomem:2: indented 2 levels under a region at level 1"
        );
        let e = Iomem::parse("garbage\n", Path::new("/proc/iomem")).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "/proc/iomem:1: expected \"START-END : NAME\""
        );
    }
}
