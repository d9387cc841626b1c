#!/usr/bin/env bash
# Session 14, run 3: 0003 with the split tolerance at 2% (dc_0003b) against main's
# planner (dc_main) on the nine shapes; prefill under sustained load with clocks
# (.probe/power.py, fixed: a parameter per call); the large model at B1 on this tree.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
timeout 90 $B/dc_0003b --small > $OUT/check_0003b.log 2>&1; echo "dc_0003b --small rc=$?"; tail -n 1 $OUT/check_0003b.log
SH="B1 S4096 N16/4 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64"
SH="$SH,B1 S32768 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64"
SH="$SH,B8 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens"
for round in 1 2; do
  for v in main 0003b; do
    timeout 60 $B/dc_$v --bench --filter "$SH" > /tmp/bench.log 2>&1
    echo "== $v round $round"; grep -E "^B[0-9]+ S[0-9]+ N[0-9/]+ H128/128 (cap\+[0-9]+|lens) +mma" \
      /tmp/bench.log | sed 's/ mma-tma cfg3 warps8 stages3 tile128 smem197K 1\/SM//'
  done
done
wait $bp; tail -n 1 $OUT/build.log; echo "($((SECONDS-T0))s)"
F="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 100 python3 .probe/power.py 2>&1 | grep -v "$F"
echo "($((SECONDS-T0))s)"
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 1 --context 1024,4096,32768 \
  --variants jax_mea,jax-cudnn --budget-s $((500 - SECONDS + T0)) --out $OUT 2>&1 | grep -v "$F" > $OUT/model.log; tail -n 14 $OUT/model.log
echo "end $((SECONDS-T0))s"
