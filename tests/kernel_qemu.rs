//! Runs the real-kernel tests (tests/kernel/run.sh: static pgtool + test programs, a kernel with
//! page_idle, hwpoison injection, page_owner and KFENCE booted under QEMU) when `PGTOOL_QEMU=1`
//! or `CI` is set. They take a few minutes the first time (kernel build, cached under
//! ~/.cache/pgtool-qemu) and about a minute afterwards.

use std::process::Command;

#[test]
fn kernel_tests_under_qemu() {
    let asked = std::env::var("PGTOOL_QEMU").is_ok_and(|v| v == "1");
    let ci = std::env::var_os("CI").is_some();
    if !asked && !ci {
        eprintln!(
            "skipping the qemu kernel tests: set PGTOOL_QEMU=1 (CI does) to run tests/kernel/run.sh"
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kernel/run.sh");
    let status = Command::new("bash")
        .arg(script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        status.success(),
        "{script} failed ({status}); its output above names each failed check, logs are under \
         target/kernel-test/logs"
    );
}
