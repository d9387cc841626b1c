#!/usr/bin/env bash
# Session 28, call 3 (issue 11): the model points whose plans merge in clusters (the
# push merge of ad47abb changed them; the grid was last measured in session 25),
# B1 and B8 at ctx1024 and ctx4096 of the large and 8b configs, 3 rounds a point,
# jax cuDNN in the same run (and jax xla at ctx1024).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
M="python3 benchmarks/decode_model.py --steps 32 --rounds 3"
for cfg in large 8b; do
  timeout 120 $M --config $cfg --batch 1,8 --context 1024 --variants jax_mea,jax-cudnn,jax-xla > "$OUT/model_${cfg}_1k.log" 2>&1
  echo "model $cfg 1k rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg " "$OUT/model_${cfg}_1k.log" | cut -c1-200
  timeout $([ $cfg = large ] && echo 110 || echo $((580 - SECONDS + T0))) $M --config $cfg --batch 1,8 --context 4096 --variants jax_mea,jax-cudnn > "$OUT/model_${cfg}_4k.log" 2>&1
  echo "model $cfg 4k rc=$? t=$((SECONDS - T0))s"; grep -E "^point|^$cfg " "$OUT/model_${cfg}_4k.log" | cut -c1-200
done
