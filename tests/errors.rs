//! The bad-input table: each case runs the real binary and asserts its exact stderr and exit
//! code. Fixture roots (tests/common) give fixed PIDs and files; the unprivileged cases run
//! the binary as nobody with setpriv when the test runs as root.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BAD_ADDR: &str =
    "expected ADDR, ADDR+LEN or START-END (END exclusive), each 0x hex or decimal";

/// How to match stderr.
enum Err<'a> {
    /// Exactly this text.
    Is(String),
    /// The first line is exactly this (clap errors go on with usage text).
    FirstLine(&'a str),
}

struct Case<'a> {
    what: &'a str,
    args: Vec<String>,
    code: i32,
    stderr: Err<'a>,
}

fn case<'a>(what: &'a str, args: &[&str], code: i32, stderr: Err<'a>) -> Case<'a> {
    Case {
        what,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        stderr,
    }
}

fn line(s: String) -> Err<'static> {
    Err::Is(format!("pgtool: {s}\n"))
}

/// A fixture root with `edit` applied.
fn fixture_with(base: &Path, name: &str, edit: impl FnOnce(&Path)) -> String {
    let d = base.join(name);
    write_fixture(&d);
    edit(&d);
    d.to_str().expect("utf8").to_string()
}

fn check(c: &Case, run: &Run) {
    assert_eq!(run.code, c.code, "{}: {:?} -> {run:?}", c.what, c.args);
    match &c.stderr {
        Err::Is(s) => assert_eq!(&run.stderr, s, "{}: {:?}", c.what, c.args),
        Err::FirstLine(s) => assert_eq!(
            run.stderr.lines().next().unwrap_or(""),
            *s,
            "{}: {:?}",
            c.what,
            c.args
        ),
    }
}

#[test]
fn bad_input_table() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let fx = fixture_with(t, "ok", |_| {});
    let bad_maps = fixture_with(t, "badmaps", |d| {
        std::fs::write(
            d.join("proc/1234/maps"),
            "00400000-00402000 r-xp 00000000 08:01 1001 /x\n7f00-7f10 rwzp 0 00:00 0\n",
        )
        .expect("w")
    });
    let bad_iomem = fixture_with(t, "badiomem", |d| {
        std::fs::write(d.join("proc/iomem"), "this is not iomem\n").expect("w")
    });
    let no_pagemap = fixture_with(t, "nopagemap", |d| {
        std::fs::remove_file(d.join("proc/1234/pagemap")).expect("rm")
    });
    let no_kpage = fixture_with(t, "nokpage", |d| {
        for f in ["kpageflags", "kpagecount", "kpagecgroup"] {
            std::fs::remove_file(d.join("proc").join(f)).expect("rm");
        }
    });
    let cut_kpage = fixture_with(t, "cutkpage", |d| {
        // PFN 0x100 is the page at 0x400000; cut kpageflags 3 bytes into its word
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("proc/kpageflags"))
            .expect("open");
        f.set_len(0x100 * 8 + 3).expect("cut");
    });
    let cut_pagemap = fixture_with(t, "cutpagemap", |d| {
        let f = std::fs::File::options()
            .write(true)
            .open(d.join("proc/1234/pagemap"))
            .expect("open");
        f.set_len(0x400000 / 4096 * 8 + 5).expect("cut");
    });
    let bad_tsv = fixture_with(t, "badtsv", |d| {
        std::fs::write(d.join("cgroup-inodes.tsv"), "garbage\n").expect("w")
    });
    // a process that is gone
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let gone_pid = gone.id().to_string();
    gone.wait().expect("wait");

    let cases = vec![
        case("bad pid", &["v2p", "abc", "0x1000"], 2,
            line("bad PID \"abc\": expected a positive number or `self`".into())),
        case("pid zero", &["v2p", "0", "0x1000"], 2,
            line("bad PID \"0\": expected a positive number or `self`".into())),
        case("no such pid", &["v2p", "99999999", "0x1000"], 1,
            line("no such process 99999999".into())),
        case("pid gone", &["v2p", &gone_pid, "0x1000"], 1,
            line(format!("no such process {gone_pid}"))),
        case("bad address", &["v2p", "self", "zz"], 2,
            line(format!("bad address \"zz\": {BAD_ADDR}"))),
        case("bare 0x", &["v2p", "self", "0x"], 2,
            line(format!("bad address \"0x\": {BAD_ADDR}"))),
        case("bad range syntax", &["v2p", "self", "1-2-3"], 2,
            line(format!("bad address \"1-2-3\": {BAD_ADDR}"))),
        case("reversed range", &["v2p", "self", "0x2000-0x1000"], 2,
            line("bad range \"0x2000-0x1000\": end 0x1000 is not above start 0x2000 (END is exclusive)".into())),
        case("empty range", &["v2p", "self", "0x1000+0"], 2,
            line("bad range \"0x1000+0\": length is 0".into())),
        case("range overflow", &["v2p", "self", "0xffffffffffffffff+2"], 2,
            line("bad range \"0xffffffffffffffff+2\": runs past the end of the address space".into())),
        case("no address", &["v2p", "self"], 2,
            line("give at least one ADDR or --vma NAME (see pgtool v2p --help)".into())),
        case("unknown option", &["v2p", "--bogus"], 2,
            Err::FirstLine("error: unexpected argument '--bogus' found")),
        case("json and csv", &["v2p", "self", "0x1", "--json", "--csv"], 2,
            Err::FirstLine("error: the argument '--json' cannot be used with '--csv'")),
        case("unmapped address", &["--root", &fx, "v2p", "1234", "0x10"], 1,
            line("address 0x10 is not mapped in 1234".into())),
        case("one of two addresses unmapped", &["--root", &fx, "v2p", "1234", "--json", "0x400000", "0x10"], 1,
            line("address 0x10 is not mapped in 1234".into())),
        case("unmapped range", &["--root", &fx, "v2p", "1234", "0x10+0x1000"], 1,
            line("address 0x10 is not mapped in 1234".into())),
        case("kernel address", &["--root", &fx, "v2p", "1234", "0xffff888000000000"], 2,
            line("address 0xffff888000000000 is a kernel address: v2p translates user-space addresses of a process (user space ends below 0x800000000000)".into())),
        case("empty --vma match", &["--root", &fx, "v2p", "1234", "--vma", "libnothing"], 1,
            line(format!("no mapping of 1234 matches \"libnothing\" (see {fx}/proc/1234/maps)"))),
        case("self on a snapshot", &["--root", &fx, "v2p", "self", "0x400000"], 2,
            line("`self` names the live pgtool process; with --root give a PID saved in the snapshot".into())),
        case("pid not in snapshot", &["--root", &fx, "v2p", "4321", "0x400000"], 1,
            line("no such process 4321".into())),
        case("root without proc/", &["--root", "/nonexistent-pgtool", "v2p", "1", "0x1"], 2,
            line("/nonexistent-pgtool/proc: No such file or directory (--root DIR must hold proc/ as `pgtool snapshot DIR` writes it)".into())),
        case("garbage in maps", &["--root", &bad_maps, "v2p", "1234", "0x400000"], 2,
            line(format!("{bad_maps}/proc/1234/maps:2: bad permissions \"rwzp\""))),
        case("garbage in iomem", &["--root", &bad_iomem, "v2p", "1234", "--json", "--fields", "all", "0x400000"], 0,
            line(format!("note: {bad_iomem}/proc/iomem:1: expected \"START-END : NAME\"; iomem unknown"))),
        case("garbage in cgroup table", &["--root", &bad_tsv, "v2p", "1234", "--json", "--fields", "all", "0x400000"], 0,
            line(format!("note: {bad_tsv}/cgroup-inodes.tsv:1: expected INODE<TAB>v2|v1-memory<TAB>PATH; memcg_path unknown"))),
        case("missing pagemap", &["--root", &no_pagemap, "v2p", "1234", "0x400000"], 2,
            line(format!("{no_pagemap}/proc/1234/pagemap: No such file or directory (the snapshot has no pagemap for 1234: save it with `pgtool snapshot {no_pagemap} --pid 1234`)"))),
        case("missing kpage files", &["--root", &no_kpage, "v2p", "1234", "--json", "--fields", "all", "0x400000"], 0,
            Err::Is(format!(
                "pgtool: note: {d}/proc/kpageflags: No such file or directory; flags unknown\n\
                 pgtool: note: {d}/proc/kpagecount: No such file or directory; kpagecount unknown\n\
                 pgtool: note: {d}/proc/kpagecgroup: No such file or directory; memcg unknown\n",
                d = no_kpage))),
        case("truncated kpageflags", &["--root", &cut_kpage, "v2p", "1234", "0x400000"], 2,
            line(format!("{cut_kpage}/proc/kpageflags: truncated: 2051 bytes is not a multiple of 8 (entry 256 is partial)"))),
        case("truncated pagemap", &["--root", &cut_pagemap, "v2p", "1234", "0x400000"], 2,
            line(format!("{cut_pagemap}/proc/1234/pagemap: truncated: 8197 bytes is not a multiple of 8 (entry 1024 is partial)"))),
        case("snapshot with --root", &["--root", &fx, "snapshot", &format!("{fx}/x")], 2,
            line("snapshot reads the live system; --root cannot be used with it".into())),
        case("snapshot of a missing pid", &["snapshot", &format!("{fx}/snap"), "--pid", "99999999"], 1,
            line("no such process 99999999".into())),
    ];
    assert!(cases.len() >= 20);
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        check(c, &pgtool(&args));
    }
}

/// A command that runs pgtool unprivileged: via setpriv as nobody when root, else directly.
fn unprivileged(dir: &Path, args: &[&str]) -> Option<Run> {
    if is_root() {
        if Command::new("setpriv").arg("--help").output().is_err() {
            skip("setpriv (util-linux) is needed to run pgtool as nobody");
            return None;
        }
        // a copy nobody can execute, whatever the permissions of the build tree
        let bin = dir.join("pgtool");
        if !bin.exists() {
            std::fs::copy(pgtool_bin(), &bin).expect("copy");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Some(run_cmd(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&bin)
                .args(args)
                .current_dir(dir),
        ))
    } else {
        Some(pgtool(args))
    }
}

#[test]
fn unprivileged_cases() {
    let tmp = tempfile::tempdir().expect("tmp");
    // PFNs hidden: pgtool reads its own stack; present pages come back with pfn null and a note
    let Some(run) = unprivileged(tmp.path(), &["v2p", "self", "--json", "--vma", "[stack]"]) else {
        return;
    };
    assert_eq!(run.code, 0, "{run:?}");
    let recs = json_lines(&run.stdout);
    let present: Vec<_> = recs.iter().filter(|r| r["present"] == true).collect();
    assert!(!present.is_empty(), "{run:?}");
    assert!(
        present
            .iter()
            .all(|r| r["pfn"].is_null() && r["flags"].is_null())
    );
    let pid = recs[0]["pid"].as_u64().expect("pid");
    assert_eq!(
        run.stderr,
        format!(
            "pgtool: note: /proc/{pid}/pagemap: needs root or CAP_SYS_ADMIN: PFNs read as 0; pfn, flags, kpagecount, memcg and iomem are unknown\n"
        )
    );
    // another user's process: maps is not readable
    let run = unprivileged(tmp.path(), &["v2p", "1", "0x1000"]).expect("run");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "pgtool: /proc/1/maps: Permission denied (needs root or ptrace access to the process (same user and not protected by yama ptrace_scope))\n"
    );
    // snapshot needs the root-only kpage files
    let snap = tmp.path().join("snap");
    let run = unprivileged(tmp.path(), &["snapshot", snap.to_str().expect("utf8")]).expect("run");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "pgtool: /proc/kpageflags: Permission denied (needs root: the file is readable by root only)\n"
    );
}
