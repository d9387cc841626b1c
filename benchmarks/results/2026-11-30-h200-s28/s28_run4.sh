#!/usr/bin/env bash
# Session 28, call 4 (issue 11): large B8 ctx1024 again, 7 rounds (call 3's three
# rounds read 0.953 1.029 0.935: a 1 ms step bound by launches), and the small config
# at B8 ctx1024, 5 rounds; the peers in the same run.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
M="python3 benchmarks/decode_model.py --steps 32 --batch 8 --context 1024 --variants jax_mea,jax-cudnn,jax-xla"
timeout 200 $M --config large --rounds 7 > "$OUT/model_large_b8_1k.log" 2>&1
echo "model large rc=$? t=$((SECONDS - T0))s"; grep -E "by round|^point|^large " "$OUT/model_large_b8_1k.log" | cut -c1-200
timeout $((560 - SECONDS + T0)) $M --config small --rounds 5 > "$OUT/model_small_b8_1k.log" 2>&1
echo "model small rc=$? t=$((SECONDS - T0))s"; grep -E "by round|^point|^small " "$OUT/model_small_b8_1k.log" | cut -c1-200
