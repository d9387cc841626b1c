#!/usr/bin/env bash
# Session 27 call 7 (issue 11): the cluster merge by push (pending/README.md), first run.
# Binaries carried in .probe/s27 (git-ignored): dc26 = main (9bd444b) and dcpush = the
# working tree with the push merge, both `ninja -C build/cuda decode_check`.
# Checks (--small, memcheck, the full list), then an A/B on cluster-merged shapes and
# a configuration-0 control (the 4-warp H128 kernels gained 16 bytes of stack).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s27; mkdir -p $D
for v in dc26 dcpush; do xz -dc .probe/s27/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dcpush --small > "$OUT/check_small.log" 2>&1; echo "push --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dcpush --small > "$OUT/memcheck.log" 2>&1
echo "push memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1,B64 S1024 N32/8 H128/128"
for v in dc26 dcpush dcpush dc26; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -A30 "^shape" | grep "^B"; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-7s %s\n", v, $0}' "$OUT/bench.log" | sort -s -k2 | sed -E 's/ +/ /g' | cut -c1-200
echo "checks, bench t=$((SECONDS - T0))s"
timeout $((250 - SECONDS + T0)) $D/dcpush > "$OUT/check_full.log" 2>&1; echo "push full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220; grep -c "cluster" "$OUT/check_full.log"
echo "end t=$((SECONDS - T0))s"
