#!/usr/bin/env bash
# Session 27 call 4 (issue 11): is the small-cache scan step host-bound because XLA
# leaves our step out of a CUDA graph? Call 3's profile: our step's 4 kernels ran 10-16
# us but spanned 28-37 us per step, gaps of 4-9 us around the decode kernel; jax xla's
# 5 kernels ran back to back. XLA records a run of thunks into a command buffer only
# from xla_gpu_graph_min_graph_size (default 5?) thunks. Same profile with the minimum
# at 1, and with while loops in command buffers, then decode.py --scan both ways.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
TL="python3 tools/jax_timeline.py --scan --shapes 1x1024,1x4096,8x1024 --variants jax_mea,jax-xla"
for f in "" "--xla_gpu_graph_min_graph_size=1" \
         "--xla_gpu_graph_min_graph_size=1 --xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"; do
  echo "##### XLA_FLAGS=$f"; XLA_FLAGS="$f" timeout 100 $TL 2>&1
done > "$OUT/timeline_flags.log"
echo "timeline t=$((SECONDS - T0))s"
grep -E "^#####|^===|command buffers" "$OUT/timeline_flags.log" | cut -c1-230
for f in "" "--xla_gpu_graph_min_graph_size=1"; do
  echo "##### XLA_FLAGS=$f"
  XLA_FLAGS="$f" timeout 130 python3 benchmarks/decode.py --grid small --scan --contenders jax_mea \
    --rounds 2 --only "B1 S1024,B8 S1024,B1 S4096 N32/8 H128 cap4160,B1 S8192" 2>&1 | grep -vE "^  decode|^  \("
done > "$OUT/scan_flags.log" 2>&1
echo "scan t=$((SECONDS - T0))s"; cut -c1-220 "$OUT/scan_flags.log" | grep -E "#####|^decode|^case"
