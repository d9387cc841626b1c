#!/usr/bin/env bash
# Session 14, run 5: the forward with the scale folded into the softmax's exponent,
# as landed (both forward kernels; two K/V stages): quick checks of both kernels,
# memcheck, sm90_check --bench, prefill.py's issue-15 table, GPU pytest of the forward.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
N=$OUT/native.log
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
run() {  # limit command...: its rc, FAIL lines and last lines into native.log
  local lim=$1; shift
  timeout "$lim" "$@" > /tmp/t.log 2>&1
  local rc=$?
  echo "## $* rc=$rc ($((SECONDS - T0))s)" | tee -a "$N"
  grep -E "^FAIL|FAIL " /tmp/t.log | head -n 8 | tee -a "$N"
  tail -n "${TAILN:-2}" /tmp/t.log | tee -a "$N"
}
run 40 $B/sm90_check --quick
run 40 $B/kernel_check --quick
JAX_MEA_SM90_FORWARD=0 run 40 $B/kernel_check --quick
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > /tmp/s3.log 2>&1
echo "## memcheck sm90 --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s3.log)" | tee -a $N
TAILN=20 run 60 $B/sm90_check --bench
wait $bp; tail -n 1 $OUT/build.log; echo "($((SECONDS-T0))s)"
timeout 170 python3 benchmarks/prefill.py --passes forward \
  --dtypes bfloat16,float16 --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s 150 > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A12 "^case" "$OUT/prefill.log"
rm -rf "$OUT/pf"
L=$((330 - SECONDS + T0)); [ $L -lt 40 ] && L=40
timeout $L python3 -m pytest tests/test_dot_product_attention.py tests/test_score_parity.py \
  -q -p no:cacheprovider -n 14 -x > $OUT/pytest.log 2>&1; echo "pytest rc=$?"; tail -n 2 $OUT/pytest.log
echo "end at $((SECONDS - T0))s"
