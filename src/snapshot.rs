//! Save what pgtool's readers need from a live host into a directory, so that
//! `pgtool --root DIR ...` can analyse it on another machine.
//!
//! Layout written (the same as a [`SysRoot::at`] tree):
//! - `proc/kpageflags`, `proc/kpagecount`, `proc/kpagecgroup`: streamed in batches of
//!   [`crate::kpage::BATCH`] words; all-zero batches are skipped, so the copies are sparse files.
//! - `proc/iomem` (copied as read: without root its addresses are zeros), `proc/meminfo`.
//! - `cgroup-inodes.tsv`: the memcg inode table ([`CgroupIndex::to_table`]), because inode numbers
//!   do not survive a copy.
//! - for each pid: `proc/PID/{maps,comm,status,cmdline,cgroup,smaps_rollup}` and
//!   `proc/PID/pagemap`, a sparse file holding the entries of the pid's VMAs at their offsets
//!   (VPN * 8). VMAs above 1 GiB are saved only where PAGEMAP_SCAN reports present or swapped
//!   pages (elsewhere entries read as 0).
//! - `sys/`, `debugfs/`: empty, so the tree has a [`SysRoot`]'s shape.
//!
//! Security: PFNs, page flags and physical addresses are root-only on the live system, so the
//! snapshot is too: it is written into a fresh, randomly named directory (mode 0700) beside
//! DIR through [`crate::safe_file`] (every file created with O_EXCL|O_NOFOLLOW, mode 0600 whatever
//! the umask), then renamed to DIR; a failure removes it. DIR must be missing or empty (or,
//! with `force`, a previous snapshot, replaced whole); DIR on proc, sysfs, a cgroup hierarchy,
//! debugfs or tracefs is refused.
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
use crate::safe_file::{self, NewDir, PRIVATE_DIR, PRIVATE_FILE};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// VMAs larger than this are saved through PAGEMAP_SCAN's populated ranges (when available).
pub const FULL_READ_LIMIT: u64 = 1 << 30;

/// The names a snapshot directory holds at its top: `--force` replaces a directory holding
/// only these.
pub const TOP_NAMES: &[&str] = &["proc", "sys", "debugfs", SNAPSHOT_FILE];

/// The per-process files saved for each pid (besides `pagemap`), as `/proc/PID/NAME`.
pub const PID_FILES: &[&str] = &[
    "maps",
    "comm",
    "status",
    "cmdline",
    "cgroup",
    "smaps_rollup",
];

/// How [`save_with`] treats an existing DIR.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Replace an existing non-empty DIR that holds a previous snapshot (only [`TOP_NAMES`]).
    /// Links inside it are never followed: the old tree is swapped out whole and removed.
    pub force: bool,
}

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

/// [`save_with`] with default [`Options`] (DIR must be missing or empty).
pub fn save(live: &SysRoot, dir: &Path, pids: &[u32]) -> Result<Summary> {
    save_with(live, dir, pids, Options::default())
}

/// Save a snapshot of `live` (normally [`SysRoot::live`]) as the new directory `dir`,
/// including the maps and pagemap of `pids`. Nothing appears at `dir` unless every file was
/// written; on an error the temporary directory is removed.
pub fn save_with(live: &SysRoot, dir: &Path, pids: &[u32], opts: Options) -> Result<Summary> {
    // Check the pids first, so a typo fails before the long copies.
    for &pid in pids {
        if !live.pid_dir(pid).is_dir() {
            return Err(Error::NoSuchProcess { pid });
        }
    }
    if let Some(src) = live.snapshot_dir()
        && same_file(src, dir)
    {
        return Err(Error::Usage(format!(
            "{}: is the tree being read; write the snapshot elsewhere",
            dir.display()
        )));
    }
    let out = NewDir::create(dir, opts.force.then_some(TOP_NAMES))?;
    let sum = save_into(live, out.path(), pids)?;
    out.commit()?;
    Ok(sum)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn save_into(live: &SysRoot, dir: &Path, pids: &[u32]) -> Result<Summary> {
    let mut sum = Summary::default();
    let proc_dir = dir.join("proc");
    for d in [proc_dir.clone(), dir.join("sys"), dir.join("debugfs")] {
        safe_file::create_dir_new(&d, PRIVATE_DIR)?;
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
    for name in ["iomem", "meminfo"] {
        let src = live.proc().join(name);
        let text = match std::fs::read(&src) {
            Ok(t) => t,
            // A tree copied from elsewhere may lack meminfo; the live system never does.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !live.is_live() => {
                sum.notes
                    .push(format!("{}: missing; not saved", src.display()));
                continue;
            }
            Err(e) => return Err(Error::io(&src, e)),
        };
        write_file(&proc_dir.join(name), &text)?;
        sum.files.push(Path::new("proc").join(name));
    }

    let idx = CgroupIndex::build(live)?;
    write_file(&dir.join(SNAPSHOT_FILE), idx.to_table().as_bytes())?;
    sum.files.push(SNAPSHOT_FILE.into());

    for &pid in pids {
        let n = save_pid(live, &proc_dir, pid, &mut sum)?;
        sum.pagemap_entries.push((pid, n));
    }
    Ok(sum)
}

/// A new file (O_EXCL|O_NOFOLLOW, mode 0600) holding `bytes`.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create(path)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| safe_file::write_error(path, e))
}

fn create(path: &Path) -> Result<File> {
    safe_file::create_new(path, PRIVATE_FILE)
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
                .map_err(|e| safe_file::write_error(dst, e))?;
        }
        Ok(())
    })?;
    out.set_len(n * 8)
        .and_then(|()| out.sync_all())
        .map_err(|e| safe_file::write_error(dst, e))?;
    Ok(n)
}

fn save_pid(live: &SysRoot, proc_dir: &Path, pid: u32, sum: &mut Summary) -> Result<u64> {
    let dir = proc_dir.join(pid.to_string());
    safe_file::create_dir_new(&dir, PRIVATE_DIR)?;
    let rel = Path::new("proc").join(pid.to_string());
    // maps first: the pagemap saved is that of these VMAs.
    let maps_src = live.pid_file(pid, "maps");
    let maps_text = std::fs::read(&maps_src).map_err(|e| Error::pid_io(pid, &maps_src, e))?;
    for &f in PID_FILES {
        let src = live.pid_file(pid, f);
        let bytes = if f == "maps" {
            maps_text.clone()
        } else {
            match std::fs::read(&src) {
                Ok(b) => b,
                // The process is still there but the file is not (smaps_rollup before Linux
                // 4.14, a tree without it): a note, not an error.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound && live.pid_dir(pid).is_dir() =>
                {
                    sum.notes
                        .push(format!("{}: missing; not saved", src.display()));
                    continue;
                }
                Err(e) => return Err(Error::pid_io(pid, &src, e)),
            }
        };
        write_file(&dir.join(f), &bytes)?;
        sum.files.push(rel.join(f));
    }
    sum.files.push(rel.join("pagemap"));
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
                    .map_err(|e| safe_file::write_error(&dst, e))?;
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
    let len = out
        .metadata()
        .map_err(|e| safe_file::write_error(&dst, e))?
        .len();
    if end_vpn * 8 > len {
        out.set_len(end_vpn * 8)
            .map_err(|e| safe_file::write_error(&dst, e))?;
    }
    out.sync_all()
        .map_err(|e| safe_file::write_error(&dst, e))?;
    Ok(saved)
}
