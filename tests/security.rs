//! Issue 17: root never writes through a planted symbolic link, and copies of root-only data
//! stay root-only.
//!
//! A symbolic link is planted at every path `snapshot` creates and at the Prometheus textfile
//! paths of `types --prometheus` and `idle wss --prometheus`, pointing at a file (or directory)
//! the test owns; the target must be unchanged and the command must fail with a clear error
//! (or, for `snapshot --force`, replace the link without following it). A snapshot's modes are
//! checked under umask 000. The snapshot tests of the library read a fixture tree and run as
//! any user; those of the binary read the live system: as root they run for real, as an
//! unprivileged user (tools/test.sh reruns this binary as nobody) they check the "needs root"
//! error and that nothing was left behind.

mod common;

use common::*;
use pgtool::snapshot::{Options, save_with};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every path a snapshot of the common fixture (pid 1234) creates, relative to DIR, with
/// whether it is a directory.
const SNAPSHOT_PATHS: &[(&str, bool)] = &[
    ("proc", true),
    ("sys", true),
    ("debugfs", true),
    ("cgroup-inodes.tsv", false),
    ("proc/kpageflags", false),
    ("proc/kpagecount", false),
    ("proc/kpagecgroup", false),
    ("proc/iomem", false),
    ("proc/meminfo", false),
    ("proc/1234", true),
    ("proc/1234/maps", false),
    ("proc/1234/comm", false),
    ("proc/1234/status", false),
    ("proc/1234/cmdline", false),
    ("proc/1234/cgroup", false),
    ("proc/1234/smaps_rollup", false),
    ("proc/1234/pagemap", false),
];

/// The common fixture plus the files `pgtool mem` needs, so a snapshot writes every path.
fn fixture(dir: &Path) -> PathBuf {
    let src = write_fixture(dir);
    for (f, text) in [
        ("proc/meminfo", "MemTotal: 4096 kB\n"),
        ("proc/1234/cmdline", "/usr/bin/fixture\0"),
        ("proc/1234/cgroup", "0::/fixture.slice\n"),
        ("proc/1234/smaps_rollup", "Rss: 2136 kB\n"),
    ] {
        std::fs::write(src.join(f), text).expect("write");
    }
    src
}

/// Files and directories the test owns, that a followed link would change.
struct Victims {
    file: PathBuf,
    dir: PathBuf,
}

impl Victims {
    fn new(base: &Path) -> Victims {
        let file = base.join("victim-file");
        std::fs::write(&file, b"the test's own content\n").expect("victim");
        let dir = base.join("victim-dir");
        std::fs::create_dir(&dir).expect("victim dir");
        std::fs::write(dir.join("keep"), b"keep\n").expect("keep");
        Victims { file, dir }
    }

    /// Panics unless both victims are exactly as made.
    fn assert_unchanged(&self, what: &str) {
        assert_eq!(
            std::fs::read(&self.file).expect("victim"),
            b"the test's own content\n",
            "{what}: the victim file was written through a link"
        );
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("victim dir")
            .map(|e| {
                e.expect("dirent")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["keep"],
            "{what}: something was written into the victim dir"
        );
        assert_eq!(
            std::fs::read(self.dir.join("keep")).expect("keep"),
            b"keep\n"
        );
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dirent")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Every entry under `dir` (relative path, is_dir, mode bits).
fn walk(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).expect("stat");
        assert!(
            !md.file_type().is_symlink(),
            "{}: a link in the snapshot",
            p.display()
        );
        let rel = p.strip_prefix(dir).expect("under").to_path_buf();
        out.push((rel, md.is_dir(), md.mode() & 0o7777));
        if md.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                stack.push(e.expect("dirent").path());
            }
        }
    }
    out.sort();
    out
}

/// Panics unless every directory is 0700 and every file 0600 (no group/other bits).
fn assert_private_modes(dir: &Path) {
    for (rel, is_dir, mode) in walk(dir) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}: mode {mode:o}", rel.display());
    }
}

#[test]
fn snapshot_paths_list_is_complete() {
    // the list the link tests use is exactly what a snapshot writes
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    let sum =
        save_with(&pgtool::SysRoot::at(&src), &dst, &[PID], Options::default()).expect("save");
    assert!(sum.notes.is_empty(), "{:?}", sum.notes);
    let written: Vec<(PathBuf, bool)> = walk(&dst)
        .into_iter()
        .filter(|(p, _, _)| !p.as_os_str().is_empty())
        .map(|(p, d, _)| (p, d))
        .collect();
    let mut want: Vec<(PathBuf, bool)> = SNAPSHOT_PATHS
        .iter()
        .map(|(p, d)| (PathBuf::from(p), *d))
        .collect();
    want.sort();
    assert_eq!(written, want);
    assert_private_modes(&dst);
}

#[test]
fn snapshot_never_follows_a_planted_link() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let root = pgtool::SysRoot::at(&src);
    let v = Victims::new(tmp.path());
    for (rel, is_dir) in SNAPSHOT_PATHS {
        let dst = tmp.path().join("dst");
        let link = dst.join(rel);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        let target = if *is_dir { &v.dir } else { &v.file };
        std::os::unix::fs::symlink(target, &link).expect("symlink");

        // without --force: a non-empty DIR is refused before anything is written
        let e = save_with(&root, &dst, &[PID], Options::default()).expect_err(rel);
        assert!(
            e.to_string().contains("exists and is not empty"),
            "{rel}: {e}"
        );
        assert_eq!(e.exit_code(), 2);
        v.assert_unchanged(rel);
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink()
        );

        // --force: the old tree (link included) is swapped out whole, never followed
        save_with(&root, &dst, &[PID], Options { force: true })
            .unwrap_or_else(|e| panic!("{rel}: --force: {e}"));
        v.assert_unchanged(rel);
        let md = std::fs::symlink_metadata(&link).expect("new");
        assert!(!md.file_type().is_symlink(), "{rel}: still a link");
        assert_eq!(md.is_dir(), *is_dir, "{rel}");
        assert_private_modes(&dst);
        // nothing left beside DIR (no temporary directory, no old tree)
        assert_eq!(
            names_in(tmp.path()),
            ["dst", "src", "victim-dir", "victim-file"],
            "{rel}"
        );
        std::fs::remove_dir_all(&dst).expect("rm");
    }
}

#[test]
fn snapshot_refuses_a_link_as_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let root = pgtool::SysRoot::at(&src);
    let v = Victims::new(tmp.path());
    let empty = tmp.path().join("empty-dir");
    std::fs::create_dir(&empty).expect("mkdir");
    let dangling = tmp.path().join("would-be-created");
    for target in [&v.file, &v.dir, &empty, &dangling] {
        let dst = tmp.path().join("dst");
        std::os::unix::fs::symlink(target, &dst).expect("symlink");
        for force in [false, true] {
            let e = save_with(&root, &dst, &[PID], Options { force }).expect_err("link");
            assert!(
                e.to_string().contains("is a symbolic link"),
                "{} (force {force}): {e}",
                target.display()
            );
        }
        v.assert_unchanged(&target.display().to_string());
        assert!(names_in(&empty).is_empty());
        assert!(!dangling.exists());
        std::fs::remove_file(&dst).expect("rm");
    }
    // an empty directory (made by anyone) is replaced by the snapshot's own, 0700
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).expect("mkdir");
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    save_with(&root, &dst, &[PID], Options::default()).expect("empty DIR");
    assert_private_modes(&dst);
}

#[test]
fn snapshot_force_replaces_only_a_previous_snapshot() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let root = pgtool::SysRoot::at(&src);
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&dst).expect("mkdir");
    std::fs::write(dst.join("thesis.tex"), b"precious").expect("write");
    let e = save_with(&root, &dst, &[PID], Options { force: true }).expect_err("foreign");
    assert!(e.to_string().contains("\"thesis.tex\""), "{e}");
    assert!(e.to_string().contains("did not write"), "{e}");
    assert_eq!(
        std::fs::read(dst.join("thesis.tex")).expect("kept"),
        b"precious"
    );
    assert_eq!(names_in(tmp.path()), ["dst", "src"]);
    // a file where DIR should be
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let e = save_with(&root, &file, &[PID], Options { force: true }).expect_err("file");
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn failed_snapshot_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    // the pid is there (its directory exists) but its maps cannot be read: the failure comes
    // after the kpage* copies, with the temporary directory full
    std::fs::remove_file(src.join("proc/1234/maps")).expect("rm maps");
    let dst = tmp.path().join("dst");
    let e = save_with(&pgtool::SysRoot::at(&src), &dst, &[PID], Options::default())
        .expect_err("no maps");
    assert_eq!(e.to_string(), "no such process 1234");
    assert_eq!(names_in(tmp.path()), ["src"], "a partial snapshot was left");
    // the same with --force over a previous snapshot: the previous one stays
    std::fs::create_dir_all(dst.join("proc")).expect("mkdir");
    std::fs::write(dst.join("proc/iomem"), b"old").expect("old");
    save_with(
        &pgtool::SysRoot::at(&src),
        &dst,
        &[PID],
        Options { force: true },
    )
    .expect_err("no maps");
    assert_eq!(std::fs::read(dst.join("proc/iomem")).expect("old"), b"old");
    assert_eq!(names_in(tmp.path()), ["dst", "src"]);
}

#[test]
fn snapshot_refuses_kernel_file_systems() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let root = pgtool::SysRoot::at(&src);
    let mut dirs = vec![
        PathBuf::from("/proc/pgtool-snapshot-test"),
        PathBuf::from("/sys/pgtool-snapshot-test"),
        PathBuf::from("/sys/fs/cgroup/pgtool-snapshot-test"),
    ];
    // every mounted cgroup hierarchy, debugfs and tracefs, wherever it is mounted
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if ["cgroup", "cgroup2", "debugfs", "tracefs", "proc", "sysfs"].contains(&f[dash + 1]) {
            dirs.push(Path::new(f[4]).join("pgtool-snapshot-test"));
        }
    }
    for d in &dirs {
        if !d.parent().is_some_and(Path::is_dir) {
            continue;
        }
        let e = save_with(&root, d, &[PID], Options { force: true }).expect_err("refused");
        let msg = e.to_string();
        assert!(
            msg.contains("the kernel's own") || msg.contains("Permission denied"),
            "{}: {msg}",
            d.display()
        );
        assert!(!d.exists(), "{}: created", d.display());
    }
    assert_eq!(
        pgtool::safe_file::pseudo_fs(Path::new("/proc")).expect("statfs"),
        Some("proc")
    );
    assert_eq!(
        pgtool::safe_file::pseudo_fs(Path::new("/sys")).expect("statfs"),
        Some("sysfs")
    );
    assert_eq!(
        pgtool::safe_file::pseudo_fs(tmp.path()).expect("statfs"),
        None
    );
}

/// Run in a child (see [`snapshot_modes_under_umask_000`]): umask 000, then a snapshot.
#[test]
fn umask_child() {
    let Some(dir) = std::env::var_os("PGTOOL_UMASK_CHILD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    // SAFETY: umask only changes this (child) process's file creation mask.
    unsafe { libc::umask(0) };
    let src = fixture(&dir.join("src"));
    save_with(
        &pgtool::SysRoot::at(&src),
        &dir.join("dst"),
        &[PID],
        Options::default(),
    )
    .expect("save");
}

#[test]
fn snapshot_modes_under_umask_000() {
    let tmp = tempfile::tempdir().expect("tmp");
    let st = Command::new(std::env::current_exe().expect("exe"))
        .args(["umask_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("PGTOOL_UMASK_CHILD_DIR", tmp.path())
        .status()
        .expect("child");
    assert!(st.success());
    // the child's own fixture files got 0666 from umask 000: the snapshot must not
    let m = std::fs::metadata(tmp.path().join("src/proc/iomem"))
        .expect("stat")
        .mode();
    assert_eq!(m & 0o777, 0o666, "the child did not run under umask 000");
    assert_private_modes(&tmp.path().join("dst"));
}

/// A process to sample, killed on drop.
struct Sleeper(std::process::Child);
impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("600").spawn().expect("sleep"))
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh_umask0(args: &[&str]) -> Run {
    run_cmd(
        Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(pgtool_bin())
            .args(args),
    )
}

#[test]
fn snapshot_command_modes_and_summary_under_umask_000() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dst = tmp.path().join("snap");
    let s = Sleeper::new();
    let pid = s.pid();
    let r = sh_umask0(&["snapshot", dst.to_str().expect("utf8"), "--pid", &pid]);
    if !is_root() {
        // as nobody: the kpage* files are root-only
        assert_eq!(r.code, 2, "{r:?}");
        let first = r.stderr.lines().next().unwrap_or("");
        assert!(first.contains("needs root"), "{first}");
        assert!(
            names_in(tmp.path()).is_empty(),
            "left behind: {:?}",
            names_in(tmp.path())
        );
        return;
    }
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("root-only data"), "{}", r.stdout);
    assert_private_modes(&dst);
    for f in [
        "maps",
        "pagemap",
        "status",
        "smaps_rollup",
        "cmdline",
        "comm",
        "cgroup",
    ] {
        assert!(dst.join("proc").join(&pid).join(f).is_file(), "{f}");
    }
    assert!(dst.join("proc/meminfo").is_file());
    assert_eq!(names_in(tmp.path()), ["snap"]);
}

#[test]
fn snapshot_command_never_follows_a_planted_link() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = Victims::new(tmp.path());
    let dst = tmp.path().join("snap");
    std::fs::create_dir_all(dst.join("proc")).expect("mkdir");
    let link = dst.join("proc/iomem");
    std::os::unix::fs::symlink(&v.file, &link).expect("symlink");
    let d = dst.to_str().expect("utf8");
    let r = pgtool(&["snapshot", d]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("pgtool: {d}: exists and is not empty")),
        "{}",
        r.stderr
    );
    v.assert_unchanged("snapshot");
    let r = pgtool(&["snapshot", d, "--force"]);
    v.assert_unchanged("snapshot --force");
    if is_root() {
        assert_eq!(r.code, 0, "{r:?}");
        let md = std::fs::symlink_metadata(&link).expect("iomem");
        assert!(md.file_type().is_file(), "still a link");
        assert_eq!(md.mode() & 0o777, 0o600);
    } else {
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("needs root"), "{}", r.stderr);
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(names_in(tmp.path()), ["snap", "victim-dir", "victim-file"]);
    // DIR itself a link
    let l2 = tmp.path().join("snap2");
    std::os::unix::fs::symlink(&v.dir, &l2).expect("symlink");
    let r = pgtool(&["snapshot", l2.to_str().expect("utf8"), "--force"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is a symbolic link"), "{}", r.stderr);
    v.assert_unchanged("snapshot DIR-link");
}

/// Plant links at FILE (and at the temporary name `FILE.tmp` older versions used), run
/// `args` (with `FILE` replaced), and check the victims and the error.
fn prometheus_link_case(what: &str, args: &[&str]) {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = Victims::new(tmp.path());
    let out = tmp.path().join("textfiles");
    std::fs::create_dir(&out).expect("mkdir");
    let file = out.join("pgtool.prom");
    std::os::unix::fs::symlink(&v.file, &file).expect("symlink");
    std::os::unix::fs::symlink(&v.dir, out.join("pgtool.prom.tmp")).expect("symlink");
    let full: Vec<String> = args
        .iter()
        .map(|a| a.replace("FILE", file.to_str().expect("utf8")))
        .collect();
    let argv: Vec<&str> = full.iter().map(String::as_str).collect();
    let r = pgtool(&argv);
    v.assert_unchanged(what);
    assert_eq!(
        r.code, 2,
        "{what}: a planted link must fail the command: {r:?}"
    );
    assert!(
        r.stderr.contains("symbolic link"),
        "{what}: unclear error: {}",
        r.stderr
    );
    assert!(
        std::fs::symlink_metadata(&file)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    // dangling: the target must not be created
    std::fs::remove_file(&file).expect("rm");
    let dangling = tmp.path().join("created-through-link");
    std::os::unix::fs::symlink(&dangling, &file).expect("symlink");
    let r = pgtool(&argv);
    assert_eq!(r.code, 2, "{what}: dangling link: {r:?}");
    assert!(!dangling.exists(), "{what}: wrote through a dangling link");
    // and without links, the file is written whole, 0644, with no temporary left
    std::fs::remove_file(&file).expect("rm");
    std::fs::remove_file(out.join("pgtool.prom.tmp")).expect("rm");
    let r = pgtool(&argv);
    assert_eq!(r.code, 0, "{what}: {r:?}");
    let md = std::fs::symlink_metadata(&file).expect("written");
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o777, 0o644, "{what}");
    assert_eq!(names_in(&out), ["pgtool.prom"], "{what}: temporaries left");
}

#[test]
fn types_prometheus_never_follows_a_planted_link() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = fixture(&tmp.path().join("src"));
    let root = src.to_str().expect("utf8").to_string();
    prometheus_link_case(
        "types --prometheus",
        &["--root", &root, "types", "--prometheus", "FILE"],
    );
}

#[test]
fn idle_wss_prometheus_never_follows_a_planted_link() {
    // the refs method works on one's own process without root (clear_refs is the owner's)
    let s = Sleeper::new();
    let pid = s.pid();
    let probe = pgtool(&[
        "idle",
        "wss",
        "--pid",
        &pid,
        "--method",
        "refs",
        "--count",
        "1",
        "--interval",
        "50ms",
    ]);
    if probe.code != 0 {
        skip(&format!(
            "idle_wss_prometheus_never_follows_a_planted_link: idle wss cannot sample here: {}",
            probe.stderr.trim()
        ));
        return;
    }
    prometheus_link_case(
        "idle wss --prometheus",
        &[
            "idle",
            "wss",
            "--pid",
            &pid,
            "--method",
            "refs",
            "--count",
            "1",
            "--interval",
            "50ms",
            "--prometheus",
            "FILE",
        ],
    );
}

#[test]
fn atomic_write_replaces_a_hard_link_instead_of_writing_it() {
    // a hard link to a file the test owns at the destination: replaced, not written through
    let tmp = tempfile::tempdir().expect("tmp");
    let v = Victims::new(tmp.path());
    let dest = tmp.path().join("metrics.prom");
    std::fs::hard_link(&v.file, &dest).expect("hard link");
    pgtool::safe_file::write_atomic(&dest, b"new\n", pgtool::safe_file::PUBLIC_FILE)
        .expect("write");
    v.assert_unchanged("hard link");
    assert_eq!(std::fs::read(&dest).expect("read"), b"new\n");
    let e = pgtool::safe_file::write_atomic(
        Path::new("/proc/pgtool-test.prom"),
        b"x",
        pgtool::safe_file::PUBLIC_FILE,
    )
    .expect_err("proc");
    assert!(e.to_string().contains("the kernel's own"), "{e}");
}

#[test]
fn new_dir_removes_everything_unless_committed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dest = tmp.path().join("out");
    {
        let d = pgtool::safe_file::NewDir::create(&dest, None).expect("create");
        assert_eq!(
            std::fs::metadata(d.path()).expect("tmp").mode() & 0o777,
            0o700
        );
        std::fs::create_dir(d.path().join("a")).expect("mkdir");
        std::fs::write(d.path().join("a/b"), b"x").expect("write");
        assert!(!dest.exists());
    }
    assert!(
        names_in(tmp.path()).is_empty(),
        "{:?}",
        names_in(tmp.path())
    );
    let d = pgtool::safe_file::NewDir::create(&dest, None).expect("create");
    std::fs::write(d.path().join("f"), b"x").expect("write");
    d.commit().expect("commit");
    assert_eq!(names_in(tmp.path()), ["out"]);
    assert_eq!(names_in(&dest), ["f"]);
    // replacing: the old tree is exchanged and removed
    let d = pgtool::safe_file::NewDir::create(&dest, Some(&["f"])).expect("create");
    std::fs::write(d.path().join("g"), b"y").expect("write");
    d.commit().expect("commit");
    assert_eq!(names_in(tmp.path()), ["out"]);
    assert_eq!(names_in(&dest), ["g"]);
}

#[test]
fn metrics_writer_never_follows_a_planted_link() {
    // the one Prometheus writer every --prometheus goes through
    let tmp = tempfile::tempdir().expect("tmp");
    let v = Victims::new(tmp.path());
    let file = tmp.path().join("x.prom");
    std::os::unix::fs::symlink(&v.file, &file).expect("symlink");
    let mut m = pgtool::output::metrics::Metrics::new();
    m.family(
        "pgtool_test_pages",
        "Test.",
        pgtool::output::metrics::Kind::Gauge,
    )
    .expect("family")
    .add(&[("kind", "anon")], 3.0);
    let e = m.write_textfile(&file).expect_err("link");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(e.exit_code(), 2);
    v.assert_unchanged("metrics");
    std::fs::remove_file(&file).expect("rm");
    // written whole, with exactly the public mode
    m.write_textfile(&file).expect("write");
    assert_eq!(
        std::fs::metadata(&file).expect("stat").mode() & 0o777,
        0o644
    );
}
