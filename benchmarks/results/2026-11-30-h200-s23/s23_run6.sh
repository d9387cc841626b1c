#!/usr/bin/env bash
# Session 23, call 6: the landed tree (overflow flags in the call) at the large model's
# B8 points and B32 ctx4096, where the flags' XLA update was one fusion with the lengths
# already (the kernel pays 0.2-0.3 us polluted for the mark, calls 3-4).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 8,32 --context 4096,1024,32768 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_large.log" 2>&1
echo "model large rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^large|skip" "$OUT/model_large.log" | cut -c1-200
