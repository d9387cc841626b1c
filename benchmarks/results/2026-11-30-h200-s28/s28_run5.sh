#!/usr/bin/env bash
# Session 28, call 5 (issue 11): the small config at B8 ctx1024, 15 rounds (call 4's five
# rounds read 1.023 1.019 0.996 1.068 1.032 against the best peer, call 1's three 0.991
# 0.984 0.902 against cuDNN: a 0.11 ms step bound by launches), the peers in the same run.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 300 python3 benchmarks/decode_model.py --steps 32 --batch 8 --context 1024 --config small \
  --variants jax_mea,jax-cudnn,jax-xla --rounds 15 > "$OUT/model_small_b8_1k.log" 2>&1
echo "model small rc=$? t=$((SECONDS - T0))s"; grep -E "by round|^point|^small " "$OUT/model_small_b8_1k.log" | cut -c1-250
