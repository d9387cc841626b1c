#!/usr/bin/env bash
# Issue 11, the next session's first device call (written in session 18, not run).
# Before it, on the development machine:
#   ninja -C build/cuda decode_check && ninja -C build/trace decode_check
#   mkdir -p .probe/s19 && cp build/cuda/tests/native/decode_check .probe/s19/dc &&
#   cp build/trace/tests/native/decode_check .probe/s19/dc_trace && xz -6 .probe/s19/dc*
# then run it with carry [".probe/s19"] (about 560 s):
#   1. session 18's append change (StagedAppend) in the model: run 4 timed only its first
#      step there (29.07 us per layer at B8 ctx4096; the kernel alone, with the append,
#      went 29.7 -> 28.3 us since);
#   2. the small caches at B1, where our kernel takes 11.7 us per layer against cuDNN's
#      6.1 + 1.9 (ctx1024): every configuration and split count with the append, the
#      trace of the default plan, and ncu's warp stall reasons of one launch;
#   3. the JAX decode tests on the GPU (fe8126d's kernel ran only the native checks);
#   4. the large model's grid (ctx 1024 and 4096) against jax-cudnn.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
S="B1 S1024 N16/4 H128/128 cap+64,B1 S1024 N32/8 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
timeout 90 $D/dc --bench --append --filter "$S" > "$OUT/small_sweep.log" 2>&1; echo "sweep rc=$?"
grep -E "c-1 |c3 |c0 " "$OUT/small_sweep.log" | cut -c1-220
timeout 30 $D/dc_trace --bench --trace --append --filter "B1 S1024 N16/4 H128/128 cap+64" 2>&1 | head -40 > "$OUT/small_trace.log"
grep -E "splits|keys|first|later|epilogue|CTA total|merge" "$OUT/small_trace.log" | head -24
# Where the first ~2 us of a CTA go (entry to the first load, run 5's trace): warp stall
# reasons of one launch, "no instruction" (cold instruction cache) among them.
timeout 60 ncu --clock-control none --section WarpStateStats --section LaunchStats -k regex:DecodeMma \
  --launch-skip 5 --launch-count 1 $D/dc --bench --append --filter "B1 S1024 N16/4 H128/128 cap+64" \
  > "$OUT/small_ncu.log" 2>&1; grep -iE "stall|warp cycles|duration" "$OUT/small_ncu.log" | head -30
wait $BUILD; cat /tmp/build.rc
# fe8126d's kernel (StagedAppend) was checked natively only; the JAX decode tests too.
timeout 150 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -p no:cacheprovider -n 12 -rf > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
for bc in "8 4096" "1 1024"; do
  set -- $bc
  timeout 100 python3 tools/jax_timeline.py --model large --batch $1 --context $2 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$FL" > "$OUT/timeline_b$1_$2.log"
  grep -E "ms/step|DecodeMma|cudnn_gen|lean_red|all attention" "$OUT/timeline_b$1_$2.log"
done
left=$((575 - SECONDS + T0))
timeout $left python3 benchmarks/decode_model.py --config large --batch 1,8,32 --context 1024,4096 --variants jax_mea,jax-cudnn --budget-s $((left - 30)) --out "$OUT" 2>&1 | grep -v "$FL" > "$OUT/model.log"
tail -n 10 "$OUT/model.log"
echo "end at $((SECONDS - T0))s"
