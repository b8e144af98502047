//! The golden page-types vectors (tests/vectors/page-types, made by the C reference), run
//! through the `page-types` personality of the pgtool binary by the vectors' own check.sh.

use std::process::Command;

#[test]
fn golden_vectors_pass_as_page_types() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/page-types");
    let out = Command::new("bash")
        .arg(here.join("check.sh"))
        .arg(env!("CARGO_BIN_EXE_pgtool"))
        .env("VERBOSE", "1")
        .output()
        .expect("run check.sh (needs bash and python3)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "golden vectors failed:\n{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
}

#[test]
fn subcommand_form_is_the_same_program() {
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(["types", "-d", "0x5868"])
        .output()
        .expect("run pgtool");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0x0000000000005868\t___U_lA____Ma_b______________________________\tuptodate,lru,active,mmap,anonymous,swapbacked\n"
    );
    assert!(out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_pgtool"))
        .args(["types", "-z"])
        .output()
        .expect("run pgtool");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pgtool types: invalid option -- 'z'\n"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("page-types [options]\n"));
}
