//! `pgtool idle` on the synthetic proc tree of tests/common plus a page_idle bitmap file:
//! the records of `idle read` in every format, the input grammar, "nothing there" exits, and
//! `--root` staying read-only. The wss sampler's idle path runs through the library on the same
//! tree (the CLI refuses to write under `--root`).
//!
//! Expected figures come from the fixture's own construction (tests/common): PFN 0x100 backs the
//! binary, 0x101/0x102 the anonymous region, 0x200-0x3ff one THP (head 0x200), 0x480 the stack
//! (past the end of kpageflags). The bitmap has the bits of 0x100 and 0x200 set.

mod common;

use common::{PID, json_lines, pgtool};
use pgtool::SysRoot;
use pgtool::idle::wss::{Sampler, WssLabels, WssRequest};
use pgtool::idle::{IdleBitmap, Method};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bitmap words: enough for PFNs 0..0x500.
const WORDS: usize = 0x500 / 64;

fn tree() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let root = common::write_fixture(d.path());
    let dir = root.join("sys/kernel/mm/page_idle");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut words = [0u64; WORDS];
    words[0x100 / 64] |= 1 << (0x100 % 64);
    words[0x200 / 64] |= 1 << (0x200 % 64);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    std::fs::write(dir.join("bitmap"), bytes).expect("bitmap");
    (d, root)
}

fn idle(root: &Path, args: &[&str]) -> common::Run {
    let r = root.to_string_lossy().into_owned();
    let mut v = vec!["--root", r.as_str(), "idle"];
    v.extend_from_slice(args);
    pgtool(&v)
}

fn pid() -> String {
    PID.to_string()
}

#[test]
fn read_counts_per_mapping_then_total() {
    let (_d, root) = tree();
    let r = idle(&root, &["read", "--pid", &pid(), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_lines(&r.stdout);
    let got: Vec<(Option<u64>, u64, u64, u64)> = v
        .iter()
        .map(|o| {
            (
                o["vma"]["start"].as_u64(),
                o["pages"].as_u64().expect("pages"),
                o["idle_pages"].as_u64().expect("idle"),
                o["accessed_pages"].as_u64().expect("accessed"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(0x400000), 1, 1, 0),
            (Some(0x7f00_0000_0000), 2, 0, 2),
            // every page of the THP reads its head's bit
            (Some(0x7f00_0020_0000), 512, 512, 0),
            (Some(0x7ffd_0000_0000), 1, 0, 1),
            (None, 516, 513, 3),
        ]
    );
    assert_eq!(v[3]["vma"]["path"], "[stack]");
    // the total: every key present (CSV stays aligned), the mapping's unknown
    assert_eq!(
        v[4]["vma"],
        serde_json::json!({"start": null, "end": null, "perms": null, "path": null})
    );
}

#[test]
fn csv_header_is_the_json_keys_and_tables_fit() {
    let (_d, root) = tree();
    let j = idle(&root, &["read", "--pid", &pid(), "--json"]);
    let c = idle(&root, &["read", "--pid", &pid(), "--csv"]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let header = c.stdout.lines().next().expect("header");
    assert_eq!(
        header,
        "vma_start,vma_end,vma_perms,vma_path,pages,idle_pages,accessed_pages"
    );
    let first: serde_json::Value = json_lines(&j.stdout)[0].clone();
    let keys: Vec<String> = first
        .as_object()
        .expect("object")
        .iter()
        .flat_map(|(k, v)| match v.as_object() {
            Some(m) => m.keys().map(|s| format!("{k}_{s}")).collect::<Vec<_>>(),
            None => vec![k.clone()],
        })
        .collect();
    assert_eq!(header, keys.join(","));
    // addresses are hex in CSV; the total row's mapping is empty
    assert!(
        c.stdout
            .contains("\n0x7f0000200000,0x7f0000600000,rw-p,,512,512,0\n"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.ends_with("\n,,,,516,513,3\n"), "{}", c.stdout);
    let t = idle(&root, &["read", "--pid", &pid()]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stdout.lines().all(|l| l.chars().count() <= 100),
        "{}",
        t.stdout
    );
    assert!(
        t.stdout.contains("total: 516 pages, 513 idle, 3 accessed"),
        "{}",
        t.stdout
    );
    let l = idle(&root, &["read", "--pid", &pid(), "-L", "--csv"]);
    assert_eq!(l.stdout.lines().next(), Some("vaddr,pfn,head_pfn,idle"));
    assert!(
        l.stdout.contains("\n0x7f0000201000,0x201,0x200,true\n"),
        "{}",
        l.stdout
    );
}

#[test]
fn addresses_are_hex_with_0x_or_decimal_never_bare_hex() {
    let (_d, root) = tree();
    let hex = idle(
        &root,
        &[
            "read",
            "--pid",
            &pid(),
            "--addr",
            "0x7f0000200000+8K",
            "--json",
        ],
    );
    let dec = idle(
        &root,
        &[
            "read",
            "--pid",
            &pid(),
            "--addr",
            "139637978824704+8192",
            "--json",
        ],
    );
    assert_eq!(hex.code, 0, "{}", hex.stderr);
    assert_eq!(hex.stdout, dec.stdout);
    let total = json_lines(&hex.stdout).pop().expect("total");
    assert_eq!(
        (total["pages"].as_u64(), total["idle_pages"].as_u64()),
        (Some(2), Some(2))
    );
    // START-END is end-exclusive; a single address selects its page
    let one = idle(
        &root,
        &[
            "read",
            "--pid",
            &pid(),
            "--addr",
            "0x7f0000201234",
            "-L",
            "--json",
        ],
    );
    let v = json_lines(&one.stdout);
    assert_eq!(v.len(), 1, "{}", one.stdout);
    assert_eq!(v[0]["vaddr"], 0x7f00_0020_1000u64);
    assert_eq!(
        (v[0]["pfn"].as_u64(), v[0]["head_pfn"].as_u64()),
        (Some(0x201), Some(0x200))
    );
    assert_eq!(v[0]["idle"], true);
    let bare = idle(&root, &["read", "--pid", &pid(), "--addr", "7f0000200000"]);
    assert_eq!(bare.code, 2, "{}", bare.stderr);
    assert!(
        bare.stderr.contains("bad address \"7f0000200000\""),
        "{}",
        bare.stderr
    );
}

#[test]
fn pfns_from_args_and_stdin() {
    let (_d, root) = tree();
    let r = common::run_cmd(
        std::process::Command::new(common::pgtool_bin())
            .args([
                "--root",
                &root.to_string_lossy(),
                "idle",
                "read",
                "--pfn",
                "-",
                "--json",
            ])
            .stdin(
                std::fs::File::open({
                    let p = root.join("pfns.txt");
                    std::fs::write(&p, "0x100 0x200+2\n").expect("w");
                    p
                })
                .expect("open"),
            ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_lines(&r.stdout);
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0]["pages"].as_u64(), v[0]["idle_pages"].as_u64()),
        (Some(3), Some(3))
    );
    // 0x100-0x102 includes its end, as in `pgtool who`
    let r = idle(
        &root,
        &["read", "--pfn", "0x100-0x102", "--pfn", "256", "--json"],
    );
    assert_eq!(json_lines(&r.stdout)[0]["pages"], 3);
}

#[test]
fn nothing_there_exits_1() {
    let (_d, root) = tree();
    for (args, want) in [
        (
            vec!["read", "--pid", "1234", "--addr", "0x10000"],
            "is not mapped in 1234",
        ),
        (vec!["read", "--pfn", "0x100000"], "holds no System RAM"),
        (
            vec!["read", "--pfn", "0x100000+16", "-L"],
            "holds no System RAM",
        ),
        (
            vec!["read", "--pid", "1234", "--vma", "nosuch"],
            "no mapping of pid 1234 (fixture) matches --vma \"nosuch\"",
        ),
        (vec!["read", "--pid", "4321"], "no such process 4321"),
        // the swapped and guard pages of the anonymous region are not resident
        (
            vec!["read", "--pid", "1234", "--addr", "0x7f0000001000+4K"],
            "no resident page",
        ),
    ] {
        let r = idle(&root, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.lines().next().unwrap_or("").contains(want),
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

/// Every file's length, mtime and (for files under 1 MiB: the fixture's pagemap is sparse and
/// terabytes long) contents.
fn checksum(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("stat");
            if m.is_dir() {
                stack.push(p.clone());
            }
            let body = if m.is_file() && m.len() < 1 << 20 {
                std::fs::read(&p).expect("read")
            } else {
                Vec::new()
            };
            out.push((p, m.len(), m.modified().ok(), body));
        }
    }
    out.sort();
    out
}

#[test]
fn root_is_read_only_for_mark_and_wss() {
    let (_d, root) = tree();
    let before = checksum(&root);
    for (args, want) in [
        (vec!["mark", "--pid", "1234"], "--root is read-only"),
        (vec!["mark", "--pfn", "0x100+8"], "--root is read-only"),
        (
            vec!["wss", "--pid", "1234", "--method", "refs", "--count", "1"],
            "clear_refs",
        ),
        (
            vec!["wss", "--pid", "1234", "--method", "idle", "--count", "1"],
            "--root is read-only",
        ),
        (
            vec!["wss", "--pid", "1234", "--count", "1"],
            "--root is read-only",
        ),
    ] {
        let r = idle(&root, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or("");
        assert!(
            first.contains(want) && first.contains("read-only"),
            "{args:?}: {first}"
        );
    }
    assert!(!root.join("proc/1234/clear_refs").exists());
    assert!(before == checksum(&root), "a file under --root changed");
}

#[test]
fn wss_idle_method_on_a_fixture_bitmap_keeps_its_series() {
    let (_d, root) = tree();
    let sys = SysRoot::at(&root);
    let req = WssRequest::new(PID, Method::Idle, Duration::from_millis(1));
    // The CLI's way in refuses a snapshot; a caller that opens the bitmap itself may write it.
    let e = Sampler::start(&sys, req.clone()).expect_err("read-only root");
    assert_eq!(e.exit_code(), 2, "{e}");
    let bm = IdleBitmap::open_file(sys.page_idle_bitmap(), true).expect("bitmap");
    let mut s = Sampler::start_with_bitmap(&sys, req, bm).expect("start");
    let a = s.sample().expect("sample 1");
    assert_eq!(a.interval, 1);
    assert_eq!(a.total.pages, 516);
    assert_eq!(a.total.accessed_pages, 0, "everything was marked at start");
    // the "kernel" clears the THP head's bit: all 512 pages of the folio were accessed
    let bm = IdleBitmap::open_file(sys.page_idle_bitmap(), true).expect("bitmap");
    bm.write_words(0x200 / 64, &[0]).expect("clear");
    let b = s.sample().expect("sample 2");
    let thp = b
        .rows
        .iter()
        .find(|r| r.vma.as_ref().is_some_and(|v| v.start == 0x7f00_0020_0000))
        .expect("THP row");
    assert_eq!((thp.accessed_pages, thp.accessed_bytes), (512, 512 * 4096));
    assert_eq!(b.total.accessed_pages, 512);
    let series = |m: &pgtool::output::metrics::Metrics| -> BTreeSet<String> {
        m.render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| k.to_string()))
            .collect()
    };
    let (sa, sb) = (
        series(&a.metrics(WssLabels::default()).expect("m")),
        series(&b.metrics(WssLabels::default()).expect("m")),
    );
    assert_eq!(sa, sb, "two samples of one workload: one set of series");
    assert!(
        sa.contains("pgtool_wss_accessed_pages{comm=\"fixture\",mapping=\"[anon]\"}"),
        "{sa:?}"
    );
    assert!(
        sa.iter()
            .all(|k| !k.contains("pid=") && !k.contains("vma=")),
        "{sa:?}"
    );
}
