#!/usr/bin/env bash
# Session 12, device run 1: the two pending second rounds (backward GQA split + early dQ;
# sm_90a windows/softcap/masks, H64 3 consumers, opt-in ping-pong), then #15's tables.
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
run 60 $B/bwd_check
TAILN=14 run 50 $B/bwd_check --bench
run 80 $B/sm90_check
run 40 $B/sm90_check --pingpong --quick
TAILN=30 run 60 $B/sm90_check --bench --pingpong
run 60 $B/kernel_check --quick
echo "native done at $((SECONDS-T0))s"
( timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > /tmp/s1.log 2>&1; echo "## memcheck sm90 --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s1.log)" >> $N
  timeout 80 compute-sanitizer --tool memcheck --error-exitcode 1 $B/bwd_check --quick > /tmp/s2.log 2>&1; echo "## memcheck bwd --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s2.log)" >> $N
  timeout 80 compute-sanitizer --tool racecheck --error-exitcode 1 $B/bwd_check --quick > /tmp/s3.log 2>&1; echo "## racecheck bwd --quick rc=$? $(grep 'ERROR SUMMARY' /tmp/s3.log)" >> $N ) &
sp=$!
wait $bp; tail -n 1 $OUT/build.log
timeout 120 python3 -m pytest tests/test_gradients.py tests/test_dot_product_attention.py tests/test_onnx_conformance.py tests/test_jax_nn_parity.py tests/test_cuda_backward_optin.py tests/test_score_parity.py -p no:cacheprovider -n 14 -q -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED" $OUT/pytest.log | head -n 12
wait $sp; grep -E "memcheck|racecheck" $N
timeout $((470-SECONDS+T0)) python3 benchmarks/prefill.py --contenders jax_mea,jax-cudnn,torch-cudnn --dtypes bfloat16,float16 --out $OUT/pf --budget-s $((400-SECONDS+T0)) > $OUT/prefill.log 2>&1; echo "prefill rc=$?"; grep -A12 "^case" $OUT/prefill.log
timeout $((560-SECONDS+T0)) python3 benchmarks/prefill.py --passes backward --only "N32 H128" --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out $OUT/pf --budget-s $((520-SECONDS+T0)) > $OUT/prefill_bwd.log 2>&1; echo "prefill bwd rc=$?"; grep -A8 "^case" $OUT/prefill_bwd.log
rm -rf $OUT/pf; echo "end at $((SECONDS-T0))s"
