#!/usr/bin/env bash
# Session 18, device call 5: the step's new tokens loaded at the kernel's entry in
# 16-byte chunks (StagedAppend), stored after the first tiles' loads. Native checks
# (an AppendNewRows case added), sanitizers, old / v1 (run 4) / new with the append.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s18; mkdir -p $D
for f in .probe/s18/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 60 $D/dc_new --small > /tmp/dc_small.log 2>&1; echo "dc_new --small rc=$? $(tail -n 1 /tmp/dc_small.log)"
grep -E "FAIL" /tmp/dc_small.log | head -5; echo "append cases: $(grep -c ' append' /tmp/dc_small.log)"
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 1 $D/dc_new --small > /tmp/$tool.log 2>&1
  echo "$tool --small rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/$tool.log | head -1)"
done
M="B8 S4096 N16/4 H128/128 cap+64"
F="$M,B1 S32768 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for r in 1 2; do
  for v in old v1 new; do
    timeout 60 $D/dc_$v --bench --append --filter "$F" > /tmp/bench_${v}_$r.log 2>&1
    grep -A 7 "^shape (bf16" /tmp/bench_${v}_$r.log | tail -n 6 | awk -v t="$v r$r" '{print t": "$1,$2,$3,$4,$5,$(NF-3)}'
  done
done
for v in v1 new; do
  echo "trace $v"; timeout 30 $D/dc_${v}_trace --bench --trace --append --filter "$M" 2>&1 | head -14 | grep -E "splits 4|entry|keys|first|later|epilogue|CTA total" | head -8
done
echo "bench done at $((SECONDS - T0))s"
timeout $((255 - SECONDS + T0)) $D/dc_new > /tmp/dc_full.log 2>&1; echo "dc_new full rc=$? $(grep -c PASS /tmp/dc_full.log) passed, $(grep -c FAIL /tmp/dc_full.log) failed"
grep FAIL /tmp/dc_full.log | head -5
cp /tmp/dc_small.log /tmp/bench_new_1.log "$OUT/"
echo "end at $((SECONDS - T0))s"
