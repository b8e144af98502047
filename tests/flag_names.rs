//! One flag decoding (issue 11): the same raw kpageflags words, including the overloaded bits,
//! get the same names from v2p, who, hwpoison's plan (its dry run) and `types --json`. Names
//! that come from a page's pagemap entry (softdirty, file, swap, mmap_exclusive) depend on the
//! mapping a command looks through, so they are compared apart from the kpageflags words.

mod common;

use serde_json::Value;
use std::os::unix::fs::FileExt;

// kpageflags bits of the overloaded cases
const ERROR: u64 = 1 << 1;
const UPTODATE: u64 = 1 << 3;
const LRU: u64 = 1 << 5;
const ACTIVE: u64 = 1 << 6;
const SLAB: u64 = 1 << 7;
const RECLAIM: u64 = 1 << 9;
const MMAP: u64 = 1 << 11;
const ANON: u64 = 1 << 12;
const SWAPBACKED: u64 = 1 << 14;
const MAPPEDTODISK: u64 = 1 << 34;

/// (PFN in the fixture, raw word, the names page-types -r gives it).
fn cases() -> Vec<(u64, u64, Vec<&'static str>)> {
    vec![
        // 0x400005828 of the issue: anonymous + mappedtodisk is anon_exclusive
        (
            0x101,
            MAPPEDTODISK | SWAPBACKED | ANON | MMAP | LRU | UPTODATE,
            vec![
                "uptodate",
                "lru",
                "mmap",
                "anonymous",
                "swapbacked",
                "anon_exclusive",
            ],
        ),
        // slab + active is slub_frozen, slab + error is slub_debug
        (
            0x102,
            SLAB | ACTIVE | ERROR,
            vec!["slab", "slub_frozen", "slub_debug"],
        ),
        // reclaim without writeback is readahead
        (
            0x100,
            RECLAIM | LRU | UPTODATE | MMAP,
            vec!["uptodate", "lru", "mmap", "readahead"],
        ),
    ]
}

const PAGEMAP_NAMES: [&str; 4] = ["softdirty", "file", "swap", "mmap_exclusive"];

fn kpage_names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("flags is not an array: {v}"))
        .iter()
        .filter_map(|n| n.as_str())
        .filter(|n| !PAGEMAP_NAMES.contains(n))
        .map(str::to_string)
        .collect()
}

fn run_json(args: &[&str]) -> Vec<Value> {
    let r = common::pgtool(args);
    // hwpoison without --yes shows its plan and exits 2 ("nothing done")
    assert!(
        r.code == 0 || (args.contains(&"hwpoison") && r.code == 2),
        "{args:?}: {}",
        r.stderr
    );
    common::json_lines(&r.stdout)
}

#[test]
fn every_listing_names_the_same_word_the_same_way() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = common::write_fixture(dir.path());
    let kpf = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("proc/kpageflags"))
        .expect("kpageflags");
    for (pfn, raw, _) in cases() {
        kpf.write_all_at(&raw.to_ne_bytes(), pfn * 8)
            .expect("pwrite");
    }
    let root = root.to_str().expect("utf8");
    // where the fixture maps these PFNs in pid 1234
    let vaddr = |pfn: u64| match pfn {
        0x100 => "0x400000",
        0x101 => "0x7f0000000000",
        0x102 => "0x7f0000002000",
        _ => unreachable!(),
    };
    for (pfn, raw, want) in cases() {
        let pfn_s = format!("{pfn:#x}");
        let mut seen: Vec<(&str, Vec<String>)> = Vec::new();
        let v = run_json(&["--root", root, "v2p", "1234", vaddr(pfn), "--json"]);
        assert_eq!(v[0]["flags_raw"], raw, "v2p reads the word");
        seen.push(("v2p", kpage_names(&v[0]["flags"])));
        let w = run_json(&["--root", root, "who", &pfn_s, "--json"]);
        let w = w
            .iter()
            .find(|r| r["pfn"] == pfn)
            .unwrap_or_else(|| panic!("who: no record of {pfn_s}"));
        seen.push(("who", kpage_names(&w["flags"])));
        let h = run_json(&["--root", root, "hwpoison", "inject", &pfn_s, "--json"]);
        let h = h
            .iter()
            .find(|r| r["pfn"] == pfn)
            .unwrap_or_else(|| panic!("hwpoison: no plan for {pfn_s}"));
        seen.push(("hwpoison", kpage_names(&h["flags"])));
        let t = run_json(&["--root", root, "types", "-a", &pfn_s, "-L", "--json"]);
        let t = t
            .iter()
            .find(|r| r["pfn"] == pfn)
            .unwrap_or_else(|| panic!("types -L: no record of {pfn_s}: {t:?}"));
        seen.push(("types -L", kpage_names(&t["flags"])));
        // the summary groups by page-types' view: -r keeps the raw word (without it, bits
        // 32-47 are hidden as page-types hides them)
        let s = run_json(&["--root", root, "types", "-r", "-a", &pfn_s, "--json"]);
        // one page selected: one flag set (its flags_raw is page-types -r's expanded word)
        assert_eq!(s.len(), 1, "types -r -a {pfn_s}: {s:?}");
        let s = &s[0];
        seen.push(("types -r", kpage_names(&s["flags"])));
        for (cmd, names) in &seen {
            assert_eq!(names, &want, "{cmd} names raw word {raw:#x} (pfn {pfn_s})");
        }
    }
}
