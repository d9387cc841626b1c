#!/usr/bin/env bash
# Session 14, run 4: the sm_90a forward with a third K/V stage where it fits (A), the
# scale folded into the softmax's exponent (B), both (AB: this tree), against main
# (old): checks and memcheck of AB, sm90_check --bench of all four, then prefill.py's
# issue-15 table (bf16, fp16) on AB beside cuDNN.
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
for v in old AB A B; do TAILN=24 run 60 $B/sm90_$v --bench; done
run 150 $B/sm90_AB
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_AB --quick > /tmp/s3.log 2>&1
echo "## memcheck sm90_AB --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s3.log)" | tee -a $N
wait $bp; tail -n 1 $OUT/build.log; echo "($((SECONDS-T0))s)"
timeout $((580 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward \
  --dtypes bfloat16,float16 --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((540 - SECONDS + T0)) > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A12 "^case" "$OUT/prefill.log"
rm -rf "$OUT/pf"; echo "end at $((SECONDS - T0))s"
