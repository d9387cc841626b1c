#!/usr/bin/env bash
# Session 23, call 8: pending 0021 (a decode step's new lengths written inside the call:
# the last CTA to read the lengths writes them, counted on a per-launch counter)
# checked (--small, memcheck; the full list for what time is left) and timed against
# main at 574204b (.probe/s23f/dc), polluted and clean. Carry [".probe/s23f", ".probe/s23g"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23g; mkdir -p $D
xz -dc .probe/s23f/dc.xz > $D/main; xz -dc .probe/s23g/dc.xz > $D/p21; chmod +x $D/*
timeout 60 $D/p21 --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -5 | cut -c1-220
timeout 90 compute-sanitizer --tool memcheck $D/p21 --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1"
for v in main p21 p21 main; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
timeout $((200 - SECONDS + T0)) $D/p21 > "$OUT/check.log" 2>&1; echo "full check (cut) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
