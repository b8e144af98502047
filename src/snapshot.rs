//! Save what pgtool's readers need from a live host into a directory, so that
//! `pgtool --root DIR ...` can analyse it on another machine.
//!
//! Layout written (the same as a [`SysRoot::at`] tree):
//! - `proc/kpageflags`, `proc/kpagecount`, `proc/kpagecgroup`: streamed in batches of
//!   [`crate::kpage::BATCH`] words; all-zero batches are skipped, so the copies are sparse files.
//! - `proc/iomem` (copied as read: without root its addresses are zeros).
//! - `cgroup-inodes.tsv`: the memcg inode table ([`CgroupIndex::to_table`]), because inode numbers
//!   do not survive a copy.
//! - for each pid: `proc/PID/{maps,comm,status}` and `proc/PID/pagemap`, a sparse file holding
//!   the entries of the pid's VMAs at their offsets (VPN * 8). VMAs above 1 GiB are saved only
//!   where PAGEMAP_SCAN reports present or swapped pages (elsewhere entries read as 0).
//!
//! ```no_run
//! let s = pgtool::snapshot::save(&pgtool::SysRoot::live(), std::path::Path::new("/tmp/snap"),
//!                                &[std::process::id()])?;
//! for n in &s.notes { eprintln!("{n}"); }
//! # Ok::<(), pgtool::Error>(())
//! ```

use crate::addr::{VirtAddr, page_size};
use crate::cgroup::{CgroupIndex, SNAPSHOT_FILE};
use crate::error::{Error, Result};
use crate::kpage::{BATCH, KpageFile, U64File};
use crate::maps;
use crate::pagemap::Pagemap;
use crate::root::SysRoot;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// VMAs larger than this are saved through PAGEMAP_SCAN's populated ranges (when available).
pub const FULL_READ_LIMIT: u64 = 1 << 30;

/// What [`save`] did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Files written, relative to the snapshot directory.
    pub files: Vec<PathBuf>,
    /// Words (PFNs) copied per kpage file, in the order flags, count, cgroup.
    pub kpage_words: [u64; 3],
    /// Pagemap entries saved, per pid.
    pub pagemap_entries: Vec<(u32, u64)>,
    /// Things skipped and why (a kpage file the kernel lacks, ...).
    pub notes: Vec<String>,
}

/// Save a snapshot of `live` (normally [`SysRoot::live`]) into `dir` (created if missing),
/// including the maps and pagemap of `pids`.
pub fn save(live: &SysRoot, dir: &Path, pids: &[u32]) -> Result<Summary> {
    let mut sum = Summary::default();
    let proc_dir = dir.join("proc");
    for d in [proc_dir.clone(), dir.join("sys"), dir.join("debugfs")] {
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    // Check the pids first, so a typo fails before the long copies.
    for &pid in pids {
        if !live.pid_dir(pid).is_dir() {
            return Err(Error::NoSuchProcess { pid });
        }
    }
    for (i, which) in [KpageFile::Flags, KpageFile::Count, KpageFile::Cgroup]
        .into_iter()
        .enumerate()
    {
        let src = which.path(live);
        let name = src.file_name().map(PathBuf::from).unwrap_or_default();
        let input = match U64File::open(&src) {
            Ok(f) => f,
            Err(e) if which == KpageFile::Cgroup => {
                sum.notes.push(format!("{e}; not saved"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let dst = proc_dir.join(&name);
        sum.kpage_words[i] = copy_sparse(&input, &dst)?;
        sum.files.push(Path::new("proc").join(&name));
    }
    let iomem_src = live.iomem();
    let text = std::fs::read(&iomem_src).map_err(|e| Error::io(&iomem_src, e))?;
    write_file(&proc_dir.join("iomem"), &text)?;
    sum.files.push("proc/iomem".into());

    let idx = CgroupIndex::build(live)?;
    write_file(&dir.join(SNAPSHOT_FILE), idx.to_table().as_bytes())?;
    sum.files.push(SNAPSHOT_FILE.into());

    for &pid in pids {
        let n = save_pid(live, &proc_dir, pid)?;
        sum.pagemap_entries.push((pid, n));
        for f in ["maps", "comm", "status", "pagemap"] {
            sum.files
                .push(Path::new("proc").join(pid.to_string()).join(f));
        }
    }
    Ok(sum)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn as_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// Copy a u64 file batch by batch, leaving holes for all-zero batches. Returns words copied.
fn copy_sparse(input: &U64File, dst: &Path) -> Result<u64> {
    let out = create(dst)?;
    let n = input.for_each_batch(0..u64::MAX, BATCH, |first, words| {
        if words.iter().any(|w| *w != 0) {
            out.write_all_at(&as_bytes(words), first * 8)
                .map_err(|e| Error::io(dst, e))?;
        }
        Ok(())
    })?;
    out.set_len(n * 8).map_err(|e| Error::io(dst, e))?;
    Ok(n)
}

fn save_pid(live: &SysRoot, proc_dir: &Path, pid: u32) -> Result<u64> {
    let dir = proc_dir.join(pid.to_string());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // maps first: the pagemap saved is that of these VMAs.
    let maps_src = live.pid_file(pid, "maps");
    let maps_text = std::fs::read(&maps_src).map_err(|e| Error::pid_io(pid, &maps_src, e))?;
    write_file(&dir.join("maps"), &maps_text)?;
    for f in ["comm", "status"] {
        let src = live.pid_file(pid, f);
        let bytes = std::fs::read(&src).map_err(|e| Error::pid_io(pid, &src, e))?;
        write_file(&dir.join(f), &bytes)?;
    }
    let vmas = maps::parse_maps(&String::from_utf8_lossy(&maps_text), &maps_src)?;
    let pm = Pagemap::open(live, pid)?;
    let dst = dir.join("pagemap");
    let out = create(&dst)?;
    let ps = page_size();
    let mut saved = 0u64;
    let mut copy = |range: std::ops::Range<VirtAddr>| -> Result<()> {
        pm.for_each_batch(range, BATCH, |first, entries| {
            let words: Vec<u64> = entries.iter().map(|e| e.raw()).collect();
            saved += words.len() as u64;
            if words.iter().any(|w| *w != 0) {
                out.write_all_at(&as_bytes(&words), first.vpn() * 8)
                    .map_err(|e| Error::io(&dst, e))?;
            }
            Ok(())
        })
    };
    for v in &vmas {
        if v.is_empty() {
            continue;
        }
        if v.len() > FULL_READ_LIMIT
            && let Some(regions) = pm.populated_ranges(v.start..v.end)?
        {
            for r in regions {
                copy(r.start..r.end)?;
            }
            continue;
        }
        copy(v.start..v.end)?;
    }
    // Readers past the last saved entry see EOF, which reads as an empty entry; make the file
    // cover the last user VMA so its size says where the address space ends.
    let end_vpn = vmas
        .iter()
        .filter(|v| v.end.0 < crate::v2p::KERNEL_START)
        .map(|v| v.end.0.div_ceil(ps))
        .max()
        .unwrap_or(0);
    let len = out.metadata().map_err(|e| Error::io(&dst, e))?.len();
    if end_vpn * 8 > len {
        out.set_len(end_vpn * 8).map_err(|e| Error::io(&dst, e))?;
    }
    Ok(saved)
}
