//! Shared test helpers: a synthetic proc tree (fixture), running the pgtool binary, re-executing
//! the test binary as a child process, and the root/CI skip rule.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The fixture's process.
pub const PID: u32 = 1234;
/// PFNs covered by the fixture's kpage* files.
pub const NPFNS: u64 = 0x401;

pub const PRESENT: u64 = 1 << 63;
pub const SWAPPED: u64 = 1 << 62;
pub const FILE: u64 = 1 << 61;
pub const GUARD: u64 = 1 << 58;
pub const UFFD_WP: u64 = 1 << 57;
pub const EXCL: u64 = 1 << 56;
pub const SOFT_DIRTY: u64 = 1 << 55;

// kpageflags bits
pub const K_REFERENCED: u64 = 1 << 2;
pub const K_UPTODATE: u64 = 1 << 3;
pub const K_LRU: u64 = 1 << 5;
pub const K_MMAP: u64 = 1 << 11;
pub const K_ANON: u64 = 1 << 12;
pub const K_SWAPBACKED: u64 = 1 << 14;
pub const K_HEAD: u64 = 1 << 15;
pub const K_TAIL: u64 = 1 << 16;
pub const K_THP: u64 = 1 << 22;
pub const K_MAPPEDTODISK: u64 = 1 << 34;

pub const MAPS: &str = "\
00400000-00402000 r-xp 00000000 08:01 1001                       /usr/bin/fixture
7f0000000000-7f0000004000 rw-p 00000000 00:00 0 
7f0000200000-7f0000600000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00002000 rw-p 00000000 00:00 0                  [stack]
";

pub const IOMEM: &str = "\
00000000-00000fff : Reserved
00001000-003fffff : System RAM
  00100000-001fffff : Kernel code
00400000-004fffff : PCI Bus 0000:00
";

pub const CGROUPS: &str = "42\tv2\t/sys/fs/cgroup/fixture.slice\n";

/// The pagemap words of the fixture, by virtual address.
pub fn pagemap_entries() -> Vec<(u64, u64)> {
    let mut v = vec![
        (0x400000, PRESENT | FILE | 0x100),
        (0x401000, 0),
        (0x7f00_0000_0000, PRESENT | EXCL | SOFT_DIRTY | 0x101),
        (0x7f00_0000_1000, SWAPPED | (0x1234 << 5) | 3),
        (0x7f00_0000_2000, PRESENT | UFFD_WP | EXCL | 0x102),
        (0x7f00_0000_3000, GUARD),
        (0x7ffd_0000_0000, PRESENT | EXCL | 0x480), // PFN past the end of kpage*
    ];
    for i in 0..512u64 {
        v.push((0x7f00_0020_0000 + i * 4096, PRESENT | EXCL | (0x200 + i)));
    }
    v
}

/// kpageflags / kpagecount / kpagecgroup words, by PFN.
pub fn kpage_words() -> Vec<(u64, u64, u64, u64)> {
    let mut v = vec![
        (
            0x100,
            K_REFERENCED | K_UPTODATE | K_LRU | K_MMAP | K_MAPPEDTODISK,
            3,
            42,
        ),
        (
            0x101,
            K_UPTODATE | K_LRU | K_MMAP | K_ANON | K_SWAPBACKED,
            1,
            42,
        ),
        (0x102, K_UPTODATE | K_MMAP | K_ANON | K_SWAPBACKED, 1, 0),
    ];
    for i in 0..512u64 {
        let f = K_UPTODATE | K_MMAP | K_ANON | K_SWAPBACKED | K_THP;
        v.push((0x200 + i, f | if i == 0 { K_HEAD } else { K_TAIL }, 1, 42));
    }
    // a neighbouring folio right after the THP: its head must stop the forward walk
    v.push((0x400, K_UPTODATE | K_HEAD | K_THP, 1, 0));
    v
}

/// Write a fixture tree under `dir`; returns the root dir.
pub fn write_fixture(dir: &Path) -> PathBuf {
    let proc_ = dir.join("proc");
    let pid = proc_.join(PID.to_string());
    std::fs::create_dir_all(&pid).expect("mkdir");
    std::fs::write(pid.join("maps"), MAPS).expect("maps");
    std::fs::write(pid.join("comm"), "fixture\n").expect("comm");
    std::fs::write(pid.join("status"), "Name:\tfixture\nPid:\t1234\n").expect("status");
    let pm = std::fs::File::create(pid.join("pagemap")).expect("pagemap");
    for (addr, w) in pagemap_entries() {
        pm.write_all_at(&w.to_ne_bytes(), addr / 4096 * 8)
            .expect("pwrite");
    }
    pm.set_len(0x7ffd_0000_2000 / 4096 * 8).expect("len");
    let mut flags = vec![0u64; NPFNS as usize];
    let mut count = vec![0u64; NPFNS as usize];
    let mut cg = vec![0u64; NPFNS as usize];
    for (pfn, f, c, g) in kpage_words() {
        if pfn < NPFNS {
            flags[pfn as usize] = f;
            count[pfn as usize] = c;
            cg[pfn as usize] = g;
        }
    }
    for (name, words) in [
        ("kpageflags", &flags),
        ("kpagecount", &count),
        ("kpagecgroup", &cg),
    ] {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        std::fs::write(proc_.join(name), bytes).expect("kpage");
    }
    std::fs::write(proc_.join("iomem"), IOMEM).expect("iomem");
    std::fs::write(dir.join("cgroup-inodes.tsv"), CGROUPS).expect("tsv");
    std::fs::create_dir_all(dir.join("sys")).expect("sys");
    std::fs::create_dir_all(dir.join("debugfs")).expect("debugfs");
    dir.to_path_buf()
}

/// Result of running pgtool.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The pgtool binary under test: cargo's, or `$PGTOOL_TEST_BIN` (tools/selftest.sh points it
/// at a deliberately broken pgtool to prove that the suite notices).
pub fn pgtool_bin() -> PathBuf {
    std::env::var_os("PGTOOL_TEST_BIN")
        .filter(|b| !b.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pgtool")))
}

/// The project's root (where Cargo.toml is).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run the pgtool binary with `args`.
pub fn pgtool(args: &[&str]) -> Run {
    run_cmd(Command::new(pgtool_bin()).args(args))
}

/// Run pgtool as nobody (uid and gid 65534) with `args`, from a copy in `dir` that nobody can
/// execute whatever the permissions of the build tree (a checkout under a 0700 directory).
/// Another test thread may fork while the copy is open for writing: the exec then fails with
/// ETXTBSY until that child execs, so it is retried a little.
pub fn pgtool_as_nobody(dir: &Path, args: &[&str]) -> Run {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let bin = dir.join("pgtool");
    if !bin.exists() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::copy(pgtool_bin(), &bin).expect("copy pgtool");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut tries = 0;
    loop {
        match Command::new(&bin).args(args).uid(65534).gid(65534).output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => {
                let out = other.expect("run pgtool as nobody");
                return Run {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
            }
        }
    }
}

pub fn run_cmd(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run pgtool");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Parse JSON Lines.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The name of the running test: libtest names each test's thread after it.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_owned(),
        _ => std::env::args()
            .next()
            .and_then(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "test".to_owned()),
    }
}

/// The one skip rule: a test whose prerequisite is missing calls this and returns when it
/// gets `true`. Under `CI` it panics with the reason (a missing prerequisite is a failure
/// there); otherwise it prints one `SKIP <test>: <reason>` line, and appends the same line to
/// the file named by `PGTOOL_SKIP_LOG` (tools/test.sh collects them and repeats them at the end).
pub fn skip_or_fail(test: &str, reason: &str) -> bool {
    let reason = reason.replace('\n', " ");
    if std::env::var_os("CI").is_some() {
        panic!("{test}: prerequisite missing under CI: {reason}");
    }
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("PGTOOL_SKIP_LOG") {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log);
        match f {
            // one write of a whole line: O_APPEND keeps lines of parallel tests apart
            Ok(mut f) => {
                let _ = f.write_all(format!("{line}\n").as_bytes());
            }
            Err(e) => eprintln!("cannot append to PGTOOL_SKIP_LOG {log:?}: {e}"),
        }
    }
    true
}

/// [`skip_or_fail`] for the running test (named after its thread).
pub fn skip(reason: &str) -> bool {
    skip_or_fail(&test_name(), reason)
}

/// The reference tools' directory: `$PGTOOL_REF_DIR`, else `~/.cache/pgtool-ref` (where
/// tools/build-reference.sh puts them). The binaries are in its `bin/`, the sources in `src/`.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("PGTOOL_REF_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pgtool-ref")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent/pgtool-ref"))
}

/// A reference tool (`page-types`, `page_owner_sort`) when it is there and executable.
pub fn reference(tool: &str) -> Option<PathBuf> {
    let p = reference_dir().join("bin").join(tool);
    let meta = std::fs::metadata(&p).ok()?;
    use std::os::unix::fs::PermissionsExt;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(p)
}

/// [`reference`], or the skip rule with the reason (fails under `CI`).
pub fn need_reference(tool: &str) -> Option<PathBuf> {
    let p = reference(tool);
    if p.is_none() {
        skip(&format!(
            "reference {tool} not found at {} (PGTOOL_REF_DIR={}; build it with \
             tools/build-reference.sh)",
            reference_dir().join("bin").join(tool).display(),
            reference_dir().display()
        ));
    }
    p
}

/// Root, or the skip rule with `why` (fails under `CI`).
pub fn need_root(why: &str) -> bool {
    is_root() || !skip(&format!("needs root ({why})"))
}

/// A child process: the test binary re-executed to run one `#[test]` function as a helper
/// (it sees `PGTOOL_TEST_CHILD=1`). It prints `ADDR name 0xHEX` / `PATH name path` lines, then
/// `READY`, then blocks until its stdin closes.
pub struct Child {
    pub pid: u32,
    pub addrs: std::collections::HashMap<String, u64>,
    pub paths: std::collections::HashMap<String, String>,
    child: std::process::Child,
}

impl Child {
    pub fn spawn(test_fn: &str) -> Child {
        Child::spawn_with(test_fn, &[])
    }

    /// [`Child::spawn`] with extra environment variables for the child.
    pub fn spawn_with(test_fn: &str, env: &[(&str, &str)]) -> Child {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([test_fn, "--exact", "--nocapture", "--test-threads=1"])
            .env("PGTOOL_TEST_CHILD", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let out = child.stdout.take().expect("stdout");
        let mut addrs = std::collections::HashMap::new();
        let mut paths = std::collections::HashMap::new();
        for line in BufReader::new(out).lines() {
            let line = line.expect("read child");
            // the test harness may print "test NAME ... " in front of the first line
            let start = ["ADDR ", "PATH ", "READY"]
                .iter()
                .filter_map(|k| line.find(k))
                .min();
            let Some(start) = start else { continue };
            let f: Vec<&str> = line[start..].splitn(3, ' ').collect();
            match f.as_slice() {
                ["READY"] => break,
                ["ADDR", name, v] => {
                    let v = u64::from_str_radix(v.trim().trim_start_matches("0x"), 16)
                        .unwrap_or_else(|e| panic!("child line {line:?}: {e}"));
                    addrs.insert(name.to_string(), v);
                }
                ["PATH", name, p] => {
                    paths.insert(name.to_string(), p.to_string());
                }
                _ => {}
            }
        }
        assert!(!addrs.is_empty(), "child printed no addresses");
        Child {
            pid: child.id(),
            addrs,
            paths,
            child,
        }
    }

    pub fn addr(&self, name: &str) -> u64 {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no address {name}"))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: true when this process is the helper child.
pub fn in_child() -> bool {
    std::env::var_os("PGTOOL_TEST_CHILD").is_some()
}

/// In the child: print a line to the parent.
pub fn tell(line: &str) {
    let mut o = std::io::stdout();
    let _ = o.write_all(line.as_bytes());
    let _ = o.write_all(b"\n");
    let _ = o.flush();
}

/// In the child: block until stdin is closed, then exit.
pub fn wait_for_eof_and_exit() -> ! {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a valid local buffer from fd 0.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
    }
    // SAFETY: _exit ends the process without running destructors (fine for a helper child).
    unsafe { libc::_exit(0) }
}
