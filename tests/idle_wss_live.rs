//! `pgtool idle wss` on the live system (refs method; needs root for clear_refs of another
//! process): processes without user memory are errors, a mapping whose file name is not UTF-8
//! is sampled, and the Prometheus textfile is lint-clean (promtool) with one set of series
//! across samples.

mod common;

use common::{Child, in_child, pgtool, tell, wait_for_eof_and_exit};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn live_refs_ok() -> bool {
    if !Path::new("/proc/self/clear_refs").exists() {
        return !common::skip("/proc/self/clear_refs missing (CONFIG_PROC_PAGE_MONITOR)");
    }
    if !common::is_root() {
        return !common::skip("clear_refs of another process needs root");
    }
    true
}

/// The child: maps a file whose name is not UTF-8 and touches it, then waits.
#[test]
fn child_maps_a_non_utf8_file() {
    if !in_child() {
        return;
    }
    let dir = std::env::var_os("PGTOOL_DIR").expect("dir");
    let name = std::ffi::OsStr::from_bytes(b"pg\xff\xfe-map.bin");
    let path = Path::new(&dir).join(name);
    std::fs::write(&path, vec![7u8; 16 * 4096]).expect("write");
    let f = std::fs::File::open(&path).expect("open");
    // SAFETY: a private read-only mapping of a file we just wrote; only read below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            16 * 4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    let mut sum = 0u64;
    for i in 0..16 {
        // SAFETY: inside the mapping.
        sum += u64::from(unsafe { p.cast::<u8>().add(i * 4096).read_volatile() });
    }
    tell(&format!("ADDR map {:#x}", p as usize));
    tell(&format!("PATH sum {sum}"));
    tell("READY");
    wait_for_eof_and_exit();
}

#[test]
fn non_utf8_mapping_names_are_sampled_and_labelled() {
    if in_child() || !live_refs_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().into_owned();
    let c = Child::spawn_with("child_maps_a_non_utf8_file", &[("PGTOOL_DIR", &d)]);
    let pid = c.pid.to_string();
    let prom = dir.path().join("wss.prom");
    let prom_s = prom.to_string_lossy().into_owned();
    let r = pgtool(&[
        "idle",
        "wss",
        "--pid",
        &pid,
        "--method",
        "refs",
        "--interval",
        "100ms",
        "--count",
        "2",
        "--json",
        "--prometheus",
        &prom_s,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("clear_refs") && r.stderr.contains("referenced bits"),
        "refs says what it touches: {}",
        r.stderr
    );
    let rows = common::json_lines(&r.stdout);
    let want = format!("{}/pg\u{fffd}\u{fffd}-map.bin", d);
    let row = rows
        .iter()
        .find(|o| o["vma"]["start"].as_u64() == Some(c.addr("map")))
        .unwrap_or_else(|| panic!("no row for the mapping in {}", r.stdout));
    assert_eq!(row["vma"]["path"], want.as_str());
    assert_eq!(row["pages"], 16, "{row}");
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(text.contains(&format!("mapping=\"{want}\"")), "{text}");
    assert!(!text.contains("pid=") && !text.contains("vma="), "{text}");
    // --labels pid,vma asks for them
    let r = pgtool(&[
        "idle",
        "wss",
        "--pid",
        &pid,
        "--method",
        "refs",
        "--interval",
        "100ms",
        "--count",
        "1",
        "--csv",
        "--prometheus",
        &prom_s,
        "--labels",
        "pid,vma",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&prom).expect("textfile");
    assert!(
        text.contains(&format!("pid=\"{pid}\",vma=\"{:x}-", c.addr("map"))),
        "{text}"
    );
}

fn series(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .expect("textfile")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn textfile_is_lint_clean_and_keeps_its_series() {
    if in_child() || !live_refs_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().into_owned();
    let c = Child::spawn_with("child_maps_a_non_utf8_file", &[("PGTOOL_DIR", &d)]);
    let pid = c.pid.to_string();
    let mut sets = Vec::new();
    for i in 0..2 {
        let p = dir.path().join(format!("s{i}.prom"));
        let r = pgtool(&[
            "idle",
            "wss",
            "--pid",
            &pid,
            "--method",
            "refs",
            "--interval",
            "100ms",
            "--count",
            "1",
            "--csv",
            "--prometheus",
            &p.to_string_lossy(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        sets.push(series(&p));
        let meta = std::fs::metadata(&p).expect("stat");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o644
        );
    }
    assert!(!sets[0].is_empty());
    assert_eq!(
        sets[0], sets[1],
        "two samples of one workload: one set of series"
    );
    let Ok(out) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(dir.path().join("s1.prom")).expect("open"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
    else {
        common::skip("promtool not installed (Debian package prometheus)");
        return;
    };
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn processes_without_user_memory_and_empty_selections_are_errors() {
    if in_child() || !live_refs_ok() {
        return;
    }
    // A zombie: a child that exited and is not reaped yet.
    let mut z = Command::new("true").spawn().expect("spawn");
    let zpid = z.id().to_string();
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{zpid}/status"))
        .is_ok_and(|s| s.contains("State:\tZ"))
    {
        assert!(t.elapsed().as_secs() < 10, "child did not become a zombie");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let me = std::process::id().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["--pid", &zpid], 1, "is a zombie"),
        // kthreadd is PID 2 in the initial PID namespace
        (vec!["--pid", "2"], 1, "is a kernel thread"),
        (
            vec!["--pid", &me, "--vma", "nosuch"],
            1,
            "matches --vma \"nosuch\"",
        ),
        (vec!["--pid", &me, "--count", "0"], 2, "--count"),
        (
            vec!["--pid", "self", "--interval", "0s"],
            2,
            "bad duration \"0s\"",
        ),
        (
            vec!["--pid", "self", "--interval", "1.5x"],
            2,
            "bad duration \"1.5x\"",
        ),
        (vec!["--pid", "4194305"], 1, "no such process 4194305"),
    ];
    for (args, code, want) in cases {
        let mut v = vec!["idle", "wss", "--method", "refs"];
        v.extend(args.iter().copied());
        for (k, d) in [("--count", "1"), ("--interval", "10ms")] {
            if !args.contains(&k) {
                v.extend([k, d]);
            }
        }
        let r = pgtool(&v);
        let first = r.stderr.lines().next().unwrap_or("");
        if args == ["--pid", "2"] && !first.contains("kernel thread") {
            // in a PID namespace PID 2 may be anything: only check it is not a success
            assert_ne!(r.code, 0, "{args:?}: {first}");
            continue;
        }
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(first.contains(want), "{args:?}: {first}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let _ = z.wait();
    // `self` is a PID: pgtool samples itself
    let r = pgtool(&[
        "idle",
        "wss",
        "--pid",
        "self",
        "--method",
        "refs",
        "--count",
        "1",
        "--interval",
        "10ms",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[stack]"), "{}", r.stdout);
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0: the server closes when done).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn node_exporter_scrapes_the_textfile() {
    if in_child() || !live_refs_ok() {
        return;
    }
    let exe = "prometheus-node-exporter";
    if Command::new(exe).arg("--version").output().is_err() {
        common::skip("prometheus-node-exporter not installed (Debian package)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_string_lossy().into_owned();
    let c = Child::spawn_with("child_maps_a_non_utf8_file", &[("PGTOOL_DIR", &d)]);
    let textdir = dir.path().join("textfile");
    std::fs::create_dir(&textdir).expect("mkdir");
    let r = pgtool(&[
        "idle",
        "wss",
        "--pid",
        &c.pid.to_string(),
        "--method",
        "refs",
        "--interval",
        "100ms",
        "--count",
        "1",
        "--csv",
        "--prometheus",
        &textdir.join("wss.prom").to_string_lossy(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // a free port: bind 0, read it, release it for the exporter
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ne = Kill(
        Command::new(exe)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}",
                textdir.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node exporter"),
    );
    let t = std::time::Instant::now();
    let body = loop {
        if let Some(b) = http_get(port, "/metrics") {
            break b;
        }
        assert!(
            t.elapsed().as_secs() < 20,
            "node exporter did not answer on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(body.contains("\nnode_textfile_scrape_error 0\n"), "{body}");
    let want = "pg\u{fffd}\u{fffd}-map.bin\"}";
    let line = body
        .lines()
        .find(|l| l.starts_with("pgtool_wss_resident_pages{") && l.contains(want))
        .unwrap_or_else(|| panic!("no pgtool_wss series for the mapping in:\n{body}"));
    assert!(line.contains("comm=\"") && line.ends_with(" 16"), "{line}");
    for fam in ["accessed_pages", "idle_pages", "accessed_bytes"] {
        assert!(
            body.contains(&format!("# TYPE pgtool_wss_{fam} gauge")),
            "{fam}"
        );
    }
}
