//! `pgtool idle heatmap` live, with the refs method (this host has no page_idle bitmap; the
//! idle method is tested in the qemu kernel): a 64 MiB buffer whose first half is touched all
//! the time and whose second half never after the first touch. The first half is its own VMA
//! (MADV_NOHUGEPAGE changes its flags), because the refs method resolves one VMA.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const LEN: usize = 64 << 20;

#[test]
fn refs_heatmap_hot_cells_are_exactly_the_hot_half() {
    if !common::is_root() {
        common::skip("needs root (pagemap PFNs, clear_refs of a process)");
        return;
    }
    // SAFETY: a private anonymous mapping owned by this test, unmapped at the end.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    let addr = base as usize;
    // SAFETY: the range is the mapping above.
    unsafe {
        assert_eq!(libc::madvise(base, LEN / 2, libc::MADV_NOHUGEPAGE), 0);
        for off in (0..LEN).step_by(4096) {
            (base as *mut u8).add(off).write_volatile(1);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let toucher = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            for off in (0..LEN / 2).step_by(4096) {
                // SAFETY: inside the mapping, which outlives this thread (joined before munmap).
                unsafe { ((addr + off) as *mut u8).write_volatile(2) };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let pid = std::process::id().to_string();
    let r = common::pgtool(&[
        "idle",
        "heatmap",
        "--pid",
        &pid,
        "--method",
        "refs",
        "--interval",
        "300ms",
        "--count",
        "3",
        "--cells",
        "512",
        "--csv",
    ]);
    stop.store(true, Ordering::Relaxed);
    let _ = toucher.join();
    // SAFETY: unmapping the mapping made above; the toucher has ended.
    unsafe { libc::munmap(base, LEN) };
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("time,start,end,pages,accessed"));
    let (lo, mid, hi) = (addr as u64, (addr + LEN / 2) as u64, (addr + LEN) as u64);
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
    let mut hot = 0;
    let mut cold = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (start, end, pages, accessed): (u64, u64, u64, u64) = (
            hex(f[1]),
            hex(f[2]),
            f[3].parse().expect("pages"),
            f[4].parse().expect("accessed"),
        );
        if start >= lo && end <= mid {
            assert!(
                pages > 0 && accessed == pages,
                "hot half cell {line}: every page accessed"
            );
            hot += 1;
        } else if start >= mid && end <= hi {
            assert!(
                pages > 0 && accessed == 0,
                "cold half cell {line}: no page accessed"
            );
            cold += 1;
        }
    }
    assert!(
        hot >= 3 * 8 && cold >= 3 * 8,
        "{hot} hot and {cold} cold cells: the buffer must span several buckets"
    );
}

#[test]
fn heatmap_refuses_root_and_bad_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let r = common::pgtool(&[
        "--root",
        dir.path().to_str().expect("utf8"),
        "idle",
        "heatmap",
        "--pid",
        "1",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("live system only"), "{}", r.stderr);
    let r = common::pgtool(&["idle", "heatmap", "--pid", "self", "-o", "/tmp/x.gif"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("must end in .svg or .png"),
        "{}",
        r.stderr
    );
    let r = common::pgtool(&["idle", "heatmap", "--pid", "self", "--interval", "0s"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad duration"), "{}", r.stderr);
}
