#!/usr/bin/env bash
# Session 22, call 4: the 8b config (a Llama-3-8B layer, 16 layers) with the packed
# QKV step, as many grid points as fit the call.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout $((570 - SECONDS + T0)) python3 benchmarks/decode_model.py --config 8b --batch 8,1,32 --context 4096,1024,32768 \
  --steps 32 --budget-s $((520 - SECONDS + T0)) --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_8b.log" 2>&1
echo "model 8b rc=$? t=$((SECONDS - T0))s"; grep -E "^  8b|^point|^8b|skip" "$OUT/model_8b.log" | cut -c1-200
