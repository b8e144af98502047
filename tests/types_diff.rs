//! Differential tests: pgtool's `page-types` personality against the C reference built from
//! Debian's linux-source 6.1 (tools/build-reference.sh). Same arguments, same environment:
//! stdout, stderr and exit status must be identical.
//!
//! The reference is `$PGTOOL_REF_DIR/bin/page-types` (tests/common: `reference`). When it is
//! missing (or a test needs root and is not root) the test follows the one skip rule
//! (`common::skip_or_fail`: `SKIP <test>: <reason>`, a failure under `CI`).

use proptest::prelude::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn reference() -> Option<PathBuf> {
    common::need_reference("page-types")
}

fn is_root() -> bool {
    common::need_root("reads /proc/kpageflags and /proc/PID/pagemap")
}

type Run = (Vec<u8>, Vec<u8>, Option<i32>);

fn run(bin: &Path, args: &[String], cwd: &Path) -> Run {
    let o = Command::new(bin)
        .arg0("page-types")
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env_remove("POSIXLY_CORRECT")
        .env_remove("DEBUGFS_PATH")
        .output()
        .expect("spawn");
    (o.stdout, o.stderr, o.status.code())
}

fn show(r: &Run) -> String {
    let head = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(3000)]).into_owned();
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        r.2,
        head(&r.0),
        head(&r.1)
    )
}

/// Compare; live state may change between the two runs, so retry a few times.
fn same(reference: &Path, args: &[String], cwd: &Path, tries: usize) {
    let me = common::pgtool_bin();
    let me = me.as_path();
    let mut last = None;
    for _ in 0..tries {
        let a = run(reference, args, cwd);
        let b = run(me, args, cwd);
        if a == b {
            return;
        }
        last = Some((a, b));
    }
    if let Some((a, b)) = last {
        panic!(
            "page-types {args:?} differs\n=== reference\n{}\n=== pgtool\n{}",
            show(&a),
            show(&b)
        );
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kpageflags_snapshot() {
    let (Some(r), true) = (reference(), is_root()) else {
        return;
    };
    let d = tempfile::tempdir().expect("tmp");
    let snap = d.path().join("kpageflags.snap");
    // the first 1.5 M PFNs of this machine, read in one go through dd-sized preads
    let data = {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open("/proc/kpageflags").expect("open kpageflags");
        let mut buf = vec![0u8; 1536 << 10 << 3];
        let mut n = 0;
        while n < buf.len() {
            let k = f.read_at(&mut buf[n..], n as u64).expect("read kpageflags");
            if k == 0 {
                break;
            }
            n += k;
        }
        buf.truncate(n);
        buf
    };
    std::fs::write(&snap, data).expect("write snapshot");
    let s = snap.to_str().expect("utf8");
    for args in [
        vec!["-F", s],
        vec!["-F", s, "-r"],
        vec!["-F", s, "-l"],
        vec!["-F", s, "-r", "-l", "-N"],
        vec!["-F", s, "-L", "-a", "0x1000,0x3000"],
        vec!["-F", s, "-b", "lru"],
        vec!["-F", s, "-b", "anon", "-r", "-l"],
        vec!["-F", s, "-b", "~buddy", "-b", "uptodate"],
        vec!["-F", s, "-b", "=lru,uptodate", "-r"],
        vec!["-F", s, "-a", "0x100000,", "-r", "-b", "slab,reserved"],
    ] {
        same(&r, &strs(&args), d.path(), 1);
    }
}

/// The whole unfiltered summary of this machine's memory, on a frozen copy: every word of
/// /proc/kpageflags is copied into a snapshot tree once, then the
/// reference reads the copy with `-F` and pgtool reads the same tree through `--root` (its live
/// code path: the threaded walk over proc/kpageflags), so both see one state of memory.
#[test]
fn live_whole_memory_summary() {
    let (Some(r), true) = (reference(), is_root()) else {
        return;
    };
    let d = tempfile::tempdir().expect("tmp");
    let proc_ = d.path().join("snap/proc");
    std::fs::create_dir_all(&proc_).expect("mkdir");
    // (the summary reads kpageflags only; kpagecount and kpagecgroup serve -C and -c)
    let src = std::fs::File::open("/proc/kpageflags").expect("open /proc/kpageflags as root");
    let words = copy_whole(&src, &proc_.join("kpageflags")) / 8;
    std::fs::copy("/proc/iomem", proc_.join("iomem")).expect("copy iomem");
    // the copy covers all of memory: as many PFNs as /proc/iomem's highest System RAM end
    let max_ram_pfn = std::fs::read_to_string("/proc/iomem")
        .expect("iomem")
        .lines()
        .filter(|l| l.ends_with(": System RAM"))
        .filter_map(|l| l.trim().split(['-', ' ']).nth(1))
        .filter_map(|e| u64::from_str_radix(e, 16).ok())
        .max()
        .expect("System RAM in /proc/iomem")
        / 4096;
    assert!(
        words > max_ram_pfn,
        "copied {words} kpageflags words, RAM ends at PFN {max_ram_pfn:#x}"
    );
    let flags = proc_.join("kpageflags");
    let f = flags.to_str().expect("utf8");
    let root = d.path().join("snap");
    let root = root.to_str().expect("utf8");
    let me = common::pgtool_bin();
    for extra in [&[][..], &["-r"][..], &["-l"][..]] {
        let mut ra = strs(&["-F", f]);
        ra.extend(strs(extra));
        let a = run(&r, &ra, d.path());
        let mut pa = strs(&["types", "--root", root]);
        pa.extend(strs(extra));
        let o = Command::new(&me)
            .args(&pa)
            .current_dir(d.path())
            .env("LC_ALL", "C")
            .output()
            .expect("spawn pgtool");
        let b = (o.stdout, o.stderr, o.status.code());
        assert!(
            a.0.len() > 200 && a.2 == Some(0),
            "the reference's summary of the copy looks empty or failed: {}",
            show(&a)
        );
        assert!(
            a == b,
            "whole-memory summary {extra:?} differs\n=== page-types -F copy\n{}\n=== pgtool types --root\n{}",
            show(&a),
            show(&b)
        );
        // and pgtool's -F path on the same copy
        same(&r, &ra, d.path(), 1);
    }
}

/// Copy a /proc/kpage* file word for word until the kernel says end of file; returns bytes.
fn copy_whole(f: &std::fs::File, to: &Path) -> u64 {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut out = std::fs::File::create(to).expect("create copy");
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let k = f.read_at(&mut buf, off).expect("read /proc/kpage*");
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k]).expect("write copy");
        off += k as u64;
    }
    off
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_stopped_process() {
    let (Some(r), true) = (reference(), is_root()) else {
        return;
    };
    let d = tempfile::tempdir().expect("tmp");
    // a shell that dirties some anonymous memory, maps its binary, then stops itself
    let child = Command::new("sh")
        .args([
            "-c",
            "x=$(seq 1 20000); y=\"$x$x$x\"; kill -STOP $$; echo ${#y}",
        ])
        .spawn()
        .expect("spawn sh");
    let child = Child(child);
    let pid = child.0.id().to_string();
    // wait until it is stopped
    for _ in 0..200 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if st
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('T'))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // pages shared with the rest of the system (vdso data, libc) may change their referenced
    // and idle bits between two runs: the anonymous pages of a stopped process do not
    for args in [
        vec!["-p", &pid, "-b", "anon"],
        vec!["-p", &pid, "-L", "-b", "anon"],
        vec!["-p", &pid, "-l", "-r", "-b", "anon"],
        vec!["-p", &pid, "-L", "-r", "-b", "anon,~active"],
        vec!["-p", &pid, "-l", "-r", "-b", "mmap_exclusive", "-b", "anon"],
        vec![
            "-p",
            &pid,
            "-l",
            "-a",
            "0x400,0x7fffffffffff",
            "-b",
            "swapbacked",
        ],
    ] {
        same(&r, &strs(&args), d.path(), 5);
    }
    // the vdso data page's referenced bit flickers system-wide: everything on the LRU
    same(&r, &strs(&["-p", &pid, "-L", "-b", "lru"]), d.path(), 5);
    same(
        &r,
        &strs(&["-p", &pid, "-l", "-r", "-b", "lru"]),
        d.path(),
        5,
    );
    same(&r, &strs(&["-p", &pid, "-r", "-b", "lru"]), d.path(), 5);
    drop(child);
}

#[test]
fn file_page_cache() {
    let (Some(r), true) = (reference(), is_root()) else {
        return;
    };
    let d = tempfile::tempdir().expect("tmp");
    let f = d.path().join("data");
    std::fs::write(&f, vec![7u8; 300 * 4096 + 100]).expect("write");
    let _ = std::fs::read(&f).expect("read back into the page cache");
    let sub = d.path().join("tree/sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    std::fs::write(sub.join("a"), vec![1u8; 8 * 4096]).expect("write");
    std::fs::write(d.path().join("tree/b"), vec![2u8; 20 * 4096]).expect("write");
    let fs = f.to_str().expect("utf8");
    for args in [
        vec!["-f", fs],
        vec!["-f", fs, "-l"],
        vec!["-f", fs, "-L", "-r", "-N"],
        vec!["-f", fs, "-l", "-a", "10,20", "-a", "5"],
        vec!["-f", "tree", "-N", "-L"],
    ] {
        same(&r, &strs(&args), d.path(), 3);
    }
}

fn arb_word() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        6 => prop::sample::select(vec![
            0x28u64, 0x2c, 0x68, 0x400, 0x5868, 0x80, 0x8080, 0x10080, 0x18000,
            0x28000, 0x400000828, 0x400001000, 0x800000080, 0x100000000, 0x200, 0x300,
            0x1000000, 0x100000, 0x20000, 0x6000000000000000, 0x2000, 0x4000, 0x80000000000080,
        ]),
        3 => (0u32..64).prop_map(|b| 1u64 << b),
        2 => any::<u64>().prop_map(|v| v & 0x0e0f_83ff_07ff_ffff),
        1 => any::<u64>(),
    ]
}

fn arb_opt() -> impl Strategy<Value = Vec<String>> {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    prop_oneof![
        Just(v(&["-r"])),
        Just(v(&["-l"])),
        Just(v(&["-L"])),
        Just(v(&["-N"])),
        Just(v(&["--raw"])),
        Just(v(&["--list-each"])),
        prop::sample::select(vec![
            "lru",
            "~lru",
            "anon,lru=lru",
            "=uptodate,lru",
            "compound",
            "slab,~active",
            "0x400",
            "buddy,nopage",
            "reserved",
            "thp",
            "swap",
            "a",
            "bogus",
            "=0",
            "",
            "=-1",
            "~",
            "lru,,active",
            "0x28=0x8",
        ])
        .prop_map(|b| vec!["-b".to_string(), b.to_string()]),
        prop::sample::select(vec![
            "0", "1", "5+3", "2,9", "7,", ",4", "08", "0x10", "-1", "3,2", "x", "+2",
        ])
        .prop_map(|a| vec!["-a".to_string(), a.to_string()]),
        prop::sample::select(vec!["lru", "0x5868", "c", "~a", "5abc", "0x8000000"])
            .prop_map(|a| vec!["-d".to_string(), a.to_string()]),
        // random option arguments: strtoll, name prefixes, list and range syntax
        (
            prop::sample::select(vec![
                "-a", "-b", "-d", "-c", "--addr", "--bits=", "-a", "-b"
            ]),
            "[-+ 0-9a-fxlurcomp_,=~@]{0,12}",
        )
            .prop_map(|(o, a)| if o.ends_with('=') {
                vec![format!("{o}{a}")]
            } else {
                vec![o.to_string(), a]
            }),
        // never -X/-x/-i (on a kernel with hwpoison_inject they would poison real PFNs)
        "--[a-z-]{0,10}(=[a-z0-9]{0,3})?"
            .prop_filter("no page actions", |o| {
                let name = o[2..].split('=').next().unwrap_or("");
                name.is_empty()
                    || !["hwpoison", "unpoison", "mark-idle"]
                        .iter()
                        .any(|n| n.starts_with(name))
            })
            .prop_map(|o| vec![o]),
        "-[a-hj-wyzA-WYZ]{1,4}".prop_map(|o| vec![o]),
        Just(v(&["-z"])),
        Just(v(&["--li"])),
        Just(v(&["--no"])),
        Just(v(&["operand"])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_words_and_options(
        words in prop::collection::vec(arb_word(), 0..300),
        opts in prop::collection::vec(arb_opt(), 0..5),
        tail in prop::collection::vec(any::<u8>(), 0..2),
    ) {
        let Some(r) = reference() else { return Ok(()) };
        let d = tempfile::tempdir().expect("tmp");
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        bytes.extend(tail);
        std::fs::write(d.path().join("f.bin"), &bytes).expect("write");
        let mut args = vec!["-F".to_string(), "f.bin".to_string()];
        for o in opts { args.extend(o); }
        let me = common::pgtool_bin();
        let me = me.as_path();
        let a = run(&r, &args, d.path());
        let b = run(me, &args, d.path());
        prop_assert!(a == b, "page-types {:?}\n=== reference\n{}\n=== pgtool\n{}", args, show(&a), show(&b));
    }
}
