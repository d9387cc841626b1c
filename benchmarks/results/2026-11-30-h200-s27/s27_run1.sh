#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 26, not run).
# On main after session 26 (the spread merge), and pending 0026 (the spread merge's own
# counter banks, its reset by atomicExch; compiled, never run):
#   1. 0026: decode_check --small, memcheck, the full list (the session-26 review's spread
#      cases: want_spread both ways, H40/Hv48 at 24 splits, empty splits at 16, small
#      partials), and its A/B against main on the two spread shapes. Land it if it passes.
#   2. decode_check --trace on the two spread shapes, clean and polluted, with and without
#      --nospread: how much of the spread merge's slice (2.7-3.7 us polluted for 16
#      elements x 33 splits, session 26 call 2) is cold code and how much its L2 round
#      trips, and how long the group barrier waits for the slowest split.
# Then next_s27b.sh (a second call): the GPU pytest of the spread shapes through JAX, the
# scan line with --rounds 3.
# Binaries (.probe/ is git-ignored; build them first, about 4 minutes here):
#   ninja -C build/cuda decode_check && mkdir -p .probe/s27 &&
#   cp build/cuda/tests/native/decode_check .probe/s27/dc &&
#   git apply pending/0026-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s27/dc26 && git checkout cuda &&
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF \
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE &&
#   ninja -C build/trace decode_check && cp build/trace/tests/native/decode_check .probe/s27/dctrace &&
#   xz -6 -T2 -f .probe/s27/dc .probe/s27/dc26 .probe/s27/dctrace
# Run with carry [".probe/s27"] (about 480 s). Keep $OUT to 8 files or fewer: a ninth
# does not come back.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s27; mkdir -p $D
for v in dc dc26 dctrace; do xz -dc .probe/s27/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dc26 --small > "$OUT/check_small.log" 2>&1; echo "0026 --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dc26 --small > "$OUT/memcheck.log" 2>&1
echo "0026 memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S32768 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H128/128 cap+64 len+1"
for v in dc dc26 dc26 dc; do for m in --pollute ""; do echo "== $v ${m:-clean}"
  timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "checks, bench t=$((SECONDS - T0))s"
for m in --pollute ""; do
  for sh in "B1 S32768 N16/4 H128/128 cap+64 len+1" "B1 S32768 N32/8 H128/128 cap+64 len+1"; do
    echo "== ${m:-clean}"; timeout 40 $D/dctrace --bench --trace --append $m --filter "$sh" 2>&1 | grep -A14 -m1 ": event"
    timeout 40 $D/dctrace --bench --trace --append --nospread $m --filter "$sh" 2>&1 | grep -A14 -m1 ": event"
  done
done > "$OUT/trace.log" 2>&1
grep -E "^==|: event|group bar|slice|merge \(last\)|fence" "$OUT/trace.log" | cut -c1-170
echo "trace t=$((SECONDS - T0))s"
timeout $((560 - SECONDS + T0)) $D/dc26 > "$OUT/check_full.log" 2>&1; echo "0026 full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220; grep -E "spread" "$OUT/check_full.log" | cut -c1-120
echo "end t=$((SECONDS - T0))s"
