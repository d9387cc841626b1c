#!/usr/bin/env bash
# Session 25, call 2: pending 0024 (the H128 TMA configuration with 2 stages) in the
# model, cuDNN in the same run, 3 rounds a point; then the GPU pytest of the decode step.
# Run on a tree with pending/0024 applied.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout $((330 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 1,8 --context 32768,4096 --steps 32 \
  --variants jax_mea,jax-cudnn --rounds 3 > "$OUT/model_large.log" 2>&1
echo "model large rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^large|round" "$OUT/model_large.log" | cut -c1-200
timeout $((450 - SECONDS + T0)) python3 benchmarks/decode_model.py --config 8b --batch 1,8 --context 32768,4096 --steps 32 \
  --variants jax_mea,jax-cudnn --rounds 3 > "$OUT/model_8b.log" 2>&1
echo "model 8b rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^8b|round" "$OUT/model_8b.log" | cut -c1-200
timeout $((590 - SECONDS + T0)) python3 -m pytest tests/test_decode.py tests/test_examples.py -q -x -p no:cacheprovider > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
