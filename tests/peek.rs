//! `pgtool peek` on a live child (forked with known bytes at known addresses).

mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pgtool");

struct Child {
    pid: i32,
    base: usize,
    ps: usize,
}

impl Drop for Child {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Four pages: page 0 and 1 hold a known pattern, page 2 is PROT_NONE (a guard), page 3 is
/// unmapped. The child just sleeps on the same memory image.
fn spawn() -> Child {
    let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4 * ps,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let base = p as usize;
        let s = std::slice::from_raw_parts_mut(p as *mut u8, 2 * ps);
        for (i, b) in s.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        s[ps - 5..ps + 5].copy_from_slice(b"ACROSS|PGB");
        assert_eq!(
            libc::mprotect((base + 2 * ps) as *mut _, ps, libc::PROT_NONE),
            0
        );
        assert_eq!(libc::munmap((base + 3 * ps) as *mut _, ps), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            loop {
                libc::pause();
            }
        }
        Child { pid, base, ps }
    }
}

fn peek(args: &[String]) -> std::process::Output {
    Command::new(BIN)
        .arg("peek")
        .args(args)
        .output()
        .expect("run pgtool")
}

#[test]
fn reads_known_bytes_across_a_page_boundary() {
    let c = spawn();
    let addr = c.base + c.ps - 5;
    let out = peek(&[
        c.pid.to_string(),
        format!("{addr:#x}"),
        "10".into(),
        "--raw".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"ACROSS|PGB");

    let out = peek(&[c.pid.to_string(), format!("{:#x}", c.base), "32".into()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // bytes (i*7+3): 03 0a 11 18 ...
    assert!(
        text.starts_with(&format!("{:016x}  03 0a 11 18 1f 26 2d 34  3b 42", c.base)),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn json_has_one_record_per_page_with_its_bytes_and_pagemap_facts() {
    let c = spawn();
    let addr = c.base + c.ps - 5;
    let out = peek(&[
        c.pid.to_string(),
        format!("{addr:#x}"),
        "10".into(),
        "--json".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(pages.len(), 2);
    // "ACROSS|PGB": 5 bytes in the first page, 5 in the second
    assert_eq!(pages[0]["data_hex"], "4143524f53");
    assert_eq!(pages[1]["data_hex"], "537c504742");
    assert_eq!(pages[0]["vaddr"], c.base as u64);
    assert_eq!(pages[0]["addr"], addr as u64);
    assert_eq!(pages[0]["len"], 5);
    assert_eq!(pages[1]["vaddr"], (c.base + c.ps) as u64);
    assert_eq!(pages[1]["addr"], (c.base + c.ps) as u64);
    for p in &pages {
        assert_eq!(p["present"], true, "{p}");
        assert_eq!(p["pid"], c.pid);
        let raw = p["pagemap_raw"].as_u64().expect("raw");
        assert_eq!(p["pagemap_raw_hex"], format!("{raw:#x}"), "{p}");
        if unsafe { libc::geteuid() } == 0 {
            assert!(p["pfn"].as_u64().is_some_and(|f| f > 0), "{p}");
        }
    }
    // CSV: the same records, header = the JSON keys, addresses in hex
    let out = peek(&[c.pid.to_string(), format!("{addr:#x}+10"), "--csv".into()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "pid,vaddr,addr,len,method,data_hex,present,swapped,pfn,file_shared,exclusive,soft_dirty,pagemap_raw,pagemap_raw_hex"
        )
    );
    let first = lines.next().expect("row");
    assert!(
        first.starts_with(&format!("{},{:#x},{addr:#x},5,", c.pid, c.base)),
        "{first}"
    );
    assert_eq!(lines.count(), 1);
}

#[test]
fn stdout_policy_full_disk_and_closed_pipe() {
    use std::process::Stdio;
    let c = spawn();
    for extra in [None, Some("--json"), Some("--raw")] {
        let mut cmd = Command::new(BIN);
        cmd.args(["peek", &c.pid.to_string(), &format!("{:#x}", c.base), "4K"]);
        cmd.args(extra);
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = cmd.stdout(full).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("pgtool: <stdout>:"), "{err}");
        // a closed pipe: quiet success
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = Command::new(BIN);
        cmd.args(["peek", &c.pid.to_string(), &format!("{:#x}", c.base), "4K"]);
        cmd.args(extra);
        let out = cmd
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{extra:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn self_and_sizes_follow_the_grammar() {
    // `self` is pgtool itself: its own stack is always mapped, so read where the kernel
    // says it is (from our own maps we cannot know pgtool's, so only the error path for an
    // unmapped address, with `self`, and a size as LEN)
    let out = peek(&["self".into(), "0x1000".into(), "4K".into()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address 0x1000 is not mapped in"), "{err}");
    let c = spawn();
    let out = peek(&[
        c.pid.to_string(),
        format!("{}", c.base),
        "1K".into(),
        "--raw".into(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 1024);
    assert_eq!(&out.stdout[..4], &[0x03, 0x0a, 0x11, 0x18]);
}

#[test]
fn unmapped_address_is_exit_1_with_a_clear_message() {
    let c = spawn();
    let addr = c.base + 3 * c.ps + 16;
    let out = peek(&[c.pid.to_string(), format!("{addr:#x}"), "8".into()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("address {addr:#x} is not mapped in {}", c.pid)),
        "{err}"
    );
    // A read that starts mapped and runs into the guard page names the first bad address:
    // the guard page's first byte, not the start of the read.
    let out = peek(&[
        c.pid.to_string(),
        format!("{:#x}", c.base + 2 * c.ps - 8),
        "16".into(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first_bad = format!("address {:#x} of {}", c.base + 2 * c.ps, c.pid);
    assert!(err.contains(&first_bad), "{err}");
    assert!(
        !err.contains(&format!("{:#x}", c.base + 2 * c.ps - 8)),
        "{err}"
    );
    // the same with ADDR+LEN, and a read running from the guard into the unmapped page
    let out = peek(&[
        c.pid.to_string(),
        format!("{:#x}+16", c.base + 2 * c.ps - 8),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&first_bad));
    let out = peek(&[
        c.pid.to_string(),
        format!("{:#x}", c.base + 3 * c.ps - 8),
        "16".into(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "address {:#x} of {}",
            c.base + 3 * c.ps - 8,
            c.pid
        )),
        "{err}"
    );
}

#[test]
fn guard_page_is_named() {
    let c = spawn();
    let addr = c.base + 2 * c.ps;
    let out = peek(&[c.pid.to_string(), format!("{addr:#x}"), "8".into()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("guard page") && err.contains("---p"), "{err}");
}

#[test]
fn missing_process_is_exit_1() {
    let out = peek(&["999999999".into(), "0x1000".into()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Another user without ptrace access: a clear permission error naming the file and ptrace.
#[test]
fn ptrace_denial_is_explained() {
    if unsafe { libc::geteuid() } != 0 {
        common::skip("needs root to run pgtool as another user");
        return;
    }
    let c = spawn();
    let d = tempfile::tempdir().expect("tmp");
    let pid = c.pid.to_string();
    let out = common::pgtool_as_nobody(d.path(), &["peek", &pid, &format!("{:#x}", c.base)]);
    assert_eq!(out.code, 2);
    let err = &out.stderr;
    assert!(
        err.contains(&format!("/proc/{}/", c.pid)) && err.contains("ptrace"),
        "{err}"
    );
}
