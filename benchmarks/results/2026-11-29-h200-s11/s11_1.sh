#!/usr/bin/env bash
# Session 11, device run 1: the whole merged main on the GPU (after #14's result layout
# change), the native checks + sanitizer, the CUDA backward opt-in tests and timings.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
( for c in decode_check kernel_check bwd_check; do timeout 200 $B/$c > $OUT/native_$c.log 2>&1; echo "$c rc=$?" >> $OUT/native.log; tail -n 2 $OUT/native_$c.log >> $OUT/native.log; done
  for c in "decode_check --small" "kernel_check --quick" "bwd_check --quick"; do timeout 150 compute-sanitizer --tool memcheck --error-exitcode 1 $B/$c > $OUT/san.tmp 2>&1; echo "memcheck $c rc=$? $(grep 'ERROR SUMMARY' $OUT/san.tmp)" >> $OUT/native.log; done
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 1 $B/bwd_check --quick > $OUT/san.tmp 2>&1; echo "racecheck bwd_check --quick rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.tmp)" >> $OUT/native.log
) &
np=$!
wait $bp; tail -n 2 $OUT/build.log; echo "build done at $((SECONDS-T0))s"
timeout 230 python3 -m pytest tests -q -p no:cacheprovider -n 10 -x --maxfail=20 > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED|^ERROR" $OUT/pytest.log | head -n 25
JAX_MEA_CUDA_BACKWARD=1 timeout 120 python3 -m pytest tests/test_gradients.py tests/test_cuda_backward_optin.py -q -p no:cacheprovider -n 8 > $OUT/pytest_bwd.log 2>&1; echo "pytest bwd rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest_bwd.log | tail -n 2; grep -E "^FAILED|^ERROR" $OUT/pytest_bwd.log | head -n 25
wait $np; cat $OUT/native.log
echo "correctness done at $((SECONDS-T0))s"
JAX_MEA_CUDA_BACKWARD=1 timeout $((560-SECONDS+T0)) python3 .probe/bwd_bench.py 2>&1 | grep -v -i warn | tee $OUT/bwd_bench.log
IMPLS=jax_mea LABEL=unfused- timeout $((590-SECONDS+T0)) python3 .probe/bwd_bench.py 2>&1 | grep -v -i warn | tee -a $OUT/bwd_bench.log
echo "end at $((SECONDS-T0))s"
