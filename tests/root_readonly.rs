//! `--root DIR` is read-only for every subcommand (issue 11): each subcommand runs with `--root`
//! on a read-only copy of a fixture tree that holds every file some subcommand could write
//! (page_idle bitmap, clear_refs, hwpoison and soft-offline files), and the tree's manifest
//! (names, types, modes, sizes, mtimes and the content of every data extent) must not change.
//!
//! The copy is made read-only with `chmod -R a-w`. As root that stops nothing (root ignores
//! permission bits), so the first pass proves that pgtool itself does not write; as root a
//! second pass runs on a read-only bind mount (`mount --bind` + `mount -o remount,bind,ro`),
//! which the kernel enforces. As an unprivileged user (tools/test.sh reruns the binaries as
//! nobody) the permission bits are enforced and the bind mount is skipped with a reason.
//!
//! Exit codes are asserted only where the policy fixes them: the writers (`idle mark`, `idle wss
//! --method refs`, `hwpoison`) refuse under `--root`, `snapshot` refuses `--root`, nothing
//! panics (101) or hangs. The manifest is the assertion for everything else.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one file system entry looks like: type+mode, size, mtime, and a digest of each data
/// extent (found with SEEK_DATA/SEEK_HOLE: the fixture's pagemap is a 256 GiB sparse file).
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    mode: u32,
    size: u64,
    mtime_ns: i128,
    extents: Vec<(u64, u64, u64)>,
    link: Option<PathBuf>,
}

type Manifest = BTreeMap<PathBuf, Entry>;

fn digest(bytes: &[u8]) -> u64 {
    // FNV-1a: enough to see a change, no dependency.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn extents(path: &Path) -> Vec<(u64, u64, u64)> {
    use std::os::fd::AsRawFd;
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = f.metadata().expect("stat").len();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut off: i64 = 0;
    while (off as u64) < len {
        // SAFETY: lseek on an open fd; no memory is touched.
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: only a hole remains
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 { len as i64 } else { hole };
        let mut buf = vec![0u8; (end - data) as usize];
        f.seek(SeekFrom::Start(data as u64)).expect("seek");
        f.read_exact(&mut buf).expect("read extent");
        out.push((data as u64, end as u64, digest(&buf)));
        off = end;
    }
    out
}

fn manifest(root: &Path) -> Manifest {
    let mut m = Manifest::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let rel = p.strip_prefix(root).expect("under root").to_path_buf();
        let ft = md.file_type();
        let entry = Entry {
            mode: md.mode(),
            size: if ft.is_dir() { 0 } else { md.len() },
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            extents: if ft.is_file() {
                extents(&p)
            } else {
                Vec::new()
            },
            link: if ft.is_symlink() {
                std::fs::read_link(&p).ok()
            } else {
                None
            },
        };
        m.insert(rel, entry);
        if ft.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                stack.push(e.expect("dirent").path());
            }
        }
    }
    m
}

fn diff(a: &Manifest, b: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("removed: {}", k.display())),
            Some(w) if w != v => out.push(format!(
                "changed: {} (mode {:o} -> {:o}, size {} -> {}, mtime {} -> {}, extents {} -> {})",
                k.display(),
                v.mode,
                w.mode,
                v.size,
                w.size,
                v.mtime_ns,
                w.mtime_ns,
                v.extents.len(),
                w.extents.len()
            )),
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("created: {}", k.display()));
    }
    out
}

/// The common fixture plus every file a subcommand reads or could write.
fn write_full_fixture(dir: &Path) -> PathBuf {
    let root = write_fixture(dir);
    let put = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
    };
    let gunzip = |rel: &str, src: &str| {
        let out = Command::new("gzip")
            .args(["-dc", src])
            .output()
            .expect("gzip -dc");
        assert!(out.status.success(), "gzip -dc {src}");
        put(rel, &out.stdout);
    };
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    // one idle bit per PFN: 0x401 PFNs -> 17 words
    put("sys/kernel/mm/page_idle/bitmap", &[0u8; 17 * 8]);
    put("proc/1234/clear_refs", b"");
    put(
        "proc/1234/smaps",
        b"7f0000000000-7f0000004000 rw-p 00000000 00:00 0 \nRss:                  12 kB\nReferenced:            8 kB\n",
    );
    put("proc/1234/smaps_rollup", b"Rss:                2136 kB\n");
    put("proc/1234/cmdline", b"/usr/bin/fixture\0");
    put("proc/1234/cgroup", b"0::/fixture.slice\n");
    put(
        "proc/meminfo",
        b"MemTotal:        4096 kB\nMemFree:         1024 kB\n",
    );
    put("proc/uptime", b"100.00 50.00\n");
    put(
        "proc/self/mountinfo",
        b"30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n",
    );
    put("debugfs/hwpoison/corrupt-pfn", b"");
    put("debugfs/hwpoison/unpoison-pfn", b"");
    put("sys/devices/system/memory/soft_offline_page", b"");
    std::fs::create_dir_all(root.join("sys/kernel/slab/kmalloc-64")).expect("mkdir");
    std::fs::create_dir_all(root.join("sys/fs/cgroup/fixture.slice")).expect("mkdir");
    let slab = std::fs::read(format!("{fixtures}/slab/host-6.18-slabinfo.txt")).expect("slab");
    put("proc/slabinfo", &slab);
    gunzip(
        "debugfs/page_owner",
        &format!("{fixtures}/page_owner/qemu-6.1-page_owner.txt.gz"),
    );
    gunzip(
        "debugfs/kfence/objects",
        &format!("{fixtures}/kfence/qemu-6.1-objects.txt.gz"),
    );
    // /proc/PID/mem: the fixture binary's first page holds known bytes
    let mem = std::fs::File::create(root.join("proc/1234/mem")).expect("mem");
    mem.write_all_at(b"fixture bytes at 0x400000", 0x40_0000)
        .expect("pwrite");
    mem.set_len(0x40_2000).expect("len");
    root
}

fn chmod_r(root: &Path, writable: bool) {
    let mut stack = vec![root.to_path_buf()];
    let mut all = Vec::new();
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).expect("stat");
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                stack.push(e.expect("dirent").path());
            }
        }
        if !md.file_type().is_symlink() {
            all.push((p, md.mode() & 0o7777));
        }
    }
    // directories last when removing write bits, so the walk above could still read them
    for (p, mode) in all.iter().rev() {
        let m = if writable {
            mode | 0o200
        } else {
            mode & !0o222
        };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
}

/// A tree made read-only; made writable again on drop so the temporary directory can go.
struct ReadOnly(PathBuf);
impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.0.exists() {
            chmod_r(&self.0, true);
        }
    }
}

/// A read-only bind mount, unmounted on drop (also when an assertion fails).
struct BindRo(PathBuf);
impl BindRo {
    fn new(src: &Path, dst: &Path) -> Result<BindRo, String> {
        std::fs::create_dir(dst).map_err(|e| format!("mkdir {}: {e}", dst.display()))?;
        let mount = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("mount")
                .args(args)
                .output()
                .map_err(|e| format!("mount: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "mount {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let (s, d) = (src.to_str().expect("utf8"), dst.to_str().expect("utf8"));
        mount(&["--bind", s, d])?;
        let guard = BindRo(dst.to_path_buf());
        mount(&["-o", "remount,bind,ro", d])?;
        Ok(guard)
    }
}
impl Drop for BindRo {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Run pgtool with a time limit; `None` when it had to be killed.
fn run_bounded(args: &[String], out_dir: &Path) -> Option<Run> {
    let so = out_dir.join("stdout");
    let se = out_dir.join("stderr");
    let mut child = Command::new(pgtool_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).expect("stdout file"))
        .stderr(std::fs::File::create(&se).expect("stderr file"))
        .spawn()
        .expect("spawn pgtool");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some(Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&so).unwrap_or_default(),
        stderr: std::fs::read_to_string(&se).unwrap_or_default(),
    })
}

/// (name, args after `--root TREE`, the exit code the policy fixes if any). `OUT` is replaced
/// by a writable directory outside the tree.
fn cases() -> Vec<(&'static str, Vec<&'static str>, Option<i32>)> {
    vec![
        ("v2p", vec!["v2p", "1234", "0x400000"], None),
        (
            "v2p --vma --json",
            vec!["v2p", "1234", "--vma", "fixture", "--json"],
            None,
        ),
        ("types", vec!["types"], None),
        ("types -L", vec!["types", "-L"], None),
        (
            "types --prometheus",
            vec!["types", "--prometheus", "OUT/types.prom"],
            None,
        ),
        ("who", vec!["who", "0x100-0x102"], None),
        ("cgroup", vec!["cgroup", "42"], None),
        ("cgroup --pages", vec!["cgroup", "--pages"], None),
        ("idle read", vec!["idle", "read", "--pid", "1234"], None),
        ("idle mark", vec!["idle", "mark", "--pid", "1234"], Some(2)),
        (
            "idle wss --method idle",
            vec![
                "idle",
                "wss",
                "--pid",
                "1234",
                "--method",
                "idle",
                "--count",
                "1",
                "--interval",
                "10ms",
            ],
            None,
        ),
        (
            "idle wss --method refs",
            vec![
                "idle",
                "wss",
                "--pid",
                "1234",
                "--method",
                "refs",
                "--count",
                "1",
                "--interval",
                "10ms",
                "--prometheus",
                "OUT/wss.prom",
            ],
            Some(2),
        ),
        (
            "hwpoison inject",
            vec!["hwpoison", "inject", "0x101", "--yes"],
            Some(2),
        ),
        (
            "hwpoison unpoison",
            vec!["hwpoison", "unpoison", "0x101", "--yes"],
            Some(2),
        ),
        (
            "hwpoison soft-offline",
            vec!["hwpoison", "soft-offline", "0x101", "--yes"],
            Some(2),
        ),
        (
            "hwpoison inject --pid",
            vec![
                "hwpoison",
                "inject",
                "--pid",
                "1234",
                "--addr",
                "0x7f0000000000",
                "--yes",
            ],
            Some(2),
        ),
        (
            "snapshot",
            vec!["snapshot", "OUT/snap", "--pid", "1234"],
            Some(2),
        ),
        ("page-owner", vec!["page-owner"], None),
        ("slab", vec!["slab", "--count", "1"], None),
        ("kfence", vec!["kfence"], None),
        ("peek", vec!["peek", "1234", "0x400000", "16"], None),
        ("map", vec!["map", "--json"], None),
        ("mem", vec!["mem", "--json"], None),
        (
            "mem --prometheus",
            vec!["mem", "--prometheus", "OUT/mem.prom"],
            None,
        ),
        ("map -o", vec!["map", "-o", "OUT/map.svg"], None),
        (
            "idle heatmap",
            vec![
                "idle",
                "heatmap",
                "--pid",
                "1234",
                "--count",
                "1",
                "--interval",
                "10ms",
            ],
            Some(2),
        ),
    ]
}

/// Run every case on `tree`; returns the failures.
fn check_tree(tree: &Path, out: &Path, label: &str) -> Vec<String> {
    let mut before = manifest(tree);
    let mut failures = Vec::new();
    for (name, args, code) in cases() {
        let mut full = vec![
            "--root".to_string(),
            tree.to_str().expect("utf8").to_string(),
        ];
        full.extend(
            args.iter()
                .map(|a| a.replace("OUT", out.to_str().expect("utf8"))),
        );
        let Some(r) = run_bounded(&full, out) else {
            failures.push(format!("{label}: {name}: did not finish in 60 s"));
            continue;
        };
        let first = r.stderr.lines().next().unwrap_or("").to_string();
        eprintln!("{label}: {name}: exit {} {first}", r.code);
        if r.code == 101 || r.stderr.contains("panicked") {
            failures.push(format!("{label}: {name}: panicked: {}", r.stderr));
        }
        if let Some(c) = code
            && r.code != c
        {
            failures.push(format!(
                "{label}: {name}: exit {} (expected {c}: it must refuse under --root): {first}",
                r.code
            ));
        }
        // Compared with the state before this command, so each change names its writer.
        let after = manifest(tree);
        let d = diff(&before, &after);
        if !d.is_empty() {
            failures.push(format!(
                "{label}: {name}: wrote under --root: {}",
                d.join("; ")
            ));
        }
        before = after;
    }
    if out.join("snap").exists() {
        failures.push(format!("{label}: snapshot under --root wrote OUT/snap"));
    }
    failures
}

#[test]
fn every_subcommand_leaves_a_read_only_root_unchanged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = write_full_fixture(&tmp.path().join("src"));
    let copy = tmp.path().join("copy");
    let st = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(&src)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("mkdir out");
    chmod_r(&copy, false);
    let _ro = ReadOnly(copy.clone());
    // the read-only bits are really there
    assert_eq!(
        std::fs::metadata(copy.join("proc/kpageflags"))
            .expect("stat")
            .mode()
            & 0o222,
        0
    );
    let who = if is_root() {
        "root, chmod a-w (not enforced for root)"
    } else {
        "user, chmod a-w"
    };
    let mut failures = check_tree(&copy, &out, who);
    if is_root() {
        let mnt = tmp.path().join("ro-mount");
        match BindRo::new(&copy, &mnt) {
            Ok(_guard) => {
                // the mount is read-only for root too
                let e = std::fs::write(mnt.join("proc/iomem"), b"x").expect_err("ro mount");
                assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
                failures.extend(check_tree(&mnt, &out, "root, read-only bind mount"));
            }
            Err(e) => {
                skip(&format!(
                    "every_subcommand_leaves_a_read_only_root_unchanged: read-only bind mount: {e}"
                ));
            }
        }
    } else {
        eprintln!(
            "SKIP every_subcommand_leaves_a_read_only_root_unchanged: read-only bind mount: needs root"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
