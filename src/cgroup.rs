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

use crate::error::{Error, Result};
use crate::root::SysRoot;
use std::collections::HashMap;
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
            return Ok(idx);
        }
        for h in mounted_hierarchies(root)? {
            idx.walk(&h.mount, h.kind);
        }
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

    /// The table a snapshot stores (see [`SNAPSHOT_FILE`]), sorted by path.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<&Cgroup> = self.iter().collect();
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows.iter()
            .map(|c| format!("{}\t{}\t{}\n", c.inode, c.hierarchy, c.path.display()))
            .collect()
    }
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
