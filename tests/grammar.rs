//! One input grammar (issue 10): the same tokens mean the same thing in every command that
//! takes them, and the same mistake gets the same message. Runs on the fixture tree (pid 1234)
//! where a command can read one, live otherwise.

mod common;

fn run(args: &[&str]) -> common::Run {
    common::pgtool(args)
}

fn first_err_line(r: &common::Run) -> String {
    r.stderr.lines().next().unwrap_or("").to_string()
}

/// The same mistake, the same first line of stderr and exit 2, in every command.
fn same_error(cases: &[Vec<&str>], want: &str) {
    for args in cases {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(first_err_line(&r), format!("pgtool: {want}"), "{args:?}");
    }
}

#[test]
fn bad_tokens_get_the_same_message_everywhere() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = common::write_fixture(dir.path());
    let root = root.to_str().expect("utf8");
    same_error(
        &[
            vec!["v2p", "0", "0x1000"],
            vec!["peek", "0", "0x1000"],
            vec!["idle", "read", "--pid", "0"],
            vec!["idle", "wss", "--pid", "0"],
            vec!["idle", "heatmap", "--pid", "0"],
            vec!["who", "--pid", "0", "0x100"],
            vec!["hwpoison", "inject", "--pid", "0", "--addr", "0x1000"],
            vec!["types", "-p", "0"],
        ],
        "bad PID \"0\": expected a positive number or `self`",
    );
    same_error(
        &[
            vec!["--root", root, "who", "0x10-0x1"],
            vec!["--root", root, "idle", "read", "--pfn", "0x10-0x1"],
            vec!["--root", root, "hwpoison", "inject", "0x10-0x1"],
        ],
        "bad PFN range \"0x10-0x1\": end 0x1 is below start 0x10",
    );
    same_error(
        &[
            vec!["idle", "wss", "--pid", "self", "--interval", "0s"],
            vec!["idle", "heatmap", "--pid", "self", "--interval", "0s"],
            vec!["slab", "--interval", "0s"],
        ],
        "bad duration \"0s\": must be above 0 and below 10000000 s",
    );
    same_error(
        &[
            vec!["--root", root, "v2p", "1234", "zz"],
            vec![
                "--root", root, "idle", "read", "--pid", "1234", "--addr", "zz",
            ],
            vec!["peek", "self", "zz"],
        ],
        "bad address \"zz\": expected ADDR, ADDR+LEN or START-END (END exclusive), each 0x hex or decimal",
    );
}

/// Decimal and 0x hex are the same number; `+8K` is `+0x2000`: the outputs are identical.
#[test]
fn decimal_hex_and_sizes_mean_the_same() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = common::write_fixture(dir.path());
    // an idle bitmap for the fixture's PFNs (a word per 64), every page idle
    let mm = root.join("sys/kernel/mm/page_idle");
    std::fs::create_dir_all(&mm).expect("mkdir");
    std::fs::write(
        mm.join("bitmap"),
        vec![0xffu8; (common::NPFNS.div_ceil(64) * 8) as usize],
    )
    .expect("bitmap");
    let root = root.to_str().expect("utf8");
    let pairs: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--root", root, "v2p", "1234", "4194304", "--json"],
            vec!["--root", root, "v2p", "1234", "0x400000", "--json"],
        ),
        (
            vec!["--root", root, "v2p", "1234", "0x7f0000000000+8K", "--json"],
            vec![
                "--root",
                root,
                "v2p",
                "1234",
                "139637976727552+0x2000",
                "--json",
            ],
        ),
        (
            vec![
                "--root",
                root,
                "idle",
                "read",
                "--pid",
                "1234",
                "--addr",
                "0x7f0000000000+8K",
                "--json",
            ],
            vec![
                "--root",
                root,
                "idle",
                "read",
                "--pid",
                "1234",
                "--addr",
                "139637976727552-139637976735744",
                "--json",
            ],
        ),
        (
            vec!["--root", root, "who", "256", "--json"],
            vec!["--root", root, "who", "0x100", "--json"],
        ),
        (
            vec!["--root", root, "who", "--phys", "1048576", "--json"],
            vec!["--root", root, "who", "0x100", "--json"],
        ),
        (
            vec![
                "--root", root, "hwpoison", "inject", "--pid", "1234", "--addr", "4194304",
                "--json",
            ],
            vec![
                "--root", root, "hwpoison", "inject", "--pid", "1234", "--addr", "0x400000",
                "--json",
            ],
        ),
    ];
    for (a, b) in pairs {
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(
            ra.code, rb.code,
            "{a:?} vs {b:?}: {} / {}",
            ra.stderr, rb.stderr
        );
        assert!(
            !ra.stdout.is_empty(),
            "{a:?} printed nothing: {}",
            ra.stderr
        );
        // hwpoison names the address as the user typed it: compare the records, not the text
        let strip = |s: &str| -> Vec<serde_json::Value> {
            common::json_lines(s)
                .into_iter()
                .map(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("target");
                    }
                    v
                })
                .collect()
        };
        assert_eq!(strip(&ra.stdout), strip(&rb.stdout), "{a:?} vs {b:?}");
    }
}

/// `self` is pgtool itself in every command that takes a PID (on the live system).
#[test]
fn self_is_a_pid_everywhere() {
    if !common::is_root() {
        common::skip("needs root (pagemap PFNs, clear_refs)");
        return;
    }
    for args in [
        vec!["v2p", "self", "--vma", "[stack]", "--json"],
        vec!["peek", "self", "--json", "0x0"],
        vec![
            "idle",
            "wss",
            "--pid",
            "self",
            "--method",
            "refs",
            "--count",
            "1",
            "--interval",
            "10ms",
            "--json",
        ],
        vec!["types", "-p", "self", "--json"],
        vec!["who", "--pid", "self", "0x1", "--json"],
    ] {
        let r = run(&args);
        assert!(!r.stderr.contains("bad PID"), "{args:?}: {}", r.stderr);
        if args[0] == "v2p" {
            let recs = common::json_lines(&r.stdout);
            assert!(!recs.is_empty(), "{}", r.stderr);
            let pid = recs[0]["pid"].as_u64().expect("pid");
            assert_ne!(
                pid,
                u64::from(std::process::id()),
                "self is pgtool, not its parent"
            );
            assert!(recs.iter().all(|x| x["pid"] == pid));
        }
    }
    // under --root, `self` is refused the same way everywhere
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().to_str().expect("utf8");
    same_error(
        &[
            vec!["--root", root, "v2p", "self", "0x1000"],
            vec!["--root", root, "idle", "read", "--pid", "self"],
            vec!["--root", root, "who", "--pid", "self", "0x1"],
        ],
        "`self` names the live pgtool process; with --root give a PID saved in the snapshot",
    );
}
