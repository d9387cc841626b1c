#!/usr/bin/env bash
# Session 22, call 2: the package with the packed QKV decode step (the model hands its
# fused projection to decode_attention as it is) and 0018; GPU tests; the model.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 150 python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider -n 8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s"; tail -n 3 "$OUT/pytest.log"
timeout 100 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --steps 32 > "$OUT/timeline.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; tail -n 45 "$OUT/timeline.log" | cut -c1-160
timeout 230 python3 benchmarks/decode_model.py --config large --batch 8,1 --context 4096,1024 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model.log" 2>&1
echo "model rc=$? t=$((SECONDS - T0))s"; tail -n 14 "$OUT/model.log" | cut -c1-200
