#!/usr/bin/env bash
# Session 19, call 1. Issue 14: the backward's turn spin (relaxed polls + one fence) and
# fragment-pipelined warp GEMMs, timed against main; ncu of main's kernel (SASS stall
# table beside session 16's FlashAttention-2 one). Issue 11: fe8126d's kernel through the
# JAX decode tests and in the model; the B1 small-cache plans with the append.
# Binaries built on the development machine, xz'd in .probe/s19 (carry it):
#   bwd_main (main + bwd_check --bench FILTER), bwd_relaxed (WaitTurn: ld.relaxed polls,
#   then fence.acq_rel), bwd_pipe (relaxed + JAX_MEA_BWD_PIPE_FRAGS), dc, dc_trace.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
R=benchmarks/results/2026-11-30-h200-s19
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
F="B2 S4096 N32 H128 bf16"
{ for v in main relaxed pipe pipe relaxed main; do
    echo "== $v"; timeout 60 $D/bwd_$v --bench "$F" | grep -E "^B"
  done
  echo "== main unordered"; timeout 60 $D/bwd_main --bench "unordered dQ: B2" | grep -E "unord"
} > "$OUT/bwd_bench.log" 2>&1
cat "$OUT/bwd_bench.log" | cut -c1-140
timeout 90 $D/bwd_pipe > "$OUT/bwd_pipe_check.log" 2>&1; echo "bwd_pipe check rc=$? $(tail -n 1 $OUT/bwd_pipe_check.log)"
echo "t=$((SECONDS - T0))s"
timeout 150 ncu --clock-control none --set full --import-source no -k regex:BwdKernel \
  --launch-skip 1 --launch-count 1 -o $D/ours $D/bwd_main --bench "$F" > /tmp/ncu.log 2>&1
echo "ncu rc=$?"; tail -n 2 /tmp/ncu.log
ncu --import $D/ours.ncu-rep --page details --section SpeedOfLight --section LaunchStats \
  --section Occupancy --section WarpStateStats --section SchedulerStats --section InstructionStats \
  2>&1 | grep -vE "^\s*-+\s*$|^\s*$|OPT|INF|WRN|Estimated|----" | head -n 70 > "$OUT/ncu_main.log"
ncu --import $D/ours.ncu-rep --page source --csv --print-source sass 2>/dev/null | xz -6 > "$OUT/ncu_main_sass.csv.xz"
grep -E "Duration|Executed Instructions  |Registers Per|Warp Cycles Per Issued|Issue Slots Busy" "$OUT/ncu_main.log"
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc; tail -n 3 /tmp/build.log
timeout 150 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -p no:cacheprovider -n 12 -rf > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
FL="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
for bc in "8 4096" "1 1024"; do
  set -- $bc
  timeout 100 python3 tools/jax_timeline.py --model large --batch $1 --context $2 --variants jax_mea,jax-cudnn --top 12 2>&1 | grep -v "$FL" > "$OUT/timeline_b$1_$2.log"
  grep -E "ms/step|DecodeMma|cudnn_gen|lean_red|all attention" "$OUT/timeline_b$1_$2.log" | cut -c1-160
done
timeout 60 python3 $R/bwd_peers.py > "$OUT/bwd_peers.log" 2>&1; echo "peers rc=$?"; cat "$OUT/bwd_peers.log" | grep torch
echo "t=$((SECONDS - T0))s"
left=$((560 - SECONDS + T0))
if [ $left -gt 100 ]; then
  timeout 90 ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section InstructionStats \
    --section LaunchStats -k regex:BwdKernel --launch-skip 1 --launch-count 1 $D/bwd_pipe --bench "$F" > "$OUT/ncu_pipe.log" 2>&1
  grep -E "Duration|Executed Instructions  |Registers Per|Warp Cycles Per Issued|Issue Slots Busy" "$OUT/ncu_pipe.log"
fi
left=$((560 - SECONDS + T0))
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
[ $left -gt 40 ] && timeout $((left - 10)) $D/dc --bench --append --filter "$S" > "$OUT/small_sweep.log" 2>&1
echo "end at $((SECONDS - T0))s"
