#!/usr/bin/env bash
# One device call that validates the pending series (pending/README.md) once it is
# applied: native checks first (carry them prebuilt: BIN, default the sm_90 build of
# tests/native), then the extension's build and the GPU tests and benchmarks that
# measure #14's and #15's bars. Logs go to $OUT (the device tool's output folder).
#
#   git am pending/0001-*.patch pending/0002-*.patch
#   cmake -S . -B build/cuda -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF && ninja -C build/cuda
#   mkdir -p .probe/bin && cp build/cuda/tests/native/*_check .probe/bin/
#   device: BIN=.probe/bin bash pending/validate.sh   (carry .probe)
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}
BIN=${BIN:-build/cuda/tests/native}
mkdir -p "$OUT"
T0=$SECONDS
N=$OUT/native.log
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$?" >> "$OUT/build.log" ) &
bp=$!
run() {  # limit command...: its rc, FAIL lines and last lines into native.log
  local lim=$1; shift
  timeout "$lim" "$@" > /tmp/t.log 2>&1
  local rc=$?
  echo "## $* rc=$rc ($((SECONDS - T0))s)" | tee -a "$N"
  grep -E "^FAIL|FAIL " /tmp/t.log | head -n 8 | tee -a "$N"
  tail -n "${TAILN:-2}" /tmp/t.log | tee -a "$N"
}
# 0001: the persistent forward.
run 30 "$BIN/sm90_check" --quick
run 40 "$BIN/sm90_check" --filter H128
run 30 "$BIN/kernel_check" --quick
TAILN=24 run 60 "$BIN/sm90_check" --bench --filter "N32 H128"
# 0002: the Hopper backward (the checks take it on 9.x; =0: the sm_80 kernel).
run 60 "$BIN/bwd_check"
JAX_MEA_SM90_BACKWARD=0 run 60 "$BIN/bwd_check" --quick
TAILN=18 run 60 "$BIN/bwd_check" --bench
( timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 "$BIN/bwd_check" --quick \
    > /tmp/s1.log 2>&1; echo "## memcheck bwd --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s1.log)" >> "$N"
  timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 "$BIN/bwd_check" --quick \
    > /tmp/s2.log 2>&1; echo "## racecheck bwd --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s2.log)" >> "$N"
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 "$BIN/sm90_check" --quick \
    --filter "3 CTAs" > /tmp/s3.log 2>&1
  echo "## memcheck sm90 3 CTAs rc=$? $(grep 'ERROR SUMMARY' /tmp/s3.log)" >> "$N" ) &
sp=$!
wait $bp; tail -n 1 "$OUT/build.log"
timeout 120 python3 -m pytest tests/test_gradients.py tests/test_dot_product_attention.py \
  -p no:cacheprovider -n 14 -q -rf > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? ($((SECONDS - T0))s)"; grep -E "passed|failed" "$OUT/pytest.log" | tail -n 1
wait $sp; grep -E "memcheck|racecheck" "$N"
timeout $((540 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward,backward \
  --only "N32 H128" --dtypes bfloat16,float16 \
  --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out "$OUT/pf" \
  --budget-s $((500 - SECONDS + T0)) > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A6 "^case" "$OUT/prefill.log"
rm -rf "$OUT/pf"; echo "end at $((SECONDS - T0))s"
