//! Process enumeration under a [`SysRoot`]: the PIDs in `proc/`, each with its command name,
//! whether it is a kernel thread, and an identity of its address space (`mm`) so that processes
//! sharing one `mm` (`clone(CLONE_VM)` without `CLONE_THREAD`, e.g. `vfork` children or some
//! runtimes' helper processes) are read once.
//!
//! Threads need no deduplication: `/proc` lists thread-group leaders only (threads live under
//! `/proc/PID/task`).
//!
//! **How shared `mm`s are found.** Every process's `/proc/PID/stat` carries nine fields copied
//! from its `mm_struct` (`startcode`, `endcode`, `startstack`, `start_data`, `end_data`,
//! `start_brk`, `arg_start`, `arg_end`, `env_start`). Processes sharing an `mm` have equal
//! values, so those fields are a cheap *candidate* key. A forked child (own `mm`, copied) also
//! has equal values, so candidates are confirmed with `kcmp(2)` `KCMP_VM`, which compares the
//! kernel `mm` pointers. Without `kcmp` (no CONFIG_KCMP, or no ptrace access) nothing is merged:
//! reading an address space twice is slower but never wrong.
//!
//! ```no_run
//! let procs = pgtool::process::list(&pgtool::SysRoot::live())?;
//! for g in pgtool::process::group_by_mm(&procs, true) {
//!     println!("{:?}", g.iter().map(|p| p.pid).collect::<Vec<_>>());
//! }
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::collections::HashMap;

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat`.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// One process (thread-group leader) found under `proc/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// The PID (as seen in this `proc/`'s PID namespace).
    pub pid: u32,
    /// `comm` (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// A kernel thread (`PF_KTHREAD`): it has no user address space.
    pub kernel_thread: bool,
    /// The nine `mm` fields of `stat` (see the module docs); all zero for kernel threads,
    /// zombies and processes whose `mm` we may not see.
    pub mm_key: [u64; 9],
    /// Resident pages when listed (`stat` field 24), `None` when unknown (read from `status`).
    pub rss_pages: Option<u64>,
}

/// What [`list`] could not read, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Processes that exited between the directory listing and reading their `stat`.
    pub exited: u64,
    /// Processes whose `stat` could not be read or parsed for another reason.
    pub unreadable: u64,
}

/// Every process under `root`'s `proc/`, sorted by PID. Processes that exit while being listed
/// are left out and counted in the returned [`ListStats`].
///
/// On a quiet machine the listing is a good part of a one-PFN `who`, so each `stat` costs one
/// `openat` relative to `proc/` (no path to build or walk), one `read` into a buffer reused
/// throughout, and a `close`.
pub fn list_with_stats(root: &SysRoot) -> Result<(Vec<ProcInfo>, ListStats)> {
    let dir = root.proc();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    // If the directory cannot be opened as a file, each `stat` is opened by its path.
    let dirfd = std::fs::File::open(dir).ok();
    let mut out = Vec::new();
    let mut stats = ListStats::default();
    let mut buf = Vec::with_capacity(STAT_READ);
    for e in rd {
        let Ok(e) = e else {
            stats.unreadable += 1;
            continue;
        };
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == 0 {
            continue;
        }
        let read = match &dirfd {
            Some(d) => open_stat_at(d, pid),
            None => std::fs::File::open(root.pid_file(pid, "stat")),
        }
        .and_then(|f| read_stat_file(f, &mut buf, root.is_live()));
        match read {
            Ok(()) => match parse_stat(pid, &buf) {
                Some(info) => out.push(info),
                None => stats.unreadable += 1,
            },
            Err(e) if is_gone(&e) => match from_status(root, pid) {
                Some(info) => out.push(info),
                None => stats.exited += 1,
            },
            Err(_) => stats.unreadable += 1,
        }
    }
    out.sort_by_key(|p| p.pid);
    Ok((out, stats))
}

/// The most bytes one `read` of `stat` asks for: a line is a few hundred bytes (52 numbers and
/// a comm of at most 64 bytes), so a live one always fits.
const STAT_READ: usize = 4096;

fn is_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// Open `PID/stat` relative to the open `proc/` directory `dir`.
fn open_stat_at(dir: &std::fs::File, pid: u32) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut name = [0u8; 24];
    let mut w = &mut name[..];
    // "4294967295/stat" and its NUL fit in 24 bytes.
    write!(w, "{pid}/stat\0")?;
    // SAFETY: `name` holds a NUL-terminated path; openat reads it and the directory's
    // descriptor, which `dir` keeps open for the call.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Read a `stat` file into `buf`. A live one is generated whole by the first read (a
/// seq_file `single_open` with room to spare) and ends in its newline: that read is enough.
/// Otherwise (a snapshot's file, or a line longer than one read) read to the end, at most
/// `MAX_STATUS` bytes (a damaged snapshot's file).
fn read_stat_file(mut f: std::fs::File, buf: &mut Vec<u8>, live: bool) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    let mut chunk = [0u8; STAT_READ];
    loop {
        let n = match f.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = (MAX_STATUS as usize).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        if n == 0 || n >= room || (live && buf.ends_with(b"\n")) {
            return Ok(());
        }
    }
}

/// Read and parse `stat` of `pid` into `buf`: `Ok(None)` when it does not parse.
fn read_stat(root: &SysRoot, pid: u32, buf: &mut Vec<u8>) -> std::io::Result<Option<ProcInfo>> {
    let f = std::fs::File::open(root.pid_file(pid, "stat"))?;
    read_stat_file(f, buf, root.is_live())?;
    Ok(parse_stat(pid, buf))
}

/// Parse a `/proc/PID/stat` line (proc(5)): comm between the first `(` and the last `)`
/// (it may hold spaces and parentheses), then fields 3 onwards separated by spaces.
fn parse_stat(pid: u32, line: &[u8]) -> Option<ProcInfo> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    // Field N of proc(5) (1-based; `state` is field 3) at index N; only those used are parsed
    // (`None`: absent or not a number), in one pass without collecting the fields.
    let mut f = [None::<u64>; LAST_FIELD + 1];
    for (n, v) in (3..=LAST_FIELD).zip(rest.split_ascii_whitespace()) {
        if matches!(n, 9 | 24 | 26..=28 | 45..=50) {
            f[n] = v.parse::<u64>().ok();
        }
    }
    let flags = f[9]?;
    // Fields 45-50 exist since Linux 3.3; zero keeps an older kernel's processes unmerged
    // only if every field is zero, which the first three never are for a user process.
    let o = |n: usize| f[n].unwrap_or(0);
    Some(ProcInfo {
        pid,
        comm: String::from_utf8_lossy(&line[open + 1..close]).into_owned(),
        kernel_thread: flags as u32 & PF_KTHREAD != 0,
        mm_key: [
            f[26]?,
            f[27]?,
            f[28]?,
            o(45),
            o(46),
            o(47),
            o(48),
            o(49),
            o(50),
        ],
        rss_pages: f[24],
    })
}

/// The last field of `stat` [`parse_stat`] reads (`env_end`).
const LAST_FIELD: usize = 50;

/// Every process under `root`'s `proc/`, sorted by PID (see [`list_with_stats`]).
pub fn list(root: &SysRoot) -> Result<Vec<ProcInfo>> {
    list_with_stats(root).map(|(v, _)| v)
}

/// Read one process. A missing process is [`Error::NoSuchProcess`].
pub fn get(root: &SysRoot, pid: u32) -> Result<ProcInfo> {
    let path = root.pid_file(pid, "stat");
    match read_stat(root, pid, &mut Vec::new()) {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(Error::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not a stat line"),
        )),
        Err(e) if is_gone(&e) => from_status(root, pid).ok_or(Error::NoSuchProcess { pid }),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The most bytes of `status` or `comm` read.
const MAX_STATUS: u64 = 64 << 10;

/// A process known from `comm` and `status` alone: a snapshot saves those but not `stat`.
/// The address-space key is unknown (zero), so such a process is never merged with another.
fn from_status(root: &SysRoot, pid: u32) -> Option<ProcInfo> {
    use std::io::Read;
    let read = |name: &str| -> Option<String> {
        let f = std::fs::File::open(root.pid_file(pid, name)).ok()?;
        let mut v = Vec::new();
        f.take(MAX_STATUS).read_to_end(&mut v).ok()?;
        Some(String::from_utf8_lossy(&v).into_owned())
    };
    let status = read("status");
    let field = |key: &str| {
        status.as_deref().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        })
    };
    let comm = read("comm")
        .map(|c| c.trim_end_matches('\n').to_string())
        .or_else(|| field("Name:"))?;
    Some(ProcInfo {
        pid,
        comm,
        // `Kthread:` since Linux 6.3; older snapshots: a kernel thread's maps is empty, and
        // an empty maps is skipped anyway.
        kernel_thread: field("Kthread:").as_deref() == Some("1"),
        mm_key: [0; 9],
        rss_pages: None,
    })
}

/// `kcmp(pid1, pid2, KCMP_VM)`: `Some(true)` when both share one `mm`, `Some(false)` when not,
/// `None` when the kernel cannot tell us (no CONFIG_KCMP, no permission, a process gone).
pub fn same_mm(pid1: u32, pid2: u32) -> Option<bool> {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp takes five integer arguments and touches no user memory for KCMP_VM.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid1 as libc::c_long,
            pid2 as libc::c_long,
            KCMP_VM,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    match r {
        0 => Some(true),
        1..=3 => Some(false),
        _ => None,
    }
}

/// Group user processes by address space: each inner Vec holds the processes sharing one `mm`
/// (usually just one), the first being the lowest PID. Kernel threads are left out. Candidates
/// come from [`ProcInfo::mm_key`] and are confirmed with [`same_mm`], so forked children with an
/// identical layout stay separate. `live` must be false for a snapshot or fixture tree: its PIDs
/// are not this kernel's, so nothing is merged.
pub fn group_by_mm(procs: &[ProcInfo], live: bool) -> Vec<Vec<&ProcInfo>> {
    let mut by_key: HashMap<[u64; 9], Vec<&ProcInfo>> = HashMap::new();
    let mut groups: Vec<Vec<&ProcInfo>> = Vec::new();
    for p in procs.iter().filter(|p| !p.kernel_thread) {
        if p.mm_key == [0; 9] || !live {
            groups.push(vec![p]);
        } else {
            by_key.entry(p.mm_key).or_default().push(p);
        }
    }
    for (_, cands) in by_key {
        if cands.len() == 1 {
            groups.push(cands);
            continue;
        }
        // Few candidates share a key (forks that did not exec); pairwise kcmp is fine.
        let mut local: Vec<Vec<&ProcInfo>> = Vec::new();
        for p in cands {
            match local
                .iter_mut()
                .find(|g| same_mm(g[0].pid, p.pid) == Some(true))
            {
                Some(g) => g.push(p),
                None => local.push(vec![p]),
            }
        }
        groups.extend(local);
    }
    groups.sort_by_key(|g| g[0].pid);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_self_and_finds_kernel_threads() {
        let root = SysRoot::live();
        let me = std::process::id();
        let p = get(&root, me).expect("self");
        assert!(!p.kernel_thread);
        assert_ne!(p.mm_key, [0; 9]);
        let all = list(&root).expect("list");
        assert!(all.iter().any(|q| q.pid == me));
        assert!(all.windows(2).all(|w| w[0].pid < w[1].pid));
        // kthreadd is PID 2 in the initial PID namespace.
        if let Some(k) = all.iter().find(|q| q.pid == 2 && q.comm == "kthreadd") {
            assert!(k.kernel_thread);
        }
        assert!(matches!(
            get(&root, u32::MAX - 1),
            Err(Error::NoSuchProcess { .. })
        ));
    }

    #[test]
    fn stat_lines() {
        let line = b"4242 (a) (b c) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 9 1 1 1 \
            4096 8192 16384 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 20480 24576 28672 32768 36864 40960 \
            45056 0\n";
        let p = parse_stat(4242, line).expect("parses");
        assert_eq!((p.comm.as_str(), p.kernel_thread), ("a) (b c", false));
        assert_eq!(
            p.mm_key,
            [4096, 8192, 16384, 20480, 24576, 28672, 32768, 36864, 40960]
        );
        let k = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0 1 0 0 0 0 0 \
            0 0 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let k = parse_stat(2, k).expect("parses");
        assert!(k.kernel_thread && k.mm_key == [0; 9]);
        assert_eq!((p.rss_pages, k.rss_pages), (Some(1), Some(0)));
        // Before Linux 3.3: no fields 45-50.
        let old = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 1 1 1 4096 8192 16384\n";
        assert_eq!(
            parse_stat(7, old).expect("parses").mm_key[..3],
            [4096, 8192, 16384]
        );
        for bad in [
            &b"1 (x S 1"[..],
            b"1 x) S",
            b"1 (x) S 1 2",
            b"",
            b"1 (x) S 1 2 3 4 5 z",
        ] {
            assert!(
                parse_stat(1, bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest::proptest! {
        // A snapshot's `stat` is untrusted input: any bytes parse or are refused, never panic,
        // and a valid line with its comm replaced keeps every other field.
        #[test]
        fn stat_parser_takes_any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            comm in "\\PC{0,20}",
        ) {
            let _ = parse_stat(1, &bytes);
            let line = format!("9 ({comm}) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 1 5 1 4096 8192 16384\n");
            let p = parse_stat(9, line.as_bytes()).expect("a valid line parses");
            proptest::prop_assert_eq!(p.comm, comm);
            proptest::prop_assert_eq!((p.rss_pages, p.mm_key[..3].to_vec()), (Some(5), vec![4096, 8192, 16384]));
        }
    }

    #[test]
    fn snapshot_processes_without_stat() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("proc/77");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(p.join("comm"), "app\n").expect("comm");
        std::fs::write(p.join("status"), "Name:\tapp\nKthread:\t0\n").expect("status");
        let k = d.path().join("proc/2");
        std::fs::create_dir_all(&k).expect("mkdir");
        std::fs::write(k.join("status"), "Name:\tkthreadd\nKthread:\t1\n").expect("status");
        let root = SysRoot::at(d.path());
        let (all, stats) = list_with_stats(&root).expect("list");
        assert_eq!(stats, ListStats::default());
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].comm.as_str(), all[0].kernel_thread),
            ("kthreadd", true)
        );
        assert_eq!((all[1].comm.as_str(), all[1].kernel_thread), ("app", false));
        assert_eq!(get(&root, 77).expect("77").comm, "app");
        assert!(matches!(get(&root, 78), Err(Error::NoSuchProcess { .. })));
    }

    #[test]
    fn kcmp_tells_self_from_parent() {
        let me = std::process::id();
        if same_mm(me, me).is_none() {
            eprintln!("skipping: kcmp(2) not available");
            return;
        }
        assert_eq!(same_mm(me, me), Some(true));
        let parent = std::os::unix::process::parent_id();
        match same_mm(me, parent) {
            // kcmp on another process needs ptrace access to it (not granted to an
            // unprivileged test run under a root parent).
            None => eprintln!("kcmp against parent {parent} not permitted; checked self only"),
            other => assert_eq!(other, Some(false)),
        }
    }
}
