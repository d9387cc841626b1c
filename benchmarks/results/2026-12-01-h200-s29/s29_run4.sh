#!/usr/bin/env bash
# Issue 11, session 29 call 4: the host's side of the scan on small caches. In call 3
# the ungraphed scan steps (ours and jax cuDNN) ran 1.3-1.6x slower than in session 27
# while jax xla's (recorded as a CUDA graph) did not move: the host bounds them. The
# JAX profiler's host events of each contender's scan program say what each thunk
# costs the host (tools/jax_timeline.py --scan --trace-timer).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 200 python3 tools/jax_timeline.py --scan --shapes 1x1024,8x1024 --heads 32/8 --trace-timer \
  > "$OUT/scan_host.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; cut -c1-120 "$OUT/scan_host.log"
