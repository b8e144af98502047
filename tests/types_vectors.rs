//! The golden vectors (tests/vectors/page-types and tests/vectors/page_owner_sort, made by the
//! C reference tools), run by the vectors' own check.sh: through the `page-types` personality
//! of the pgtool binary, and through the reference binaries themselves (a golden file the
//! reference does not produce is caught). Every case of index.tsv must run: the count printed
//! by check.sh is compared with the index.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// The non-comment lines of a vectors directory's index.tsv.
fn cases(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("index.tsv"))
        .expect("index.tsv")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// Run `dir/check.sh candidate`; assert every case of the index ran and passed.
fn check_all(dir: &Path, candidate: &Path) {
    let want = cases(dir);
    assert!(want > 30, "only {want} cases in {}", dir.display());
    let out = Command::new("bash")
        .arg(dir.join("check.sh"))
        .arg(candidate)
        .env("VERBOSE", "1")
        .output()
        .expect("run check.sh (needs bash and python3)");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let summary = format!("{} {}", dir.display(), candidate.display());
    let last = text.lines().last().unwrap_or("");
    let counts: Vec<usize> = last
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        out.status.success() && counts == [want, 0],
        "{summary}: want \"{want} passed, 0 failed\", check.sh exited {:?} with:\n{text}\n{err}",
        out.status.code()
    );
}

fn vectors(name: &str) -> PathBuf {
    common::manifest_dir().join("tests/vectors").join(name)
}

#[test]
fn golden_vectors_pass_as_page_types() {
    check_all(&vectors("page-types"), &common::pgtool_bin());
}

#[test]
fn golden_vectors_pass_as_page_owner_sort() {
    check_all(&vectors("page_owner_sort"), &common::pgtool_bin());
}

#[test]
fn reference_page_types_makes_the_golden_vectors() {
    let Some(r) = common::need_reference("page-types") else {
        return;
    };
    check_all(&vectors("page-types"), &r);
}

#[test]
fn reference_page_owner_sort_makes_the_golden_vectors() {
    let Some(r) = common::need_reference("page_owner_sort") else {
        return;
    };
    check_all(&vectors("page_owner_sort"), &r);
}

/// The inputs for hash collisions (v06) and the 65,536-entry read batch (v10) are used.
#[test]
fn every_generated_input_has_cases() {
    let dir = vectors("page-types");
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    let script = std::fs::read_to_string(dir.join("gen.py")).expect("gen.py");
    let inputs: Vec<&str> = script
        .split('"')
        .filter(|s| s.starts_with('v') && s.ends_with(".bin"))
        .collect();
    assert!(inputs.len() >= 11, "{inputs:?}");
    for i in inputs {
        assert!(
            index.contains(&format!("inputs/{i}")),
            "no case of index.tsv uses inputs/{i}"
        );
    }
}

#[test]
fn subcommand_form_is_the_same_program() {
    let out = Command::new(common::pgtool_bin())
        .args(["types", "-d", "0x5868"])
        .output()
        .expect("run pgtool");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0x0000000000005868\t___U_lA____Ma_b______________________________\tuptodate,lru,active,mmap,anonymous,swapbacked\n"
    );
    assert!(out.status.success());
    // An unknown option is a usage error of pgtool (clap, exit 2) in the subcommand form; the
    // `page-types` drop-in keeps glibc's text and exit 1 (tests/types_diff.rs compares those).
    let out = Command::new(common::pgtool_bin())
        .args(["types", "-z"])
        .output()
        .expect("run pgtool");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unexpected argument '-z'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
