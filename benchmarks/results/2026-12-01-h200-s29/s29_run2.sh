#!/usr/bin/env bash
# Issue 11, session 29 call 2: pending 0029 (no runtime division between a decode CTA's
# kv length and its first load) as landed, with FastDiv moved into decode_plan.h (one
# expression for host and device; tests/test_decode_plan.py checks it against //).
# Carry [".probe/s29"]: dc = main before it (6739609's kernel), dcfd = this tree's
# decode_check (ninja -C build/cuda decode_check; xz -6 -c ... > .probe/s29/dcfd.xz).
#  1. the package build and the GPU pytest of the decode step, with 0029 built in;
#  2. decode_check's full list and memcheck of --small on this tree's binary;
#  3. the bench of seven cap+64 shapes against main, clean and polluted, alternating.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s29; mkdir -p $D
for v in dc dcfd; do xz -dc .probe/s29/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 200 $D/dcfd > "$OUT/check_full.log" 2>&1 &
FULL=$!
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
wait $FULL; echo "full check rc=$? $(tail -n 1 $OUT/check_full.log) t=$((SECONDS - T0))s"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220
timeout 240 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_examples.py \
  tests/test_decode_plan.py -q -p no:cacheprovider -n 4 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
grep -E "FAILED|Error" "$OUT/pytest.log" | head -10
timeout 90 compute-sanitizer --tool memcheck $D/dcfd --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in dc dcfd dcfd dc; do for pol in "" --pollute; do echo "== $v$pol"; timeout 60 $D/$v --bench --append $pol --filter "$S" | grep -A30 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-14s %s %s %s | %s\n", v, $1, $2, $3, $(NF-3)}' "$OUT/bench.log" | sort -s -k2,4
echo "end t=$((SECONDS - T0))s"
