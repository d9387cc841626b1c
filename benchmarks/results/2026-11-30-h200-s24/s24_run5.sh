#!/usr/bin/env bash
# Session 24, call 5: the model's long-cache points with the TMA maps' 128-byte L2
# promotion (93ca1d1). jax-xla left out: 1.26-2.8x slower than cuDNN's path at these
# points in sessions 22-23 (and out of memory at the 8b's B32 ctx32768).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout $((380 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 32,8 --context 32768 --steps 32 \
  --variants jax_mea,jax-cudnn > "$OUT/model_large.log" 2>&1
echo "model large rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^large|skip" "$OUT/model_large.log" | cut -c1-200
timeout $((585 - SECONDS + T0)) python3 benchmarks/decode_model.py --config 8b --batch 32 --context 4096,32768 --steps 32 \
  --variants jax_mea,jax-cudnn > "$OUT/model_8b.log" 2>&1
echo "model 8b rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^8b|skip" "$OUT/model_8b.log" | cut -c1-200
