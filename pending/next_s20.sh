#!/usr/bin/env bash
# Issues 14 and 11: the next session's first device call (written in session 19, not run).
# Before it, on the development machine:
#   ninja -C build/cuda bwd_check decode_check && ninja -C build/trace decode_check
#   mkdir -p .probe/s20 && cp build/cuda/tests/native/bwd_check .probe/s20/bwd &&
#   cp build/cuda/tests/native/decode_check .probe/s20/dc &&
#   cp build/trace/tests/native/decode_check .probe/s20/dc_trace &&
#   git apply pending/0013-decode-balance-lengths-at-entry.patch &&
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/s20/dc13 &&
#   git checkout cuda/kernels && ninja -C build/cuda decode_check && xz -6 .probe/s20/*
# then run it with carry [".probe/s20"] (about 500 s):
#   1. the landed backward's own binary (session 19 checked late dQ at H128 and early dQ at
#      H64 as two separate builds): bwd_check, memcheck, racecheck, the bench. bwd_check
#      has 42 cases now: session 19 added two H128 cases of whole tiles every row sees
#      (the unchecked elementwise passes, plain and softcapped), not yet run;
#   2. GPU pytest: the gradient tests, tests/test_examples.py (examples/train.py's GPU
#      default, bfloat16 attention, has not run on a GPU), the decode tests;
#   3. ncu --set full of the H128 BwdKernel, its SASS table beside session 16's
#      FlashAttention-2 one (python3 tools/sass_stats.py ours.csv fa2.csv --loop-min 1e6);
#   4. the decode leftovers of session 18's plan: the trace of the B1 S1024 default plan,
#      and ncu's SASS table of one decode launch: per instruction, how often it ran and
#      where the warps stalled. Session 19 read the TMA H128 kernel's SASS without a GPU:
#      1231 instructions come before its first UTMALDG (the row and split arithmetic of
#      GroupKeys / GroupSplits / CtaKeys, the append and Q paths), so the ~2 us from a
#      CTA's entry to its first load may be instructions more than memory;
#   5. pending 0013 (the balanced plan's batch lengths loaded at entry) against main:
#      decode_check's checks, then the bench of the large model's layer shapes.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 100 $D/bwd > "$OUT/bwd_check.log" 2>&1; echo "bwd_check rc=$? $(tail -n 1 $OUT/bwd_check.log)"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd --quick > /tmp/m.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"
timeout 120 $D/bwd --bench > "$OUT/bwd_bench.log" 2>&1; cut -c1-100 "$OUT/bwd_bench.log"
timeout 150 ncu --clock-control none --set full -k regex:BwdKernel --launch-skip 1 --launch-count 1 \
  -o $D/ours $D/bwd --bench "B2 S4096 N32 H128 bf16" > /tmp/ncu.log 2>&1; echo "ncu rc=$?"
ncu --import $D/ours.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/ours.csv
python3 tools/sass_stats.py $D/ours.csv \
  benchmarks/results/2026-11-30-h200-s16/run5_fa2_bwd_sass.csv --loop-min 1e6 > "$OUT/sass_stats.log" 2>&1
grep -E "^==|loop body|^  [a-z_]+ +[0-9]" "$OUT/sass_stats.log" | cut -c1-150; xz -6 -c $D/ours.csv > "$OUT/ours_sass.csv.xz"
echo "t=$((SECONDS - T0))s"
S="B1 S1024 N16/4 H128/128 cap+64"
timeout 30 $D/dc_trace --bench --trace --append --filter "$S" 2>&1 | head -40 > "$OUT/small_trace.log"
timeout 90 ncu --clock-control none --set full -k regex:DecodeMma --launch-skip 5 --launch-count 1 \
  -o $D/dec $D/dc --bench --append --filter "B8 S4096 N16/4 H128/128 cap+64" > /tmp/ncu_dec.log 2>&1
echo "decode ncu rc=$?"; ncu --import $D/dec.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/dec.csv
python3 tools/sass_stats.py $D/dec.csv > "$OUT/dec_sass_stats.log" 2>&1; head -n 8 "$OUT/dec_sass_stats.log" | cut -c1-150
xz -6 -c $D/dec.csv > "$OUT/dec_sass.csv.xz"
timeout 150 $D/dc13 > "$OUT/dc13_check.log" 2>&1; echo "0013 decode_check rc=$? $(tail -n 1 $OUT/dc13_check.log)"
S2="B8 S4096 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64"
for v in dc dc13 dc13 dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S2" | grep -E "^B"; done > "$OUT/dc13_bench.log" 2>&1
cut -c1-150 "$OUT/dc13_bench.log"
wait $BUILD; cat /tmp/build.rc
timeout $((560 - SECONDS + T0)) python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py \
  tests/test_cuda_backward_optin.py tests/test_backward_walk.py tests/test_examples.py \
  tests/test_decode.py tests/test_gpu_large.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
echo "end at $((SECONDS - T0))s"
