//! Which processes `mem` reads: every address space under `proc/`, with what the filters need
//! (`status`: uid, parent; `cgroup`: the process's memory cgroup), read from the live system or a
//! snapshot tree (which has `status`, `comm`, `cgroup` but no `stat`).

use crate::error::{Error, Result};
use crate::process;
use crate::root::SysRoot;
use std::collections::{HashMap, HashSet};

/// One address space to read: its lowest PID and the others sharing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The PID read (lowest of those sharing the address space).
    pub pid: u32,
    /// Other PIDs sharing this address space (`clone(CLONE_VM)` without `CLONE_THREAD`).
    pub also: Vec<u32>,
    /// Command name.
    pub comm: String,
    /// Real uid (`status` `Uid:`), when readable.
    pub uid: Option<u32>,
    /// Parent PID (`status` `PPid:`).
    pub ppid: Option<u32>,
}

/// What `status` says about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `Name:`
    pub name: Option<String>,
    /// Real uid.
    pub uid: Option<u32>,
    /// `PPid:`
    pub ppid: Option<u32>,
    /// `Kthread: 1`, or no `VmSize:` line (kernel threads have no address space).
    pub kernel_thread: bool,
    /// `State:` Z or X: exited, not yet reaped (its address space is gone).
    pub dead: bool,
}

/// Parse `/proc/PID/status` text.
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    let mut vm = false;
    let mut kthread_field = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Name" => s.name = Some(v.to_string()),
            "Uid" => s.uid = v.split_whitespace().next().and_then(|x| x.parse().ok()),
            "PPid" => s.ppid = v.parse().ok(),
            "Kthread" => kthread_field = Some(v == "1"),
            "VmSize" => vm = true,
            "State" => s.dead = v.starts_with('Z') || v.starts_with('X'),
            _ => {}
        }
    }
    s.kernel_thread = kthread_field.unwrap_or(!vm);
    s
}

/// Read `status` of `pid`; `None` when the process is gone or unreadable.
pub fn read_status(root: &SysRoot, pid: u32) -> Option<Status> {
    std::fs::read_to_string(root.pid_file(pid, "status"))
        .ok()
        .map(|t| parse_status(&t))
}

/// Every user address space under `root`, with the count of processes that vanished while
/// listing. Live: processes sharing an `mm` are merged (see [`process::group_by_mm`]).
/// Snapshot: every saved PID directory, each its own address space.
pub fn list_targets(root: &SysRoot) -> Result<(Vec<Target>, u64)> {
    let mut out = Vec::new();
    let mut gone = 0u64;
    if root.is_live() {
        let (procs, stats) = process::list_with_stats(root)?;
        gone += stats.exited;
        for g in process::group_by_mm(&procs, true) {
            let Some(first) = g.first() else { continue };
            let Some(st) = read_status(root, first.pid) else {
                gone += 1;
                continue;
            };
            if st.kernel_thread {
                continue; // a zombie or a process that lost its mm
            }
            out.push(Target {
                pid: first.pid,
                also: g[1..].iter().map(|p| p.pid).collect(),
                comm: first.comm.clone(),
                uid: st.uid,
                ppid: st.ppid,
            });
        }
        return Ok((out, gone));
    }
    let dir = root.proc();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut pids: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&p| p > 0)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let st = read_status(root, pid).unwrap_or_default();
        // A kernel thread has no mappings; a status without VmSize alone (a hand-made tree)
        // does not make one.
        let no_maps = std::fs::metadata(root.pid_file(pid, "maps")).is_ok_and(|m| m.len() == 0);
        if st.kernel_thread && no_maps {
            continue;
        }
        let comm = std::fs::read_to_string(root.pid_file(pid, "comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_string())
            .or(st.name.clone())
            .unwrap_or_default();
        out.push(Target {
            pid,
            also: Vec::new(),
            comm,
            uid: st.uid,
            ppid: st.ppid,
        });
    }
    Ok((out, gone))
}

/// `pids` and all their descendants among `targets` (by `PPid`).
pub fn with_descendants(targets: &[Target], pids: &[u32]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for t in targets {
        if let Some(pp) = t.ppid {
            for p in std::iter::once(t.pid).chain(t.also.iter().copied()) {
                children.entry(pp).or_default().push(p);
            }
        }
    }
    let mut seen: HashSet<u32> = HashSet::new();
    let mut stack: Vec<u32> = pids.to_vec();
    while let Some(p) = stack.pop() {
        if seen.insert(p)
            && let Some(c) = children.get(&p)
        {
            stack.extend(c);
        }
    }
    seen
}

/// The cgroup path (relative to its hierarchy's mount, starting with `/`) of `pid` in the
/// hierarchy `kind` (`v1-memory`: the line naming the `memory` controller; `v2`: the `0::`
/// line), from `/proc/PID/cgroup`.
pub fn cgroup_of(root: &SysRoot, pid: u32, kind: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.pid_file(pid, "cgroup")).ok()?;
    parse_cgroup_line(&text, kind)
}

/// See [`cgroup_of`].
pub fn parse_cgroup_line(text: &str, kind: &str) -> Option<String> {
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = match kind {
            "v2" => id == "0" && ctrls.is_empty(),
            _ => ctrls.split(',').any(|c| c == "memory"),
        };
        if hit {
            return Some(path.to_string());
        }
    }
    None
}

/// True when cgroup path `p` is `want` or below it.
pub fn cgroup_within(p: &str, want: &str) -> bool {
    let want = want.trim_end_matches('/');
    want.is_empty() || p == want || p.strip_prefix(want).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_cgroup_lines() {
        let s =
            parse_status("Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nPPid:\t1\nVmSize:\t 10 kB\n");
        assert_eq!(
            (s.name.as_deref(), s.uid, s.ppid, s.kernel_thread),
            (Some("bash"), Some(1000), Some(1), false)
        );
        assert!(parse_status("Name:\tkthreadd\nPPid:\t0\n").kernel_thread);
        assert!(parse_status("Name:\tx\nKthread:\t1\nVmSize: 1 kB\n").kernel_thread);
        let cg = "12:pids:/a\n4:memory:/user.slice/x\n0::/init.scope\n";
        assert_eq!(
            parse_cgroup_line(cg, "v1-memory").as_deref(),
            Some("/user.slice/x")
        );
        assert_eq!(parse_cgroup_line(cg, "v2").as_deref(), Some("/init.scope"));
        assert!(cgroup_within("/user.slice/x", "/user.slice"));
        assert!(cgroup_within("/user.slice", "/user.slice/"));
        assert!(!cgroup_within("/user.slicex", "/user.slice"));
        assert!(cgroup_within("/anything", "/"));
    }

    #[test]
    fn descendants_follow_ppid() {
        let t = |pid, ppid| Target {
            pid,
            also: vec![],
            comm: String::new(),
            uid: None,
            ppid: Some(ppid),
        };
        let ts = vec![t(10, 1), t(11, 10), t(12, 11), t(13, 1)];
        let d = with_descendants(&ts, &[10]);
        assert!(d.contains(&10) && d.contains(&11) && d.contains(&12) && !d.contains(&13));
    }
}
