//! `pgtool slab`: slabinfo parser (real file, fuzzing with cache-line generators and
//! mutations: executions 3 properties x `CASES`), trends, the fixture `--root` tree, and a live
//! leak: a workload that grows the `filp` cache must make it a leak suspect.

mod common;

use pgtool::slab::{Cache, parse_alloc_calls, parse_slabinfo, trends};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pgtool");
const CASES: u32 = 2000;

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip(test: &str, reason: &str) {
    common::skip_or_fail(test, reason);
}

fn fixture_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slab/root")
}

#[test]
fn parses_a_real_slabinfo() {
    for p in [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slab/host-6.18-slabinfo.txt"),
        fixture_root().join("proc/slabinfo"),
    ] {
        let text = std::fs::read_to_string(&p).expect("fixture");
        let caches = parse_slabinfo(&text, &p).expect("parse");
        assert_eq!(caches.len(), text.lines().count() - 2);
        for c in &caches {
            assert!(c.active_objs <= c.num_objs, "{c:?}");
            assert!(c.objsize > 0 && c.pagesperslab > 0, "{c:?}");
        }
    }
}

#[test]
fn bad_line_is_an_error_naming_the_line() {
    let p = Path::new("slabinfo");
    let e = parse_slabinfo(
        "slabinfo - version: 2.1\nfoo 1 2 x 4 5 : tunables 0 0 0 : slabdata 1 1 0\n",
        p,
    )
    .expect_err("bad");
    assert!(e.to_string().contains("slabinfo:2"), "{e}");
    let e = parse_slabinfo("foo 1 2 3 4 5\n", p).expect_err("no header");
    assert!(e.to_string().contains("not a slabinfo file"), "{e}");
}

fn c(name: &str, active: u64) -> Cache {
    Cache {
        name: name.into(),
        active_objs: active,
        num_objs: active.saturating_add(10),
        objsize: 64,
        ..Cache::default()
    }
}

#[test]
fn suspects_grow_in_every_sample() {
    let s = vec![
        vec![c("a", 10), c("b", 10), c("c", 10)],
        vec![c("a", 11), c("b", 12), c("c", 10)],
        vec![c("a", 12), c("b", 11), c("c", 30)],
    ];
    let t = trends(&s);
    let get = |n: &str| t.iter().find(|x| x.last.name == n).expect(n);
    assert!(get("a").suspect);
    assert!(!get("b").suspect);
    assert!(
        !get("c").suspect,
        "flat then jump is not growth in every sample"
    );
    assert_eq!(get("c").growth, 20);
    assert!(!trends(&s[..1])[0].suspect, "one sample proves nothing");
    let huge = trends(&[vec![c("h", 0)], vec![c("h", u64::MAX)]]);
    assert_eq!(huge[0].growth, i64::MAX, "growth saturates");
}

#[test]
fn alloc_calls_parse() {
    let t = "     12 alloc_pipe_info+0x2e/0x1b0 age=1/2/3 pid=1-5 cpus=0\n    400 __d_alloc+0x24/0x1d0 age=4 pid=7\n        d_alloc+0x10/0x80\n        d_alloc_parallel+0x50/0x3e0\n";
    let a = parse_alloc_calls(t);
    assert_eq!(a[0].count, 400);
    assert_eq!(a[0].site, "__d_alloc+0x24/0x1d0");
    assert_eq!(
        a[0].stack,
        ["d_alloc+0x10/0x80", "d_alloc_parallel+0x50/0x3e0"]
    );
    assert_eq!(a[1].detail, "age=1/2/3 pid=1-5 cpus=0");
    assert!(a[1].stack.is_empty());
}

/// The fixture tree: JSON and CSV carry the same fields; figures are the slabinfo line's.
#[test]
fn fixture_root_listing() {
    let root = fixture_root();
    let text = std::fs::read_to_string(root.join("proc/slabinfo")).expect("slabinfo");
    let filp: Vec<u64> = text
        .lines()
        .find(|l| l.starts_with("filp "))
        .expect("filp line")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // active num objsize perslab pagesperslab limit batch shared active_slabs num_slabs avail
    let run = |fmt: &str| {
        let o = Command::new(BIN)
            .arg("--root")
            .arg(&root)
            .args(["slab", "--count", "1", "--top", "0", fmt])
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).expect("utf8")
    };
    let json = run("--json");
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let f = rows
        .iter()
        .find(|r| r["cache"] == "filp")
        .expect("filp row");
    let page = pgtool::page_size();
    assert_eq!(f["active_objs"].as_u64(), Some(filp[0]));
    assert_eq!(f["num_objs"].as_u64(), Some(filp[1]));
    assert_eq!(f["object_size_bytes"].as_u64(), Some(filp[2]));
    assert_eq!(f["size_bytes"].as_u64(), Some(filp[9] * filp[4] * page));
    let keys: Vec<String> = rows[0]
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    let csv = run("--csv");
    assert_eq!(csv.lines().next(), Some(keys.join(",").as_str()));
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let table = run("--sort=size");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let calls = Command::new(BIN)
        .arg("--root")
        .arg(&root)
        .args(["slab", "--alloc-calls", "filp", "--json"])
        .output()
        .expect("run");
    let calls = String::from_utf8_lossy(&calls.stdout);
    let first: serde_json::Value =
        serde_json::from_str(calls.lines().next().expect("a call")).expect("json");
    assert_eq!(first["count"], 1500);
    assert_eq!(first["site"], "alloc_empty_file+0x5b/0x110");
}

#[derive(Debug, Clone)]
struct Line {
    name: String,
    f: [u64; 8],
    text: String,
}

/// A slabinfo 2.1 cache line.
fn cache_line() -> impl Strategy<Value = Line> {
    (
        "[a-z][a-z0-9_:.-]{0,20}",
        (0u64..1 << 24, 0u64..1 << 10),
        (8u64..1 << 16, 1u64..512, 1u64..64),
        (0u64..1 << 20, 0u64..1 << 20),
    )
        .prop_map(|(name, (active, extra), (size, per, pages), (aslabs, slabs))| {
            let f = [active, active + extra, size, per, pages, 0, aslabs, slabs];
            let text = format!(
                "{name:<17} {:6} {:6} {:4} {:4} {:4} : tunables {:4} {:4} {:4} : slabdata {:6} {:6} {:6}",
                f[0], f[1], f[2], f[3], f[4], 0, 0, 0, f[6], f[7], 0
            );
            Line { name, f, text }
        })
}

const HEADER: &str = "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated slabinfo files parse back field by field.
    #[test]
    fn slabinfo_round_trip(lines in prop::collection::vec(cache_line(), 0..30)) {
        let text = format!("{HEADER}{}", lines.iter().map(|l| format!("{}\n", l.text)).collect::<String>());
        let caches = parse_slabinfo(&text, Path::new("x")).expect("valid");
        prop_assert_eq!(caches.len(), lines.len());
        for (c, l) in caches.iter().zip(&lines) {
            prop_assert_eq!(&c.name, &l.name);
            prop_assert_eq!(
                [c.active_objs, c.num_objs, c.objsize, c.objperslab, c.pagesperslab, c.num_slabs],
                [l.f[0], l.f[1], l.f[2], l.f[3], l.f[4], l.f[7]]
            );
        }
    }

    /// A numeric field replaced by a non-number is an error naming its line.
    #[test]
    fn a_bad_number_names_its_line(
        lines in prop::collection::vec(cache_line(), 1..20),
        which in any::<prop::sample::Index>(),
        field in 1usize..6,
        bad in prop_oneof!["[a-z]{1,4}", "-[0-9]{1,3}", "[1-9][0-9]{20,24}", "0x[0-9]{1,3}"],
    ) {
        let i = which.index(lines.len());
        let mut body = String::new();
        for (k, l) in lines.iter().enumerate() {
            if k == i {
                let mut w: Vec<String> = l.text.split_whitespace().map(str::to_owned).collect();
                w[field] = bad.clone();
                body += &w.join(" ");
            } else {
                body += &l.text;
            }
            body.push('\n');
        }
        let e = parse_slabinfo(&format!("{HEADER}{body}"), Path::new("x")).expect_err("bad").to_string();
        prop_assert!(e.starts_with(&format!("x:{}: ", i + 3)), "{e}");
    }

    /// Mutated files: never a panic; parsed caches keep active <= num where the text did.
    #[test]
    fn mutated_slabinfo_never_panics(
        lines in prop::collection::vec(cache_line(), 1..15),
        muts in prop::collection::vec((0u8..4, any::<usize>(), any::<char>()), 1..5),
    ) {
        let mut t: Vec<char> = format!("{HEADER}{}", lines.iter().map(|l| format!("{}\n", l.text)).collect::<String>()).chars().collect();
        for (kind, pos, ch) in muts {
            let p = pos % (t.len() + 1);
            match kind {
                0 => { if p < t.len() { t.remove(p); } }
                1 => t.insert(p, ch),
                2 => t.truncate(p),
                _ => t.insert(p, '\n'),
            }
        }
        let text: String = t.into_iter().collect();
        if let Ok(caches) = parse_slabinfo(&text, Path::new("x")) {
            prop_assert!(caches.len() <= text.lines().count());
        }
        let _ = parse_alloc_calls(&text);
    }
}

/// Stops the workload and closes its pipes even when the test fails half-way.
struct Leaker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Leaker {
    /// Open pipes at a steady pace (each pipe is 2 `filp` objects, a pipe_inode_info and a
    /// buffer array), up to `max` pipes, holding them until stopped.
    fn start(max: usize, pace: std::time::Duration) -> Leaker {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut fds = Vec::new();
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                if fds.len() < max
                    && let Ok(p) = nix::unistd::pipe()
                {
                    fds.push(p);
                }
                std::thread::sleep(pace);
            }
            fds.len()
        });
        Leaker {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(&mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Leaker {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Live: while this process opens pipes at a steady pace, `pgtool slab` must name `filp` (two
/// objects per pipe) a leak suspect, with a growth of at least the pipes opened meanwhile.
#[test]
fn live_leak_makes_filp_a_suspect() {
    let name = "live_leak_makes_filp_a_suspect";
    if std::fs::File::open("/proc/slabinfo").is_err() {
        if nix::unistd::geteuid().is_root() || Path::new("/proc/slabinfo").exists() {
            // Not root: both sources are root-only; the error must say so.
            let out = Command::new(BIN)
                .args(["slab", "--count", "1"])
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("needs root"), "{err}");
        }
        return skip(name, "/proc/slabinfo is not readable (needs root)");
    }
    let text = std::fs::read_to_string("/proc/slabinfo").expect("slabinfo");
    if !text.lines().any(|l| l.starts_with("filp ")) {
        return skip(
            name,
            "no filp cache in /proc/slabinfo (merged with another cache?)",
        );
    }
    // Leave room below RLIMIT_NOFILE for the test harness (two fds per pipe).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let max = (lim.rlim_cur.saturating_sub(256) / 2) as usize;
    let mut leak = Leaker::start(max.min(9000), std::time::Duration::from_micros(300));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = Command::new(BIN)
        .args([
            "slab",
            "--interval",
            "400ms",
            "--count",
            "4",
            "--top",
            "0",
            "--json",
        ])
        .output()
        .expect("run");
    let leaked = leak.finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(rows.len() > 20, "only {} caches", rows.len());
    for r in &rows {
        assert_eq!(r["active_samples"].as_array().map(Vec::len), Some(4));
        assert_eq!(r["source"], "slabinfo");
    }
    let suspects: Vec<&str> = rows
        .iter()
        .filter(|r| r["suspect"] == true)
        .filter_map(|r| r["cache"].as_str())
        .collect();
    let filp = rows
        .iter()
        .find(|r| r["cache"] == "filp")
        .expect("filp row");
    eprintln!("opened {leaked} pipes; filp: {filp}; suspects: {suspects:?}");
    assert!(leaked > 1000, "the workload opened only {leaked} pipes");
    assert!(
        suspects.contains(&"filp"),
        "filp is not a suspect after {leaked} pipes: {filp}"
    );
    // Two files per pipe; the window (1.2 s) covers about three quarters of the workload's run
    // (1.6 s), so about 1.5 objects per pipe: ask for at least one.
    let growth = filp["growth"].as_i64().expect("growth");
    assert!(
        growth >= leaked as i64,
        "filp grew by {growth} objects for {leaked} pipes"
    );
}
