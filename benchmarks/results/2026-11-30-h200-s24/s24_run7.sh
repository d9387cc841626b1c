#!/usr/bin/env bash
# Session 24, call 7: where B1 ctx32768 (the last points over 1.02x) loses. Every
# configuration at B1 (0022's probe build with the 128-byte promotion, carried in
# .probe/s24), then the model's timeline per layer against cuDNN's path.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s24; mkdir -p $D
xz -dc .probe/s24/p22promo.xz > $D/p22; chmod +x $D/p22
for sh in "B1 S32768 N16/4 H128/128 cap+64 len+1" "B1 S32768 N32/8 H128/128 cap+64 len+1" "B1 S4096 N16/4 H128/128 cap+64 len+1"; do
  timeout 60 $D/p22 --bench --append --filter "$sh" 2>&1 | grep -E " c[0-5] " | cut -c1-250
done > "$OUT/sweep_b1.log"; cat "$OUT/sweep_b1.log"; echo "sweep t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
for m in large 8b; do
  timeout 100 python3 tools/jax_timeline.py --model $m --batch 1 --context 32768 --steps 32 > "$OUT/timeline_$m.log" 2>&1
  echo "timeline $m rc=$? t=$((SECONDS - T0))s"; grep -A8 "^=== " "$OUT/timeline_$m.log" | cut -c1-160
done
