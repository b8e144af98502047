//! `pgtool mem` on a snapshot tree built here (the layout `pgtool snapshot` saves: kpage*,
//! meminfo, and per process maps, pagemap, status, comm, cgroup, smaps_rollup), with figures
//! worked out by hand from the kernel's rules; the smaps_rollup fallback; metrics; and the
//! unprivileged path on the live system.

mod common;

use common::{json_lines, pgtool};
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::Path;

const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const K_LRU: u64 = 1 << 5;
const K_MMAP: u64 = 1 << 11;
const K_ANON: u64 = 1 << 12;
const K_SWAPBACKED: u64 = 1 << 14;
const K_ZERO: u64 = 1 << 24;

/// (pid, comm, uid, cgroup, maps, pagemap entries by address)
type Proc = (
    u32,
    &'static str,
    u32,
    &'static str,
    &'static str,
    Vec<(u64, u64)>,
);

fn procs() -> Vec<Proc> {
    let swap = SWAPPED | (5 << 5); // type 0, offset 5: referenced by both processes
    vec![
        (
            100,
            "alpha",
            1000,
            "/fixture.slice",
            "00400000-00402000 r-xp 00000000 08:01 11 /usr/bin/alpha\n\
             7f0000000000-7f0000002000 r-xp 00000000 08:01 12 /lib/libshared.so\n\
             7f1000000000-7f1000005000 rw-p 00000000 00:00 0 \n",
            vec![
                (0x400000, PRESENT | 0x10),
                (0x401000, PRESENT | 0x11),
                (0x7f00_0000_0000, PRESENT | 0x20),
                (0x7f00_0000_1000, PRESENT | 0x21),
                (0x7f10_0000_0000, PRESENT | 0x30),
                (0x7f10_0000_1000, PRESENT | 0x31),
                (0x7f10_0000_2000, swap),
                (0x7f10_0000_3000, PRESENT | 0x40),
            ],
        ),
        (
            200,
            "beta",
            0,
            "/other",
            "7f0000000000-7f0000002000 r-xp 00000000 08:01 12 /lib/libshared.so\n\
             7f1000000000-7f1000002000 rw-p 00000000 00:00 0 \n",
            vec![
                (0x7f00_0000_0000, PRESENT | 0x20),
                (0x7f10_0000_0000, PRESENT | 0x31),
                (0x7f10_0000_1000, swap),
            ],
        ),
    ]
}

/// (pfn, kpageflags, kpagecount, kpagecgroup)
fn pages() -> Vec<(u64, u64, u64, u64)> {
    let file = K_LRU | K_MMAP;
    let anon = K_LRU | K_MMAP | K_ANON | K_SWAPBACKED;
    vec![
        (0x10, file, 1, 1),
        (0x11, file, 1, 1),
        (0x20, file, 2, 1),
        (0x21, file, 3, 1), // a third mapper is not in the snapshot
        (0x30, anon, 1, 42),
        (0x31, anon, 2, 42), // shared by fork
        (0x40, K_ZERO | K_MMAP, 99, 0),
    ]
}

fn write_tree(dir: &Path, with_kpage: bool) {
    let proc_ = dir.join("proc");
    for (pid, comm, uid, cg, maps, pm) in procs() {
        let d = proc_.join(pid.to_string());
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("maps"), maps).expect("maps");
        std::fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
        std::fs::write(
            d.join("status"),
            format!("Name:\t{comm}\nState:\tS (sleeping)\nPPid:\t1\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nVmSize:\t 100 kB\n"),
        )
        .expect("status");
        std::fs::write(d.join("cgroup"), format!("0::{cg}\n")).expect("cgroup");
        std::fs::write(d.join("cmdline"), format!("{comm}\0")).expect("cmdline");
        // What the kernel would have said (used only when kpagecount is missing).
        std::fs::write(
            d.join("smaps_rollup"),
            format!("00400000-7fff ---p 00000000 00:00 0 [rollup]\nRss: {} kB\nPss: 7 kB\nPss_Anon: 3 kB\nSwap: 4 kB\nSwapPss: 2 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n", pid / 10),
        )
        .expect("rollup");
        let f = std::fs::File::create(d.join("pagemap")).expect("pagemap");
        for (addr, w) in pm {
            f.write_all_at(&w.to_ne_bytes(), addr / 4096 * 8)
                .expect("pwrite");
        }
    }
    std::fs::write(
        proc_.join("meminfo"),
        "MemTotal: 1000 kB\nSwapTotal: 100 kB\nSwapFree: 92 kB\n",
    )
    .expect("meminfo");
    if with_kpage {
        let mut words = [vec![0u64; 0x80], vec![0u64; 0x80], vec![0u64; 0x80]];
        for (pfn, f, c, g) in pages() {
            words[0][pfn as usize] = f;
            words[1][pfn as usize] = c;
            words[2][pfn as usize] = g;
        }
        for (name, w) in ["kpageflags", "kpagecount", "kpagecgroup"]
            .iter()
            .zip(&words)
        {
            let b: Vec<u8> = w.iter().flat_map(|x| x.to_ne_bytes()).collect();
            std::fs::write(proc_.join(name), b).expect("kpage");
        }
    }
    std::fs::write(
        dir.join("cgroup-inodes.tsv"),
        "1\tv2\t/sys/fs/cgroup\n42\tv2\t/sys/fs/cgroup/fixture.slice\n",
    )
    .expect("tsv");
    std::fs::create_dir_all(dir.join("sys")).expect("sys");
}

fn tree(with_kpage: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tmp");
    write_tree(t.path(), with_kpage);
    t
}

fn mem(t: &tempfile::TempDir, args: &[&str]) -> Vec<Value> {
    let root = t.path().to_str().expect("utf8");
    let mut a = vec!["--root", root, "mem", "--json"];
    a.extend_from_slice(args);
    let r = pgtool(&a);
    assert_eq!(r.code, 0, "{a:?}: {}", r.stderr);
    json_lines(&r.stdout)
}

fn row<'a>(rows: &'a [Value], key: &str, v: Value) -> &'a Value {
    rows.iter()
        .find(|r| r[key] == v)
        .unwrap_or_else(|| panic!("no row {key}={v} in {rows:?}"))
}

#[test]
fn per_process_figures_follow_the_kernels_rules() {
    let t = tree(true);
    let rows = mem(&t, &[]);
    // alpha: 6 resident pages (the zero page is not RSS); PSS = 3 whole pages + 2 halves
    // + a third, in the kernel's fixed point (4096 << 12 / 3 truncated), then >> 12.
    let a = row(&rows, "pid", 100.into());
    let want = [
        ("rss_bytes", 6 * 4096),
        ("pss_bytes", 17749),
        ("uss_bytes", 3 * 4096),
        ("shared_bytes", 3 * 4096),
        ("anon_bytes", 2 * 4096),
        ("file_bytes", 4 * 4096),
        ("pss_anon_bytes", 4096 + 2048),
        ("pss_file_bytes", 11605),
        ("swap_bytes", 4096),
        ("swap_pss_bytes", 2048), // the slot is referenced by both processes
        ("zero_page_bytes", 4096),
    ];
    for (k, v) in want {
        assert_eq!(a[k], v, "{k}: {a}");
    }
    assert_eq!(
        (a["comm"].as_str(), a["user"].as_str()),
        (Some("alpha"), Some("1000"))
    );
    assert_eq!(a["source"], "pages");
    let b = row(&rows, "pid", 200.into());
    assert_eq!(
        (b["rss_bytes"].as_u64(), b["pss_bytes"].as_u64()),
        (Some(8192), Some(4096))
    );
    assert_eq!(b["uss_bytes"], 0);
    // sorted by PSS, the total last
    assert_eq!(rows[0]["pid"], 100);
    let total = rows.last().expect("total");
    assert_eq!(total["total"], true);
    assert_eq!(total["rss_bytes"], 8 * 4096);
    assert_eq!(total["pss_bytes"], 17749 + 4096);
}

#[test]
fn by_library_memcg_user_and_filters() {
    let t = tree(true);
    let lib = mem(&t, &["--by", "library"]);
    let l = row(&lib, "path", "/lib/libshared.so".into());
    assert_eq!(l["processes"], 2);
    assert_eq!(l["rss_bytes"], 3 * 4096);
    assert_eq!(l["pss_bytes"], 5461); // 2048 + 2048 + 1365.33
    assert!(
        lib.iter().all(|r| r["path"] != "[anon]"),
        "library rows are files only"
    );
    let only = mem(&t, &["--by", "library", "--path", "alpha"]);
    assert_eq!(only.len(), 2, "one file and the total: {only:?}");

    let cg = mem(&t, &["--by", "memcg"]);
    let c = row(&cg, "memcg_ino", 42.into());
    assert_eq!(c["memcg_path"], "/sys/fs/cgroup/fixture.slice");
    assert_eq!(c["rss_bytes"], 3 * 4096); // 0x30, and 0x31 in both processes
    assert_eq!(c["pss_bytes"], 2 * 4096); // each page once over all its mappers
    let root_cg = row(&cg, "memcg_ino", 1.into());
    assert_eq!(root_cg["memcg_path"], "/sys/fs/cgroup");

    let users = mem(&t, &["--by", "user"]);
    assert_eq!(row(&users, "uid", 1000.into())["processes"], 1);

    let maps = mem(&t, &["--by", "mapping", "--pid", "100"]);
    let anon = row(&maps, "mapping", "[anon]".into());
    assert_eq!(
        (anon["vmas"].as_u64(), anon["rss_bytes"].as_u64()),
        (Some(1), Some(8192))
    );

    let in_cg = mem(&t, &["--cgroup", "/fixture.slice"]);
    assert_eq!(in_cg.len(), 2, "alpha and the total: {in_cg:?}");
    assert_eq!(in_cg[0]["pid"], 100);
    let by_comm = mem(&t, &["--comm", "beta"]);
    assert_eq!(by_comm[0]["pid"], 200);
}

#[test]
fn without_kpagecount_figures_come_from_smaps_rollup() {
    let t = tree(false);
    let root = t.path().to_str().expect("utf8");
    let r = pgtool(&["--root", root, "mem", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("smaps_rollup"), "{}", r.stderr);
    let rows = json_lines(&r.stdout);
    let a = row(&rows, "pid", 100.into());
    assert_eq!(a["source"], "smaps_rollup");
    assert_eq!(a["rss_bytes"], 10 << 10);
    assert_eq!(a["uss_bytes"], 3 << 10);
    assert_eq!(a["thp_bytes"], Value::Null);
    let r = pgtool(&["--root", root, "mem", "--by", "memcg"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("kpagecount"), "{}", r.stderr);
}

#[test]
fn table_has_a_total_line_and_csv_a_total_record() {
    let t = tree(true);
    let root = t.path().to_str().expect("utf8");
    let r = pgtool(&["--root", root, "mem"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let last = r.stdout.lines().last().expect("line");
    assert!(last.starts_with("total (2 processes)"), "{}", r.stdout);
    assert!(
        r.stdout.lines().next().expect("header").starts_with("pid"),
        "{}",
        r.stdout
    );
    let r = pgtool(&["--root", root, "mem", "--csv"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("pid,comm,user,uid,rss_bytes,pss_bytes"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 4, "header, 2 rows, total: {}", r.stdout);
    assert!(lines[3].ends_with(",true"), "{}", lines[3]);
}

#[test]
fn prometheus_labels_are_bounded_unless_asked() {
    let t = tree(true);
    let root = t.path().to_str().expect("utf8");
    let out = tempfile::tempdir().expect("tmp");
    let prom = out.path().join("mem.prom");
    let p = prom.to_str().expect("utf8");
    let r = pgtool(&["--root", root, "mem", "--prometheus", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(text.contains("# TYPE pgtool_mem_pss_bytes gauge"), "{text}");
    assert!(
        text.contains("pgtool_mem_pss_bytes{comm=\"alpha\",user=\"1000\"} 17749"),
        "{text}"
    );
    assert!(!text.contains("pid="), "{text}");
    assert!(!text.contains("_total"), "{text}");
    std::fs::remove_file(&prom).expect("rm");
    let r = pgtool(&["--root", root, "mem", "--prometheus", p, "--labels", "pid"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(text.contains("pid=\"100\""), "{text}");
    let r = pgtool(&["--root", root, "mem", "--by", "library", "--prometheus", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(
        text.contains("pgtool_mem_rss_bytes{library=\"/lib/libshared.so\"} 12288"),
        "{text}"
    );
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).expect("open"))
        .output()
    {
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("note: promtool not installed; lint not run");
    }
}

#[test]
fn unprivileged_gets_smaps_rollup_and_says_so() {
    if common::is_root() {
        let tmp = tempfile::tempdir().expect("tmp");
        let r = common::pgtool_as_nobody(tmp.path(), &["mem", "--pid", "self", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        check_unprivileged(&r);
        let r = common::pgtool_as_nobody(tmp.path(), &["mem", "--by", "library"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("needs root"), "{}", r.stderr);
    } else {
        let r = pgtool(&["mem", "--pid", "self", "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        check_unprivileged(&r);
    }
}

fn check_unprivileged(r: &common::Run) {
    assert!(r.stderr.contains("PFNs are hidden"), "{}", r.stderr);
    let rows = json_lines(&r.stdout);
    assert_eq!(rows[0]["source"], "smaps_rollup", "{:?}", rows[0]);
    assert!(rows[0]["rss_bytes"].as_u64() > Some(0));
    assert_eq!(rows[0]["zero_page_bytes"], Value::Null);
}
