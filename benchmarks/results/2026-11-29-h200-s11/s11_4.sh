#!/usr/bin/env bash
# Session 11, device run 4: the new backward kernel (ordered dQ), the fp16 normaliser
# change, the sm_90a forward on by default: native checks, GPU pytest subset, benches.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
timeout 60 $B/bwd_check > $OUT/native.log 2>&1; echo "bwd_check rc=$?" | tee -a $OUT/native.log; grep -E "FAIL|failed|OK" $OUT/native.log | tail -n 4
timeout 40 $B/bwd_check --bench > $OUT/bwd_bench_native.log 2>&1; echo "bwd --bench rc=$?"; tail -n 14 $OUT/bwd_bench_native.log
for c in "sm90_check --quick" "kernel_check --quick" "decode_check --small"; do timeout 60 $B/$c > $OUT/t.log 2>&1; echo "$c rc=$? $(tail -n 1 $OUT/t.log)" | tee -a $OUT/native.log; grep -E "^FAIL" $OUT/t.log | head -n 3; done
echo "native done at $((SECONDS-T0))s"
wait $bp; tail -n 1 $OUT/build.log
( timeout 80 compute-sanitizer --tool memcheck --error-exitcode 1 $B/bwd_check --quick > $OUT/t2.log 2>&1; echo "memcheck bwd --quick rc=$? $(grep -E 'ERROR SUMMARY' $OUT/t2.log)" >> $OUT/native.log ) &
sp=$!
timeout 100 python3 -m pytest tests/test_onnx_conformance.py tests/test_gradients.py tests/test_cuda_backward_optin.py tests/test_sharding.py tests/test_jax_nn_parity.py -p no:cacheprovider -n 14 -q -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED" $OUT/pytest.log | head -n 12
wait $sp; grep -E "racecheck|memcheck" $OUT/native.log
timeout $((250-SECONDS+T0)) python3 benchmarks/prefill.py --contenders jax_mea,jax-cudnn --dtypes bfloat16,float16 --only "H128" --out /tmp/pf > $OUT/prefill.log 2>&1; echo "prefill rc=$?"; grep -E "prefill B|==" $OUT/prefill.log | head -n 20
IMPLS=jax_mea TORCH=0 timeout $((285-SECONDS+T0)) python3 .probe/bwd_bench.py 2>&1 | grep -v -i warn | tee $OUT/bwd_bench.log
rm -f $OUT/t.log $OUT/t2.log; echo "end at $((SECONDS-T0))s"
