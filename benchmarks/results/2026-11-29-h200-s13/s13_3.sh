#!/usr/bin/env bash
# Session 13, run 3: every kernel of a decode step in the model, ours against jax cudnn
# (what besides attention makes our step longer).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=16 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$? $((SECONDS-T0))s"
F="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 200 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --variants jax_mea,jax-cudnn --top 30 2>&1 | grep -v "$F" > $OUT/tl_large.log; tail -n 80 $OUT/tl_large.log
timeout 150 python3 tools/jax_timeline.py --model small --batch 8 --context 1024 --variants jax_mea,jax-cudnn --top 20 2>&1 | grep -v "$F" > $OUT/tl_small.log; tail -n 60 $OUT/tl_small.log
echo "end $((SECONDS-T0))s"
