#!/usr/bin/env bash
# tools/test-nobody.sh [--only NAME]... -- the test binaries again as the unprivileged user nobody
# (run by tools/test.sh as root): what needs root must skip with its reason or check its
# "needs root" error, and nothing else may change. CI is unset for the tests themselves (a
# root-only test skips as nobody instead of failing), but a run that cannot happen at all (not
# root, no setpriv, no way for nobody to reach the binaries) fails under CI and prints one
# `SKIP the unprivileged run: <reason>` line otherwise.
#
# Any checkout location works: when nobody cannot search a parent directory of the checkout
# (e.g. a checkout under /root, mode 0700), each test binary runs in a private mount namespace
# (unshare -m) where that directory is covered by a 0755 skeleton that holds only the checkout
# (bind-mounted at the same path), so the binaries' compiled-in paths (CARGO_MANIFEST_DIR,
# CARGO_BIN_EXE_pgtool) resolve for nobody and nothing else of that directory is visible.
# The reference tools are copied into a 0755 temp dir (PGTOOL_REF_DIR points there).
#   --only NAME   run only the test binaries whose crate name is NAME (repeatable)
# Environment: PGTOOL_SKIP_LOG (skips are appended there, marked "as nobody"),
#   PGTOOL_NOBODY_COVER=DIR treat DIR (a parent of the checkout) as unsearchable (tools/selftest.sh
#   uses it to exercise the mount namespace on machines whose checkout is reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
only=()
while [ $# -gt 0 ]; do
  case $1 in
    --only) only+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--only NAME]..." >&2; exit 2 ;;
  esac
done
say() { echo "test-nobody: $*"; }
log_skip() {
  if [ -n "${PGTOOL_SKIP_LOG:-}" ]; then echo "$1" >> "$PGTOOL_SKIP_LOG" || true; fi
}
# the one skip rule, for the whole run
skip_or_fail() {
  if [ -n "${CI:-}" ]; then echo "FAIL the unprivileged run: $*" >&2; exit 1; fi
  echo "SKIP the unprivileged run: $*"
  log_skip "SKIP the unprivileged run: $*"
  exit 0
}
[ "$(id -u)" = 0 ] || skip_or_fail "needs root to switch to nobody (run tools/test.sh as root)"
SETPRIV=$(command -v setpriv) || skip_or_fail "setpriv not found (Debian package util-linux)"
as_nobody() { "$SETPRIV" --reuid=65534 --regid=65534 --clear-groups "$@"; }

bins=$(cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"] + " " + m["executable"])') ||
  skip_or_fail "cargo test --no-run failed"
[ -n "$bins" ] || skip_or_fail "cargo test --no-run listed no test binary"

# the checkout and the build output must be readable by others (git's default modes are)
chmod o+rx "$ROOT" "$ROOT/target" "$ROOT/target/debug" "$ROOT/target/debug/deps" 2>/dev/null || true
# the highest parent directory nobody cannot search (or PGTOOL_NOBODY_COVER)
cover=${PGTOOL_NOBODY_COVER:-}
if [ -z "$cover" ]; then
  d=$ROOT
  while [ "$d" != / ]; do
    d=$(dirname "$d")
    as_nobody test -x "$d" || cover=$d
  done
fi
# The scratch directory: reference copies, nobody's HOME, the skip log and TMPDIR. It must be
# visible inside the namespace: when the covered directory holds the usual temporary directory
# (a checkout under /tmp), it goes inside the checkout's target/ instead.
base=${TMPDIR:-/tmp}
if [ -n "$cover" ]; then case $base/ in "$cover"/*) base=$ROOT/target ;; esac; fi
T=$(mktemp -d "$base/pgtool-nobody.XXXXXX")
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
# the reference tools, where nobody can run them
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}
mkdir -p "$T/ref/bin" "$T/home" "$T/tmp"
chmod 1777 "$T/tmp"
for t in page-types page_owner_sort; do
  if [ -x "$REF/bin/$t" ]; then cp "$REF/bin/$t" "$T/ref/bin/"; fi
done
chmod -R a+rX "$T/ref"
chown 65534:65534 "$T/home"
: > "$T/skips"; chmod 666 "$T/skips"

if [ -n "$cover" ]; then
  case $ROOT/ in "$cover"/*) ;; *) skip_or_fail "PGTOOL_NOBODY_COVER=$cover is not a parent of $ROOT" ;; esac
  command -v unshare >/dev/null || skip_or_fail "nobody cannot search $cover and unshare (util-linux) is missing"
  rel=${ROOT#"$cover"/}
  mkdir -p "$T/skel/$rel"
  chmod -R 755 "$T/skel"
  say "nobody cannot search $cover: running in a mount namespace where it holds only $ROOT"
fi
# run_as_nobody BIN ARGS...: in the namespace when needed
run_as_nobody() {
  local envs=(env -u CI -u PGTOOL_QEMU HOME="$T/home" TMPDIR="$T/tmp" PGTOOL_REF_DIR="$T/ref" PGTOOL_SKIP_LOG="$T/skips")
  if [ -z "$cover" ]; then
    (cd "$T/tmp" && "${envs[@]}" "$SETPRIV" --reuid=65534 --regid=65534 --clear-groups "$@")
  else
    (cd "$T/tmp" && unshare -m --propagation private "${envs[@]}" sh -c '
      mount --bind "$1" "$2" && mount --rbind "$3" "$4" || { echo "test-nobody: bind mounts failed" >&2; exit 97; }
      shift 4; exec "$@"' sh "$ROOT" "$T/skel/$rel" "$T/skel" "$cover" \
      "$SETPRIV" --reuid=65534 --regid=65534 --clear-groups "$@")
  fi
}
# nobody must reach a binary and the test data through the same path the tests use
probe=$(echo "$bins" | head -n 1 | cut -d' ' -f2)
run_as_nobody test -x "$probe" && run_as_nobody test -r "$ROOT/tests/vectors/page-types/index.tsv" ||
  skip_or_fail "nobody cannot reach $probe or $ROOT/tests (file modes of the checkout?)"

status=0 n=0
while read -r name b; do
  case $name in kernel_qemu) continue ;; esac   # boots qemu as root
  if [ ${#only[@]} -gt 0 ]; then
    m=0; for o in "${only[@]}"; do [ "$name" = "$o" ] && m=1; done
    [ $m = 1 ] || continue
  fi
  n=$((n + 1))
  run_as_nobody "$b" -q || { echo "test-nobody: $name failed as nobody"; status=1; }
done <<< "$bins"
[ $n -gt 0 ] || skip_or_fail "no test binary matched --only ${only[*]}"
if [ -s "$T/skips" ]; then
  sed 's/^SKIP /SKIP (as nobody) /' "$T/skips" > "$T/skips.marked"
  if [ -n "${PGTOOL_SKIP_LOG:-}" ]; then cat "$T/skips.marked" >> "$PGTOOL_SKIP_LOG"; fi
fi
say "$n test binaries as nobody: $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
