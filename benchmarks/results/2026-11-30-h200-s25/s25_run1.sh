#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 24, not run).
# Three pending kernels against main, none yet timed in the model:
#   p24: pending 0024, the H128 TMA configuration with 2 stages instead of 3;
#   p21: pending 0021 (second version), the step's new lengths written in the call
#        (removes the lengths' XLA kernel of 1.1 us a layer; costs 0.3-0.9 us);
#   p25: pending 0025, each CTA's first tile loaded before its length arrives (a
#        guess, drained where wrong; compiled, never run: the full list is its).
# Binaries (.probe/ is git-ignored and a new session's checkout starts without it:
# build them first, about 4 minutes on the development machine):
#   mkdir -p .probe/s25 && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s25/main &&
#   git apply pending/0024-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s25/p24 && git checkout cuda &&
#   git apply pending/0021-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s25/p21 && git checkout cuda tests tools jax_mea &&
#   git apply pending/0025-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s25/p25 && git checkout cuda &&
#   xz -6 -T2 -f .probe/s25/{main,p24,p21,p25}
# Run with carry [".probe/s25"] (about 400 s). Then the winner(s) in the model, with
# cuDNN in the same run (benchmarks/results/2026-11-30-h200-s24/s24_run5.sh's commands
# on a tree with the patch applied): B1 ctx32768 (large 1.020, 8b 1.027 in session 24)
# and B8 ctx4096 first, with --rounds 3 (one variant's spread between runs is ~1.3%,
# as large as the 1.02x line); the GPU pytest of test_decode and test_examples.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s25; mkdir -p $D
for v in main p24 p21 p25; do xz -dc .probe/s25/$v.xz > $D/$v; chmod +x $D/$v; done
for v in p25 p24 p21; do
  timeout 60 $D/$v --small > "$OUT/check_small_$v.log" 2>&1; echo "$v --small rc=$? $(tail -n 1 $OUT/check_small_$v.log | cut -c1-80)"
  grep FAIL "$OUT/check_small_$v.log" | head -3 | cut -c1-200
  timeout 90 compute-sanitizer --tool memcheck $D/$v --small > "$OUT/memcheck_$v.log" 2>&1
  echo "$v memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_$v.log)"
done
echo "checks t=$((SECONDS - T0))s"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1"
S="$S,B1 S32768 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H128/128 cap+64 len+1,B8 S32768 N16/4 H128/128 cap+64 len+1"
S="$S,B32 S32768 N16/4 H128/128 cap+64 len+1,B32 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1"
# Where 0025's guess misses: caches at 2x their length, ragged rows on a uniform plan.
S="$S,B8 S4096 N16/4 H128/128 cap+4096,B1 S32768 N16/4 H128/128 cap+32768,B8 S4096 N32/8 H128/128 ragged"
for v in main p25 p24 p21 p21 p24 p25 main; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 90 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
timeout $((400 - SECONDS + T0)) $D/p25 > "$OUT/check_p25.log" 2>&1; echo "p25 full check (cut) rc=$? PASS $(grep -c PASS $OUT/check_p25.log) FAIL $(grep -c FAIL $OUT/check_p25.log)"
grep -m 5 FAIL "$OUT/check_p25.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
