#!/usr/bin/env bash
# Device run 3: the merged tree (issues 11, 12, 13, 16, 17): correctness and the
# no-slowdown benchmarks. Native checks built on the development machine (sm_90).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
# Correctness on the GPU, concurrently (no timing here).
( timeout 300 $B/decode_check > $OUT/native.log 2>&1; echo "decode_check rc=$?" >> $OUT/native.log
  timeout 200 $B/kernel_check >> $OUT/native.log 2>&1; echo "kernel_check rc=$?" >> $OUT/native.log ) &
np=$!
( timeout 150 compute-sanitizer --tool memcheck --error-exitcode 1 $B/decode_check --small > $OUT/sanitizer.log 2>&1; echo "memcheck decode_check --small rc=$?" >> $OUT/sanitizer.log
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 1 $B/kernel_check --quick >> $OUT/sanitizer.log 2>&1; echo "memcheck kernel_check --quick rc=$?" >> $OUT/sanitizer.log ) &
sp=$!
wait $bp; tail -n 2 $OUT/build.log; echo "build done at $((SECONDS-T0))s"
timeout 260 python3 -m pytest tests/test_gpu_large.py tests/test_decode.py tests/test_score_parity.py tests/test_jax_nn_parity.py tests/test_head_dims.py tests/test_onnx_attention.py tests/test_dot_product_attention.py tests/test_transforms.py tests/test_tiles_and_edges.py tests/test_onnx_conformance.py tests/test_validation.py tests/test_decode_plan.py tests/test_export.py -q -p no:cacheprovider -n 10 > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 3; grep -E "^FAILED" $OUT/pytest.log | head -n 20
wait $np; grep -E "cases passed|checks passed|passed|rc=" $OUT/native.log | tail -n 6; grep -E "^FAIL" $OUT/native.log | head -n 10
wait $sp; grep -E "ERROR SUMMARY|rc=" $OUT/sanitizer.log
echo "correctness done at $((SECONDS-T0))s"
# Benchmarks, alone on the GPU.
timeout 40 $B/decode_check --bench --filter "B8 S4096 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens" > $OUT/bench.log 2>&1; tail -n 5 $OUT/bench.log
timeout $((590-SECONDS+T0)) python3 benchmarks/prefill.py --contenders jax_mea,jax-cudnn --out /tmp/pf >> $OUT/bench.log 2>&1; tail -n 12 $OUT/bench.log; cp /tmp/pf/*.csv $OUT/ 2>/dev/null
echo "end at $((SECONDS-T0))s"
