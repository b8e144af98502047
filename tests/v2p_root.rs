//! v2p on the synthetic `--root` tree of tests/common (expected values come from how the
//! fixture is built, not from pgtool): runs, --fields, hex companions, the table's shape, a
//! truncated pagemap, a non-UTF-8 root path.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;

fn fixture() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().expect("tmp");
    let root = write_fixture(d.path());
    let s = root.to_str().expect("utf8").to_string();
    (d, s)
}

fn v2p(root: &str, args: &[&str]) -> Run {
    let mut a = vec!["--root", root, "v2p", "1234"];
    a.extend_from_slice(args);
    pgtool(&a)
}

#[test]
fn thp_is_one_run_and_untouched_pages_collapse() {
    let (_d, root) = fixture();
    // the 4 MiB anon mapping: 512 THP pages (PFN 0x200..0x3ff) then 512 untouched pages
    let run = v2p(
        &root,
        &["--json", "--collapse", "0x7f0000200000-0x7f0000600000"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    assert_eq!(recs.len(), 2, "{run:?}");
    assert_eq!(recs[0]["pages"], json!(512));
    assert_eq!(recs[0]["pfn"], json!(0x200));
    assert_eq!(recs[0]["last_pfn"], json!(0x3ff));
    assert_eq!(recs[0]["folio_pages"], json!(512));
    assert_eq!(recs[1]["pages"], json!(512));
    assert_eq!(recs[1]["present"], json!(false));
    assert!(recs[1]["pfn"].is_null() && recs[1]["last_pfn"].is_null());
    // the same range without --collapse: one record per page
    let run = v2p(&root, &["--json", "0x7f0000200000-0x7f0000600000"]);
    assert_eq!(json_lines(&run.stdout).len(), 1024);
    // the table collapses by default, one row per run under one VMA header
    let run = v2p(&root, &["0x7f0000200000-0x7f0000600000"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(
        lines[0].starts_with("vma: 0x7f0000200000 0x7f0000600000 rw-p"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("vaddr") && lines[1].contains("last_pfn"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("512") && lines[2].contains("0x200") && lines[2].contains("0x3ff"));
    assert!(lines[3].contains("none"), "{}", lines[3]);
    // --each: one row per page
    let run = v2p(&root, &["--each", "0x7f0000200000-0x7f0000600000"]);
    assert_eq!(run.stdout.lines().count(), 1024 + 2);
}

#[test]
fn fields_choose_keys_and_order_and_raw_words_carry_hex() {
    let (_d, root) = fixture();
    let run = v2p(
        &root,
        &[
            "--json",
            "--fields",
            "pfn,vaddr,pagemap_raw,flags_raw",
            "0x7f0000000000",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    let keys: Vec<&String> = recs[0].as_object().expect("obj").keys().collect();
    assert_eq!(
        keys,
        [
            "pfn",
            "vaddr",
            "pagemap_raw",
            "pagemap_raw_hex",
            "flags_raw",
            "flags_raw_hex"
        ]
    );
    // PRESENT | EXCL | SOFT_DIRTY | 0x101: above 2^53, so the string is what survives jq
    let raw = PRESENT | EXCL | SOFT_DIRTY | 0x101;
    assert_eq!(recs[0]["pagemap_raw_hex"], json!(format!("{raw:#x}")));
    assert_eq!(recs[0]["pagemap_raw"].as_u64(), Some(raw));
    let fl = K_UPTODATE | K_LRU | K_MMAP | K_ANON | K_SWAPBACKED;
    assert_eq!(recs[0]["flags_raw_hex"], json!(format!("{fl:#x}")));
    // CSV: the header is the JSON keys in the same order
    let run = v2p(
        &root,
        &[
            "--csv",
            "--fields",
            "pfn,vaddr,pagemap_raw,flags_raw",
            "0x7f0000000000",
        ],
    );
    assert_eq!(
        run.stdout.lines().next(),
        Some("pfn,vaddr,pagemap_raw,pagemap_raw_hex,flags_raw,flags_raw_hex")
    );
    // flags: the one decoder with the pagemap bits (soft-dirty, exclusive)
    let run = v2p(&root, &["--json", "--fields", "flags", "0x7f0000000000"]);
    let recs = json_lines(&run.stdout);
    assert_eq!(
        recs[0]["flags"],
        json!([
            "uptodate",
            "lru",
            "mmap",
            "anonymous",
            "swapbacked",
            "softdirty",
            "mmap_exclusive"
        ])
    );
    // an unknown field is a usage error naming the field
    let run = v2p(&root, &["--fields", "pfn,nosuch", "0x7f0000000000"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("nosuch"), "{run:?}");
}

#[test]
fn default_json_reads_pagemap_and_kpageflags_and_all_is_the_full_record() {
    let (_d, root) = fixture();
    let run = v2p(&root, &["--json", "0x400010"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    let r = &json_lines(&run.stdout)[0];
    let keys: Vec<&str> = r
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    let full = [
        "pid",
        "vaddr",
        "present",
        "swapped",
        "pfn",
        "phys_addr",
        "soft_dirty",
        "exclusive",
        "uffd_wp",
        "file_shared",
        "guard",
        "swap_type",
        "swap_offset",
        "kpagecount",
        "flags",
        "flags_raw",
        "flags_raw_hex",
        "memcg_ino",
        "memcg_path",
        "iomem",
        "head_pfn",
        "folio_pages",
        "pagemap_raw",
        "pagemap_raw_hex",
        "vma",
    ];
    let cheap: Vec<&str> = full
        .iter()
        .copied()
        .filter(|k| !["kpagecount", "memcg_ino", "memcg_path", "iomem"].contains(k))
        .collect();
    assert_eq!(keys, cheap);
    let run = v2p(&root, &["--json", "--fields", "all", "0x400010"]);
    let r = &json_lines(&run.stdout)[0];
    let keys: Vec<&str> = r
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, full);
    assert_eq!(r["pfn"], json!(0x100));
    assert_eq!(r["phys_addr"], json!(0x100010));
    assert_eq!(r["kpagecount"], json!(3));
    assert_eq!(r["memcg_path"], json!("/sys/fs/cgroup/fixture.slice"));
    assert_eq!(r["iomem"], json!("System RAM > Kernel code"));
    assert_eq!(r["vma"]["path"], json!("/usr/bin/fixture"));
    // without the kpage files the default still works (nothing else is opened)
    for f in ["kpagecount", "kpagecgroup", "iomem"] {
        std::fs::remove_file(Path::new(&root).join("proc").join(f)).expect("rm");
    }
    let run = v2p(&root, &["--json", "0x400010"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:?}");
}

#[test]
fn table_fits_100_columns_and_single_address_is_a_block() {
    let (_d, root) = fixture();
    let run = v2p(
        &root,
        &[
            "--vma",
            "[anon]",
            "--vma",
            "[stack]",
            "--fields",
            "vaddr,pages,state,pfn,last_pfn,kpagecount,flags,iomem",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.lines().all(|l| l.chars().count() <= 100),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("vma: ").count(), 3, "{}", run.stdout);
    let run = v2p(&root, &["0x7f0000001000"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("page: 0x7f0000001000 of pid 1234"),
        "{}",
        run.stdout
    );
    let row = |k: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(row("state").as_deref(), Some("swapped"));
    assert_eq!(row("swap_type").as_deref(), Some("3"));
    assert_eq!(row("swap_offset").as_deref(), Some("4660"));
}

#[test]
fn truncated_pagemap_is_an_error_not_absent_pages() {
    let (_d, root) = fixture();
    let pm = Path::new(&root).join("proc/1234/pagemap");
    let f = std::fs::File::options()
        .write(true)
        .open(&pm)
        .expect("open");
    // keep the entries up to 0x7f0000002000 (exclusive)
    f.set_len(0x7f00_0000_2000 / 4096 * 8).expect("cut");
    let run = v2p(&root, &["--json", "0x7f0000000000+16K"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("truncated") && run.stderr.contains("0x7f0000002000"),
        "{run:?}"
    );
    assert!(run.stderr.contains(pm.to_str().expect("utf8")), "{run:?}");
    // the pages before the cut were printed
    assert_eq!(json_lines(&run.stdout).len(), 2, "{run:?}");
    // a PFN past the end of the snapshot's kpage files is a note, not silence
    let (_d2, root2) = fixture();
    let run = v2p(&root2, &["--json", "--vma", "[stack]"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("ends before PFN 0x480"), "{run:?}");
}

#[test]
fn a_root_path_that_is_not_utf8_works() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path().join(std::ffi::OsStr::from_bytes(b"snap-\xff\xfe"));
    std::fs::create_dir(&dir).expect("mkdir");
    write_fixture(&dir);
    let out = std::process::Command::new(pgtool_bin())
        .arg("--root")
        .arg(&dir)
        .args(["v2p", "1234", "--json", "0x400000"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["pfn"], json!(0x100));
    // and an error naming a file under it stays one bounded line
    let out = std::process::Command::new(pgtool_bin())
        .arg("--root")
        .arg(&dir)
        .args(["v2p", "4321", "0x400000"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
