//! `pgtool idle wss --method refs` on this machine's live kernel: a child process with a known,
//! changing working set (4 KiB pages, no THP) must be reported within 5% per interval.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PAGES: usize = 2048;

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip_or_panic(why: &str) {
    common::skip(why);
}

/// The child: only acts when started by `wss_refs_tracks_a_changing_working_set`.
#[test]
fn ws_child() {
    let Some(ctl) = std::env::var_os("PGTOOL_WS_CHILD") else {
        return;
    };
    let ctl = std::path::PathBuf::from(ctl);
    let len = PAGES * 4096;
    // SAFETY: a fresh private anonymous mapping, used only through this pointer.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    // SAFETY: advice on our own mapping; NOHUGEPAGE also keeps it a VMA of its own.
    unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
    let p = base.cast::<u8>();
    for i in 0..PAGES {
        // SAFETY: i * 4096 < len.
        unsafe { p.add(i * 4096).write_volatile(1) };
    }
    println!("WS {:x} {PAGES}", base as usize);
    let mut applied = u32::MAX;
    loop {
        let pct: u32 = std::fs::read_to_string(&ctl)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if pct == 999 {
            return;
        }
        for i in 0..PAGES * pct as usize / 100 {
            // SAFETY: as above.
            unsafe {
                let q = p.add(i * 4096);
                q.write_volatile(q.read_volatile().wrapping_add(1));
            }
        }
        if pct != applied {
            applied = pct;
            let _ = std::fs::write(ctl.with_extension("ack"), pct.to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(path: &Path, want: &str) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(path).is_ok_and(|s| s == want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn wss_refs_tracks_a_changing_working_set() {
    if std::env::var_os("PGTOOL_WS_CHILD").is_some() {
        return;
    }
    if !Path::new("/proc/self/clear_refs").exists() {
        skip_or_panic("/proc/self/clear_refs missing (kernel without CONFIG_PROC_PAGE_MONITOR)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = dir.path().join("ctl");
    std::fs::write(&ctl, "0").expect("write ctl");
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", "ws_child", "--nocapture", "--test-threads=1"])
        .env("PGTOOL_WS_CHILD", &ctl)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let pid = child.id();
    // Kill the child whatever happens below (a failed assert must not leave it spinning).
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = child.stdout.take().expect("stdout");
    let mut child = Reap(child);
    let mut addr = None;
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        let line = line.expect("read child");
        // libtest may print "test ws_child ... " on the same line first
        if let Some(rest) = line.split("WS ").nth(1) {
            addr = rest.split_whitespace().next().map(|a| format!("0x{a}"));
            break;
        }
    }
    // keep draining the child's stdout so its last words do not hit a closed pipe
    std::thread::spawn(move || lines.for_each(drop));
    let addr = addr.expect("child did not report its region");
    let mut failures = Vec::new();
    for pct in [30usize, 80, 5, 0] {
        std::fs::write(&ctl, pct.to_string()).expect("write ctl");
        assert!(
            wait_for(&ctl.with_extension("ack"), &pct.to_string()),
            "child did not ack {pct}"
        );
        std::thread::sleep(Duration::from_millis(100));
        let o = Command::new(env!("CARGO_BIN_EXE_pgtool"))
            .args(["idle", "wss", "--pid", &pid.to_string(), "--method", "refs"])
            .args(["--interval", "500ms", "--count", "2", "--csv"])
            .output()
            .expect("run pgtool");
        assert!(
            o.status.success(),
            "pgtool failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        let want = PAGES * pct / 100;
        for iv in ["1", "2"] {
            let row: Vec<&str> = text
                .lines()
                .map(|l| l.split(',').collect::<Vec<_>>())
                .find(|c| c.len() >= 10 && c[0] == iv && c[2] == addr)
                .unwrap_or_else(|| panic!("no row for {addr} interval {iv} in:\n{text}"));
            let pages: usize = row[6].parse().expect("pages");
            let got: usize = row[7].parse().expect("accessed_pages");
            eprintln!("{pct}%: interval {iv}: {got} of {pages} pages accessed, want {want}");
            assert_eq!(pages, PAGES, "resident pages of the region");
            if got.abs_diff(want) * 100 > want * 5 {
                failures.push(format!("{pct}% interval {iv}: got {got}, want {want}"));
            }
        }
    }
    std::fs::write(&ctl, "999").expect("write ctl");
    let _ = child.0.wait();
    assert!(failures.is_empty(), "outside 5%: {failures:?}");
}
