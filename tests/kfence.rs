//! `pgtool kfence`: parser on a real objects file from the qemu kernel, fuzzing with object
//! generators and mutations (executions: 3 properties x `CASES`), the CLI.

use pgtool::kfence::{MAX_LINE, group_by_stack, parse};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

fn fixture() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kfence/qemu-6.1-objects.txt.gz");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&p)
        .output()
        .expect("gzip");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn parses_the_real_objects_file() {
    let text = fixture();
    let objs = parse(&text).expect("parse");
    assert_eq!(
        objs.len(),
        text.lines().filter(|l| l.starts_with("kfence-#")).count()
    );
    let freed = text
        .lines()
        .filter(|l| l.starts_with("freed by task"))
        .count();
    assert_eq!(objs.iter().filter(|o| o.freed).count(), freed);
    let o1 = objs.iter().find(|o| o.index == 1).expect("#1");
    assert_eq!(
        (o1.size, o1.cache.as_str(), o1.alloc_pid),
        (192, "dentry", Some(75))
    );
    assert_eq!(
        o1.alloc_stack.first().map(String::as_str),
        Some("__d_alloc+0x24/0x1d0")
    );
    assert!((o1.alloc_at.expect("at") - 1.087633).abs() < 1e-9);
    let live = group_by_stack(&objs, false);
    let all = group_by_stack(&objs, true);
    assert_eq!(
        live.iter().map(|g| g.objects).sum::<u64>() as usize,
        objs.len() - freed
    );
    assert_eq!(
        all.iter().map(|g| g.objects).sum::<u64>() as usize,
        objs.len()
    );
    assert!(live.windows(2).all(|w| w[0].objects >= w[1].objects));
}

/// The kernel prints `kfence-#N unused` for pool slots never allocated (mm/kfence/report.c,
/// kfence_print_object): no object, and no error, between real objects.
#[test]
fn unused_slots_are_no_objects() {
    let text = fixture();
    let first = text
        .lines()
        .position(|l| l.starts_with("kfence-#"))
        .expect("an object");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(first, "kfence-#11 unused");
    lines.insert(first, "kfence-#12 unused");
    lines.push("kfence-#250 unused");
    let with_unused = lines.join("\n");
    let objs = parse(&with_unused).expect("unused slots parse");
    assert_eq!(objs.len(), parse(&text).expect("parse").len());
    assert!(
        parse("kfence-#x unused\n").is_err(),
        "a bad number is still an error"
    );
}

#[test]
fn cli_groups_by_stack() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("objects");
    std::fs::write(&f, fixture()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(["kfence", "--json", "--top", "0"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["objects"]
                .as_u64()
                .expect("n")
        })
        .sum();
    assert_eq!(
        n as usize,
        parse(&fixture())
            .expect("parse")
            .iter()
            .filter(|o| !o.freed)
            .count()
    );
}

const CASES: u32 = 2000;

#[derive(Debug, Clone)]
struct Obj {
    index: u64,
    size: u64,
    cache: String,
    pid: u64,
    at: f64,
    stack: Vec<String>,
    freed: bool,
    text: String,
}

const SYMS: &[&str] = &[
    "__d_alloc",
    "d_alloc",
    "getname_flags.part.0",
    "alloc_pipe_info",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
    "kmem_cache_alloc",
];

/// A KFENCE object as the 6.1 kernel prints it.
fn object() -> impl Strategy<Value = Obj> {
    (
        0u64..255,
        1u64..=4096,
        "[a-z_0-9-]{1,16}",
        (0u64..100_000, 0u32..64, 0u64..100_000_000),
        prop::collection::vec((0..SYMS.len(), 0u32..0x200), 1..12),
        prop::option::of(prop::collection::vec((0..SYMS.len(), 0u32..0x200), 1..8)),
    )
        .prop_map(|(index, size, cache, (pid, cpu, us), frames, free)| {
            let at = us as f64 / 1e6;
            let stack: Vec<String> = frames
                .iter()
                .map(|(s, o)| format!("{}+{o:#x}/0x200", SYMS[*s]))
                .collect();
            let mut t = format!(
                "kfence-#{index}: 0x0000000063871b1d-0x000000004c30e22e, size={size}, cache={cache}\n\nallocated by task {pid} on cpu {cpu} at {at:.6}s:\n"
            );
            for f in &stack {
                t += &format!(" {f}\n");
            }
            if let Some(ff) = &free {
                t += &format!("\nfreed by task {pid} on cpu {cpu} at {:.6}s:\n", at + 1.0);
                for (s, o) in ff {
                    t += &format!(" {}+{o:#x}/0x200\n", SYMS[*s]);
                }
            }
            t += "---------------------------------\n";
            Obj {
                index,
                size,
                cache,
                pid,
                at: (at * 1e6).round() / 1e6,
                stack,
                freed: free.is_some(),
                text: t,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated objects parse back field by field; groups add up.
    #[test]
    fn objects_round_trip(objs in prop::collection::vec(object(), 0..20)) {
        let text: String = objs.iter().map(|o| o.text.as_str()).collect();
        let got = parse(&text).expect("valid");
        prop_assert_eq!(got.len(), objs.len());
        for (g, o) in got.iter().zip(&objs) {
            prop_assert_eq!(g.index, o.index);
            prop_assert_eq!(g.size, o.size);
            prop_assert_eq!(&g.cache, &o.cache);
            prop_assert_eq!(g.alloc_pid, Some(o.pid));
            prop_assert!((g.alloc_at.expect("at") - o.at).abs() < 1e-6);
            prop_assert_eq!(&g.alloc_stack, &o.stack);
            prop_assert_eq!(g.freed, o.freed);
        }
        let groups = group_by_stack(&got, false);
        prop_assert_eq!(groups.iter().map(|g| g.objects).sum::<u64>(), objs.iter().filter(|o| !o.freed).count() as u64);
        prop_assert_eq!(groups.iter().map(|g| g.bytes).sum::<u64>(), objs.iter().filter(|o| !o.freed).map(|o| o.size).sum::<u64>());
    }

    /// A size that is not a number is an error naming the header's line, never 0.
    #[test]
    fn unparsable_sizes_are_errors(
        objs in prop::collection::vec(object(), 1..8),
        which in any::<prop::sample::Index>(),
        bad in prop_oneof!["[a-z]{1,4}", "0x[0-9a-f]{1,4}", "-[0-9]{1,3}", "[1-9][0-9]{20,24}", Just(String::new())],
    ) {
        let i = which.index(objs.len());
        let mut line = 1;
        let mut text = String::new();
        for (k, o) in objs.iter().enumerate() {
            if k == i {
                line += text.lines().count();
                text += &o.text.replacen(&format!("size={},", o.size), &format!("size={bad},"), 1);
            } else {
                text += &o.text;
            }
        }
        let e = parse(&text).expect_err("bad size").to_string();
        prop_assert!(e.contains(&format!(":{line}: bad size")), "{e}");
    }

    /// Mutated files: never a panic; an error says what is wrong, else objects are headers.
    #[test]
    fn mutated_files_parse_or_fail(
        objs in prop::collection::vec(object(), 1..10),
        muts in prop::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut b: Vec<u8> = objs.iter().map(|o| o.text.as_str()).collect::<String>().into_bytes();
        for (kind, pos, byte) in muts {
            let p = pos % (b.len() + 1);
            match kind {
                0 => { if p < b.len() { b.remove(p); } }
                1 => b.insert(p, byte),
                2 => b.truncate(p),
                3 => b.insert(p, 0),
                _ => b.splice(p..p, std::iter::repeat_n(b'z', MAX_LINE + 1)).for_each(drop),
            }
        }
        let text = String::from_utf8_lossy(&b);
        match parse(&text) {
            Ok(got) => {
                let headers = text.lines().filter(|l| l.starts_with("kfence-#")).count();
                prop_assert_eq!(got.len(), headers);
            }
            Err(e) => {
                let m = e.to_string();
                prop_assert!(
                    m.contains("bad size") || m.contains("bad object number") || m.contains("no size=")
                        || m.contains("not a KFENCE objects file"),
                    "{m}"
                );
            }
        }
    }
}
