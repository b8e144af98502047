//! `/proc/meminfo` and the arithmetic that says where memory is (docs/meminfo.md has the same
//! text with the kernel sources behind each line).
//!
//! MemTotal (managed pages: RAM less what was reserved at boot) is split into parts that do not
//! overlap, each from one or more meminfo fields:
//!
//! | part                | fields                                 | notes |
//! |---------------------|----------------------------------------|-------|
//! | free                | MemFree                                | pages on the per-CPU free lists are *not* in it (they land in unaccounted) |
//! | user_anon           | AnonPages                              | mapped anonymous pages (incl. AnonHugePages) |
//! | user_file           | Buffers + Cached - Shmem               | Cached = NR_FILE_PAGES - SwapCached - Buffers |
//! | user_shmem          | Shmem                                  | tmpfs, SysV shm, shared anonymous; inside Cached |
//! | swap_cache          | SwapCached                             | may overlap AnonPages (a swapped-in page still in the swap cache) |
//! | slab_reclaimable    | SReclaimable                           | Slab = SReclaimable + SUnreclaim |
//! | slab_unreclaimable  | SUnreclaim                             | |
//! | kernel_stack        | KernelStack (+ ShadowCallStack)        | |
//! | page_tables         | PageTables + SecPageTables             | SecPageTables: KVM/IOMMU tables (6.0+) |
//! | vmalloc             | VmallocUsed - vmalloc'd kernel stacks  | VmallocUsed counts vmalloc's pages; with CONFIG_VMAP_STACK stacks are in KernelStack too |
//! | percpu              | Percpu                                 | |
//! | hugetlb             | Hugetlb (else HugePages_Total x Hugepagesize) | pool pages, free or not |
//! | zswap               | Zswap                                  | the compressed pool (CONFIG_ZSWAP) |
//! | other_kernel        | Balloon + Unaccepted                   | present on newer kernels only |
//! | unaccounted         | MemTotal - all of the above            | buddy pages no counter names: driver alloc_pages, pipe buffers, ring buffers, per-CPU free lists, leaks |
//!
//! A field the kernel does not print counts 0 and is named in [`Breakdown::missing`].

use crate::error::{Error, Result};
use std::path::Path;

/// The largest meminfo believed (the real one is ~1.5 KiB).
pub const MAX_MEMINFO: u64 = 1 << 20;

/// `/proc/meminfo`, parsed: every `Name: value [kB]` line, values in bytes (counts such as
/// `HugePages_Total` stay counts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meminfo {
    fields: Vec<(String, u64)>,
}

impl Meminfo {
    /// Parse meminfo text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Meminfo> {
        let mut fields = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |msg: &str| Error::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                msg: format!("{msg}: {line:?} (expected \"Name:   123 kB\" as in /proc/meminfo)"),
            };
            let (name, rest) = line.split_once(':').ok_or_else(|| bad("no colon"))?;
            let mut words = rest.split_whitespace();
            let v: u64 = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| bad("not a number"))?;
            let v = match words.next() {
                None => v,
                Some("kB") => v.checked_mul(1024).ok_or_else(|| bad("too large"))?,
                Some(_) => return Err(bad("unknown unit")),
            };
            if words.next().is_some() {
                return Err(bad("trailing text"));
            }
            fields.push((name.trim().to_string(), v));
        }
        let m = Meminfo { fields };
        if m.get("MemTotal").is_none() {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: 1,
                msg: "no MemTotal line: not /proc/meminfo".into(),
            });
        }
        Ok(m)
    }

    /// Read and parse a meminfo file.
    pub fn read(path: &Path) -> Result<Meminfo> {
        let t = crate::text_input::read_capped(path, MAX_MEMINFO, "/proc/meminfo")?;
        Meminfo::parse(&t, path)
    }

    /// A field's value (bytes for `kB` fields), `None` when the kernel does not print it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Every field in file order.
    pub fn fields(&self) -> &[(String, u64)] {
        &self.fields
    }
}

/// One part of MemTotal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The part's name (`slab_unreclaimable`...), the category of `pgtool leak`.
    pub name: &'static str,
    /// User memory, kernel memory, or neither (free).
    pub class: &'static str,
    /// Bytes (0 when negative, see [`Breakdown::unaccounted`]).
    pub bytes: u64,
    /// The meminfo fields it is made of.
    pub fields: &'static str,
}

/// MemTotal split into parts (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breakdown {
    /// MemTotal in bytes.
    pub total: u64,
    /// The parts, unaccounted last.
    pub parts: Vec<Part>,
    /// MemTotal minus every accounted part; negative when counters overlap more than the
    /// documented overlaps allow (per-CPU counter drift between fields is a few pages per CPU).
    pub unaccounted: i64,
    /// Fields the arithmetic uses that this kernel does not print (counted as 0).
    pub missing: Vec<&'static str>,
}

impl Breakdown {
    /// A part's bytes by name (0 when absent).
    pub fn bytes(&self, name: &str) -> u64 {
        self.parts
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| p.bytes)
    }
}

/// Fields both 6.1 and 6.18 print whatever the config (the others are optional or config-dependent).
const CORE: &[&str] = &[
    "MemFree",
    "Buffers",
    "Cached",
    "SwapCached",
    "AnonPages",
    "Shmem",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "VmallocUsed",
    "Percpu",
];

/// Split `m`'s MemTotal. `vmalloc_stacks` is the memory of kernel stacks allocated by vmalloc
/// (vmallocinfo's `alloc_thread_stack_node` areas), counted in both KernelStack and
/// VmallocUsed; `None` when vmallocinfo was not read (the overlap is then left in).
pub fn breakdown(m: &Meminfo, vmalloc_stacks: Option<u64>) -> Breakdown {
    let mut missing = Vec::new();
    for f in CORE {
        if m.get(f).is_none() {
            missing.push(*f);
        }
    }
    let g = |n: &str| m.get(n).unwrap_or(0);
    let total = g("MemTotal");
    let stacks = g("KernelStack") + g("ShadowCallStack");
    let vmalloc = g("VmallocUsed").saturating_sub(vmalloc_stacks.unwrap_or(0).min(stacks));
    let hugetlb = m
        .get("Hugetlb")
        .unwrap_or_else(|| g("HugePages_Total").saturating_mul(g("Hugepagesize")));
    let cached = g("Buffers") + g("Cached");
    let part = |name, class, bytes, fields| Part {
        name,
        class,
        bytes,
        fields,
    };
    let mut parts = vec![
        part("free", "free", g("MemFree"), "MemFree"),
        part("user_anon", "user", g("AnonPages"), "AnonPages"),
        part(
            "user_file",
            "user",
            cached.saturating_sub(g("Shmem")),
            "Buffers + Cached - Shmem",
        ),
        part("user_shmem", "user", g("Shmem"), "Shmem"),
        part("swap_cache", "user", g("SwapCached"), "SwapCached"),
        part(
            "slab_reclaimable",
            "kernel",
            g("SReclaimable"),
            "SReclaimable",
        ),
        part(
            "slab_unreclaimable",
            "kernel",
            g("SUnreclaim"),
            "SUnreclaim",
        ),
        part(
            "kernel_stack",
            "kernel",
            stacks,
            "KernelStack + ShadowCallStack",
        ),
        part(
            "page_tables",
            "kernel",
            g("PageTables") + g("SecPageTables"),
            "PageTables + SecPageTables",
        ),
        part(
            "vmalloc",
            "kernel",
            vmalloc,
            "VmallocUsed - vmalloc'd kernel stacks",
        ),
        part("percpu", "kernel", g("Percpu"), "Percpu"),
        part(
            "hugetlb",
            "kernel",
            hugetlb,
            "Hugetlb (or HugePages_Total x Hugepagesize)",
        ),
        part("zswap", "kernel", g("Zswap"), "Zswap"),
        part(
            "other_kernel",
            "kernel",
            g("Balloon") + g("Unaccepted"),
            "Balloon + Unaccepted",
        ),
    ];
    let accounted: u64 = parts.iter().map(|p| p.bytes).sum();
    let unaccounted = i64::try_from(i128::from(total) - i128::from(accounted)).unwrap_or(0);
    parts.push(part(
        "unaccounted",
        "kernel",
        u64::try_from(unaccounted).unwrap_or(0),
        "MemTotal - everything above",
    ));
    Breakdown {
        total,
        parts,
        unaccounted,
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_6_18: &str = include_str!("../../tests/fixtures/leak/meminfo-6.18-host.txt");

    #[test]
    fn parses_units_and_counts() {
        let m = Meminfo::parse(HOST_6_18, Path::new("m")).expect("parse");
        assert_eq!(m.get("MemTotal"), Some(24_683_652 * 1024));
        assert_eq!(m.get("HugePages_Total"), Some(0));
        assert_eq!(m.get("Hugepagesize"), Some(2048 * 1024));
        assert_eq!(m.get("NoSuchField"), None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        for (t, line, what) in [
            ("MemTotal: 1 kB\nMemFree 2 kB\n", 2, "no colon"),
            ("MemTotal: x kB\n", 1, "not a number"),
            ("MemTotal: 1 MB\n", 1, "unknown unit"),
            ("MemTotal: 1 kB extra\n", 1, "trailing"),
            ("MemTotal: 99999999999999999999 kB\n", 1, "not a number"),
            ("MemTotal: 18014398509481984 kB\n", 1, "too large"),
            ("MemFree: 1 kB\n", 1, "no MemTotal"),
        ] {
            match Meminfo::parse(t, Path::new("/x/meminfo")) {
                Err(Error::Parse { line: l, msg, .. }) => {
                    assert_eq!(l, line, "{t:?}");
                    assert!(msg.contains(what), "{t:?}: {msg}");
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unaccounted_is_the_remainder() {
        let m = Meminfo::parse(HOST_6_18, Path::new("m")).expect("parse");
        let b = breakdown(&m, None);
        let sum: u64 = b.parts.iter().map(|p| p.bytes).sum();
        assert_eq!(sum, b.total, "the parts add up to MemTotal");
        assert!(b.missing.is_empty(), "{:?}", b.missing);
    }
}
