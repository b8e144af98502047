#!/usr/bin/env bash
# tools/selftest.sh -- proves that the suite fails when it should (run by tools/test.sh under CI,
# as root, after the test binaries are built; ~2 min, one qemu boot). Each check injects one
# fault and asserts that the part of tools/test.sh that covers it fails, with its reason:
#   1. the reference tools missing (PGTOOL_REF_DIR empty): with CI set, every test that needs
#      them fails naming PGTOOL_REF_DIR; without CI the same tests pass and leave one
#      `SKIP <test>: <reason>` line each in PGTOOL_SKIP_LOG (what tools/test.sh repeats);
#   2. `types` argv handling broken (a pgtool whose `types` answers clap's "unexpected
#      argument"): the golden vectors fail on the host, and in the guest (tests/kernel/run.sh
#      with PGTOOL_KTEST_WRAP) 50-types-idle-hwpoison reports FAIL, never SKIP;
#   3. setpriv missing (PATH without it): tools/test-nobody.sh fails under CI, prints one SKIP
#      line without CI;
#   4. the run as nobody from a checkout nobody cannot reach (PGTOOL_NOBODY_COVER): passes.
#   5. the benches: bench/who.sh with PGTOOL=/bin/false exits non-zero, bench/compare.sh exits
#      non-zero when the two tools' outputs differ (a page-types that prints one byte more),
#      bench/idle.sh (in the guest) exits non-zero when pgtool's read disagrees with the
#      floor's (a pgtool that does nothing).
# Usage: tools/selftest.sh [--no-qemu]
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
qemu=1
[ "${1:-}" = --no-qemu ] && qemu=0
T=$(mktemp -d "${TMPDIR:-/tmp}/pgtool-selftest.XXXXXX")
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
FAILS=0
ok() { echo "selftest: ok   $1"; }
bad() { echo "selftest: FAIL $1"; FAILS=$((FAILS + 1)); }
# expect_fail NAME PATTERN CMD...: CMD must exit non-zero and print PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  "$@" > "$T/out" 2>&1; local rc=$?
  if [ $rc != 0 ] && grep -q -- "$pat" "$T/out"; then ok "$name (exit $rc)"
  else bad "$name: exit $rc, want non-zero with \"$pat\"; last lines: $(tail -n 5 "$T/out" | tr '\n' ' ')"; fi
}
expect_pass() {
  local name=$1; shift
  "$@" > "$T/out" 2>&1; local rc=$?
  if [ $rc = 0 ]; then ok "$name"; else bad "$name: exit $rc; last lines: $(tail -n 5 "$T/out" | tr '\n' ' ')"; fi
}

bins=$(cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"] + " " + m["executable"])')
bin() { echo "$bins" | awk -v n="$1" '$1 == n { print $2 }'; }
for n in types_diff types_vectors page_owner_sort page_owner_report; do
  [ -n "$(bin $n)" ] || { bad "no test binary $n (cargo test --no-run)"; exit 1; }
done

# 1. reference tools missing ---------------------------------------------------------------
mkdir -p "$T/noref"
for t in "types_diff kpageflags_snapshot" "types_diff random_words_and_options" \
         "types_vectors reference_page_types_makes_the_golden_vectors" \
         "types_vectors reference_page_owner_sort_makes_the_golden_vectors" \
         "page_owner_sort real_qemu_dump_matches_reference" \
         "page_owner_report stacks_match_reference_cull_st"; do
  set -- $t
  expect_fail "no reference, CI: $1 $2 fails" "PGTOOL_REF_DIR" \
    env CI=true PGTOOL_REF_DIR="$T/noref" "$(bin "$1")" --exact "$2" -q
  : > "$T/skips"
  env -u CI PGTOOL_REF_DIR="$T/noref" PGTOOL_SKIP_LOG="$T/skips" "$(bin "$1")" --exact "$2" -q > "$T/out" 2>&1
  rc=$?
  if [ $rc = 0 ] && grep -q "^SKIP $2: reference .* not found" "$T/skips"; then ok "no reference, no CI: $2 skips with one SKIP line"
  else bad "no reference, no CI: $2: exit $rc, skip log: $(cat "$T/skips")"; fi
done

# 2. types argv broken ------------------------------------------------------------------------
cat > "$T/broken-pgtool" <<EOF
#!/bin/sh
# a pgtool whose types/page-types argv handling is broken (clap's generic error)
case \${1:-} in v2p|who|idle|hwpoison|slab|kfence|page-owner|peek|snapshot|cgroup) exec "$ROOT/target/debug/pgtool" "\$@" ;; esac
echo "error: unexpected argument '\${1:-}' found" >&2
exit 2
EOF
chmod 755 "$T/broken-pgtool"
expect_fail "types argv broken: golden vectors fail" "want \"" \
  env CI=true PGTOOL_TEST_BIN="$T/broken-pgtool" "$(bin types_vectors)" --exact golden_vectors_pass_as_page_types -q
if [ $qemu = 1 ]; then
  cat > "$T/guest-wrap.sh" <<'EOF'
#!/bin/sh
# installed as /bin/pgtool in the guest; the real one is /bin/pgtool.real
case ${1:-} in types) echo "error: unexpected argument '${2:-}' found" >&2; exit 2 ;; esac
exec /bin/pgtool.real "$@"
EOF
  chmod 755 "$T/guest-wrap.sh"
  expect_fail "types argv broken: guest 50-types reports FAIL under CI" "FAIL types" \
    env CI=true PGTOOL_KTEST_WRAP="$T/guest-wrap.sh" PGTOOL_KTEST_OUT="$T/ktest" \
    tests/kernel/run.sh 50-types-idle-hwpoison
  if grep -q '^SKIP ' "$T/out"; then bad "broken types turned into a guest SKIP"; fi
fi

# 3. setpriv missing --------------------------------------------------------------------------
mkdir -p "$T/path"
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do
    n=${f##*/}
    [ "$n" = setpriv ] || [ -e "$T/path/$n" ] || ln -s "$f" "$T/path/$n" 2>/dev/null
  done
done
expect_fail "setpriv missing, CI: the run as nobody fails" "setpriv" \
  env CI=true PATH="$T/path" tools/test-nobody.sh --only types_vectors
: > "$T/skips"
env -u CI PATH="$T/path" PGTOOL_SKIP_LOG="$T/skips" tools/test-nobody.sh --only types_vectors > "$T/out" 2>&1
if [ $? = 0 ] && grep -q '^SKIP the unprivileged run: setpriv' "$T/skips"; then ok "setpriv missing, no CI: one SKIP line"
else bad "setpriv missing, no CI: skip log: $(cat "$T/skips")"; fi

# 4. the run as nobody from a checkout nobody cannot reach ------------------------------------
cover=$(dirname "$ROOT")
expect_pass "run as nobody under a covered parent ($cover)" \
  env CI=true PGTOOL_NOBODY_COVER="$cover" tools/test-nobody.sh --only types_vectors

# 5. benches ----------------------------------------------------------------------------------
expect_fail "bench/who.sh with PGTOOL=/bin/false exits non-zero" "who.sh" \
  env PGTOOL=/bin/false RUNS=1 bench/who.sh --report
mkdir -p "$T/ref-off/bin"
cat > "$T/ref-off/bin/page-types" <<EOF
#!/bin/sh
# the reference page-types, printing one extra line
"${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}/bin/page-types" "\$@"; rc=\$?
echo extra; exit \$rc
EOF
chmod 755 "$T/ref-off/bin/page-types"
expect_fail "bench/compare.sh exits non-zero when the outputs differ" "differ" \
  env PGTOOL_REF_DIR="$T/ref-off" PGTOOL="$ROOT/target/debug/pgtool" bench/compare.sh --only whole --runs 1 --report
if [ $qemu = 1 ]; then
  # a static "pgtool" that does nothing and exits 0: its mark leaves every page accessed
  printf 'int main(void) { return 0; }\n' > "$T/noop.c"
  if gcc -static -o "$T/noop" "$T/noop.c"; then
    expect_fail "bench/idle.sh exits non-zero when pgtool's idle read disagrees with the floor's" \
      "disagree" env PGTOOL="$T/noop" bench/idle.sh --report --runs 1 --mib 16 --wss-mib 16
  else
    bad "cannot build a static no-op program for the bench/idle.sh check (gcc -static)"
  fi
fi

if [ $FAILS = 0 ]; then echo "selftest: all checks passed"; else echo "selftest: $FAILS check(s) failed"; fi
[ $FAILS = 0 ]
