#!/usr/bin/env bash
# Session 22, call 5: GPU checks of the examples with the packed QKV model, the small
# config at B8 ctx1024 (bound by launches), and decode.py --scan on --grid small.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 100 python3 -m pytest tests/test_examples.py tests/test_decode.py -q -x -p no:cacheprovider -n 8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s"; tail -n 2 "$OUT/pytest.log"
timeout 60 python3 examples/decode.py > "$OUT/example.log" 2>&1; echo "example rc=$?"; tail -n 3 "$OUT/example.log" | cut -c1-200
timeout 70 python3 benchmarks/decode_model.py --config small --batch 8 --context 1024 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_small.log" 2>&1
echo "model small rc=$? t=$((SECONDS - T0))s"; tail -n 3 "$OUT/model_small.log" | cut -c1-200
timeout $((470 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; tail -n 30 "$OUT/scan.log" | cut -c1-200
