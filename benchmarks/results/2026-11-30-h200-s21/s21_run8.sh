#!/usr/bin/env bash
# Session 21, call 8 (issue 11): main at 439cc43 (the compact merge). memcheck of
# decode_check --small (dcm2 is that tree's binary) while the package builds; then the
# large model's grid (B1 / B8 / B32 x ctx 1024 / 4096 / 32768 as time allows), every
# variant, median of 5, with attention's share from the profiler.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/dcm2.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 100 compute-sanitizer --tool memcheck $D/dcm2 --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$?"; tail -n 3 "$OUT/memcheck.log" | cut -c1-150
wait $BUILD; cat /tmp/build.rc; tail -n 3 /tmp/build.log
timeout 170 python3 benchmarks/decode_model.py --config large --batch 8,1,32 --context 4096,1024 --steps 32 \
  --variants jax_mea,jax-cudnn,jax-xla > "$OUT/grid.log" 2>&1; echo "grid rc=$?"
grep -E "ms/step|n/a" "$OUT/grid.log" | cut -c1-150
echo "end at $((SECONDS - T0))s"
