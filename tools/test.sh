#!/usr/bin/env bash
# The whole test suite: `sudo tools/test.sh` (root, so the live-kernel tests run for real).
#  1. builds the reference page-types and page_owner_sort from Debian's linux-source
#     (cached in $PGTOOL_REF_DIR, default ~/.cache/pgtool-ref) for the differential tests;
#  2. cargo test: unit, fixture-tree, live-kernel (root) and differential tests, and the
#     real-kernel tests under qemu (page_idle, hwpoison, page_owner, KFENCE) through
#     tests/kernel_qemu.rs with PGTOOL_QEMU=1 (the kernel is built once and cached);
#  3. the test binaries again as nobody (tools/test-nobody.sh);
#  4. the binary we ship (tools/dist.sh: static, fat LTO, panic=abort) is built, checked to
#     have no program interpreter, and run through the page-types and page_owner_sort golden
#     vectors (outputs of the C tools), so the shipped build is tested, not only the test build;
#  5. under CI: tools/selftest.sh, which injects faults (reference tools missing, `types` argv
#     broken, setpriv missing, failing benches) and checks that each makes the suite fail.
# The skip rule (tests/common: skip_or_fail; tests/kernel/run.sh for the guest): a test whose
# prerequisite is missing fails under CI, and otherwise prints `SKIP <test>: <reason>` and
# appends it to $PGTOOL_SKIP_LOG (target/test-skips.txt); they are all repeated at the end.
# Exit status: 0 when everything passed (skips allowed outside CI), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
export PGTOOL_REF_DIR=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}
export PGTOOL_QEMU=${PGTOOL_QEMU:-1}
mkdir -p target
export PGTOOL_SKIP_LOG=$PWD/target/test-skips.txt
: > "$PGTOOL_SKIP_LOG"
chmod 666 "$PGTOOL_SKIP_LOG" 2>/dev/null || true
status=0
failed=()
step() {   # step NAME CMD...: run, remember a failure, go on (the summary names them all)
  local name=$1; shift
  echo "== $name"
  "$@" || { status=1; failed+=("$name"); }
}

if ! tools/build-reference.sh "$PGTOOL_REF_DIR/bin"; then
  if [ -n "${CI:-}" ]; then
    status=1; failed+=("tools/build-reference.sh")
  else
    echo "SKIP tools/build-reference.sh: the reference tools could not be built (see above); the differential tests skip" |
      tee -a "$PGTOOL_SKIP_LOG"
  fi
fi
# --no-fail-fast: one failing test binary must not hide the others' results;
# --show-output: a skipped test's reason is visible even though the test passes.
# The log is kept so that the summary can repeat each failure's message: CI shows the start and
# the end of the output, and a panic in the middle would be lost.
cargo_test() { cargo test --no-fail-fast -- --show-output 2>&1 | tee target/cargo-test.log; }
step "cargo test" cargo_test
if [ "$(id -u)" = 0 ] || [ -n "${CI:-}" ]; then
  step "the test binaries as nobody (tools/test-nobody.sh)" tools/test-nobody.sh
else
  echo "SKIP the unprivileged run: tools/test.sh is not running as root" | tee -a "$PGTOOL_SKIP_LOG"
fi
dist_check() {
  local bin
  bin=$(tools/dist.sh) || return 1
  tests/vectors/page-types/check.sh "$bin" && tests/vectors/page_owner_sort/check.sh "$bin"
}
step "the shipped static binary (tools/dist.sh) against the golden vectors" dist_check
if [ -n "${CI:-}" ]; then
  step "the suite fails when it should (tools/selftest.sh)" tools/selftest.sh
fi

n=$(grep -c . "$PGTOOL_SKIP_LOG")
echo "== summary"
if [ "$n" -gt 0 ]; then
  echo "$n skipped (reasons below; under CI each would fail, except the \"(as nobody)\" ones: the"
  echo "unprivileged run has CI unset on purpose, root-only tests skip there):"
  sed 's/^/  /' "$PGTOOL_SKIP_LOG"
fi
if [ $status != 0 ] && grep -q "panicked at" target/cargo-test.log 2>/dev/null; then
  echo "failures (each panic and the lines after it, up to a blank line or a backtrace):"
  awk '/panicked at/ { n = 12 } n > 0 { if ($0 == "" || /^stack backtrace/) { n = 0; next } print "  " $0; n-- }' \
    target/cargo-test.log | head -n 150
fi
if [ $status = 0 ]; then
  echo "tools/test.sh: all passed"
else
  echo "tools/test.sh: FAILED: ${failed[*]}"
fi
exit $status
