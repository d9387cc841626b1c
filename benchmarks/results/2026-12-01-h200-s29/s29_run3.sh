#!/usr/bin/env bash
# Issue 11, session 29 call 3: the done-when lines not met, re-measured on main (with
# 0133a99, the epilogue's rolled loops) for the closing note:
#  1. decode.py --scan on the small caches of --grid small (the ones under the best jax
#     peer in session 27) and the 134 MB B1 S32768 N32/8 caches, two rounds, default flags;
#  2. the model's per-layer kernel time against the copy floor on the 67 MB one-wave
#     layers (tools/jax_timeline.py --model large, B1 ctx32768 and B8 ctx4096).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
for run in "large 1 32768" "large 8 4096"; do
  set -- $run
  timeout 75 python3 tools/jax_timeline.py --model $1 --batch $2 --context $3 --steps 32 \
    > "$OUT/timeline_$1_b$2.log" 2>&1
  echo "timeline $run rc=$? t=$((SECONDS - T0))s"; grep -E "ms/step|^=== |DecodeMma|cudnn_gen|lean_red|all attention" "$OUT/timeline_$1_b$2.log" | cut -c1-160
done
timeout $((585 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan --rounds 2 \
  --only "B1 S1024 ,B8 S1024 ,B1 S4096 ,B1 S8192 ,B1 S32768 N32/8 H128" > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan.log" | cut -c1-220
