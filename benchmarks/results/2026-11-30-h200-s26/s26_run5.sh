#!/usr/bin/env bash
# Issue 11, session 26 call 5: the landed spread merge (43ea4fc + its 32 KB threshold)
# through JAX: the package build, the GPU pytest of the decode step, and the per-layer
# kernel time in the model on the B1 ctx32768 layers (tools/jax_timeline.py; call 1 had
# them before the change: large 29.04 us, 63% of copy; 8b 40.63 us, 85%).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
for run in "large 1 32768" "8b 1 32768"; do
  set -- $run
  timeout 60 python3 tools/jax_timeline.py --model $1 --batch $2 --context $3 --steps 32 \
    > "$OUT/timeline_$1_b$2.log" 2>&1
  echo "timeline $run rc=$? t=$((SECONDS - T0))s"; grep -A4 "^=== " "$OUT/timeline_$1_b$2.log" | cut -c1-160
done
timeout $((330 - SECONDS + T0)) python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
