#!/usr/bin/env bash
# tests/kernel/run.sh -- pgtool's real-kernel tests: build a static pgtool, the test programs
# (tests/kernel/progs/*.c) and the static reference page-types and page_owner_sort (from the
# reference sources in $PGTOOL_REF_DIR/src, see tools/build-reference.sh), then boot a kernel that has
# page_idle, hwpoison injection, page_owner and KFENCE under QEMU (tests/kernel/qemu-kernel.sh,
# kernel built once and cached under ~/.cache/pgtool-qemu) once per guest script
# tests/kernel/guest/*.sh, and collect its PASS/FAIL/SKIP lines.
#
# Usage: tests/kernel/run.sh [PATTERN...]   run only guest scripts whose name contains a PATTERN
# Environment:
#   PGTOOL_KTEST_OUT      build/log dir (default target/kernel-test)
#   PGTOOL_KTEST_PROFILE  cargo profile for the static pgtool (default release)
#   PGTOOL_KTEST_MEM      guest memory (default 512M)   PGTOOL_KTEST_SMP guest CPUs (default 2)
#   PGTOOL_QEMU_CACHE     kernel cache (default ~/.cache/pgtool-qemu)
#   PGTOOL_REF_DIR        reference tools (default ~/.cache/pgtool-ref; built by tools/build-reference.sh)
#   PGTOOL_KTEST_WRAP     a sh script installed as /bin/pgtool, the real one as /bin/pgtool.real
#                         (tools/selftest.sh breaks `types` this way to prove the guest notices)
#   CI                    set: a SKIP is a failure (the guest sees KT_CI=1: skip reports FAIL)
#   PGTOOL_SKIP_LOG       outside CI, each guest SKIP line is appended there (tools/test.sh)
# Guest layout: /bin/pgtool, /bin/ref-page-types and /bin/ref-page_owner_sort (reference tools,
#   static), /bin/<prog> for each progs/*.c, /ktest/lib.sh (guest-lib.sh: pass/fail/skip/check
#   helpers and the field names the scripts read), /ktest/guest/*.sh.
#   Kernel command line adds: page_owner=on kfence.sample_interval=10 slab_nomerge. debugfs is
#   mounted at /sys/kernel/debug, cgroup2 at /sys/fs/cgroup, tmpfs at /tmp.
# A new guest/*.sh is picked up automatically; it reports with pass/fail/skip and ends with finish.
# A script that reports no PASS line, or exits non-zero, fails.
# Exit status: 0 when every check passed (SKIPs allowed outside CI), 1 when any check failed or
#   the harness could not build or boot (qemu, kernel, compiler missing: the reason is printed).
#
# pgtool invocations in the guest (what a change of grammar or field names can break; field
# names are read through guest-lib.sh's F_* variables and csvcol):
#   10-idle: idle mark --pid P --addr 0xA+0xLEN | --pfn 0xS+N | --cgroup DIR;
#            idle read --pid P --addr R [--vma '[anon]'] --json, -L --csv (vaddr,pfn,idle);
#            idle read --pfn 0xS+N | 0-0xffffff | --cgroup DIR --json (pages,idle_pages,accessed_pages)
#   20-wss:  idle wss --pid P --interval 1s|300ms --count N --method idle|refs --csv
#            (columns interval, vma_start, accessed_pages), --json
#            (interval,pid,pages,accessed_pages,idle_pages,accessed_bytes,"vma":null|{),
#            --prometheus FILE (pgtool_wss_accessed_bytes{pid=,vma="all"}, "# EOF")
#   50-types: types -p P -a 0xV+N -L -N | -i | -X, types -a PFN -x (page-types' argv);
#            hwpoison inject --pid P --addr A (stdout "PFN 0x... " line); idle read --json
#   80-hwpoison: hwpoison inject|unpoison|soft-offline [--yes] [--force] (--pid P --addr A | PFN)
#            (exit 2 without --yes; "PFN 0x..." line; "slab", "anonymous", "pid P at A",
#            CONFIG_MEMORY_HOTPLUG in messages); DEBUGFS_PATH
#   85-leak: leak --interval 1 --count 6 --json (kind, name, verdict, evidence);
#            leak --trace --duration 5|60 [--pid P|--comm C] --csv (column 1 call_site,
#            column 3 count) and the "traced Xs" line on stderr; `pages: COMM order=N GFP` rows;
#            --similar ("similarity of SITE ... alike group 1 ... the likely leaker" on stderr)
#   90-kernel: ktask PID --csv|--json [--field F] (task_addr, mm_addr, pgd_addr, pid, comm);
#            kstruct TYPE.FIELD ADDR --json|--csv (value_raw, symbol), kstruct TYPE.FIELD --json
#            (offset); ksym NAME|ADDR --csv (addr, symbol), ksym --base --csv
#            (kernel_base_addr, kaslr_offset_hex); exit 1 unknown PID/unmapped, 2 kptr_restrict=2
#   95-kmem: slab --objects [CACHE] --top N [--json]; kcache NAME [--json|--objects --csv];
#            page PFN --json; v2p P ADDR --csv --fields pfn,memcg_ino, v2p P --vma NAME --csv
#   leak_kfence: kfence --json --top 0 FILE (objects, stack [..], caches {..}); kfence --top 3
#   leak_page_owner: page-owner --by comm --top 0 --json ("comm", "pages", "now":{"anon"});
#            page-owner --by comm,stack --top 5
#   leak_page_owner_sort: the page_owner_sort personality (symlink), byte-exact vs the reference
#   leak_slab: slab --interval 1 (bare seconds) --count 4 --top 0 --csv [--sysfs] (columns name, suspect)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${PGTOOL_KTEST_OUT:-$ROOT/target/kernel-test}
PROFILE=${PGTOOL_KTEST_PROFILE:-release}
REF=${PGTOOL_REF_DIR:-$HOME/.cache/pgtool-ref}
T_START=$(date +%s%N)
say() { echo "kernel-tests: $*" >&2; }
die() { echo "kernel-tests: FAIL: $*" >&2; exit 1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
mkdir -p "$OUT/bin" "$OUT/logs" || die "cannot create $OUT"
rm -f "$OUT"/bin/* "$OUT"/logs/*

# (a) static pgtool
TRIPLE=x86_64-unknown-linux-gnu
t=$(date +%s%N)
(cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' cargo build -q --profile "$PROFILE" \
   --target $TRIPLE --bin pgtool) || die "static build of pgtool failed (cargo build --target $TRIPLE with +crt-static)"
dir=$PROFILE; [ "$PROFILE" = dev ] && dir=debug
cp "$ROOT/target/$TRIPLE/$dir/pgtool" "$OUT/bin/pgtool" || die "no static pgtool at target/$TRIPLE/$dir/pgtool"
say "static pgtool built in $(ms_since $t) ms"

# (b) static test programs
command -v gcc >/dev/null || die "gcc not found (apt-get install gcc libc6-dev)"
for c in "$HERE"/progs/*.c; do
  [ -e "$c" ] || continue
  n=$(basename "$c" .c)
  gcc -static -O2 -Wall -o "$OUT/bin/$n" "$c" 2>"$OUT/logs/gcc-$n.log" ||
    { cat "$OUT/logs/gcc-$n.log" >&2; die "gcc -static $c failed (needs libc6-dev)"; }
done

# (c) static reference page-types and page_owner_sort, for comparisons in the same VM, from the
#     reference sources (tools/build-reference.sh keeps them in $REF/src: tools/vm on 6.1,
#     tools/mm from 6.4). Missing: the guest checks that need them SKIP (FAIL under CI).
noref() { if [ -n "${CI:-}" ]; then die "$*"; else say "$*; the checks needing them will SKIP"; fi; }
if [ ! -d "$REF/src/tools" ]; then
  say "building the reference tools (tools/build-reference.sh)"
  "$ROOT/tools/build-reference.sh" "$REF/bin" >&2 || say "reference tools could not be built"
fi
PT_SRC=$(ls -d "$REF"/src/tools/mm "$REF"/src/tools/vm 2>/dev/null | head -1)
if [ -n "$PT_SRC" ] && [ -f "$PT_SRC/page-types.c" ] && [ -f "$PT_SRC/page_owner_sort.c" ]; then
  [ -f "$PT_SRC/../lib/api/libapi.a" ] || make -s -C "$PT_SRC/../lib/api" >/dev/null 2>&1
  gcc -static -O2 -I"$PT_SRC/../lib" -o "$OUT/bin/ref-page-types" "$PT_SRC/page-types.c" \
      "$PT_SRC/../lib/api/libapi.a" 2>"$OUT/logs/gcc-page-types.log" ||
    noref "static reference page-types failed to build (see $OUT/logs/gcc-page-types.log)"
  gcc -static -O2 -o "$OUT/bin/ref-page_owner_sort" "$PT_SRC/page_owner_sort.c" \
      2>"$OUT/logs/gcc-page_owner_sort.log" ||
    noref "static reference page_owner_sort failed to build (see $OUT/logs/gcc-page_owner_sort.log)"
else
  noref "no reference sources (page-types.c, page_owner_sort.c) under $REF/src/tools/{mm,vm}"
fi

# (d) the kernel (built once, cached)
QK=$HERE/qemu-kernel.sh
t=$(date +%s%N)
"$QK" --prepare > "$OUT/logs/prepare.log" 2>&1 ||
  { tail -20 "$OUT/logs/prepare.log" >&2; die "cannot get qemu or the test kernel (see $OUT/logs/prepare.log)"; }
say "kernel ready in $(ms_since $t) ms ($(grep -o 'kernel built in [0-9]* s' "$OUT/logs/prepare.log" || echo cached))"

# (e) one boot per guest script
FILES=()
for b in "$OUT"/bin/*; do
  [ "$(basename "$b")" = pgtool ] || FILES+=(--file "$b:/bin/$(basename "$b")")
done
GUEST_PGTOOL=$OUT/bin/pgtool
if [ -n "${PGTOOL_KTEST_WRAP:-}" ]; then
  mkdir -p "$OUT/wrap" && cp "$PGTOOL_KTEST_WRAP" "$OUT/wrap/pgtool" && chmod 755 "$OUT/wrap/pgtool" ||
    die "cannot install PGTOOL_KTEST_WRAP=$PGTOOL_KTEST_WRAP"
  FILES+=(--file "$OUT/bin/pgtool:/bin/pgtool.real")
  GUEST_PGTOOL=$OUT/wrap/pgtool
  say "/bin/pgtool in the guest is $PGTOOL_KTEST_WRAP (the real one is /bin/pgtool.real)"
fi
KT_CI=; [ -n "${CI:-}" ] && KT_CI=1
FILES+=(--file "$HERE/guest-lib.sh:/ktest/lib.sh" --file "$HERE/guest:/ktest/guest")
PASS=0 FAIL=0 SKIP=0 BOOTS=0
FAILED=()
for s in "$HERE"/guest/*.sh; do
  [ -e "$s" ] || continue
  name=$(basename "$s" .sh)
  if [ $# -gt 0 ]; then
    m=0; for p in "$@"; do case $name in *"$p"*) m=1 ;; esac; done
    [ $m = 1 ] || continue
  fi
  log=$OUT/logs/$name.console.log
  t=$(date +%s%N)
  "$QK" -q --log "$log" --timeout "${PGTOOL_KTEST_TIMEOUT:-400}" --mem "${PGTOOL_KTEST_MEM:-512M}" \
    --smp "${PGTOOL_KTEST_SMP:-2}" --append "kfence.sample_interval=10 slab_nomerge" "${FILES[@]}" \
    --cmd "KT_CI=$KT_CI sh /ktest/guest/$name.sh" "$GUEST_PGTOOL" > "$OUT/logs/$name.qemu.log" 2>&1
  rc=$?
  wall=$(ms_since $t)
  BOOTS=$((BOOTS + 1))
  [ -f "$log" ] || { FAIL=$((FAIL + 1)); FAILED+=("$name: no console log (qemu rc $rc): $(tail -3 "$OUT/logs/$name.qemu.log" | tr '\n' ' ')"); continue; }
  p=$(grep -ac '^PASS ' "$log") f=$(grep -ac '^FAIL ' "$log") k=$(grep -ac '^SKIP ' "$log")
  grep -a -E '^(PASS|FAIL|SKIP) ' "$log"
  PASS=$((PASS + p)) FAIL=$((FAIL + f)) SKIP=$((SKIP + k))
  while IFS= read -r l; do FAILED+=("$name: $l"); done < <(grep -a '^FAIL ' "$log")
  if [ "$k" != 0 ]; then
    if [ -n "${CI:-}" ]; then
      # the skip rule: under CI a missing prerequisite is a failure
      FAIL=$((FAIL + k))
      while IFS= read -r l; do FAILED+=("$name: $l (a SKIP fails under CI)"); done < <(grep -a '^SKIP ' "$log")
    elif [ -n "${PGTOOL_SKIP_LOG:-}" ]; then
      grep -a '^SKIP ' "$log" | sed "s/^SKIP /SKIP kernel:$name: /" >> "$PGTOOL_SKIP_LOG" || true
    fi
  fi
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
    FAIL=$((FAIL + 1))
    FAILED+=("$name: guest exit status $rc with no FAIL line (124 timeout, 125 panic/no status): $(tail -5 "$log" | tr '\n' ' ')")
  elif [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$k" = 0 ]; then
    FAIL=$((FAIL + 1))
    FAILED+=("$name: reported no PASS, FAIL or SKIP line: $(tail -5 "$log" | tr '\n' ' ')")
  fi
  say "$name: $p passed, $f failed, $k skipped; boot+test $wall ms ($(grep -o 'wall [0-9]* ms' "$OUT/logs/$name.qemu.log" | tail -1))"
done
[ $BOOTS -gt 0 ] || die "no guest script matched"
say "total: $PASS passed, $FAIL failed, $SKIP skipped in $BOOTS boot(s), $(ms_since "$T_START") ms overall"
if [ $FAIL -gt 0 ]; then
  say "failures:"; for l in "${FAILED[@]}"; do echo "  $l" >&2; done
  exit 1
fi
exit 0
