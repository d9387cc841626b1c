#!/usr/bin/env bash
# Session 18, device call 2: why the large model at B1 runs 1.37x jax-cudnn's step
# (run 1): the timeline of B1 ctx1024 and ctx4096, per-layer kernels of both variants.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=16 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
echo "build rc=$? at $((SECONDS - T0))s"
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
for ctx in 1024 4096; do
  timeout 120 python3 tools/jax_timeline.py --model large --batch 1 --context $ctx --variants jax_mea,jax-cudnn --top 14 2>&1 | grep -v "$FL" > "$OUT/timeline_b1_$ctx.log"
  cat "$OUT/timeline_b1_$ctx.log"
done
echo "end at $((SECONDS - T0))s"
