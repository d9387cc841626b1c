#!/usr/bin/env bash
# Session 22, call 3: the rest of the large config's grid with the packed QKV step
# (call 2 ran B1/B8 x ctx 1k/4k), and B1 ctx4096's kernels per layer.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 80 python3 tools/jax_timeline.py --model large --batch 1 --context 4096 --steps 32 > "$OUT/timeline_b1.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; grep -A4 "^=== " "$OUT/timeline_b1.log" | cut -c1-150
timeout 200 python3 benchmarks/decode_model.py --config large --batch 1,8 --context 32768 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_32k.log" 2>&1
echo "model 32k rc=$? t=$((SECONDS - T0))s"; tail -n 5 "$OUT/model_32k.log" | cut -c1-200
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 32 --context 1024,4096,32768 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_b32.log" 2>&1
echo "model B32 rc=$? t=$((SECONDS - T0))s"; tail -n 6 "$OUT/model_b32.log" | cut -c1-200
