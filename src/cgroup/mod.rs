//! memcg inode <-> cgroup path, for cgroup v2 and the v1 memory hierarchy.
//!
//! `/proc/kpagecgroup` gives, per PFN, the inode of the page's memcg directory (the closest
//! online ancestor; 0 when uncharged). On the live system pgtool finds the mounted hierarchies in
//! `/proc/self/mountinfo` and walks them, `stat`ing each directory. A snapshot stores the same
//! table as `cgroup-inodes.tsv` (`INODE<TAB>HIERARCHY<TAB>PATH` per line), because inode
//! numbers do not survive a copy.
//!
//! ```no_run
//! let idx = pgtool::cgroup::CgroupIndex::build(&pgtool::SysRoot::live())?;
//! for c in idx.by_inode(1) { println!("{} {}", c.hierarchy, c.path.display()); }
//! # Ok::<(), pgtool::Error>(())
//! ```

mod pages;
mod records;

pub use pages::{MemcgPages, page_in_use, pages_by_memcg};
pub use records::{LookupRecord, PagesRecord, lookup, pages_metrics, pages_records};

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The snapshot file holding the inode table.
pub const SNAPSHOT_FILE: &str = "cgroup-inodes.tsv";

/// A mounted memory-cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// `v2` or `v1-memory`.
    pub kind: &'static str,
    /// Where it is mounted (e.g. `/sys/fs/cgroup`).
    pub mount: PathBuf,
}

/// One cgroup directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// Its inode (what kpagecgroup reports).
    pub inode: u64,
    /// `v2` or `v1-memory`.
    pub hierarchy: &'static str,
    /// Absolute path (mount point joined with the cgroup's path).
    pub path: PathBuf,
}

/// Every memory cgroup directory, indexed by inode.
#[derive(Clone, Debug, Default)]
pub struct CgroupIndex {
    by_ino: HashMap<u64, Vec<Cgroup>>,
    /// The hierarchies walked (live) or inferred from the table (snapshot).
    mounts: Vec<Hierarchy>,
    /// The hierarchy the memory controller is bound to: the one kpagecgroup inodes refer to.
    memcg_kind: Option<&'static str>,
    /// Built from the live system (so paths may be `stat`ed), not a snapshot table.
    live: bool,
}

/// Memory-cgroup hierarchies mounted on the live system, from `/proc/self/mountinfo`.
pub fn mounted_hierarchies(root: &SysRoot) -> Result<Vec<Hierarchy>> {
    let path = root.proc().join("self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    Ok(parse_mountinfo(&text))
}

/// The memory-cgroup hierarchies named in mountinfo text (first mount of each kind wins).
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let (fstype, _src, opts) = (post.next(), post.next(), post.next().unwrap_or(""));
        let Some(mount) = pre.split(' ').nth(4) else {
            continue;
        };
        let kind = match fstype {
            Some("cgroup2") => "v2",
            Some("cgroup") if opts.split(',').any(|o| o == "memory") => "v1-memory",
            _ => continue,
        };
        if !out.iter().any(|h| h.kind == kind) {
            out.push(Hierarchy {
                kind,
                mount: PathBuf::from(unescape_mount(mount)),
            });
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        if let (b'\\', Some(Ok(v))) = (b[i], octal.map(|d| u8::from_str_radix(d, 8))) {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl CgroupIndex {
    /// Build the index: walk the mounted hierarchies (live) or read the snapshot table.
    pub fn build(root: &SysRoot) -> Result<CgroupIndex> {
        let mut idx = CgroupIndex::default();
        if let Some(dir) = root.snapshot_dir() {
            let path = dir.join(SNAPSHOT_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => idx.load_table(&text, &path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
            idx.infer_mounts();
            return Ok(idx);
        }
        let hs = mounted_hierarchies(root)?;
        for h in &hs {
            idx.walk(&h.mount, h.kind);
        }
        idx.memcg_kind = memcg_kind_of(&hs);
        idx.mounts = hs;
        idx.live = true;
        Ok(idx)
    }

    /// An index for resolving these memcg inodes (kpagecgroup words) only: [`CgroupIndex::memcg`]
    /// answers for each of them as [`CgroupIndex::build`]'s index would, other lookups may
    /// miss. On the live system the walk ends once every inode is found, the memory
    /// controller's hierarchy walked first (a directory there is `memcg`'s answer; an inode
    /// it lacks falls back to the other hierarchies, walked in mount order, as in `build`).
    /// A lookup of a few pages then visits a few directories, not every cgroup of the host.
    pub fn build_for(root: &SysRoot, inodes: &[u64]) -> Result<CgroupIndex> {
        if root.snapshot_dir().is_some() {
            return CgroupIndex::build(root);
        }
        let mut wanted: HashSet<u64> = inodes.iter().copied().filter(|&i| i != 0).collect();
        let hs = mounted_hierarchies(root)?;
        let memcg_kind = memcg_kind_of(&hs);
        let mut idx = CgroupIndex::default();
        let first = hs.iter().filter(|h| Some(h.kind) == memcg_kind);
        let rest = hs.iter().filter(|h| Some(h.kind) != memcg_kind);
        for h in first.chain(rest) {
            if wanted.is_empty() {
                break;
            }
            idx.walk_until(&h.mount, h.kind, Some(&mut wanted));
        }
        idx.memcg_kind = memcg_kind;
        idx.mounts = hs;
        idx.live = true;
        Ok(idx)
    }

    fn load_table(&mut self, text: &str, path: &Path) -> Result<()> {
        for (i, line) in text.lines().enumerate() {
            let mut f = line.splitn(3, '\t');
            let (ino, kind, p) = (f.next(), f.next(), f.next());
            let parsed = ino
                .and_then(|v| v.parse::<u64>().ok())
                .zip(p)
                .and_then(|(ino, p)| {
                    let kind = match kind? {
                        "v2" => "v2",
                        "v1-memory" => "v1-memory",
                        _ => return None,
                    };
                    Some((ino, kind, p))
                });
            let Some((inode, hierarchy, p)) = parsed else {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    msg: "expected INODE<TAB>v2|v1-memory<TAB>PATH".into(),
                });
            };
            self.insert(Cgroup {
                inode,
                hierarchy,
                path: PathBuf::from(p),
            });
        }
        Ok(())
    }

    /// Walk a hierarchy iteratively (cgroup trees can be deep); unreadable directories
    /// (removed mid-walk) are skipped.
    fn walk(&mut self, mount: &Path, kind: &'static str) {
        self.walk_until(mount, kind, None);
    }

    /// [`Self::walk`], ending as soon as every inode of `wanted` was found (each found one is
    /// removed from it).
    fn walk_until(
        &mut self,
        mount: &Path,
        kind: &'static str,
        mut wanted: Option<&mut HashSet<u64>>,
    ) {
        let mut stack = vec![mount.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.insert(Cgroup {
                inode: meta.ino(),
                hierarchy: kind,
                path: dir.clone(),
            });
            if let Some(w) = wanted.as_deref_mut()
                && w.remove(&meta.ino())
                && w.is_empty()
            {
                return;
            }
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for ent in rd.flatten() {
                if ent.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(ent.path());
                }
            }
        }
    }

    /// For a snapshot table: each hierarchy's mount is its shortest path.
    fn infer_mounts(&mut self) {
        let mut mounts: Vec<Hierarchy> = Vec::new();
        for c in self.by_ino.values().flatten() {
            match mounts.iter_mut().find(|h| h.kind == c.hierarchy) {
                Some(h) if c.path.as_os_str().len() < h.mount.as_os_str().len() => {
                    h.mount = c.path.clone()
                }
                Some(_) => {}
                None => mounts.push(Hierarchy {
                    kind: c.hierarchy,
                    mount: c.path.clone(),
                }),
            }
        }
        mounts.sort_by_key(|h| h.kind);
        self.memcg_kind = if mounts.iter().any(|h| h.kind == "v1-memory") {
            Some("v1-memory")
        } else {
            mounts.first().map(|h| h.kind)
        };
        self.mounts = mounts;
    }

    fn insert(&mut self, c: Cgroup) {
        self.by_ino.entry(c.inode).or_default().push(c);
    }

    /// The cgroups with this inode (one per hierarchy at most, in practice).
    pub fn by_inode(&self, inode: u64) -> &[Cgroup] {
        self.by_ino.get(&inode).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first path for `inode`, for display.
    pub fn path_of(&self, inode: u64) -> Option<&Path> {
        self.by_inode(inode).first().map(|c| c.path.as_path())
    }

    /// Every cgroup, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Cgroup> {
        self.by_ino.values().flatten()
    }

    /// The hierarchies this index covers.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.mounts
    }

    /// The hierarchy the memory controller is bound to (`v1-memory` when the v1 memory
    /// controller is mounted, else `v2`): kpagecgroup inodes are inodes of that hierarchy.
    /// Inode numbers are per hierarchy, so the same number can name a directory in each.
    pub fn memcg_hierarchy(&self) -> Option<&'static str> {
        self.memcg_kind
    }

    /// The memcg a kpagecgroup inode names: the directory with that inode in the memory
    /// controller's hierarchy (falling back to any hierarchy). `None` for 0 (uncharged) and for
    /// inodes no hierarchy has (a deleted memcg still pinning pages, or a hierarchy not mounted).
    pub fn memcg(&self, inode: u64) -> Option<&Cgroup> {
        if inode == 0 {
            return None;
        }
        let all = self.by_inode(inode);
        all.iter()
            .find(|c| Some(c.hierarchy) == self.memcg_kind)
            .or_else(|| all.first())
    }

    /// The cgroup at `path`: an absolute directory inside a mounted hierarchy, or a path relative
    /// to a hierarchy's mount (`/system.slice`, `user.slice/x`), the memory controller's
    /// hierarchy tried first. Exact [`Error::NotFound`] otherwise.
    pub fn lookup_path(&self, path: &Path) -> Result<Cgroup> {
        let mut cands: Vec<PathBuf> = Vec::new();
        if path.is_absolute() {
            cands.push(path.to_path_buf());
        }
        let rel = path.strip_prefix("/").unwrap_or(path);
        let mut mounts: Vec<&Hierarchy> = self.mounts.iter().collect();
        mounts.sort_by_key(|h| Some(h.kind) != self.memcg_kind);
        for h in &mounts {
            cands.push(if rel.as_os_str().is_empty() {
                h.mount.clone()
            } else {
                h.mount.join(rel)
            });
        }
        for c in &cands {
            let c = normalize(c);
            if let Some(hit) = self.iter().find(|x| x.path == c) {
                return Ok(hit.clone());
            }
            // Live: a directory created after the index was built.
            if self.live
                && let Some(h) = mounts.iter().find(|h| c.starts_with(&h.mount))
                && let Ok(meta) = std::fs::metadata(&c)
                && meta.is_dir()
            {
                return Ok(Cgroup {
                    inode: meta.ino(),
                    hierarchy: h.kind,
                    path: c,
                });
            }
        }
        let where_ = self
            .mounts
            .iter()
            .map(|h| format!("{} ({})", h.mount.display(), h.kind))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::NotFound(format!(
            "{}: no such cgroup in the memory-cgroup hierarchies [{}]; give a directory under \
             one of them, or @INODE",
            path.display(),
            if where_.is_empty() {
                "none mounted".to_string()
            } else {
                where_
            }
        )))
    }

    /// The table a snapshot stores (see [`SNAPSHOT_FILE`]), sorted by path.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<&Cgroup> = self.iter().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows.iter()
            .map(|c| format!("{}\t{}\t{}\n", c.inode, c.hierarchy, c.path.display()))
            .collect()
    }
}

/// Which hierarchy holds the memory controller: v1 memory if mounted, else cgroup2 when its
/// root `cgroup.controllers` lists `memory` (or cannot be read), else none.
fn memcg_kind_of(hs: &[Hierarchy]) -> Option<&'static str> {
    if hs.iter().any(|h| h.kind == "v1-memory") {
        return Some("v1-memory");
    }
    let v2 = hs.iter().find(|h| h.kind == "v2")?;
    match std::fs::read_to_string(v2.mount.join("cgroup.controllers")) {
        Ok(t) if !t.split_whitespace().any(|c| c == "memory") => None,
        _ => Some("v2"),
    }
}

/// Remove `.` and `..` components lexically (cgroup paths have no symlinks).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The memcg inode a `-c` style filter names: `@INODE` (taken as is, so a deleted memcg's
/// inode still works) or a cgroup path (see [`CgroupIndex::lookup_path`]). Used by
/// `pgtool types -c` and `pgtool cgroup`.
///
/// ```no_run
/// let ino = pgtool::cgroup::resolve_filter(&pgtool::SysRoot::live(), "/system.slice")?;
/// # Ok::<(), pgtool::Error>(())
/// ```
pub fn resolve_filter(root: &SysRoot, spec: &str) -> Result<u64> {
    if let Some(n) = spec.strip_prefix('@') {
        return parse_inode(n).ok_or_else(|| {
            Error::Usage(format!(
                "{spec:?}: expected @INODE with a decimal or 0x-hex inode number"
            ))
        });
    }
    if spec.is_empty() {
        return Err(Error::Usage(
            "empty cgroup: give a cgroup path or @INODE".into(),
        ));
    }
    let idx = CgroupIndex::build(root)?;
    idx.lookup_path(Path::new(spec)).map(|c| c.inode)
}

/// Parse an inode number, decimal or `0x` hex.
pub fn parse_inode(s: &str) -> Option<u64> {
    crate::addr::parse_number(s)
}

/// The inode of a cgroup directory (what kpagecgroup reports for its pages).
pub fn inode_of(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a cgroup directory",
            path.display()
        )));
    }
    Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_memory_hierarchies_in_mountinfo() {
        let text = "\
29 25 0:25 / /mnt/\\303\\251t\\xy rw - ext4 /dev/x rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu,cpuacct
37 30 0:33 / /sys/fs/cgroup/unified\\040dir rw - cgroup2 cgroup2 rw,nsdelegate
";
        let h = parse_mountinfo(text);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[0],
            Hierarchy {
                kind: "v1-memory",
                mount: "/sys/fs/cgroup/memory".into()
            }
        );
        assert_eq!(h[1].mount, PathBuf::from("/sys/fs/cgroup/unified dir"));
    }

    #[test]
    fn unescapes_octal_and_keeps_the_rest() {
        assert_eq!(unescape_mount("/a\\040b\\303\\251\\9é\\"), "/a bé\\9é\\");
    }

    #[test]
    fn snapshot_table_round_trip_and_errors() {
        let mut idx = CgroupIndex::default();
        idx.load_table(
            "42\tv2\t/sys/fs/cgroup/a b\n7\tv1-memory\t/x\n",
            Path::new("t"),
        )
        .expect("load");
        assert_eq!(idx.path_of(42), Some(Path::new("/sys/fs/cgroup/a b")));
        assert_eq!(
            idx.to_table(),
            "42\tv2\t/sys/fs/cgroup/a b\n7\tv1-memory\t/x\n"
        );
        let e = idx
            .load_table("x\tv2\t/\n", Path::new("snap/cgroup-inodes.tsv"))
            .expect_err("bad");
        assert_eq!(
            e.to_string(),
            "snap/cgroup-inodes.tsv:1: expected INODE<TAB>v2|v1-memory<TAB>PATH"
        );
    }

    #[test]
    fn walk_until_stops_once_every_wanted_inode_is_found() {
        let d = tempfile::tempdir().expect("tmp");
        for p in ["a/b", "c/d", "e"] {
            std::fs::create_dir_all(d.path().join(p)).expect("mkdir");
        }
        let ino = |p: &str| inode_of(&d.path().join(p)).expect("ino");
        let mut full = CgroupIndex::default();
        full.walk(d.path(), "v2");
        assert_eq!(full.iter().count(), 6);
        for want in [vec!["a/b"], vec!["c/d", "e"], vec![""]] {
            let mut wanted: HashSet<u64> = want.iter().map(|p| ino(p)).collect();
            let mut part = CgroupIndex::default();
            part.walk_until(d.path(), "v2", Some(&mut wanted));
            assert!(wanted.is_empty(), "{want:?}");
            for p in &want {
                assert_eq!(part.path_of(ino(p)), full.path_of(ino(p)), "{p}");
            }
            // Stopped early: fewer directories than the whole tree, unless the last was wanted.
            assert!(part.iter().count() <= full.iter().count());
        }
        // The root alone: found first, nothing else visited.
        let mut wanted = HashSet::from([ino("")]);
        let mut part = CgroupIndex::default();
        part.walk_until(d.path(), "v2", Some(&mut wanted));
        assert_eq!(part.iter().count(), 1);
        // An inode that is not there: the whole tree is walked.
        let mut wanted = HashSet::from([u64::MAX]);
        let mut part = CgroupIndex::default();
        part.walk_until(d.path(), "v2", Some(&mut wanted));
        assert_eq!((part.iter().count(), wanted.len()), (6, 1));
    }

    #[test]
    fn build_for_answers_as_build_on_the_live_system() {
        let root = SysRoot::live();
        let Ok(full) = CgroupIndex::build(&root) else {
            eprintln!("skipping: no cgroup hierarchy readable");
            return;
        };
        let mut inodes: Vec<u64> = full.iter().map(|c| c.inode).collect();
        inodes.sort_unstable();
        // Each of the first cgroups alone, the rest in threes, and an inode nobody has.
        let sets = inodes
            .chunks(1)
            .take(10)
            .chain(inodes.chunks(3).skip(4))
            .chain([&[u64::MAX - 1][..]]);
        for set in sets {
            // Cgroups come and go while the tests run: a mismatch counts only if a fresh
            // full index agrees with the old one.
            let same = |full: &CgroupIndex| {
                let part = CgroupIndex::build_for(&root, set).expect("build_for");
                set.iter().all(|&i| part.memcg(i) == full.memcg(i))
            };
            if !same(&full) {
                let again = CgroupIndex::build(&root).expect("build");
                assert!(same(&again), "build_for({set:?}) differs from build");
            }
        }
    }

    #[test]
    fn walks_a_directory_tree() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("a/b")).expect("mkdir");
        let mut idx = CgroupIndex::default();
        idx.walk(d.path(), "v2");
        let ino = inode_of(&d.path().join("a/b")).expect("ino");
        assert_eq!(idx.path_of(ino), Some(d.path().join("a/b").as_path()));
        assert_eq!(idx.iter().count(), 3);
    }
}
