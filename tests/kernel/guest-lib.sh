# Sourced by every tests/kernel/guest/*.sh inside the VM (busybox sh), as /ktest/lib.sh.
# Report each check on its own line: "PASS name: detail", "FAIL name: reason" or
# "SKIP name: reason"; run.sh collects these lines from the console.
# Binaries: /bin/pgtool, /bin/ref-page-types and /bin/ref-page_owner_sort (the reference tools,
# built statically by run.sh from the sources in $PGTOOL_REF_DIR/src), test programs in /bin.
# The skip rule: run.sh sets KT_CI=1 when CI is set; then skip reports FAIL (a missing
# prerequisite is a failure under CI), and run.sh counts any SKIP line as a failure too.
KT_FAILS=0
pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; KT_FAILS=$((KT_FAILS + 1)); }
skip() { if [ -n "${KT_CI:-}" ]; then fail "$1" "prerequisite missing under CI: $2"; else echo "SKIP $1: $2"; fi; }
# Field names the guest scripts read from pgtool's JSON and CSV, in one place: when a
# subcommand renames a field, change it here (and run.sh's header lists every invocation).
F_PAGES=pages F_IDLE=idle_pages F_ACCESSED=accessed_pages          # idle read --json
F_LIST_VADDR=vaddr F_LIST_PFN=pfn F_LIST_IDLE=idle                 # idle read -L --csv
F_WSS_INTERVAL=interval F_WSS_START=vma_start F_WSS_ACCESSED=accessed_pages  # idle wss --csv
F_SLAB_NAME=cache F_SLAB_SUSPECT=suspect                            # slab --csv
F_KF_OBJECTS=objects F_KF_STACK=stack F_KF_CACHES=caches           # kfence --json
F_PO_COMM=comm F_PO_PAGES=pages F_PO_NOW=now F_PO_ANON=anon        # page-owner --json
# csvcol NAME [FILE]: the column NAME of a CSV with a header row (quoted commas not supported)
csvcol() { awk -F, -v n="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; if (!c) exit 3; next } { print $c }' ${2:+"$2"}; }
# check NAME DETAIL CMD...: PASS when CMD succeeds
check() { _cn=$1 _cd=$2; shift 2; if "$@"; then pass "$_cn" "$_cd"; else fail "$_cn" "$_cd"; fi; }
# wait_file FILE [TENTHS]: wait up to TENTHS/10 s (default 10 s) for FILE to exist
wait_file() { _i=0; while [ ! -e "$1" ]; do _i=$((_i + 1)); [ $_i -gt "${2:-100}" ] && return 1; sleep 0.1; done; }
# jfield FIELD: the numeric value of "FIELD": in a JSON line on stdin
jfield() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p" | head -1; }
# within PCT GOT WANT: |GOT - WANT| <= PCT % of WANT
within() { _w=$(($2 - $3)); [ $_w -lt 0 ] && _w=$((-_w)); [ $((_w * 100)) -le $(($1 * $3)) ]; }
# flags PFN: kpageflags of PFN as a decimal number (independent reader /bin/kpf)
flags() { _v=$(kpf get "$1") || return 1; echo $((_v)); }
hasbit() { [ $(( ($(flags "$1") >> $2) & 1 )) = 1 ]; }
uptime_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
finish() { echo "ktest: $KT_FAILS failure(s)"; exit $KT_FAILS; }
