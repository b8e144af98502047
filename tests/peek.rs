//! `pgtool peek` on a live child (forked with known bytes at known addresses).

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
fn json_has_the_pagemap_facts_of_each_page() {
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["hex"], "4143524f53537c504742");
    let pages = v["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["vaddr"], c.base as u64);
    assert_eq!(pages[1]["vaddr"], (c.base + c.ps) as u64);
    for p in pages {
        assert_eq!(p["present"], true, "{p}");
        if unsafe { libc::geteuid() } == 0 {
            assert!(p["pfn"].as_u64().is_some_and(|f| f > 0), "{p}");
        }
    }
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
    // A read that starts mapped and runs into the unmapped page names the first bad address.
    let out = peek(&[
        c.pid.to_string(),
        format!("{:#x}", c.base + 2 * c.ps - 8),
        "16".into(),
    ]);
    assert_ne!(out.status.code(), Some(0));
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
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var_os("CI").is_some() {
            panic!("needs root to run pgtool as another user");
        }
        eprintln!("skipping: needs root to run pgtool as another user");
        return;
    }
    let c = spawn();
    let d = tempfile::tempdir().expect("tmp");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = d.path().join("pgtool");
    std::fs::copy(BIN, &bin).expect("copy");
    let out = Command::new(&bin)
        .args(["peek", &c.pid.to_string(), &format!("{:#x}", c.base)])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("/proc/{}/", c.pid)) && err.contains("ptrace"),
        "{err}"
    );
}
