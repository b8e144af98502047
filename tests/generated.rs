//! The man pages in man/ and the completions in completions/ are generated from the clap
//! definition (`pgtool generate man|completions DIR`). This test regenerates them and fails when
//! the checked-in copies differ. Run with `PGTOOL_BLESS=1` to rewrite them.

use std::path::Path;
use std::process::Command;

fn check(what: &str, dir: &str) {
    let exe = env!("CARGO_BIN_EXE_pgtool");
    let tmp = tempfile::tempdir().expect("tempdir");
    let st = Command::new(exe)
        .args(["generate", what])
        .arg(tmp.path())
        .status()
        .expect("run");
    assert!(st.success(), "pgtool generate {what} failed");
    let want = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let bless = std::env::var_os("PGTOOL_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(&want).expect("mkdir");
    }
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut stale = Vec::new();
    for n in &names {
        let fresh = std::fs::read(tmp.path().join(n)).expect("read fresh");
        let path = want.join(n);
        if std::fs::read(&path).ok().as_deref() != Some(fresh.as_slice()) {
            if bless {
                std::fs::write(&path, &fresh).expect("write");
            } else {
                stale.push(n.to_string_lossy().into_owned());
            }
        }
    }
    // Files in the checked-in dir that are no longer generated are stale too.
    for e in std::fs::read_dir(&want).expect("checked-in dir").flatten() {
        if !names.contains(&e.file_name()) {
            if bless {
                std::fs::remove_file(e.path()).expect("remove");
            } else {
                stale.push(format!(
                    "{} (no longer generated)",
                    e.file_name().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{dir}/ is out of date: {stale:?}; run PGTOOL_BLESS=1 cargo test --test generated"
    );
}

#[test]
fn man_pages_are_current() {
    check("man", "man");
}

#[test]
fn completions_are_current() {
    check("completions", "completions");
}
