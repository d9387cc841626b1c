#!/usr/bin/env bash
# Session 23, call 2: the overflow flags set inside the decode call (8c8e967).
# decode_check (carry [".probe/s23b"], built at 8c8e967): --small, memcheck --small,
# the full list for 60 s; the package; GPU pytest of the decode step and the
# examples; the large model's B1 ctx4096 kernels per layer (session 22: our lengths
# were two XLA fusions there, 1.25 + 1.23 us).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23b; mkdir -p $D
xz -dc .probe/s23b/dc.xz > $D/dc; chmod +x $D/dc
timeout 60 $D/dc --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep -E "FAIL|overflow" "$OUT/check_small.log" | cut -c1-200 | head -5
timeout 100 compute-sanitizer --tool memcheck $D/dc --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 150 python3 -m pytest tests/test_decode.py tests/test_examples.py -q -x -p no:cacheprovider -n 8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s"; tail -n 3 "$OUT/pytest.log"
timeout 80 python3 tools/jax_timeline.py --model large --batch 1 --context 4096 --steps 32 > "$OUT/timeline_b1.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; grep -A6 "^=== " "$OUT/timeline_b1.log" | cut -c1-150
timeout $((570 - SECONDS + T0)) $D/dc > "$OUT/check.log" 2>&1; echo "full check (cut) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
