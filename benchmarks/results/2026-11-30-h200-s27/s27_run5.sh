#!/usr/bin/env bash
# Session 27 call 5 (issue 11): the scan line of decode.py on the whole --grid small,
# with the scan programs 128 steps apart (timing.SCAN_COUNTS = (8, 136), was 32 apart:
# call 4 saw jax xla's B1 S1024 step at 5.9 and 12.8 us in two runs), XLA's default
# flags; then the small caches again with xla_gpu_graph_min_graph_size=1 (every
# contender's step in a CUDA graph, as inside a model's step).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 400 python3 benchmarks/decode.py --grid small --scan --contenders jax_mea --budget-s 330 \
  > "$OUT/scan_grid.log" 2>&1
echo "grid rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan_grid.log" | cut -c1-220
XLA_FLAGS=--xla_gpu_graph_min_graph_size=1 timeout $((575 - SECONDS + T0)) python3 benchmarks/decode.py \
  --grid small --scan --contenders jax_mea --only "B1 S1024,B8 S1024,B1 S8192,B1 S4096 N32/8 H128 cap4160" \
  > "$OUT/scan_graph.log" 2>&1
echo "graph rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan_graph.log" | cut -c1-220
