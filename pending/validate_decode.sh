#!/usr/bin/env bash
# One device call for the decode work left after session 13 (issue 11): the planner's
# merge costs (0003) against main's plans on the same GPU, then where the epilogue's
# time goes (the trace build's epilogue stamps). Build everything here first:
#
#   cmake -S . -B build/cuda -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#   mkdir -p .probe/bin
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/bin/dc_main
#   git apply pending/0003-decode-planner-merge-costs.patch
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/bin/dc_0003
#   git apply -R pending/0003-decode-planner-merge-costs.patch
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF \
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE
#   ninja -C build/trace decode_check && cp build/trace/tests/native/decode_check .probe/bin/dc_trace
#
# device: bash pending/validate_decode.sh   (carry .probe; about 2 minutes)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
B=.probe/bin
SH="B1 S4096 N16/4 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64"
SH="$SH,B1 S32768 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64"
SH="$SH,B8 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens"
timeout 90 $B/dc_0003 --small > "$OUT/check_0003.log" 2>&1; echo "dc_0003 --small rc=$?"; tail -n 1 "$OUT/check_0003.log"
# The default plan of each shape, main then the patch, twice (the table after the sweeps).
for round in 1 2; do
  for v in main 0003; do
    timeout 60 $B/dc_$v --bench --filter "$SH" > "$OUT/bench_${v}_$round.log" 2>&1
    echo "== $v round $round"; grep -E "^B[0-9]+ S[0-9]+ N[0-9/]+ H128/128 (cap\+[0-9]+|lens) +mma" \
      "$OUT/bench_${v}_$round.log" | sed 's/ mma-tma cfg3 warps8 stages3 tile128 smem197K 1\/SM//'
  done
done
timeout 60 $B/dc_trace --bench --trace --filter "B8 S4096 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64" \
  > "$OUT/trace.log" 2>&1; echo "trace rc=$?"
grep -E "splits|ep:|keys|epilogue" "$OUT/trace.log" | head -n 80
