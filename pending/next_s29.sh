#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 28, not run).
# 0133a99 (the decode epilogue's loops rolled, without divisions) passed decode_check
# (--small 49/49, memcheck 0 errors, the full list 402/402, session 28 call 6) but has
# not run through JAX. This builds the package and runs the GPU pytest of the decode
# step; if it fails, revert 0133a99. About 300 s, no carry.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 240 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py tests/test_examples.py \
  -q -p no:cacheprovider -n 4 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
grep -E "FAILED|Error" "$OUT/pytest.log" | head -10
