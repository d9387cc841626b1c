#!/usr/bin/env bash
# Session 18, device call 4: back to run 1's kernel (TMA tiles before the fused
# append; PatchRows of run 3 was slower), without the K/V packing; decode_check's
# new append cases (Reference64 now adds kv_length_bias), sanitizers, old/new
# timings with the append, GPU tests, the model's timeline, the full check list.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s18; mkdir -p $D
for f in .probe/s18/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 60 $D/dc_new --small > /tmp/dc_small.log 2>&1; echo "dc_new --small rc=$? $(tail -n 1 /tmp/dc_small.log)"
grep -E "FAIL" /tmp/dc_small.log | head -5; echo "append cases: $(grep -c ' append' /tmp/dc_small.log)"
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --error-exitcode 1 $D/dc_new --small > /tmp/$tool.log 2>&1
  echo "$tool --small rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/$tool.log | head -1)"
done
echo "native checks done at $((SECONDS - T0))s"
M="B8 S4096 N16/4 H128/128 cap+64"
F="$M,B1 S32768 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for r in 1 2; do
  for v in old new; do
    timeout 60 $D/dc_$v --bench --append --filter "$F" > /tmp/bench_${v}_$r.log 2>&1
    grep -A 7 "^shape (bf16" /tmp/bench_${v}_$r.log | tail -n 6 | awk -v t="$v r$r" '{print t": "$1,$2,$3,$4,$5,$(NF-3)}'
  done
done
timeout 60 $D/dc_new --bench --filter "$F" > /tmp/bench_plain_new.log 2>&1
grep -A 7 "^shape (bf16" /tmp/bench_plain_new.log | tail -n 6 | awk '{print "new, no append: "$1,$2,$3,$4,$5,$(NF-3)}'
timeout 30 $D/dc_new_trace --bench --trace --append --filter "$M" 2>&1 | head -14 | grep -E "splits 4|entry|keys|first|later|epilogue|CTA total" | head -8
echo "bench done at $((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc
timeout 150 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -p no:cacheprovider -n 12 -rf > /tmp/pytest.log 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" /tmp/pytest.log | tail -n 5
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
for bc in "8 4096" "1 1024"; do
  set -- $bc
  timeout 100 python3 tools/jax_timeline.py --model large --batch $1 --context $2 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$FL" > /tmp/timeline_b$1_$2.log
  grep -E "ms/step|DecodeMma|cudnn_gen|all attention" /tmp/timeline_b$1_$2.log
done
left=$((575 - SECONDS + T0))
if [ $left -gt 60 ]; then
  timeout $left $D/dc_new > /tmp/dc_full.log 2>&1; echo "dc_new full rc=$? $(grep -c PASS /tmp/dc_full.log) passed, $(grep -c FAIL /tmp/dc_full.log) failed"
  grep FAIL /tmp/dc_full.log | head -5
fi
cp /tmp/dc_small.log /tmp/bench_new_1.log /tmp/bench_old_1.log /tmp/timeline_b8_4096.log /tmp/timeline_b1_1024.log /tmp/pytest.log "$OUT/" 2>/dev/null
tail -n 3 /tmp/dc_full.log > "$OUT/dc_full_tail.log" 2>/dev/null; grep FAIL /tmp/dc_full.log >> "$OUT/dc_full_tail.log" 2>/dev/null
echo "end at $((SECONDS - T0))s"
