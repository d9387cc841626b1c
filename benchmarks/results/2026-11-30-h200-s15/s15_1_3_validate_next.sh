#!/usr/bin/env bash
# Device calls for pending/0004 (issue 15: conditional rescaling in the sm_90a forward),
# pending/0005 (issue 14: the backward's dO double-buffered) and pending/0006 (issue 11:
# the decode kernels read the append's start at entry), with main's checks and
# measurements not run yet (sm90_check's rising-scores case, bwd_check --bench's
# "unordered dQ" rows). Build here first (main; main + 0005's bwd_check; main + 0004):
#
#   cmake -S . -B build/cuda -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#   mkdir -p .probe/bin
#   ninja -C build/cuda sm90_check bwd_check && cp build/cuda/tests/native/sm90_check .probe/bin/sm90_main
#   cp build/cuda/tests/native/bwd_check .probe/bin/
#   git apply pending/0005-backward-double-buffered-dO.patch
#   ninja -C build/cuda bwd_check && cp build/cuda/tests/native/bwd_check .probe/bin/bwd_check_0005
#   git apply -R pending/0005-backward-double-buffered-dO.patch
#   git apply pending/0004-sm90-forward-conditional-rescaling.patch
#   ninja -C build/cuda sm90_check kernel_check && cp build/cuda/tests/native/{sm90_check,kernel_check} .probe/bin/
#   (leave 0004 applied for "fwd": the extension built on the device is the tree's)
# and, for "dec", into .probe/dec (carry only it: .probe/bin and .probe/dec together
# pass the 64 MiB a call carries):
#   ninja -C build/cuda decode_check && mkdir -p .probe/dec && cp build/cuda/tests/native/decode_check .probe/dec/dc_main
#   git apply pending/0006-decode-append-start-at-entry.patch
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/dec/dc_0006
#   git apply -R pending/0006-decode-append-start-at-entry.patch
#
# device: bash pending/validate_next.sh bwd   (0005 and the unordered-dQ rows; ~6 minutes)
#         bash pending/validate_next.sh fwd   (0004, main's rising case, ncu, prefill; ~9 minutes)
#   (both: carry .probe/bin, about 60 MB)
#         bash pending/validate_next.sh dec   (0006 against main, decode kernel alone; ~5 minutes)
#   (carry .probe/dec, about 34 MB)
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PART=${1:-fwd}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$SECONDS
B=.probe/bin

if [ "$PART" = dec ]; then
  D=.probe/dec
  timeout 120 $D/dc_0006 --small > /tmp/d6.log 2>&1; echo "dc_0006 --small rc=$?"; tail -n 1 /tmp/d6.log
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_0006 --small > /tmp/dm6.log 2>&1
  echo "memcheck 0006 rc=$? $(grep 'ERROR SUMMARY' /tmp/dm6.log)"
  SH="B1 S4096 N16/4 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64"
  SH="$SH,B1 S32768 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64"
  SH="$SH,B8 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens"
  for round in 1 2; do
    for v in main 0006 0006 main; do  # each twice a round, in both orders
      timeout 60 $D/dc_$v --bench --filter "$SH" > /tmp/db.log 2>&1
      echo "== $v round $round"; grep -E "^B[0-9]+ S[0-9]+ N[0-9/]+ H128/128 (cap\+[0-9]+|lens) +mma" \
        /tmp/db.log | sed 's/ mma-tma cfg3 warps8 stages3 tile128 smem197K 1\/SM//'
    done
  done
  echo "end at $((SECONDS - T0))s"
  exit 0
fi

if [ "$PART" = bwd ]; then
  # main: what the ordered dQ adds cost (the "unordered dQ" rows against the default ones)
  timeout 90 $B/bwd_check --bench > "$OUT/bwd_bench.log" 2>&1; echo "bwd_check --bench rc=$?"
  cat "$OUT/bwd_bench.log"
  # 0005: correctness (bwd_check runs each case twice and wants them bitwise equal),
  # racecheck and memcheck, then the same bench
  timeout 90 $B/bwd_check_0005 > /tmp/b5.log 2>&1; echo "bwd_check_0005 rc=$?"
  grep -E "^FAIL" /tmp/b5.log | head; tail -n 1 /tmp/b5.log
  timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 $B/bwd_check_0005 --quick > /tmp/r5.log 2>&1
  echo "racecheck 0005 rc=$? $(grep 'ERROR SUMMARY' /tmp/r5.log)"
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/bwd_check_0005 --quick > /tmp/m5.log 2>&1
  echo "memcheck 0005 rc=$? $(grep 'ERROR SUMMARY' /tmp/m5.log)"
  timeout 90 $B/bwd_check_0005 --bench > "$OUT/bwd_bench_0005.log" 2>&1; echo "bwd 0005 --bench rc=$?"
  cat "$OUT/bwd_bench_0005.log"
  # Where main's backward kernel stalls (B2 S4096 N32 H128 bf16, the bench's first row).
  timeout 150 ncu --clock-control none --kill yes --set full \
    --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
    -k regex:BwdKernel --launch-skip 2 --launch-count 1 $B/bwd_check --bench \
    > "$OUT/ncu_bwd.log" 2>&1; echo "ncu bwd rc=$?"
  grep -E "Duration|Throughput|Pipe|Stall|stalled|Issue|Eligible|Active Warps|Registers|Bank|Achieved" \
    "$OUT/ncu_bwd.log" | head -n 80
  echo "end at $((SECONDS - T0))s"
  exit 0
fi

( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$?" >> "$OUT/build.log" ) &
bp=$!
timeout 30 $B/sm90_main --filter rising > /tmp/r.log 2>&1; echo "main rising rc=$?"; grep -E "rising|cases" /tmp/r.log
timeout 150 $B/sm90_check > "$OUT/sm90_check.log" 2>&1; echo "sm90_check rc=$? ($((SECONDS-T0))s)"
grep -E "^FAIL|rising" "$OUT/sm90_check.log" | head; tail -n 1 "$OUT/sm90_check.log"
timeout 60 $B/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check rc=$?"; tail -n 1 /tmp/kc.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > /tmp/mc.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
for v in sm90_main sm90_check sm90_main sm90_check; do
  timeout 60 $B/$v --bench > /tmp/b.log 2>&1; echo "== $v"; grep -E "^B[0-9]" /tmp/b.log | head -n 12
done
# Where the H128 main loop stalls, main against 0004 (issue 15: tensor pipe 65% against
# cuDNN's 73% in session 12): warp states and scheduler statistics of one launch.
for v in sm90_main sm90_check; do
  timeout 100 ncu --clock-control none --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
    --section ComputeWorkloadAnalysis -k regex:AttentionFwdSm90 --launch-skip 3 --launch-count 1 \
    $B/$v --bench --filter "B2 S4096 N32 H128 bf16" > "$OUT/ncu_$v.log" 2>&1; echo "ncu $v rc=$?"
  grep -E "Duration|Stall|Issue|Warp Cycles|Tensor|Active Warps|Eligible" "$OUT/ncu_$v.log" | head -n 40
done
wait $bp; tail -n 1 "$OUT/build.log"
timeout $((580 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward --rounds 2 \
  --only "N32 H128,N32/8,N16 H256" \
  --dtypes bfloat16,float16 --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((540 - SECONDS + T0)) > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A12 "^case" "$OUT/prefill.log"; rm -rf "$OUT/pf"
echo "end at $((SECONDS - T0))s"
