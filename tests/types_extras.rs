//! pgtool's additions to page-types: --json, --csv, --prometheus, --root, --threads.

use std::process::Command;

fn words(path: &std::path::Path, w: &[u64]) {
    let b: Vec<u8> = w.iter().flat_map(|v| v.to_ne_bytes()).collect();
    std::fs::write(path, b).expect("write");
}

fn pgtool(args: &[&str]) -> (String, String, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(args)
        .output()
        .expect("run pgtool");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

#[test]
fn json_csv_and_prometheus_summary() {
    let d = tempfile::tempdir().expect("tmp");
    let f = d.path().join("flags");
    words(&f, &[0x28, 0x28, 0x68, 0, 0x5868, 0x28]);
    let fs = f.to_str().expect("utf8");
    let (out, err, rc) = pgtool(&["types", "--json", "-F", fs]);
    assert_eq!((rc, err.as_str()), (0, ""));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 4);
    let lru = rows
        .iter()
        .find(|r| r["flags_raw"] == 0x28)
        .expect("0x28 row");
    assert_eq!(lru["pages"], 3);
    assert_eq!(lru["flags"], serde_json::json!(["uptodate", "lru"]));
    assert_eq!(lru["symbolic"].as_str().map(str::len), Some(45));
    let (out, _, rc) = pgtool(&["types", "--csv", "-F", fs, "-b", "lru"]);
    assert_eq!(rc, 0);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("flags,flags_raw,flags_raw_hex,symbolic,pages,size_bytes")
    );
    let ps = pgtool::page_size();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "uptodate|lru,0x28,0x28,___U_l_______________________________________,3,{}",
                3 * ps
            )
            .as_str()
        )
    );
    let prom = d.path().join("pt.prom");
    let (out, _, rc) = pgtool(&[
        "types",
        "--prometheus",
        prom.to_str().expect("utf8"),
        "-F",
        fs,
    ]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("             total\t         6        0\n"),
        "{out}"
    );
    let text = std::fs::read_to_string(&prom).expect("prom file");
    assert!(
        text.contains("pgtool_types_pages{flags=\"uptodate|lru\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("pgtool_types_pages{flags=\"none\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE pgtool_types_pages gauge\n"), "{text}");
    assert!(!text.contains("_total"), "{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&prom).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
    // no temp file left behind
    assert_eq!(std::fs::read_dir(d.path()).expect("dir").count(), 2);
}

#[test]
fn json_listing_fields() {
    let d = tempfile::tempdir().expect("tmp");
    let f = d.path().join("flags");
    words(&f, &[0x28, 0x28, 0x68]);
    let (out, _, rc) = pgtool(&["types", "--json", "-l", "-F", f.to_str().expect("utf8")]);
    assert_eq!(rc, 0);
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["pfn"], 0);
    assert_eq!(v[0]["pages"], 2);
    assert_eq!(v[0]["flags_raw_hex"], "0x28");
    assert_eq!(v[0]["vaddr"], serde_json::Value::Null);
    assert_eq!(v[1]["pfn"], 2);
    assert_eq!(
        v[1]["flags"],
        serde_json::json!(["uptodate", "lru", "active"])
    );
}

#[test]
fn root_snapshot_is_read() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(d.path().join("proc")).expect("mkdir");
    words(&d.path().join("proc/kpageflags"), &[0x400, 0x400, 0]);
    let (out, err, rc) = pgtool(&["--root", d.path().to_str().expect("utf8"), "types"]);
    assert_eq!((rc, err.as_str()), (0, ""));
    assert!(
        out.contains("0x0000000000000400\t         2        0  __________B"),
        "{out}"
    );
    let (out, _, rc) = pgtool(&[
        "types",
        "--root",
        d.path().to_str().expect("utf8"),
        "-N",
        "-L",
    ]);
    assert_eq!(rc, 0);
    assert_eq!(
        out,
        format!(
            "offset\tflags\n0\t{0}\n1\t{0}\n2\t{1}\n",
            "__________B__________________________________",
            "_".repeat(45)
        )
    );
}

#[test]
fn threads_give_the_single_pass_order() {
    // many colliding values (low 13 bits 0) spread over several chunks: the row order depends
    // on first-encounter order, which the threaded merge must keep
    let d = tempfile::tempdir().expect("tmp");
    let f = d.path().join("flags");
    let n = 3_000_000u64;
    let w: Vec<u64> = (0..n)
        .map(|i| match (i * 7919) % 1_000_003 {
            x if x < 10 => (x + 1) << 13,
            x if x % 97 == 0 => 0x28,
            _ => 0,
        })
        .map(|v| if v != 0 && v & (1 << 20) != 0 { 0 } else { v })
        .collect();
    words(&f, &w);
    let fs = f.to_str().expect("utf8");
    let one = pgtool(&["types", "--threads", "1", "-F", fs, "-r"]);
    for t in ["2", "3", "8"] {
        let many = pgtool(&["types", "--threads", t, "-F", fs, "-r"]);
        assert_eq!(one, many, "threads {t}");
    }
    assert_eq!(one.2, 0, "{}", one.1);
}

/// page-types (the library in the drop-in's mode) run against a fixture root.
fn page_types_in(root: &std::path::Path, args: &[&str]) -> (String, String, i32) {
    let mut inv = pgtool::pagetypes::Invocation::page_types(args.iter().map(Into::into).collect());
    inv.root = pgtool::SysRoot::at(root);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let rc = pgtool::pagetypes::run(&inv, &mut out, &mut err).expect("drop-in mode never errs");
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        rc,
    )
}

/// -X / -x / -i against a fixture root: the writes page-types makes (spec A.11, A.12); and
/// `pgtool types --root` refuses them (a snapshot is read-only).
#[test]
fn hwpoison_and_idle_writes_in_a_fixture_root() {
    let d = tempfile::tempdir().expect("tmp");
    let hw = d.path().join("debugfs/hwpoison");
    std::fs::create_dir_all(&hw).expect("mkdir");
    std::fs::write(hw.join("corrupt-pfn"), "").expect("w");
    std::fs::write(hw.join("unpoison-pfn"), "").expect("w");
    let idle = d.path().join("sys/kernel/mm/page_idle");
    std::fs::create_dir_all(&idle).expect("mkdir");
    std::fs::write(idle.join("bitmap"), [0u8; 64]).expect("w");
    let f = d.path().join("flags");
    // lru pages at 3, 4, 5, 70, 130; others not
    let mut w = vec![0u64; 200];
    for p in [3usize, 4, 5, 70, 130] {
        w[p] = 0x28;
    }
    w[6] = 0x400;
    words(&f, &w);
    let root = d.path().to_str().expect("utf8");
    let fs = f.to_str().expect("utf8");
    for flag in ["-X", "-x", "-i"] {
        let (out, err, rc) = pgtool(&["types", "--root", root, "-F", fs, flag, "-N"]);
        assert_eq!(rc, 2, "{flag}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("refuses to run under --root"), "{err}");
    }
    assert_eq!(std::fs::read(hw.join("corrupt-pfn")).expect("r"), b"");
    let (out, err, rc) = page_types_in(
        d.path(),
        &["-F", fs, "-X", "-x", "-a", "3,7", "-b", "lru", "-N"],
    );
    assert_eq!((rc, out.as_str(), err.as_str()), (0, "", ""));
    for name in ["corrupt-pfn", "unpoison-pfn"] {
        let got = std::fs::read_to_string(hw.join(name)).expect("read");
        assert_eq!(got, "0x3\n0x4\n0x5\n", "{name}");
    }
    let (_, err, rc) = page_types_in(d.path(), &["-F", fs, "-i", "-b", "lru", "-N"]);
    assert_eq!((rc, err.as_str()), (0, ""));
    let data = std::fs::read(idle.join("bitmap")).expect("read");
    let word = |i: usize| u64::from_ne_bytes(data[i * 8..i * 8 + 8].try_into().expect("8"));
    // word 0 (3,4,5) is written when 70 comes; word 1 (70) when 130 comes; word 2 (130)
    // by the final flush with PFN 0
    assert_eq!(word(0), 0b111000);
    assert_eq!(word(1), 1 << (70 - 64));
    assert_eq!(word(2), 1 << (130 - 128));
    // missing hwpoison files: page-types' perror and exit 1
    let e = d.path().join("empty");
    std::fs::create_dir_all(&e).expect("mkdir");
    let (_, err, rc) = page_types_in(&e, &["-F", fs, "-X"]);
    assert_eq!(rc, 1);
    assert_eq!(
        err,
        format!(
            "{}/debugfs/hwpoison/corrupt-pfn: No such file or directory\n",
            e.display()
        )
    );
}
