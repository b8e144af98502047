//! `pgtool who` and `pgtool cgroup --pages` on a synthetic snapshot tree (`--root`): runs
//! anywhere, no root needed. Exercises the plain-read path (PAGEMAP_SCAN fails on a regular
//! file), folio widening, kernel-thread skipping and the unmapped-page explanations. Expected
//! values are written into the fixture by hand here.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

const ANON: u64 = 1 << 12;
const LRU: u64 = 1 << 5;
const MMAP: u64 = 1 << 11;
const HEAD: u64 = 1 << 15;
const TAIL: u64 = 1 << 16;
const THP: u64 = 1 << 22;
const BUDDY: u64 = 1 << 10;
const SLAB: u64 = 1 << 7;
const PRESENT: u64 = 1 << 63;
const EXCLUSIVE: u64 = 1 << 56;
const NPFN: u64 = 0x1000;

fn write_words(path: &Path, words: &[u64]) {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    fs::write(path, bytes).expect("write words");
}

/// A /proc/PID/stat line with 52 fields; `flags` and `startcode` set.
fn stat_line(pid: u32, comm: &str, flags: u64, startcode: u64) -> String {
    let mut f: Vec<String> = vec!["0".into(); 52];
    f[0] = pid.to_string();
    f[1] = format!("({comm})");
    f[2] = "S".into();
    f[3] = "1".into();
    f[8] = flags.to_string();
    f[25] = startcode.to_string();
    f[26] = (startcode + 0x1000).to_string();
    f[27] = (0x7ff0_0000_0000 + u64::from(pid)).to_string();
    f.join(" ") + "\n"
}

/// A process with `maps` text and pagemap entries (vaddr, word).
fn process(root: &Path, pid: u32, comm: &str, kthread: bool, maps: &str, pm: &[(u64, u64)]) {
    let d = root.join(format!("proc/{pid}"));
    fs::create_dir_all(&d).expect("mkdir");
    let flags = if kthread { 0x0020_0040 } else { 0x0040_0100 };
    let start = if kthread {
        0
    } else {
        0x40_0000 + u64::from(pid)
    };
    fs::write(d.join("stat"), stat_line(pid, comm, flags, start)).expect("stat");
    fs::write(d.join("maps"), maps).expect("maps");
    let f = fs::File::create(d.join("pagemap")).expect("pagemap");
    for &(va, w) in pm {
        f.write_all_at(&w.to_ne_bytes(), (va >> 12) * 8)
            .expect("pm");
    }
}

fn fixture() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tmp");
    let root = t.path();
    fs::create_dir_all(root.join("proc")).expect("proc");
    let mut flags = vec![0u64; NPFN as usize];
    let mut count = vec![0u64; NPFN as usize];
    let mut cg = vec![0u64; NPFN as usize];
    flags[0x100] = ANON | LRU | MMAP;
    count[0x100] = 3; // one more than the fixture's processes map
    cg[0x100] = 42;
    for p in 0x200..0x400 {
        flags[p] = ANON | LRU | MMAP | THP | if p == 0x200 { HEAD } else { TAIL };
        count[p] = 1;
        cg[p] = 42;
    }
    flags[0x50] = BUDDY;
    flags[0x60] = SLAB;
    flags[0x70] = LRU | (1 << 3); // page cache, unmapped
    // Anonymous with the overloaded bit 34: anon_exclusive, not mappedtodisk (as v2p says).
    flags[0x80] = 0x4_0000_5828;
    count[0x80] = 1;
    cg[0x70] = 7;
    write_words(&root.join("proc/kpageflags"), &flags);
    write_words(&root.join("proc/kpagecount"), &count);
    write_words(&root.join("proc/kpagecgroup"), &cg);
    fs::write(
        root.join("cgroup-inodes.tsv"),
        "1\tv1-memory\t/sys/fs/cgroup/memory\n42\tv1-memory\t/sys/fs/cgroup/memory/app\n",
    )
    .expect("tsv");
    // pid 100 maps PFN 0x100 at 0x400000 and the whole THP at 0x600000.
    let mut pm = vec![(0x40_0000, PRESENT | 0x100)];
    for i in 0..0x200u64 {
        pm.push((0x60_0000 + i * 0x1000, PRESENT | EXCLUSIVE | (0x200 + i)));
    }
    process(
        root,
        100,
        "app",
        false,
        "00400000-00401000 rw-p 00000000 00:00 0 \n00600000-00800000 rw-p 00000000 00:00 0 \n",
        &pm,
    );
    // pid 200 maps PFN 0x100 at 0x500000 (after a fork, say).
    process(
        root,
        200,
        "worker",
        false,
        "00500000-00502000 rw-p 00000000 00:00 0 [heap]\n",
        &[(0x50_0000, PRESENT | 0x100), (0x50_1000, PRESENT | 0x999)],
    );
    // A kernel thread.
    process(root, 2, "kthreadd", true, "", &[]);
    t
}

fn pgtool(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run pgtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn who_on_a_snapshot_tree() {
    let t = fixture();
    let (rc, out, err) = pgtool(
        t.path(),
        &["who", "--json", "0x100", "0x205", "0x50", "0x60", "0x70"],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains("3 processes searched") && err.contains("1 kernel threads skipped"),
        "{err}"
    );
    let recs = json(&out);
    let of = |pfn: u64| -> Vec<&serde_json::Value> {
        recs.iter()
            .filter(|r| r["pfn"].as_u64() == Some(pfn))
            .collect()
    };
    // 0x100: both processes, and one mapping kpagecount counts that we did not find.
    let r = of(0x100);
    assert_eq!(r.len(), 2, "{recs:?}");
    assert_eq!(
        (r[0]["pid"].as_u64(), r[0]["vaddr"].as_u64()),
        (Some(100), Some(0x40_0000))
    );
    assert_eq!(
        (r[1]["pid"].as_u64(), r[1]["vaddr"].as_u64()),
        (Some(200), Some(0x50_0000))
    );
    assert_eq!(r[1]["vma"]["path"].as_str(), Some("[heap]"));
    assert_eq!(r[0]["vma"]["path"].as_str(), Some("[anon]"));
    assert!(
        r[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("kpagecount 3 but 2")),
        "{:?}",
        r[0]
    );
    // 0x205: a tail of the THP at 0x200, mapped by pid 100 as subpage 5 of a 512-page run.
    let r = of(0x205);
    assert_eq!(r.len(), 1, "{recs:?}");
    assert_eq!(r[0]["pid"].as_u64(), Some(100));
    assert_eq!(r[0]["subpage"].as_u64(), Some(5));
    assert_eq!(r[0]["vaddr"].as_u64(), Some(0x60_5000));
    assert_eq!(r[0]["pages"].as_u64(), Some(512));
    assert_eq!(r[0]["exclusive"].as_bool(), Some(true));
    // Unmapped pages are explained from their flags.
    for (pfn, word) in [(0x50, "free"), (0x60, "slab"), (0x70, "page cache")] {
        let r = of(pfn);
        assert_eq!(r.len(), 1);
        assert!(r[0]["pid"].is_null());
        let note = r[0]["note"].as_str().unwrap_or("");
        assert!(note.contains(word), "{pfn:#x}: {note}");
    }
    // 0x70 is charged to memcg 7, which the table does not know; 0x100 to memcg 42.
    assert_eq!(of(0x70)[0]["memcg_ino"].as_u64(), Some(7));
    assert!(of(0x70)[0]["memcg_path"].is_null());
    assert_eq!(
        of(0x100)[0]["memcg_path"].as_str(),
        Some("/sys/fs/cgroup/memory/app")
    );
    // The folio of a THP tail, in the fields v2p uses for the same page.
    let f = &of(0x205)[0]["folio"];
    assert_eq!(
        (
            f["head_pfn"].as_u64(),
            f["pages"].as_u64(),
            f["order"].as_u64()
        ),
        (Some(0x200), Some(512), Some(9))
    );
    assert_eq!(f["kind"].as_str(), Some("thp"));
    assert!(of(0x100)[0]["folio"]["head_pfn"].is_null());
    // Raw flags travel as a number and an exact hex string.
    assert_eq!(of(0x100)[0]["flags_raw"].as_u64(), Some(ANON | LRU | MMAP));
    assert_eq!(of(0x100)[0]["flags_raw_hex"].as_str(), Some("0x1820"));

    // Filters.
    let (rc, out, _) = pgtool(t.path(), &["who", "--json", "--comm", "worker", "0x100"]);
    assert_eq!(rc, 0);
    assert_eq!(json(&out).len(), 1);
    let (rc, out, _) = pgtool(t.path(), &["who", "--csv", "--pid", "100", "0x100"]);
    assert_eq!(rc, 0);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("0x100,100,app,0x400000,0x400000,0x401000,rw-p,[anon],")),
        "{out}"
    );

    // Ranges, stdin, physical addresses, past the end.
    let (rc, out, _) = pgtool(
        t.path(),
        &["who", "--json", "0x3fe-0x3ff", "--phys", "0x100123"],
    );
    assert_eq!(rc, 0);
    let pfns: Vec<u64> = json(&out)
        .iter()
        .filter_map(|r| r["pfn"].as_u64())
        .collect();
    assert_eq!(pfns, vec![0x100, 0x100, 0x3fe, 0x3ff]);
    let (rc, out, _) = pgtool(t.path(), &["who", &format!("{:#x}", NPFN + 5)]);
    assert_eq!(rc, 1);
    assert!(out.contains("past the end of memory"));
    let (rc, _, err) = pgtool(t.path(), &["who", "0xzz"]);
    assert_eq!(rc, 2, "{err}");
    let (rc, _, _) = pgtool(t.path(), &["who"]);
    assert_eq!(rc, 2);
}

#[test]
fn cgroup_pages_on_a_snapshot_tree() {
    let t = fixture();
    let (rc, out, err) = pgtool(t.path(), &["cgroup", "--pages", "--json"]);
    assert_eq!(rc, 0, "{err}");
    let recs = json(&out);
    // memcg 42: PFN 0x100 and the 512-page THP, all anonymous.
    assert_eq!(recs[0]["memcg_ino"].as_u64(), Some(42));
    assert_eq!(
        recs[0]["memcg_path"].as_str(),
        Some("/sys/fs/cgroup/memory/app")
    );
    assert_eq!(recs[0]["pages"].as_u64(), Some(513));
    assert_eq!(recs[0]["anon_pages"].as_u64(), Some(513));
    assert_eq!(recs[0]["resident_bytes"].as_u64(), Some(513 * 4096));
    // memcg 7 is unknown: deleted; uncharged holds the slab page and 0x80 (the free page is
    // not counted).
    let r7 = recs
        .iter()
        .find(|r| r["memcg_ino"].as_u64() == Some(7))
        .expect("7");
    assert_eq!(r7["state"].as_str(), Some("deleted"));
    assert_eq!(r7["file_pages"].as_u64(), Some(1));
    let r0 = recs
        .iter()
        .find(|r| r["memcg_ino"].as_u64() == Some(0))
        .expect("0");
    assert_eq!(r0["state"].as_str(), Some("uncharged"));
    assert_eq!(
        (r0["pages"].as_u64(), r0["slab_pages"].as_u64()),
        (Some(2), Some(1))
    );
    let (rc, out, _) = pgtool(t.path(), &["cgroup", "--pages"]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("deleted") && out.contains("uncharged"),
        "{out}"
    );
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    let (rc, csv, _) = pgtool(t.path(), &["cgroup", "--pages", "--csv"]);
    assert_eq!(rc, 0);
    assert_eq!(
        csv.lines().next(),
        Some(
            "memcg_ino,memcg_path,state,pages,resident_bytes,anon_pages,file_pages,slab_pages,\
             other_pages"
        )
    );
    // Asked-for memcgs: one with pages, one without (exit 1, and it says so).
    let (rc, out, err) = pgtool(t.path(), &["cgroup", "--pages", "--json", "42", "@9"]);
    assert_eq!(rc, 1, "{err}");
    assert_eq!(json(&out).len(), 2);
    assert!(
        err.starts_with("pgtool: 1 memcg(s) asked for hold no page"),
        "{err}"
    );
    // Lookups against the snapshot table.
    let (rc, out, _) = pgtool(t.path(), &["cgroup", "--csv", "42", "/app"]);
    assert_eq!(rc, 0);
    assert_eq!(
        out,
        "query,memcg_ino,hierarchy,memcg_path,memory_controller,error\n\
         42,42,v1-memory,/sys/fs/cgroup/memory/app,true,\n\
         /app,42,v1-memory,/sys/fs/cgroup/memory/app,true,\n"
    );
    let (rc, _, err) = pgtool(t.path(), &["cgroup", "7"]);
    assert_eq!(rc, 1);
    assert!(err.starts_with("pgtool: inode 7: no cgroup"), "{err}");
    let root = pgtool::SysRoot::at(t.path());
    assert_eq!(pgtool::cgroup::resolve_filter(&root, "/app").ok(), Some(42));
    assert_eq!(
        pgtool::cgroup::resolve_filter(&root, "@0x2a").ok(),
        Some(42)
    );
    assert!(pgtool::cgroup::resolve_filter(&root, "/nope").is_err());
    assert!(pgtool::cgroup::resolve_filter(&root, "@x").is_err());
}

#[test]
fn cgroup_pages_prometheus_textfile() {
    let t = fixture();
    let out_dir = tempfile::tempdir().expect("tmp");
    let prom = out_dir.path().join("memcg.prom");
    let p = prom.to_string_lossy().into_owned();
    let (rc, _, err) = pgtool(t.path(), &["cgroup", "--pages", "--prometheus", &p]);
    assert_eq!(rc, 0, "{err}");
    let text = fs::read_to_string(&prom).expect("prom");
    assert!(
        text.contains("# TYPE pgtool_memcg_resident_pages gauge"),
        "{text}"
    );
    assert!(
        text.contains(
            "pgtool_memcg_resident_pages{memcg=\"/sys/fs/cgroup/memory/app\",kind=\"anon\"} 513\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("{memcg=\"<deleted>\",kind=\"file\"} 1\n"),
        "{text}"
    );
    assert!(!text.contains("pid="), "{text}");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&prom).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Two runs over the same pages give the same series.
    let (rc, _, _) = pgtool(t.path(), &["cgroup", "--pages", "--prometheus", &p]);
    assert_eq!(rc, 0);
    assert_eq!(fs::read_to_string(&prom).expect("prom"), text);
    // Never inside the read-only --root tree; --prometheus needs --pages.
    let inside = t.path().join("m.prom").to_string_lossy().into_owned();
    let (rc, _, err) = pgtool(t.path(), &["cgroup", "--pages", "--prometheus", &inside]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("inside the --root snapshot"), "{err}");
    assert!(!t.path().join("m.prom").exists());
    let (rc, _, _) = pgtool(t.path(), &["cgroup", "--prometheus", &p, "42"]);
    assert_eq!(rc, 2);
}

/// Flattened JSON keys in order (nested objects joined with `_`), as the CSV header must be.
fn flat_keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}_{k}")
            };
            if x.is_object() {
                flat_keys(x, &key, out);
            } else {
                out.push(key);
            }
        }
    }
}

#[test]
fn who_formats_share_one_vocabulary() {
    let t = fixture();
    let (rc, out, err) = pgtool(t.path(), &["who", "--json", "0x50", "0x205", "0x80"]);
    assert_eq!(rc, 0, "{err}");
    let recs = json(&out);
    // The first row is an unmapped PFN, the second a mapping: the same keys either way.
    let mut k0 = Vec::new();
    let mut k1 = Vec::new();
    flat_keys(&recs[0], "", &mut k0);
    flat_keys(&recs[1], "", &mut k1);
    assert_eq!(k0, k1);
    let (rc, csv, _) = pgtool(t.path(), &["who", "--csv", "0x50", "0x205", "0x80"]);
    assert_eq!(rc, 0);
    assert_eq!(csv.lines().next(), Some(k0.join(",").as_str()));
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // Overloaded bit 34 on an anonymous page is anon_exclusive, as v2p names it.
    let r80 = recs
        .iter()
        .find(|r| r["pfn"].as_u64() == Some(0x80))
        .expect("0x80");
    let names: Vec<&str> = r80["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(names.contains(&"anon_exclusive"), "{names:?}");
    assert!(!names.contains(&"mappedtodisk"), "{names:?}");
    assert_eq!(r80["flags_raw_hex"].as_str(), Some("0x400005828"));
    // A kpagecount-1 page nobody we read maps is not blamed on the page.
    let note = r80["note"].as_str().unwrap_or("");
    assert!(note.contains("kpagecount 1 but none of the"), "{note}");
    assert!(!note.contains("being freed"), "{note}");
    // The table fits 100 columns and shows the CSV's hex PFNs.
    let (rc, table, _) = pgtool(t.path(), &["who", "0x100", "0x205", "0x50"]);
    assert_eq!(rc, 0);
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    assert!(
        table.contains("0x205") && table.contains("0x50: not mapped"),
        "{table}"
    );
}

#[test]
fn who_says_what_excluded_everything() {
    let t = fixture();
    let first = |e: &str| e.lines().next().unwrap_or("").to_string();
    let (rc, out, err) = pgtool(t.path(), &["who", "--comm", "nosuch", "0x100"]);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(
        first(&err).contains("--comm \"nosuch\" matched no process"),
        "{err}"
    );
    let (rc, _, err) = pgtool(t.path(), &["who", "--pid", "999", "0x100"]);
    assert_eq!(rc, 1);
    assert!(first(&err).contains("--pid 999: no such process"), "{err}");
    // pid 200 exists but does not map the THP (kpagecount 1: pid 100 does).
    let (rc, out, err) = pgtool(t.path(), &["who", "--json", "--pid", "200", "0x205"]);
    assert_eq!(rc, 1, "{err}");
    assert!(first(&err).contains("map none of the PFNs"), "{err}");
    let note = json(&out)[0]["note"].as_str().unwrap_or("").to_string();
    assert!(note.contains("selected with --pid/--comm"), "{note}");
    assert!(!note.contains("being freed"), "{note}");
    // A snapshot whose pagemaps are missing: nothing could be read, and it says which file.
    fs::remove_file(t.path().join("proc/100/pagemap")).expect("rm");
    fs::remove_file(t.path().join("proc/200/pagemap")).expect("rm");
    let (rc, out, err) = pgtool(t.path(), &["who", "--json", "0x100"]);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(
        first(&err).contains("no address space could be read"),
        "{err}"
    );
    assert!(first(&err).contains("pagemap"), "{err}");
    // Unmapped pages are still explained on such a snapshot: exit 0.
    let (rc, _, err) = pgtool(t.path(), &["who", "0x50"]);
    assert_eq!(rc, 0, "{err}");
    // A snapshot without processes.
    let empty = tempfile::tempdir().expect("tmp");
    fs::create_dir_all(empty.path().join("proc")).expect("proc");
    for f in ["kpageflags", "kpagecount", "kpagecgroup"] {
        fs::copy(
            t.path().join("proc").join(f),
            empty.path().join("proc").join(f),
        )
        .expect("cp");
    }
    let (rc, _, err) = pgtool(empty.path(), &["who", "0x100"]);
    assert_eq!(rc, 1, "{err}");
    assert!(first(&err).contains("no process to search"), "{err}");
}
