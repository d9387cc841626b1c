#!/usr/bin/env bash
# Session 12, device run 2: the forward grid's LPT order for causal (all forward kernels),
# the ping-pong by row (H192), H64 backward at 2 CTAs/SM; the JAX-vs-kernel gap of prefill.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
N=$OUT/native.log
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
run() { local lim=$1; shift; timeout $lim "$@" > /tmp/t.log 2>&1; local rc=$?; echo "## $* rc=$rc ($((SECONDS-T0))s)" | tee -a $N; grep -E "^FAIL" /tmp/t.log | head -n 6 | tee -a $N; tail -n ${TAILN:-2} /tmp/t.log | tee -a $N; }
run 40 $B/bwd_check
TAILN=14 run 40 $B/bwd_check --bench
run 40 $B/sm90_check --quick
run 40 $B/sm90_check --pingpong --quick
run 40 $B/kernel_check --quick
JAX_MEA_SM90_FORWARD=0 run 40 $B/kernel_check --quick
TAILN=60 run 80 $B/sm90_check --bench --pingpong
echo "native done at $((SECONDS-T0))s"
( timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > /tmp/s1.log 2>&1; echo "## memcheck sm90 --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s1.log)" >> $N ) &
sp=$!
wait $bp; tail -n 1 $OUT/build.log
for c in "" "--causal"; do timeout 60 python3 tools/jax_timeline.py --prefill --shapes 2x4096 --heads 32/32 --calls 6 $c > /tmp/tl.log 2>&1; echo "timeline $c rc=$?" >> $OUT/timeline.log; grep -E "===|span|Kernel|sdpa|cudnn|fmha" /tmp/tl.log | head -n 30 >> $OUT/timeline.log; done
grep -E "===|span" $OUT/timeline.log
wait $sp; grep -E "memcheck" $N
timeout 90 python3 -m pytest tests/test_gradients.py tests/test_dot_product_attention.py -p no:cacheprovider -n 14 -q -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED" $OUT/pytest.log | head -n 12
timeout $((575-SECONDS+T0)) python3 benchmarks/prefill.py --contenders jax_mea,jax-cudnn,torch-cudnn --dtypes bfloat16,float16 --out $OUT/pf --budget-s $((545-SECONDS+T0)) > $OUT/prefill.log 2>&1; echo "prefill rc=$?"; grep -A12 "^case" $OUT/prefill.log
rm -rf $OUT/pf; echo "end at $((SECONDS-T0))s"
