//! `pgtool mem --by memcg` against `memory.stat` of a memcg the test creates (root): a child
//! joins it, then makes anonymous memory and a file it writes and maps; pgtool's row for the
//! memcg (pages by their own memcg, kpagecgroup) must match the memcg's anon and mapped-file
//! figures within the pages that move during the read. cgroup v1 here (the memory controller
//! is bound to /sys/fs/cgroup/memory); v2 where the controller is on the unified hierarchy.

mod common;

use common::{is_root, json_lines, skip};
use std::collections::HashMap;
use std::os::fd::AsRawFd;

fn mmap(len: usize, prot: i32, flags: i32, fd: i32) -> *mut u8 {
    // SAFETY: a fresh mapping; the callers touch it only within `len`.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap");
    p.cast()
}

/// In the child: join the memcg whose `cgroup.procs` is `$MEMCG_PROCS`, then make 16 MiB of
/// anonymous memory and a 4 MiB file (written, so its page cache is charged here) mapped and
/// read whole.
#[test]
fn memcg_child() {
    if !common::in_child() {
        return;
    }
    let procs = std::env::var("MEMCG_PROCS").expect("MEMCG_PROCS");
    std::fs::write(&procs, std::process::id().to_string()).expect("join memcg");
    let file = std::env::var("MEM_DATA_FILE").expect("MEM_DATA_FILE");
    std::fs::write(&file, vec![3u8; 4 << 20]).expect("write file");
    let f = std::fs::File::open(&file).expect("open");
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let anon = mmap(16 << 20, rw, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1);
    let map = mmap(4 << 20, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd());
    let mut sum = 0u8;
    // SAFETY: inside the two mappings just made.
    unsafe {
        for i in (0..16 << 20).step_by(4096) {
            *anon.add(i) = 1;
        }
        for i in (0..4 << 20).step_by(4096) {
            sum = sum.wrapping_add(std::ptr::read_volatile(map.add(i)));
        }
    }
    common::tell(&format!("ADDR anon {:#x}", anon as usize + sum as usize));
    common::tell("READY");
    common::wait_for_eof_and_exit();
}

fn memory_stat(dir: &std::path::Path) -> HashMap<String, u64> {
    std::fs::read_to_string(dir.join("memory.stat"))
        .expect("memory.stat")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Create a memcg under `mount`, run the child in it, and compare pgtool's row for that
/// memcg with memory.stat (`anon_key`, `file_key`: the anon and mapped-file fields).
fn memcg_agrees(mount: &std::path::Path, anon_key: &str, file_key: &str) {
    let dir = mount.join(format!("pgtool-mem-test-{}", std::process::id()));
    std::fs::create_dir(&dir).expect("mkdir memcg");
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            // the child is gone by now (dropped first); retry while the kernel reaps it
            for _ in 0..100 {
                if std::fs::remove_dir(&self.0).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    let _rm = Rm(dir.clone());
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let file = tmp.path().join("memcg.bin");
    let child = common::Child::spawn_with(
        "memcg_child",
        &[
            (
                "MEMCG_PROCS",
                dir.join("cgroup.procs").to_str().expect("utf8"),
            ),
            ("MEM_DATA_FILE", file.to_str().expect("utf8")),
        ],
    );
    // SAFETY: stopping our own child.
    unsafe { libc::kill(child.pid as i32, libc::SIGSTOP) };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = memory_stat(&dir);
    let run = common::pgtool(&[
        "mem",
        "--by",
        "memcg",
        "--pid",
        &child.pid.to_string(),
        "--json",
    ]);
    let after = memory_stat(&dir);
    // SAFETY: as above.
    unsafe { libc::kill(child.pid as i32, libc::SIGCONT) };
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json_lines(&run.stdout);
    let want = dir.to_str().expect("utf8");
    let row = rows
        .iter()
        .find(|r| r["memcg_path"] == want)
        .unwrap_or_else(|| panic!("no row for {want}:\n{}", run.stdout));
    let ours_anon = row["anon_bytes"].as_u64().expect("anon");
    let ours_file =
        row["file_bytes"].as_u64().expect("file") + row["shmem_bytes"].as_u64().expect("shmem");
    // Pages that move during the read: the child is stopped; allow what moved between the
    // two reads of memory.stat plus 64 pages (the child's own stack and heap faults after
    // joining are counted by both, reclaim may drop clean page cache).
    let slack = |k: &str| {
        let (a, b) = (before[k], after[k]);
        a.abs_diff(b) + (64 << 12)
    };
    let near = |ours: u64, k: &str| ours.abs_diff(after[k]) <= slack(k);
    assert!(
        near(ours_anon, anon_key),
        "anon: pgtool {ours_anon}, memory.stat {anon_key} {}",
        after[anon_key]
    );
    assert!(
        near(ours_file, file_key),
        "file: pgtool {ours_file}, memory.stat {file_key} {}",
        after[file_key]
    );
    assert!(ours_anon >= 16 << 20 && ours_file >= 4 << 20, "{row}");
    assert_eq!(
        row["pss_bytes"], row["rss_bytes"],
        "only the child maps these pages: {row}"
    );
    drop(child);
}

#[test]
fn by_memcg_agrees_with_memory_stat_v1() {
    if !is_root() && skip("mem_live: needs root to read PFNs and create a memcg") {
        return;
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory");
    if !v1.join("memory.stat").exists() {
        eprintln!("SKIP by_memcg_agrees_with_memory_stat_v1: no cgroup v1 memory hierarchy");
        return;
    }
    // v1: `rss` is anonymous memory, `mapped_file` the mapped page cache and shmem.
    memcg_agrees(v1, "rss", "mapped_file");
}

#[test]
fn by_memcg_agrees_with_memory_stat_v2() {
    if !is_root() && skip("mem_live: needs root to read PFNs and create a memcg") {
        return;
    }
    let v2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| {
            std::fs::read_to_string(p.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
        });
    let Some(v2) = v2 else {
        // Not a missing kernel feature: the memory controller is bound to the v1 hierarchy
        // (as on this project's machine), so no v2 memcg can exist.
        eprintln!(
            "SKIP by_memcg_agrees_with_memory_stat_v2: the memory controller is not on cgroup v2 here"
        );
        return;
    };
    let subtree = v2.join("cgroup.subtree_control");
    let _ = std::fs::write(&subtree, "+memory");
    // v2: `anon` is anonymous memory, `file_mapped` the mapped page cache and shmem.
    memcg_agrees(v2, "anon", "file_mapped");
}
