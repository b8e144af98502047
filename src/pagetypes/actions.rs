//! page-types' page actions: `-X` (hwpoison inject), `-x` (unpoison) and `-i` (mark idle),
//! with page-types' exact semantics (one `0x<pfn>\n` write per page; the idle bitmap written one
//! buffered 64-PFN word at a time, including its word-0 flush quirk).
//!
//! Kept in one small file so that it can later be routed through `crate::hwpoison` and
//! `crate::idle`.

use crate::root::SysRoot;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Warnings go here (page-types prints them with perror and goes on).
pub type Warn<'a> = &'a mut dyn Write;

/// The open hwpoison and idle files and the idle word buffer.
#[derive(Default)]
pub struct Actions {
    /// `<debugfs>/hwpoison/corrupt-pfn`, when `-X`.
    pub inject: Option<File>,
    /// `<debugfs>/hwpoison/unpoison-pfn`, when `-x`.
    pub forget: Option<File>,
    /// The page_idle bitmap, when `-i`.
    pub idle: Option<File>,
    idle_off: u64,
    idle_buf: u64,
}

use super::cerr::{perror_path as perror, strerror};

const DEBUGFS_MAGIC: i64 = 0x6462_6720;

fn is_debugfs(p: &str) -> bool {
    nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 == DEBUGFS_MAGIC)
}

/// Where debugfs is, as tools/lib/api's `debugfs__mount()` decides: `$DEBUGFS_PATH` as is,
/// `/sys/kernel/debug` or `/debug` when they are debugfs, the first debugfs in /proc/mounts,
/// or else mount it at `$PERF_DEBUGFS_ENVIRONMENT` (default `/sys/kernel/debug`). A snapshot
/// root uses its own `debugfs/` directory.
pub fn debugfs_mount(root: &SysRoot) -> Result<PathBuf, Vec<u8>> {
    if !root.is_live() {
        return Ok(root.debugfs().to_path_buf());
    }
    if let Some(p) = std::env::var_os("DEBUGFS_PATH") {
        return Ok(PathBuf::from(p));
    }
    for p in ["/sys/kernel/debug", "/debug"] {
        if is_debugfs(p) {
            return Ok(PathBuf::from(p));
        }
    }
    if let Ok(m) = std::fs::read_to_string("/proc/mounts") {
        for line in m.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 2 && f[2] == "debugfs" {
                return Ok(PathBuf::from(f[1]));
            }
        }
    }
    let target = std::env::var_os("PERF_DEBUGFS_ENVIRONMENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/kernel/debug"));
    match nix::mount::mount(
        Some("debugfs"),
        &target,
        Some("debugfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    ) {
        Ok(()) => Ok(target),
        Err(e) => Err(format!("mount debugfs: {}\n", e.desc()).into_bytes()),
    }
}

impl Actions {
    /// `-X`/`-x` at parse time: find debugfs and open the files not yet open.
    pub fn prepare_hwpoison(
        &mut self,
        root: &SysRoot,
        hwpoison: bool,
        unpoison: bool,
    ) -> Result<(), Vec<u8>> {
        let mnt = debugfs_mount(root)?;
        let open = |name: &str| -> Result<File, Vec<u8>> {
            let p = mnt.join("hwpoison").join(name);
            OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| perror(&p, &e))
        };
        if hwpoison && self.inject.is_none() {
            self.inject = Some(open("corrupt-pfn")?);
        }
        if unpoison && self.forget.is_none() {
            self.forget = Some(open("unpoison-pfn")?);
        }
        Ok(())
    }

    /// Open the idle bitmap read-write (at startup, after option parsing).
    pub fn open_idle(&mut self, path: &Path) -> Result<(), Vec<u8>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| perror(path, &e))?;
        self.idle = Some(f);
        Ok(())
    }

    /// True when some action needs every selected page in walk order.
    pub fn any(&self) -> bool {
        self.inject.is_some() || self.forget.is_some() || self.idle.is_some()
    }

    /// Steps 4-6 of the per-page pipeline for one selected page.
    pub fn page(&mut self, pfn: u64, warn: Warn<'_>) {
        let line = format!("0x{pfn:x}\n");
        if let Some(f) = self.inject.as_mut()
            && let Err(e) = f.write(line.as_bytes())
        {
            let _ = warn.write_all(format!("hwpoison inject: {}\n", strerror(&e)).as_bytes());
        }
        if let Some(f) = self.forget.as_mut()
            && let Err(e) = f.write(line.as_bytes())
        {
            let _ = warn.write_all(format!("hwpoison forget: {}\n", strerror(&e)).as_bytes());
        }
        if self.idle.is_some() {
            self.mark_idle(pfn, warn);
        }
    }

    /// page-types' `mark_page_idle`: buffer one 64-PFN word; write it when a page of another
    /// word comes (so pages in PFNs 0-63 alone never get written, nor does the final flush's
    /// bit 0).
    pub fn mark_idle(&mut self, pfn: u64, warn: Warn<'_>) {
        let Some(f) = self.idle.as_ref() else { return };
        if pfn / 64 == self.idle_off / 64 || self.idle_buf == 0 {
            self.idle_buf |= 1u64 << (pfn % 64);
            self.idle_off = pfn;
            return;
        }
        if let Err(e) = f.write_at(&self.idle_buf.to_ne_bytes(), 8 * (self.idle_off / 64)) {
            let _ = warn.write_all(format!("mark page idle: {}\n", strerror(&e)).as_bytes());
            return;
        }
        self.idle_buf = 1u64 << (pfn % 64);
        self.idle_off = pfn;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_words_as_page_types_writes_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("bitmap");
        std::fs::write(&p, [0u8; 64]).expect("write");
        let mut a = Actions::default();
        a.open_idle(&p).expect("open");
        let mut warn = Vec::new();
        for pfn in [3, 5, 70, 71, 200] {
            a.mark_idle(pfn, &mut warn);
        }
        a.mark_idle(0, &mut warn);
        let data = std::fs::read(&p).expect("read");
        let word = |i: usize| u64::from_ne_bytes(data[i * 8..i * 8 + 8].try_into().expect("8"));
        assert_eq!(word(0), 1 << 3 | 1 << 5);
        assert_eq!(word(1), 1 << 6 | 1 << 7);
        assert_eq!(word(3), 1 << (200 % 64));
        assert!(warn.is_empty());
        // only PFNs 0-63: nothing written at all
        std::fs::write(&p, [0u8; 64]).expect("write");
        let mut a = Actions::default();
        a.open_idle(&p).expect("open");
        for pfn in [3, 10, 0] {
            a.mark_idle(pfn, &mut warn);
        }
        assert_eq!(std::fs::read(&p).expect("read"), vec![0u8; 64]);
    }

    #[test]
    fn hwpoison_writes_one_line_per_page() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("debugfs/hwpoison")).expect("mkdir");
        for f in ["corrupt-pfn", "unpoison-pfn"] {
            std::fs::write(dir.path().join("debugfs/hwpoison").join(f), "").expect("w");
        }
        let root = SysRoot::at(dir.path());
        let mut a = Actions::default();
        a.prepare_hwpoison(&root, true, false).expect("prep");
        a.prepare_hwpoison(&root, true, true).expect("prep");
        let mut warn = Vec::new();
        for pfn in [3, 0x10] {
            a.page(pfn, &mut warn);
        }
        drop(a);
        let got = std::fs::read_to_string(dir.path().join("debugfs/hwpoison/corrupt-pfn"));
        assert_eq!(got.ok().as_deref(), Some("0x3\n0x10\n"));
        let got = std::fs::read_to_string(dir.path().join("debugfs/hwpoison/unpoison-pfn"));
        assert_eq!(got.ok().as_deref(), Some("0x3\n0x10\n"));
    }
}
