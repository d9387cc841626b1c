#!/usr/bin/env bash
# Session 18, device call 1: the decode kernel's early loads (TMA tiles before the
# fused append) and K/V packed into one decode-step operand. Native checks and
# old/new timings (kernels built on the dev machine, carried in .probe/s18), the
# package build, GPU tests, the model's timeline and decode_model.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s18; mkdir -p $D
for f in .probe/s18/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > "$OUT/build.rc" ) &
BUILD=$!
timeout 60 $D/dc_new --small > "$OUT/dc_small.log" 2>&1; echo "dc_new --small rc=$? $(tail -n 1 $OUT/dc_small.log)"
grep FAIL "$OUT/dc_small.log" | head -3
M="B8 S4096 N16/4 H128/128 cap+64"
S="B1 S1024 N16/4 H128/128 cap+64"
for tool in memcheck racecheck; do
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 1 $D/dc_new_trace --bench --trace --append --filter "$M,$S" > /tmp/$tool.log 2>&1
  echo "$tool (append, trace build) rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/$tool.log | head -1)"
done
echo "native done at $((SECONDS - T0))s"
F="$M,B1 S32768 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for r in 1 2; do
  for v in old new; do
    timeout 60 $D/dc_$v --bench --append --filter "$F" > "$OUT/bench_append_${v}_$r.log" 2>&1
  done
done
timeout 60 $D/dc_old --bench --filter "$F" > "$OUT/bench_plain_old.log" 2>&1
timeout 60 $D/dc_new --bench --filter "$F" > "$OUT/bench_plain_new.log" 2>&1
for v in old new; do
  echo "== $v, --append, table"; grep -A 8 "^shape (bf16" "$OUT/bench_append_${v}_1.log" | cut -c1-30,97-120
  grep -A 8 "^shape (bf16" "$OUT/bench_append_${v}_2.log" | cut -c1-30,97-120 | tail -n +2
  echo "== $v, no append"; grep -A 8 "^shape (bf16" "$OUT/bench_plain_${v}.log" | cut -c1-30,97-120 | tail -n +2
done
for v in old new; do
  echo "== trace $v --append"; timeout 30 $D/dc_${v}_trace --bench --trace --append --filter "$M" 2>&1 | head -14 > "$OUT/trace_$v.log"; head -14 "$OUT/trace_$v.log" | grep -E "splits 4|entry|keys|first|later|epilogue|CTA total" | head -8
done
echo "bench done at $((SECONDS - T0))s"
wait $BUILD; cat "$OUT/build.rc"
timeout 150 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -p no:cacheprovider -n 12 -rf > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 120 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$FL" > "$OUT/timeline_large.log"
grep -E "ms/step|DecodeMma|cudnn_gen|concatenate|slice_fusion|all attention" "$OUT/timeline_large.log"
left=$((585 - SECONDS + T0)); echo "model budget ${left}s"
timeout $left python3 benchmarks/decode_model.py --config large --batch 1,8,32 --context 1024,4096 --variants jax_mea,jax-cudnn --budget-s $((left - 40)) --out "$OUT" 2>&1 | grep -v "$FL" > "$OUT/model.log"
tail -n 12 "$OUT/model.log"
echo "end at $((SECONDS - T0))s"
