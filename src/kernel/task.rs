//! Finding a PID's task_struct: walk the list of thread-group leaders from `init_task.tasks`
//! through kcore, with the field offsets of the running kernel's BTF, and each leader's
//! threads when the PID is not a leader. Every walk is bounded by [`MAX_TASKS`] steps.

use super::{Btf, Kallsyms, Kcore};
use crate::error::{Error, Result};

/// The most list entries a walk follows (a loop in a damaged list ends there).
pub const MAX_TASKS: usize = 4_000_000;

/// A task found in kernel memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRef {
    /// Address of its task_struct.
    pub addr: u64,
    /// Its `pid` field (the thread id).
    pub pid: u32,
    /// Its `comm`.
    pub comm: String,
}

/// The bytes of one `type_name` at kernel address `addr`.
pub fn read_struct(kcore: &Kcore, btf: &Btf, type_name: &str, addr: u64) -> Result<Vec<u8>> {
    let id = btf.struct_id(type_name)?;
    let size = btf.size_of(id).unwrap_or(0) as usize;
    let mut buf = vec![0u8; size.min(super::kcore::MAX_READ)];
    kcore.read_virt(addr, &mut buf)?;
    Ok(buf)
}

struct Offsets {
    tasks: u64,
    pid: u64,
    comm: u64,
    comm_len: usize,
}

/// The task_struct of `pid` (0: `init_task`, the idle task of CPU 0).
pub fn find_task(btf: &Btf, kcore: &Kcore, syms: &Kallsyms, pid: u32) -> Result<TaskRef> {
    let init = syms.address_of("init_task").ok_or_else(|| {
        Error::NotFound("no symbol init_task in /proc/kallsyms (kernel data symbols needed: CONFIG_KALLSYMS_ALL)".into())
    })?;
    let off = Offsets {
        tasks: btf.field("task_struct", "tasks")?.offset(),
        pid: btf.field("task_struct", "pid")?.offset(),
        comm: btf.field("task_struct", "comm")?.offset(),
        comm_len: btf.field("task_struct", "comm")?.size.min(64) as usize,
    };
    let read = |task: u64| -> Result<TaskRef> {
        let p = kcore.read_u32(task.wrapping_add(off.pid))?;
        let mut c = vec![0u8; off.comm_len];
        kcore.read_virt(task.wrapping_add(off.comm), &mut c)?;
        let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
        Ok(TaskRef {
            addr: task,
            pid: p,
            comm: String::from_utf8_lossy(&c[..end]).into_owned(),
        })
    };
    let leaders = walk(kcore, init.wrapping_add(off.tasks), off.tasks)?;
    for &t in std::iter::once(&init).chain(&leaders) {
        if kcore.read_u32(t.wrapping_add(off.pid))? == pid {
            return read(t);
        }
    }
    // Not a leader: look through each leader's threads (6.7+ lists them on
    // signal->thread_head by thread_node, older kernels on the leader's thread_group).
    let threads = match btf.field("task_struct", "thread_group") {
        Ok(tg) => Some((None, tg.offset())),
        Err(_) => match (
            btf.field("task_struct", "signal"),
            btf.field("signal_struct", "thread_head"),
            btf.field("task_struct", "thread_node"),
        ) {
            (Ok(s), Ok(h), Ok(n)) => Some((Some((s.offset(), h.offset())), n.offset())),
            _ => None,
        },
    };
    if let Some((signal, node)) = threads {
        for &leader in &leaders {
            let head = match signal {
                None => leader.wrapping_add(node),
                Some((s, h)) => kcore.read_u64(leader.wrapping_add(s))?.wrapping_add(h),
            };
            for t in walk(kcore, head, node)? {
                if kcore.read_u32(t.wrapping_add(off.pid))? == pid {
                    return read(t);
                }
            }
        }
    }
    Err(Error::NoSuchProcess { pid })
}

/// The entries of the kernel list whose head is at `head`, each `link` bytes into its
/// struct: the struct addresses, the head itself not included (when the head is an entry's
/// own link, as init_task.tasks or a leader's thread_group, that entry is the caller's).
fn walk(kcore: &Kcore, head: u64, link: u64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let mut cur = kcore.read_u64(head)?;
    // Brent's cycle detection: a loop that never comes back to the head (a list changing
    // under us) ends at once instead of after MAX_TASKS reads, in constant memory.
    let (mut mark, mut power, mut steps) = (head, 1usize, 0usize);
    while cur != head {
        if cur == mark || out.len() >= MAX_TASKS {
            return Err(Error::NotFound(format!(
                "the task list from {head:#x} loops without coming back to its head after {} entries (it changed under us, or is damaged)",
                out.len()
            )));
        }
        if cur == 0 {
            return Err(Error::NotFound(format!(
                "a NULL link in the task list from {head:#x} (it changed under us)"
            )));
        }
        out.push(cur.wrapping_sub(link));
        steps += 1;
        if steps == power {
            mark = cur;
            power *= 2;
            steps = 0;
        }
        cur = kcore.read_u64(cur)?;
    }
    Ok(out)
}
