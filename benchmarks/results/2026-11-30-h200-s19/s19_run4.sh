#!/usr/bin/env bash
# Session 19, call 4. Issue 14: the backward's grid order, JAX_MEA_BWD_HEAD_GROUP = G
# (blocks of G (batch, head) rows, key blocks outer inside a block; G = 1 is main's
# order). With G > 1 a key block's predecessors in the ordered dQ chain run a wave
# earlier instead of beside it. bwd_hg: main + that switch. Issue 11: the large model's
# grid at main's decode kernel (fe8126d). Carry .probe/s19.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
F="B2 S4096 N32 H128 bf16"
{ for g in 1 4 8 16 64 2 1; do
    echo "== G=$g"; JAX_MEA_BWD_HEAD_GROUP=$g timeout 60 $D/bwd_hg --bench "$F" | grep -E "^B"
  done
  for g in 1 8 64; do echo "== G=$g all"; JAX_MEA_BWD_HEAD_GROUP=$g timeout 90 $D/bwd_hg --bench "bf16" | grep -E "^B"; done
} > "$OUT/bwd_bench.log" 2>&1
cut -c1-100 "$OUT/bwd_bench.log"
for g in 3 64; do
  JAX_MEA_BWD_HEAD_GROUP=$g timeout 100 $D/bwd_hg > "$OUT/check_g$g.log" 2>&1; echo "G=$g check rc=$? $(tail -n 1 $OUT/check_g$g.log)"
done
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
left=$((575 - SECONDS + T0))
timeout $left python3 benchmarks/decode_model.py --config large --batch 1,8,32 --context 1024,4096 \
  --variants jax_mea,jax-cudnn,jax-xla --budget-s $((left - 40)) --out "$OUT/model" 2>&1 | grep -v "$FL" > "$OUT/model.log"
tail -n 22 "$OUT/model.log" | cut -c1-180
echo "end at $((SECONDS - T0))s"
