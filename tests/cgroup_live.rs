//! Live tests of `pgtool cgroup` (root) on a memory cgroup the test creates: a child is moved
//! into it, touches memory, and `cgroup --pages` must report those pages under the cgroup's
//! path; `cgroup INODE` and `cgroup PATH` must map back and forth. The cgroup is removed by a
//! Drop guard even when an assertion fails.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PS: usize = 4096;
const PAGES: usize = 512;

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip(reason: &str) {
    common::skip(reason);
}

/// The mount point of the hierarchy holding the memory controller, from mountinfo (parsed here,
/// independently of the library): v1 `memory`, else cgroup2 with `memory` in its controllers.
fn memcg_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v2 = None;
    for line in text.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let mount = pre.split(' ').nth(4)?;
        let mut f = post.split(' ');
        let (fstype, opts) = (f.next()?, f.nth(1).unwrap_or(""));
        if fstype == "cgroup" && opts.split(',').any(|o| o == "memory") {
            return Some(PathBuf::from(mount));
        }
        if fstype == "cgroup2" && v2.is_none() {
            v2 = Some(PathBuf::from(mount));
        }
    }
    let v2 = v2?;
    let ctl = std::fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    ctl.split_whitespace().any(|c| c == "memory").then_some(v2)
}

/// The test cgroup and the child inside it; dropping moves the child out, kills it, and
/// removes the directory.
struct Guard {
    dir: PathBuf,
    mount: PathBuf,
    child: Option<libc::pid_t>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            let _ = std::fs::write(self.mount.join("cgroup.procs"), pid.to_string());
            // SAFETY: plain syscalls on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

fn pgtool(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(args)
        .output()
        .expect("run pgtool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

#[test]
fn pages_of_a_child_show_under_its_new_memcg() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root (mkdir in the cgroup hierarchy, /proc/kpagecgroup)");
    }
    if std::fs::File::open("/proc/kpagecgroup").is_err() {
        return skip("/proc/kpagecgroup missing (CONFIG_MEMCG)");
    }
    let Some(mount) = memcg_mount() else {
        return skip("no memory cgroup hierarchy mounted");
    };
    let dir = mount.join(format!("pgtool-test-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        return skip(&format!("mkdir {}: {e}", dir.display()));
    }
    let mut guard = Guard {
        dir: dir.clone(),
        mount: mount.clone(),
        child: None,
    };

    let mut go = [0i32; 2];
    let mut ack = [0i32; 2];
    // SAFETY: pipe fills two fds each.
    unsafe {
        assert_eq!(libc::pipe(go.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(ack.as_mut_ptr()), 0);
    }
    // SAFETY: the child runs raw syscalls only and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls only (async-signal-safe after fork).
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut b = 0u8;
            libc::read(go[0], (&mut b as *mut u8).cast(), 1);
            let p = libc::mmap(
                std::ptr::null_mut(),
                PAGES * PS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p != libc::MAP_FAILED {
                for i in 0..PAGES {
                    p.cast::<u8>().add(i * PS).write_volatile(1);
                }
                b = 1;
            }
            libc::write(ack[1], (&b as *const u8).cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    guard.child = Some(pid);
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move child into cgroup");
    let mut b = 0u8;
    // SAFETY: one byte through our pipes.
    unsafe {
        libc::write(go[1], (&b as *const u8).cast(), 1);
        assert_eq!(libc::read(ack[0], (&mut b as *mut u8).cast(), 1), 1);
    }
    assert_eq!(b, 1, "child could not map memory");
    let ino = std::fs::metadata(&dir).expect("stat").ino();
    let dir_s = dir.to_string_lossy().into_owned();

    // --pages: the child's anonymous pages are charged to our memcg.
    let (rc, out, err) = pgtool(&["cgroup", "--pages", "--json"]);
    assert_eq!(rc, 0, "{err}");
    let recs = json_lines(&out);
    let r = recs
        .iter()
        .find(|r| r["memcg_ino"].as_u64() == Some(ino))
        .unwrap_or_else(|| panic!("memcg {ino} not in --pages: {out}"));
    assert_eq!(r["memcg_path"].as_str(), Some(dir_s.as_str()));
    assert_eq!(r["state"].as_str(), Some("online"));
    let anon = r["anon_pages"].as_u64().unwrap_or(0);
    assert!(anon >= PAGES as u64, "anon {anon} < {PAGES}: {r}");
    assert!(r["pages"].as_u64() >= Some(anon));
    // Sorted by pages, largest first.
    let pages: Vec<u64> = recs.iter().filter_map(|r| r["pages"].as_u64()).collect();
    assert!(pages.windows(2).all(|w| w[0] >= w[1]));
    // Restricting to the path gives that one row; the table names the path.
    let (rc, out, _) = pgtool(&["cgroup", "--pages", "--csv", &dir_s]);
    assert_eq!(rc, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(&format!("{ino},{dir_s},online,"))),
        "{out}"
    );
    let (rc, out, _) = pgtool(&["cgroup", "--pages"]);
    assert_eq!(rc, 0);
    assert!(out.contains(&dir_s));
    // The textfile for node_exporter: our memcg's anonymous pages, a lint-clean file.
    let tmp = tempfile::tempdir().expect("tmp");
    let prom = tmp.path().join("memcg.prom");
    let (rc, _, err) = pgtool(&[
        "cgroup",
        "--pages",
        "--prometheus",
        &prom.to_string_lossy(),
        &dir_s,
    ]);
    assert_eq!(rc, 0, "{err}");
    let text = std::fs::read_to_string(&prom).expect("prom");
    let series = format!("pgtool_memcg_resident_pages{{memcg=\"{dir_s}\",kind=\"anon\"}} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series} in {text}"));
    let v: u64 = line[series.len()..].trim().parse().expect("value");
    assert!(v >= PAGES as u64, "{line}");
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).expect("open"))
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            skip("promtool not installed (Debian package prometheus): lint not run");
        }
    }

    // Inode -> path and path -> inode, absolute and relative to the mount.
    let (rc, out, err) = pgtool(&["cgroup", "--json", &ino.to_string()]);
    assert_eq!(rc, 0, "{err}");
    let recs = json_lines(&out);
    assert!(
        recs.iter()
            .any(|r| r["memcg_path"].as_str() == Some(dir_s.as_str())
                && r["memory_controller"] == true),
        "{out}"
    );
    let rel = format!(
        "/{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    for q in [dir_s.as_str(), rel.as_str()] {
        let (rc, out, err) = pgtool(&["cgroup", "--json", q]);
        assert_eq!(rc, 0, "{q}: {err}");
        let recs = json_lines(&out);
        assert_eq!(recs[0]["memcg_ino"].as_u64(), Some(ino), "{q}: {out}");
    }
    // Library lookup for `types -c`.
    let root = pgtool::SysRoot::live();
    assert_eq!(
        pgtool::cgroup::resolve_filter(&root, &dir_s).ok(),
        Some(ino)
    );
    assert_eq!(pgtool::cgroup::resolve_filter(&root, &rel).ok(), Some(ino));
    assert_eq!(
        pgtool::cgroup::resolve_filter(&root, &format!("@{ino}")).ok(),
        Some(ino)
    );
    assert!(pgtool::cgroup::resolve_filter(&root, "/no/such/pgtool/cgroup").is_err());
    // An unknown inode is exit 1.
    let (rc, _, err) = pgtool(&["cgroup", "0xfffffffffff"]);
    assert_eq!(rc, 1, "{err}");

    // SAFETY: closing our pipe fds.
    unsafe {
        for fd in go.iter().chain(ack.iter()) {
            libc::close(*fd);
        }
    }
    drop(guard);
    assert!(
        !Path::new(&dir).exists(),
        "cleanup removed {}",
        dir.display()
    );
}
