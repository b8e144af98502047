//! [`SysRoot`]: where every reader finds its files.
//!
//! The live system is `/proc`, `/sys` and `/sys/kernel/debug`. A snapshot (or a test fixture) is a
//! directory holding `proc/`, `sys/` and `debugfs/` with the same layout, so every command can run on
//! a tree copied from another host.
//!
//! A tree given with `--root` is read-only: no subcommand writes under it. Actions that
//! exist only to write (marking pages idle, clear_refs, hwpoison injection) call
//! [`SysRoot::require_live`] and refuse on a tree.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The roots of the three pseudo file systems pgtool reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysRoot {
    proc: PathBuf,
    sys: PathBuf,
    debugfs: PathBuf,
    live: bool,
}

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot::live()
    }
}

impl SysRoot {
    /// The running kernel: `/proc`, `/sys`, and debugfs at `$DEBUGFS_PATH` or `/sys/kernel/debug`.
    pub fn live() -> SysRoot {
        let debugfs = std::env::var_os("DEBUGFS_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/sys/kernel/debug"));
        SysRoot {
            proc: "/proc".into(),
            sys: "/sys".into(),
            debugfs,
            live: true,
        }
    }

    /// A snapshot or fixture directory `dir` holding `proc/`, `sys/` and `debugfs/`.
    ///
    /// ```
    /// let root = pgtool::SysRoot::at("/tmp/snap");
    /// assert_eq!(root.kpageflags(), std::path::Path::new("/tmp/snap/proc/kpageflags"));
    /// ```
    pub fn at(dir: impl AsRef<Path>) -> SysRoot {
        let dir = dir.as_ref();
        SysRoot {
            proc: dir.join("proc"),
            sys: dir.join("sys"),
            debugfs: dir.join("debugfs"),
            live: false,
        }
    }

    /// `Some(dir)` gives [`SysRoot::at`], `None` the live system.
    pub fn from_option(dir: Option<&Path>) -> SysRoot {
        dir.map(SysRoot::at).unwrap_or_else(SysRoot::live)
    }

    /// True for the running kernel, false for a snapshot or fixture tree.
    pub fn is_live(&self) -> bool {
        self.live
    }
    /// `Ok` on the live system; on a snapshot or fixture tree, refuses `what` (an action that
    /// writes to the kernel, e.g. "idle wss --method refs (writes /proc/PID/clear_refs)"),
    /// because a tree given with `--root` is never written to.
    pub fn require_live(&self, what: &str) -> Result<()> {
        if self.live {
            return Ok(());
        }
        let dir = self.snapshot_dir().unwrap_or(&self.proc);
        Err(Error::Usage(format!(
            "{what} writes to the running kernel and cannot run on a snapshot: --root {} is \
             read-only (run it without --root on the live system)",
            dir.display()
        )))
    }
    /// The procfs root.
    pub fn proc(&self) -> &Path {
        &self.proc
    }
    /// The sysfs root.
    pub fn sys(&self) -> &Path {
        &self.sys
    }
    /// The debugfs root.
    pub fn debugfs(&self) -> &Path {
        &self.debugfs
    }
    /// For a snapshot, the directory holding `proc/`, `sys/`, `debugfs/`; `None` when live.
    pub fn snapshot_dir(&self) -> Option<&Path> {
        if self.live { None } else { self.proc.parent() }
    }
    /// `/proc/kpageflags`.
    pub fn kpageflags(&self) -> PathBuf {
        self.proc.join("kpageflags")
    }
    /// `/proc/kpagecount`.
    pub fn kpagecount(&self) -> PathBuf {
        self.proc.join("kpagecount")
    }
    /// `/proc/kpagecgroup`.
    pub fn kpagecgroup(&self) -> PathBuf {
        self.proc.join("kpagecgroup")
    }
    /// `/proc/iomem`.
    pub fn iomem(&self) -> PathBuf {
        self.proc.join("iomem")
    }
    /// `/proc/PID`.
    pub fn pid_dir(&self, pid: u32) -> PathBuf {
        self.proc.join(pid.to_string())
    }
    /// `/proc/PID/NAME`, e.g. `maps` or `pagemap`.
    pub fn pid_file(&self, pid: u32, name: &str) -> PathBuf {
        self.pid_dir(pid).join(name)
    }
    /// `/sys/kernel/mm/page_idle/bitmap`.
    pub fn page_idle_bitmap(&self) -> PathBuf {
        self.sys.join("kernel/mm/page_idle/bitmap")
    }
    /// `/sys/fs/cgroup`.
    pub fn cgroup_fs(&self) -> PathBuf {
        self.sys.join("fs/cgroup")
    }
    /// `/proc/kcore`: kernel memory as an ELF core file (CONFIG_PROC_KCORE, root).
    pub fn kcore(&self) -> PathBuf {
        self.proc.join("kcore")
    }
    /// `/proc/kallsyms`: kernel symbols (addresses hidden to non-root by kptr_restrict).
    pub fn kallsyms(&self) -> PathBuf {
        self.proc.join("kallsyms")
    }
    /// `/sys/kernel/btf/vmlinux`: the running kernel's types (CONFIG_DEBUG_INFO_BTF).
    pub fn btf_vmlinux(&self) -> PathBuf {
        self.sys.join("kernel/btf/vmlinux")
    }
    /// `/proc/meminfo`.
    pub fn meminfo(&self) -> PathBuf {
        self.proc.join("meminfo")
    }
    /// `/proc/vmallocinfo`.
    pub fn vmallocinfo(&self) -> PathBuf {
        self.proc.join("vmallocinfo")
    }
    /// `/proc/slabinfo`.
    pub fn slabinfo(&self) -> PathBuf {
        self.proc.join("slabinfo")
    }
    /// `/proc/sys/kernel/kptr_restrict`.
    pub fn kptr_restrict(&self) -> PathBuf {
        self.proc.join("sys/kernel/kptr_restrict")
    }
    /// tracefs: `/sys/kernel/tracing` where it is mounted, else `DEBUGFS/tracing`. Only the
    /// live system has one (tracing writes to the kernel).
    pub fn tracefs(&self) -> PathBuf {
        let t = self.sys.join("kernel/tracing");
        if t.join("events").is_dir() {
            t
        } else {
            self.debugfs.join("tracing")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_paths() {
        let r = SysRoot::at("/snap");
        assert!(!r.is_live());
        assert_eq!(r.pid_file(42, "maps"), Path::new("/snap/proc/42/maps"));
        assert_eq!(
            r.page_idle_bitmap(),
            Path::new("/snap/sys/kernel/mm/page_idle/bitmap")
        );
        assert_eq!(r.snapshot_dir(), Some(Path::new("/snap")));
        assert!(SysRoot::live().is_live());
        assert_eq!(SysRoot::live().kpagecount(), Path::new("/proc/kpagecount"));
    }

    #[test]
    fn trees_refuse_writers() {
        assert!(SysRoot::live().require_live("idle mark").is_ok());
        let e = SysRoot::at("/snap")
            .require_live("idle mark")
            .expect_err("a tree is read-only");
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.starts_with("idle mark writes to the running kernel"),
            "{msg}"
        );
        assert!(msg.contains("--root /snap is read-only"), "{msg}");
    }
}
