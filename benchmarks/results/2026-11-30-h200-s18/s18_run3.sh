#!/usr/bin/env bash
# Session 18, device call 3: the TMA decode kernel writing a step's new rows into
# its tiles (PatchRows) instead of storing them and reading them back; K/V packing
# taken out again (run 2). Native checks with the new append cases, sanitizers,
# old/new timings with the append, the package's GPU tests and the model's timeline.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s18; mkdir -p $D
for f in .probe/s18/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 60 $D/dc_new --small > /tmp/dc_small.log 2>&1; echo "dc_new --small rc=$? $(tail -n 1 /tmp/dc_small.log)"
grep -E "FAIL" /tmp/dc_small.log | head -5; grep -c " append" /tmp/dc_small.log
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
timeout 100 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$FL" > /tmp/timeline.log
grep -E "ms/step|DecodeMma|cudnn_gen|all attention|concatenate|slice_fusion|minimum" /tmp/timeline.log
left=$((570 - SECONDS + T0))
if [ $left -gt 60 ]; then
  timeout $left $D/dc_new > /tmp/dc_full.log 2>&1; echo "dc_new full rc=$? $(grep -c PASS /tmp/dc_full.log) passed, $(grep -c FAIL /tmp/dc_full.log) failed"
  grep FAIL /tmp/dc_full.log | head -5
fi
cp /tmp/dc_small.log /tmp/bench_new_1.log /tmp/bench_old_1.log /tmp/timeline.log /tmp/pytest.log "$OUT/" 2>/dev/null
tail -n 3 /tmp/dc_full.log > "$OUT/dc_full_tail.log" 2>/dev/null; grep FAIL /tmp/dc_full.log >> "$OUT/dc_full_tail.log" 2>/dev/null
echo "end at $((SECONDS - T0))s"
