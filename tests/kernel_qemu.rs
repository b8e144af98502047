//! Runs the real-kernel tests (tests/kernel/run.sh: static pgtool + test programs, a kernel with
//! page_idle, hwpoison injection, page_owner and KFENCE booted under QEMU) when `PGTOOL_QEMU=1`
//! or `CI` is set. They take a few minutes the first time (kernel build, cached under
//! ~/.cache/pgtool-qemu) and about a minute afterwards. Under `CI` a guest SKIP line counts as a
//! failure (run.sh); outside CI run.sh appends its SKIP lines to `$PGTOOL_SKIP_LOG`.

use std::process::Command;

mod common;

#[test]
fn kernel_tests_under_qemu() {
    let asked = std::env::var("PGTOOL_QEMU").is_ok_and(|v| v == "1");
    let ci = std::env::var_os("CI").is_some();
    if !asked && !ci {
        common::skip_or_fail(
            "kernel_tests_under_qemu",
            "the qemu kernel tests run only with PGTOOL_QEMU=1 (tools/test.sh and CI set it)",
        );
        return;
    }
    if !common::need_root("boots qemu with the test kernel, installs packages") {
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
