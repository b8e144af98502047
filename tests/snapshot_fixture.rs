//! `pgtool::snapshot::save` from a fixture tree (no root needed): the copy answers every v2p
//! question as the source does, its per-page files are sparse, and it holds every file the
//! readers (and `pgtool mem`) need.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;

/// The files `pgtool mem` reads, which the common fixture lacks: (path under the tree, bytes).
const MEM_FILES: &[(&str, &str)] = &[
    (
        "proc/meminfo",
        "MemTotal:        4096 kB\nMemFree:         1024 kB\n",
    ),
    ("proc/1234/cmdline", "/usr/bin/fixture\0--serve\0"),
    ("proc/1234/cgroup", "0::/fixture.slice\n"),
    (
        "proc/1234/smaps_rollup",
        "00400000-7ffd00002000 ---p 00000000 00:00 0 [rollup]\nRss:                2136 kB\n",
    ),
];

#[test]
fn snapshot_of_fixture_answers_the_same() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = write_fixture(&tmp.path().join("src"));
    for (f, text) in MEM_FILES {
        std::fs::write(src.join(f), text).expect("write");
    }
    let dst = tmp.path().join("dst");
    let sum = pgtool::snapshot::save(&pgtool::SysRoot::at(&src), &dst, &[PID]).expect("save");
    assert_eq!(sum.kpage_words, [NPFNS, NPFNS, NPFNS]);
    assert!(sum.notes.is_empty(), "{:?}", sum.notes);
    for f in [
        "proc/iomem",
        "proc/meminfo",
        "proc/1234/maps",
        "proc/1234/comm",
        "proc/1234/status",
        "proc/1234/cmdline",
        "proc/1234/cgroup",
        "proc/1234/smaps_rollup",
    ] {
        assert_eq!(
            std::fs::read(src.join(f)).expect("src"),
            std::fs::read(dst.join(f)).expect("dst"),
            "{f}"
        );
        assert!(
            sum.files.iter().any(|p| p == std::path::Path::new(f)),
            "{f} not in {:?}",
            sum.files
        );
    }
    // every VMA's entries were saved: 2 + 4 + 1024 + 2 pages
    assert_eq!(sum.pagemap_entries, vec![(PID, 2 + 4 + 1024 + 2)]);
    for f in ["proc/kpageflags", "proc/kpagecount", "proc/kpagecgroup"] {
        assert_eq!(
            std::fs::read(src.join(f)).expect("src"),
            std::fs::read(dst.join(f)).expect("dst"),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dst.join("cgroup-inodes.tsv")).expect("tsv"),
        CGROUPS
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("proc/1234/maps")).expect("maps"),
        MAPS
    );
    let pm = std::fs::metadata(dst.join("proc/1234/pagemap")).expect("pm");
    assert_eq!(pm.len(), 0x7ffd_0000_2000 / 4096 * 8);
    assert!(
        pm.blocks() * 512 < 1 << 20,
        "not sparse: {} blocks",
        pm.blocks()
    );
    for args in [
        vec!["--vma", "[stack]", "--vma", "fixture"],
        vec!["0x7f0000000000-0x7f0000004000"],
        vec!["0x7f0000200000+0x400000"],
    ] {
        let mut a = vec!["v2p", "1234", "--json"];
        a.extend(args.iter().copied());
        let run = |root: &std::path::Path| {
            let mut full = vec!["--root", root.to_str().expect("utf8")];
            full.extend(a.iter().copied());
            let r = pgtool(&full);
            assert_eq!(r.code, 0, "{r:?}");
            r.stdout
        };
        let (x, y) = (run(&src), run(&dst));
        assert!(!x.is_empty());
        assert_eq!(x, y, "{args:?}");
    }
}

#[test]
fn snapshot_refuses_missing_pid_before_copying() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = write_fixture(&tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    let e = pgtool::snapshot::save(&pgtool::SysRoot::at(&src), &dst, &[4321]).expect_err("gone");
    assert_eq!(e.to_string(), "no such process 4321");
    assert!(!dst.join("proc/kpageflags").exists());
}

#[test]
fn snapshot_notes_files_the_tree_lacks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = write_fixture(&tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    let sum = pgtool::snapshot::save(&pgtool::SysRoot::at(&src), &dst, &[PID]).expect("save");
    // the common fixture has no meminfo, cmdline, cgroup or smaps_rollup: each one a note
    for (f, _) in MEM_FILES {
        assert!(
            sum.notes
                .iter()
                .any(|n| n.contains(f) && n.contains("missing")),
            "{f}: {:?}",
            sum.notes
        );
        assert!(!dst.join(f).exists(), "{f}");
    }
    assert!(dst.join("proc/1234/pagemap").is_file());
}
