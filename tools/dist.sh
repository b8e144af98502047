#!/bin/sh
# tools/dist.sh: build the pgtool binary we ship, and print its path (target/dist/pgtool).
# Profile `dist` (Cargo.toml: fat LTO, one codegen unit, abort on panic), linked statically
# against glibc (crt-static: a static-pie with no ld.so and no shared libc), so one file runs
# without the build host's shared libraries, and starts touching the fewest pages.
# `cargo rustc` passes the flag to the pgtool binary only: the proc-macro crates clap's derive
# needs must stay dynamic host libraries. Exits 1 if the build fails or the result is not static.
# Env: CARGO_TARGET_DIR (as cargo).
set -eu
cd "$(dirname "$0")/.."
cargo rustc --quiet --profile dist --bin pgtool -- -C target-feature=+crt-static >&2 ||
	{ echo "tools/dist.sh: cargo rustc --profile dist failed" >&2; exit 1; }
bin=${CARGO_TARGET_DIR:-$(pwd)/target}/dist/pgtool
# A static-pie has no PT_INTERP (no program interpreter): that is what makes it static.
if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	echo "tools/dist.sh: $bin is dynamically linked (crt-static not applied)" >&2
	exit 1
fi
echo "$bin"
