#!/usr/bin/env bash
# Session 23, call 7: WarpMergeWeights, the one warp reduction of the split merge's and
# the epilogue's weights (.probe/s23f/dc), checked (--small, memcheck, the full list
# for 100 s) and timed against the tree before it (.probe/s23b/dc), polluted and clean.
# Carry [".probe/s23b", ".probe/s23f"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23f; mkdir -p $D
xz -dc .probe/s23b/dc.xz > $D/before; xz -dc .probe/s23f/dc.xz > $D/after; chmod +x $D/*
timeout 60 $D/after --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 100 compute-sanitizer --tool memcheck $D/after --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in before after after before; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
timeout 100 $D/after > "$OUT/check.log" 2>&1; echo "full check (cut at 100 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
