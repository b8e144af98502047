//! `pgtool kfence`: parser on a real objects file from the qemu kernel, fuzzing, the CLI.

use pgtool::kfence::{group_by_stack, parse};
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
    let objs = parse(&text);
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
        parse(&fixture()).iter().filter(|o| !o.freed).count()
    );
}

proptest! {
    #[test]
    fn parser_never_panics(s in "(kfence-#[0-9]{0,3}:? ?(size=[0-9x]{0,4})?,? ?(cache=[a-z]{0,5})?\n|allocated by task [0-9a-z ]{0,12} at [0-9.s]{0,6}:\n|freed by task 1 on cpu 0 at x\n| [a-z_+0-9/x]{0,10}\n|---\n|\n|.{0,20}\n){0,30}") {
        let objs = parse(&s);
        let _ = group_by_stack(&objs, true);
    }
}
