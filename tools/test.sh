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
