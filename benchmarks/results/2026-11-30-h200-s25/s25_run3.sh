#!/usr/bin/env bash
# Session 25, call 3: the rest of issue 11's grid with 0024 landed (the H128 TMA
# configuration with 2 stages), 3 rounds a point, the peers in the same run (jax-xla
# at ctx1024, where it was last within reach), and the small config at B8 ctx1k.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
M="python3 benchmarks/decode_model.py --steps 32 --rounds 3"
for cfg in large 8b; do
  timeout 150 $M --config $cfg --batch 1,8,32 --context 1024 --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_${cfg}_1k.log" 2>&1
  echo "model $cfg 1k rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg " "$OUT/model_${cfg}_1k.log" | cut -c1-200
  timeout 150 $M --config $cfg --batch 32 --context 4096,32768 --variants jax_mea,jax-cudnn > "$OUT/model_${cfg}_b32.log" 2>&1
  echo "model $cfg b32 rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg " "$OUT/model_${cfg}_b32.log" | cut -c1-200
done
timeout $((590 - SECONDS + T0)) $M --config small --batch 8 --context 1024 --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_small.log" 2>&1
echo "model small rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^small " "$OUT/model_small.log" | cut -c1-200
