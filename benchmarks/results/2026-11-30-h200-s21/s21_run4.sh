#!/usr/bin/env bash
# Session 21, call 4 (issue 11): decode_check with caches under 4x L2 rotating (L2 cold,
# as in a model: call 3's ncu found a quarter of the 67 MB layer cache served by L2 in
# the old bench) and a configuration 4 (TMA, 4 warps, 112 KB: two CTAs per SM, the shape
# of cuDNN's decode kernel). The tree: main + 0014 + 0016 + config 4. Checks (--small,
# then the full list for what time allows); the cold sweep of every configuration over
# splits on the large model's layer shapes; the cold trace at B8 S4096.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/dc4*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 60 $D/dc4 --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep -m 5 FAIL "$OUT/check_small.log" | cut -c1-200
S="B8 S4096 N16/4 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
timeout 150 $D/dc4 --bench --append --filter "$S" > "$OUT/sweep.log" 2>&1; echo "sweep rc=$?"
cut -c1-250 "$OUT/sweep.log" | grep -vE "^device|^copy"
timeout 30 $D/dc4trace --bench --trace --append --filter "B8 S4096 N16/4 H128/128 cap+64" 2>&1 | head -34 > "$OUT/trace_cold.log"
cut -c1-170 "$OUT/trace_cold.log"
echo "t=$((SECONDS - T0))s"
timeout 120 $D/dc4 > "$OUT/check.log" 2>&1; echo "full check (cut at 120 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end at $((SECONDS - T0))s"
