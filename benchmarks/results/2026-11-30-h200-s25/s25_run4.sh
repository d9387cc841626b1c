#!/usr/bin/env bash
# Session 25, call 4: with 0024 landed, the small config at B8 ctx1k again (5 rounds:
# call 3's rounds spread 1.000-1.037), then decode.py --scan on the small grid (the
# scan contenders and jax_mea's calls only, cut at 300 s).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 90 python3 benchmarks/decode_model.py --steps 32 --rounds 5 --config small --batch 8 --context 1024 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_small.log" 2>&1
echo "model small rc=$? t=$((SECONDS - T0))s"; grep -E "by round|^point|^small " "$OUT/model_small.log" | cut -c1-200
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan --contenders jax_mea --budget-s 300 > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan.log" | tail -n 60 | cut -c1-200
