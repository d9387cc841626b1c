#!/usr/bin/env bash
# Session 11, device run 3: the sm_90a forward (first GPU run), the sm_80 kernel after
# the shared-softmax refactor, and the GPU pytest's failing names.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
timeout 30 $B/sm90_check --debug > $OUT/sm90.log 2>&1; echo "sm90 --debug rc=$?" | tee -a $OUT/sm90.log; tail -n 30 $OUT/sm90.log | head -n 30
timeout 30 $B/sm90_check --debug --simple > $OUT/sm90_simple.log 2>&1; echo "sm90 --debug --simple rc=$?"; tail -n 8 $OUT/sm90_simple.log
timeout 100 $B/sm90_check > $OUT/sm90_full.log 2>&1; echo "sm90 full rc=$?"; grep -E "^FAIL" $OUT/sm90_full.log | head -n 8; tail -n 3 $OUT/sm90_full.log
timeout 60 $B/sm90_check --bench > $OUT/sm90_bench.log 2>&1; echo "sm90 bench rc=$?"; tail -n 25 $OUT/sm90_bench.log
echo "sm90 done at $((SECONDS-T0))s"
wait $bp; tail -n 1 $OUT/build.log
( timeout 120 $B/kernel_check --quick > $OUT/kc.log 2>&1; echo "kernel_check --quick rc=$?" >> $OUT/kc.log
  JAX_MEA_SM90_FORWARD=1 timeout 120 $B/kernel_check --quick >> $OUT/kc.log 2>&1; echo "SM90=1 kernel_check --quick rc=$?" >> $OUT/kc.log
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > $OUT/san.log 2>&1; echo "memcheck sm90 --quick rc=$? $(grep 'ERROR SUMMARY' $OUT/san.log)" >> $OUT/kc.log ) &
kp=$!
timeout $((520-SECONDS+T0)) python3 -m pytest tests -p no:cacheprovider -n 14 -v > $OUT/pytest_v.log 2>&1; echo "pytest rc=$?"; grep -E "FAILED|ERROR" $OUT/pytest_v.log | grep -v "^E " | head -n 20; grep -cE "PASSED" $OUT/pytest_v.log
wait $kp; grep -E "rc=|passed" $OUT/kc.log
echo "end at $((SECONDS-T0))s"
