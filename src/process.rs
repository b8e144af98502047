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
pub fn list_with_stats(root: &SysRoot) -> Result<(Vec<ProcInfo>, ListStats)> {
    let iter = procfs::process::all_processes_with_root(root.proc()).map_err(|e| {
        Error::io(
            root.proc(),
            std::io::Error::other(format!("listing processes: {e}")),
        )
    })?;
    let mut out = Vec::new();
    let mut stats = ListStats::default();
    for p in iter {
        let p = match p {
            Ok(p) => p,
            Err(procfs::ProcError::NotFound(_)) => {
                stats.exited += 1;
                continue;
            }
            Err(_) => {
                stats.unreadable += 1;
                continue;
            }
        };
        let Ok(pid) = u32::try_from(p.pid()) else {
            continue;
        };
        match p.stat() {
            Ok(st) => out.push(from_stat(pid, &st)),
            Err(procfs::ProcError::NotFound(_)) => match from_status(root, pid) {
                Some(info) => out.push(info),
                None => stats.exited += 1,
            },
            Err(_) => stats.unreadable += 1,
        }
    }
    out.sort_by_key(|p| p.pid);
    Ok((out, stats))
}

/// Every process under `root`'s `proc/`, sorted by PID (see [`list_with_stats`]).
pub fn list(root: &SysRoot) -> Result<Vec<ProcInfo>> {
    list_with_stats(root).map(|(v, _)| v)
}

/// Read one process. A missing process is [`Error::NoSuchProcess`].
pub fn get(root: &SysRoot, pid: u32) -> Result<ProcInfo> {
    let dir = root.pid_dir(pid);
    let p = procfs::process::Process::new_with_root(dir.clone())
        .map_err(|e| proc_error(pid, &dir, e))?;
    match p.stat() {
        Ok(st) => Ok(from_stat(pid, &st)),
        Err(procfs::ProcError::NotFound(_)) if let Some(info) = from_status(root, pid) => Ok(info),
        Err(e) => Err(proc_error(pid, &dir, e)),
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
    })
}

fn proc_error(pid: u32, dir: &std::path::Path, e: procfs::ProcError) -> Error {
    match e {
        procfs::ProcError::NotFound(_) => Error::NoSuchProcess { pid },
        other => Error::io(dir.join("stat"), std::io::Error::other(other.to_string())),
    }
}

fn from_stat(pid: u32, st: &procfs::process::Stat) -> ProcInfo {
    let o = |v: Option<u64>| v.unwrap_or(0);
    ProcInfo {
        pid,
        comm: st.comm.clone(),
        kernel_thread: st.flags & PF_KTHREAD != 0,
        mm_key: [
            st.startcode,
            st.endcode,
            st.startstack,
            o(st.start_data),
            o(st.end_data),
            o(st.start_brk),
            o(st.arg_start),
            o(st.arg_end),
            o(st.env_start),
        ],
    }
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
