#!/usr/bin/env bash
# Session 27 call 3 (issue 11): where a scan step's time goes on the small caches.
# tools/jax_timeline.py --scan (new) profiles decode.py --scan's three contenders as one
# 40-step program each: device span per step against the kernels' busy time; then the
# kernel alone on the same shapes, traced (.probe/s27/dctrace.xz, carried: the trace
# build of session 26, see s27_run1.sh's header).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 240 python3 tools/jax_timeline.py --scan --shapes 1x1024,1x4096,1x8192,8x1024 \
  > "$OUT/scan_timeline.log" 2>&1
echo "timeline rc=$? t=$((SECONDS - T0))s"; cut -c1-160 "$OUT/scan_timeline.log"
xz -dc .probe/s27/dctrace.xz > /tmp/dctrace; chmod +x /tmp/dctrace
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1"
timeout 60 /tmp/dctrace --bench --trace --append --filter "$S" > "$OUT/trace.log" 2>&1
echo "trace rc=$? t=$((SECONDS - T0))s"
grep -E "event|entry offset|keys|first tile|later|epilogue|CTA total|ep:|last to exit" "$OUT/trace.log" | cut -c1-170
