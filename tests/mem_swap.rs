//! `pgtool mem` Swap and SwapPss against smaps_rollup (root). Without active swap the test
//! makes a 64 MiB swap file under the cargo target directory, swaps on, and removes it at the
//! end. A child pages out 8 MiB of its anonymous memory (MADV_PAGEOUT), then forks: every slot
//! is now referenced by two page tables (SwapPss = half); the fork then reads back 2 MiB, whose
//! slots only the parent references again (SwapPss = whole).

mod common;

use common::{is_root, json_lines, pgtool, skip};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

struct SwapFile(Option<PathBuf>);

impl Drop for SwapFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let c = CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
            // SAFETY: swapoff with a valid C string.
            unsafe { libc::swapoff(c.as_ptr()) };
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Active swap, or a swap file made and enabled here; `None` (with a reason) when impossible.
fn ensure_swap() -> Result<SwapFile, String> {
    let swaps = std::fs::read_to_string("/proc/swaps").map_err(|e| e.to_string())?;
    if swaps.lines().count() > 1 {
        return Ok(SwapFile(None));
    }
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mem-swap-{}", std::process::id()));
    std::fs::write(&path, vec![0u8; 64 << 20]).map_err(|e| e.to_string())?;
    let guard = SwapFile(Some(path.clone()));
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let out = std::process::Command::new("mkswap")
        .arg(&path)
        .output()
        .map_err(|e| format!("mkswap: {e}"))?;
    if !out.status.success() {
        return Err(format!("mkswap: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: swapon with a valid C string and no flags.
    if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
        return Err(format!("swapon: {}", std::io::Error::last_os_error()));
    }
    Ok(guard)
}

#[test]
fn swap_child() {
    if !common::in_child() {
        return;
    }
    let len = 8usize << 20;
    // SAFETY: a fresh private anonymous mapping, written and advised within its length.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
        .cast::<u8>();
        assert_ne!(p.cast(), libc::MAP_FAILED);
        for i in (0..len).step_by(4096) {
            *p.add(i) = (i >> 12) as u8 | 1; // not zero: no zero-page or same-filled shortcut
        }
        libc::madvise(p.cast(), len, libc::MADV_PAGEOUT);
        let b = libc::fork();
        if b == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut s = 0u8;
            for i in (0..2 << 20).step_by(4096) {
                s = s.wrapping_add(std::ptr::read_volatile(p.add(i)));
            }
            std::ptr::write_volatile(p.add(4 << 20), s);
            loop {
                libc::pause();
            }
        }
        common::tell(&format!("ADDR b {b:#x}"));
    }
    std::thread::sleep(std::time::Duration::from_millis(300)); // B reads its 2 MiB back
    common::tell("READY");
    common::wait_for_eof_and_exit();
}

fn rollup(pid: u32) -> HashMap<String, u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .expect("rollup")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((
                k.to_string(),
                v.trim().strip_suffix(" kB")?.trim().parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn swap_and_swap_pss_agree_with_smaps_rollup() {
    if !is_root() && skip("mem_swap: needs root (swapon, PFNs)") {
        return;
    }
    let _swap = match ensure_swap() {
        Ok(s) => s,
        Err(why) => {
            skip(&format!("mem_swap: no swap: {why}"));
            return;
        }
    };
    let a = common::Child::spawn("swap_child");
    let b = a.addr("b") as u32;
    let pids = [a.pid, b];
    for p in pids {
        // SAFETY: stopping our own children.
        unsafe { libc::kill(p as i32, libc::SIGSTOP) };
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let list = format!("{},{}", a.pid, b);
    let run = pgtool(&["mem", "--json", "--pid", &list]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json_lines(&run.stdout);
    let mut swapped = 0;
    for p in pids {
        let k = rollup(p);
        let row = rows.iter().find(|r| r["pid"] == p).expect("row");
        for (field, key) in [
            ("Swap", "swap_bytes"),
            ("SwapPss", "swap_pss_bytes"),
            ("Rss", "rss_bytes"),
        ] {
            assert_eq!(
                row[key].as_u64().map(|v| v >> 10),
                k.get(field).copied(),
                "pid {p} {field}: {row}"
            );
        }
        swapped += k.get("Swap").copied().unwrap_or(0);
    }
    for p in pids {
        // SAFETY: as above.
        unsafe { libc::kill(p as i32, libc::SIGCONT) };
    }
    if swapped == 0 {
        skip("mem_swap: MADV_PAGEOUT swapped nothing out (zswap rejecting? memcg limits?)");
        return;
    }
    assert!(
        run.stderr.contains("SwapPss"),
        "a note on how SwapPss is counted: {}",
        run.stderr
    );
}
