//! `pgtool slab`: slabinfo parser (fixture, fuzz), trends, and live sampling on this machine.

use pgtool::slab::{Cache, parse_alloc_calls, parse_slabinfo, trends};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pgtool");

#[test]
fn parses_a_real_slabinfo() {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slab/host-6.18-slabinfo.txt");
    let text = std::fs::read_to_string(&p).expect("fixture");
    let caches = parse_slabinfo(&text, &p).expect("parse");
    assert_eq!(caches.len(), text.lines().count() - 2);
    for c in &caches {
        assert!(c.active_objs <= c.num_objs, "{c:?}");
        assert!(c.objsize > 0 && c.pagesperslab > 0, "{c:?}");
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
}

fn c(name: &str, active: u64) -> Cache {
    Cache {
        name: name.into(),
        active_objs: active,
        num_objs: active + 10,
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
}

#[test]
fn alloc_calls_parse() {
    let t = "     12 alloc_pipe_info+0x2e/0x1b0 age=1/2/3 pid=1-5 cpus=0\n    400 __d_alloc+0x24/0x1d0 age=4 pid=7\n";
    let a = parse_alloc_calls(t);
    assert_eq!(a[0].count, 400);
    assert_eq!(a[0].site, "__d_alloc+0x24/0x1d0");
    assert_eq!(a[1].detail, "age=1/2/3 pid=1-5 cpus=0");
}

proptest! {
    #[test]
    fn slabinfo_parser_never_panics(s in ".{0,400}") {
        let _ = parse_slabinfo(&s, Path::new("x"));
        let _ = parse_alloc_calls(&s);
    }
    #[test]
    fn slabinfo_like_lines_never_panic(fields in proptest::collection::vec("[0-9a-z:-]{0,8}", 0..20)) {
        let _ = parse_slabinfo(&fields.join(" "), Path::new("x"));
    }
}

/// Live: sample this machine's slab caches (root for /proc/slabinfo; sysfs otherwise) while
/// this process leaks pipes, and check the figures are coherent.
#[test]
fn live_sampling() {
    if !Path::new("/proc/slabinfo").exists() && !Path::new("/sys/kernel/slab").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("no /proc/slabinfo and no /sys/kernel/slab");
        }
        eprintln!("skipping: no slab interfaces");
        return;
    }
    if std::fs::File::open("/proc/slabinfo").is_err() && !nix::unistd::geteuid().is_root() {
        // Both /proc/slabinfo and /sys/kernel/slab/*/objects are root-only.
        let out = Command::new(BIN)
            .args(["slab", "--count", "1"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs root"), "{err}");
        eprintln!("skipping live sampling: not root (checked the needs-root error instead)");
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let leaker = std::thread::spawn(move || {
        let mut fds = Vec::new();
        while !st.load(std::sync::atomic::Ordering::Relaxed) && fds.len() < 20000 {
            if let Ok((a, b)) = nix::unistd::pipe() {
                fds.push((a, b));
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        fds.len()
    });
    let out = Command::new(BIN)
        .args([
            "slab",
            "--interval",
            "0.3",
            "--count",
            "3",
            "--top",
            "0",
            "--json",
        ])
        .output()
        .expect("run");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let leaked = leaker.join().expect("leaker");
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
        assert!(r["active_objs"].as_u64() <= r["num_objs"].as_u64(), "{r}");
        assert_eq!(r["active_samples"].as_array().map(Vec::len), Some(3));
    }
    let suspects: Vec<&str> = rows
        .iter()
        .filter(|r| r["suspect"] == true)
        .filter_map(|r| r["name"].as_str())
        .collect();
    eprintln!("leaked {leaked} pipes; suspects: {suspects:?}");
}
