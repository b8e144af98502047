#!/usr/bin/env bash
# The whole test suite: `sudo tools/test.sh` (root, so the live-kernel tests run for real).
#  1. builds the reference page-types and page_owner_sort from Debian's linux-source
#     (cached in ~/.cache/pgtool-ref) for the differential tests;
#  2. cargo test: unit, fixture-tree, live-kernel (root) and differential tests;
#  3. the real-kernel tests under qemu (page_idle, hwpoison, page_owner, KFENCE), through
#     tests/kernel_qemu.rs with PGTOOL_QEMU=1 (the kernel is built once and cached).
# Tests whose prerequisite is missing print why they skip; with CI set they fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build-reference.sh
export PGTOOL_REF_DIR=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}
export PGTOOL_QEMU=${PGTOOL_QEMU:-1}
# --show-output: a skipped test's printed reason is visible even though the test passes.
cargo test -- --show-output

# The same tests as an unprivileged user (nobody): what needs root must skip with a printed
# reason or check its "needs root" error, and nothing else may change. CI is unset here on
# purpose: under CI a root-only test fails rather than skips. The qemu tests need root.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  echo "== the test binaries again, as nobody"
  chmod o+rx . target target/debug target/debug/deps 2>/dev/null || true
  bins=$(cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
  status=0
  first=$(echo "$bins" | head -n 1)
  if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$first"; then
    echo "SKIP the unprivileged run: nobody cannot reach $first (a parent directory is not"
    echo "     world-searchable); check out the project under a world-searchable path to run it"
    bins=""
  fi
  for b in $bins; do
    case $b in */kernel_qemu-*) continue ;; esac
    (cd /tmp && env -u CI setpriv --reuid=65534 --regid=65534 --clear-groups "$b" -q) || status=1
  done
  [ $status = 0 ] || { echo "tests failed as nobody"; exit 1; }
fi
