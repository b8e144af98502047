//! v2p over a 1 GiB range in bounded memory (issue 19): under `ulimit -v 64 MiB` every format
//! must stream. Holding the rows fails there: the old table kept every row (1.1 GB for 1 GiB)
//! and aborted on the first allocation past the limit; 262,144 JSON records alone are over
//! 150 MB.

mod common;

use common::*;
use std::io::Read;
use std::process::{Command, Stdio};

const GIB: u64 = 1 << 30;
const PAGES: u64 = GIB / 4096;
/// Touched at the start of the mapping, so some pages are present (kpage files are read).
const TOUCH: u64 = 32 << 20;
/// The address-space limit for pgtool: far below what holding 262,144 rows takes.
const ULIMIT_V_KIB: u64 = 64 << 10;

#[test]
fn child_gib() {
    if !in_child() {
        return;
    }
    // SAFETY: a fresh anonymous mapping, touched within its length; the process exits
    // without unmapping it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            GIB as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let b = p as *mut u8;
        for off in (0..TOUCH as usize).step_by(4096) {
            *b.add(off) = 1;
        }
        tell(&format!("ADDR gib {:#x}", p as u64));
    }
    tell("READY");
    wait_for_eof_and_exit();
}

/// Run pgtool under the limit, counting stdout's lines as they come (never holding them).
fn lines_under_ulimit(args: &[String]) -> (i32, u64, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ULIMIT_V_KIB} && exec \"$0\" \"$@\""))
        .arg(pgtool_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.by_ref().take(1 << 16).read_to_string(&mut s);
        s
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
    let status = child.wait().expect("wait");
    let stderr = t.join().unwrap_or_default();
    (status.code().unwrap_or(-1), lines, stderr)
}

#[test]
fn one_gib_range_streams_under_ulimit_v_in_every_format() {
    if in_child() {
        return;
    }
    let child = Child::spawn("child_gib");
    let spec = format!("{:#x}+1G", child.addr("gib"));
    let pid = child.pid.to_string();
    for (fmt, want) in [
        ("--json", Some(PAGES)),
        ("--csv", Some(PAGES + 1)),
        ("--table", None),
    ] {
        let mut args = vec!["v2p".to_string(), pid.clone(), spec.clone()];
        if fmt != "--table" {
            args.push(fmt.to_string());
        }
        let (code, lines, stderr) = lines_under_ulimit(&args);
        assert_eq!(code, 0, "{fmt}: {stderr}");
        assert!(!stderr.contains("memory allocation"), "{fmt}: {stderr}");
        match want {
            Some(n) => assert_eq!(lines, n, "{fmt}"),
            // a header, the column names, and at least the untouched tail as one row
            None => assert!((3..PAGES).contains(&lines), "table: {lines} lines"),
        }
    }
}
