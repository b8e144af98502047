//! The stdout policy of the two drop-ins against their C references, and `pgtool types
//! --prometheus` against Prometheus' own lint (issues 11 and 20).
//!
//! The references are `~/.cache/pgtool-ref/bin/{page-types,page_owner_sort}` (or under
//! `$PGTOOL_REF_DIR/bin`); promtool is Debian's `prometheus` package. A missing tool prints
//! `SKIP` and passes, except under `CI`, where it fails.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The one skip rule (tests/common): SKIP line outside CI, a failure under CI.
fn skip(test: &str, why: &str) {
    common::skip_or_fail(test, why);
}

/// The reference tool, found the one way (`PGTOOL_REF_DIR`, tests/common).
fn reference(name: &str) -> Option<PathBuf> {
    common::reference(name)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// How a run ended: exit code or signal, and stderr.
#[derive(Debug, PartialEq, Eq)]
struct End {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

/// Run `bin` as `argv0` with stdout on `/dev/full` (`full`) or on a pipe closed before it
/// writes (not `full`).
fn run(bin: &Path, argv0: &str, args: &[&str], full: bool) -> End {
    let mut c = Command::new(bin);
    c.arg0(argv0)
        .args(args)
        .stderr(Stdio::piped())
        .env("LC_ALL", "C");
    if full {
        c.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        );
    } else {
        let (r, w) = std::io::pipe().expect("pipe");
        drop(r);
        c.stdout(w);
    }
    let o = c.output().expect("spawn");
    End {
        code: o.status.code(),
        signal: o.status.signal(),
        stderr: String::from_utf8_lossy(&o.stderr).replace(&bin.display().to_string(), argv0),
    }
}

#[test]
fn page_types_drop_in_ends_as_the_reference_on_full_and_closed_stdout() {
    let Some(r) = reference("page-types") else {
        return skip("page_types_drop_in", "no reference page-types");
    };
    if !is_root() {
        return skip("page_types_drop_in", "needs root (reads /proc/kpageflags)");
    }
    let me = Path::new(env!("CARGO_BIN_EXE_pgtool"));
    for args in [
        &["-L", "-a", "0,4096"][..],
        &["-a", "0,4096"],
        &["-d", "0x28"],
        &["-h"],
    ] {
        for full in [true, false] {
            let want = run(&r, "page-types", args, full);
            let got = run(me, "page-types", args, full);
            assert_eq!(got, want, "page-types {args:?} full={full}");
        }
    }
}

#[test]
fn page_owner_sort_drop_in_ends_as_the_reference_on_full_and_closed_stdout() {
    let Some(r) = reference("page_owner_sort") else {
        return skip("page_owner_sort_drop_in", "no reference page_owner_sort");
    };
    let d = tempfile::tempdir().expect("tmp");
    let input = d.path().join("in.txt");
    let block = "Page allocated via order 0, mask 0x0(), pid 1, tgid 1 (init), ts 5 ns, free_ts 0 ns\n\
                 PFN 4096 type Unmovable Block 8 type Unmovable Flags 0x0()\n \
                 alloc_pages+0x1/0x2\n\n";
    std::fs::write(&input, block.repeat(3)).expect("write");
    let me = Path::new(env!("CARGO_BIN_EXE_pgtool"));
    let i = input.to_str().expect("utf8");
    for full in [true, false] {
        let (o1, o2) = (d.path().join("a.out"), d.path().join("b.out"));
        let want = run(
            &r,
            "page_owner_sort",
            &[i, o1.to_str().expect("utf8")],
            full,
        );
        let got = run(
            me,
            "page_owner_sort",
            &[i, o2.to_str().expect("utf8")],
            full,
        );
        assert_eq!(got, want, "full={full}");
        if full {
            assert_eq!(want.code, Some(0));
            assert_eq!(std::fs::read(&o1).ok(), std::fs::read(&o2).ok());
        }
    }
}

#[test]
fn types_prometheus_file_passes_promtool() {
    let Ok(promtool) = which("promtool") else {
        return skip(
            "types_prometheus_promtool",
            "promtool not installed (Debian: prometheus)",
        );
    };
    let d = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(d.path().join("proc")).expect("mkdir");
    let words: Vec<u8> = [0x28u64, 0x28, 0x68, 0, 0x5868, 0x400, 1 << 20]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    std::fs::write(d.path().join("proc/kpageflags"), words).expect("write");
    let prom = d.path().join("types.prom");
    let me = env!("CARGO_BIN_EXE_pgtool");
    let root = d.path().to_str().expect("utf8");
    for _ in 0..2 {
        let o = Command::new(me)
            .args([
                "--root",
                root,
                "types",
                "--prometheus",
                prom.to_str().expect("utf8"),
            ])
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let text = std::fs::read(&prom).expect("prom");
    let mut lint = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    lint.stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("feed");
    let o = lint.wait_with_output().expect("promtool");
    assert!(
        o.status.success(),
        "promtool: {}{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&text)
    );
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("pgtool_types_pages{flags=\"uptodate|lru\"} 2\n"),
        "{text}"
    );
    // one series per flag set: no pid, no address
    assert!(!text.contains("pid=") && !text.contains("vma="), "{text}");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .ok_or(())
}
