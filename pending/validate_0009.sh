#!/usr/bin/env bash
# Device call for pending 0009 (issue 14: the backward's main kernel without the
# integer work that separated it from FlashAttention-2's). Session 16's ncu of both at
# B2 S4096 N32 H128 bf16: the same HMMA (336 M) and LDSM (151 M) and the same issue rate
# (IPC 1.03 / 1.05, 2 warps per scheduler), but 1.57 G instructions against 1.07 G, and
# 6.66 ms against 4.44. The excess was per warp and tile: ~240 instructions of 64-bit
# address math and branches around the 16 dQ adds, ~270 of the tile walk (VisibleKeys
# of every candidate block, twice, and a scan of every block below the diagonal).
#
# Before the call, on this machine:
#   git apply pending/0009-backward-fewer-instructions.patch
#   PYTHONPATH=$PWD python3 -m pytest -q tests/test_backward_walk.py   (CPU, passes)
#   binaries (git-ignored; rebuild if gone): .probe/v0009/bwd_main (main's bwd_check) and
#   .probe/v0009/bwd_0009 (with the patch): ninja -C build/cuda bwd_check, before and
#   after git apply.
# device: bash pending/validate_0009.sh   (carry .probe/v0009; ~8 minutes with the build)
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/v0009
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$? ($((SECONDS-T0))s)" >> "$OUT/build.log" ) &
bp=$!
timeout 120 $D/bwd_0009 > "$OUT/bwd_check.log" 2>&1; echo "bwd_check (0009) rc=$?"
grep FAIL "$OUT/bwd_check.log" | head -5; tail -n 1 "$OUT/bwd_check.log"
timeout 120 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd_0009 --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_0009 --quick > /tmp/m.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
for v in main 0009 0009 main; do
  timeout 90 $D/bwd_$v --bench > /tmp/b.log 2>&1; echo "== $v"; grep -E "^B|unordered" /tmp/b.log
done
timeout 120 ncu --clock-control none --section SpeedOfLight --section InstructionStats \
  --section WarpStateStats --section LaunchStats -k regex:BwdKernel --launch-skip 2 --launch-count 1 \
  $D/bwd_0009 --bench > "$OUT/ncu_0009.log" 2>&1; echo "ncu rc=$?"
grep -E "Duration|Executed Instructions  |Registers|Warp Cycles Per Issued|Stack" "$OUT/ncu_0009.log"
wait $bp; tail -n 1 "$OUT/build.log"
timeout 200 python3 -m pytest -q -x tests/test_gradients.py tests/test_cuda_backward_optin.py \
  tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"; tail -n 2 "$OUT/pytest.log"
timeout $((580 - SECONDS + T0)) python3 benchmarks/prefill.py --passes backward --rounds 2 \
  --only "N32 H128" --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out "$OUT/pf" \
  --budget-s $((550 - SECONDS + T0)) > "$OUT/prefill_bwd.log" 2>&1
echo "prefill rc=$?"; grep -A6 "^case" "$OUT/prefill_bwd.log"
echo "end at $((SECONDS - T0))s"
