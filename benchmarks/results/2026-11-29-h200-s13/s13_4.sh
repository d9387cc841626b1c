#!/usr/bin/env bash
# Session 13, run 4: the decode merge in one L2 trip (MergeGroup): checks, sanitizer,
# phase stamps, GPU tests, where the model's per-layer memcpys come from, the model.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
timeout 150 $B/decode_check > $OUT/check.log 2>&1; echo "decode_check rc=$? ($((SECONDS-T0))s)"; grep -E "^FAIL" $OUT/check.log | head -5; tail -n 1 $OUT/check.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/decode_check --small > $OUT/memcheck.log 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' $OUT/memcheck.log)"
SH="B8 S4096 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64"
timeout 60 $B/decode_check_trace --bench --trace --filter "$SH" > $OUT/trace.log 2>&1; echo "trace rc=$?"
grep -E "splits|epilogue|last to exit" $OUT/trace.log | grep -B1 -A1 "{" | head -60
wait $bp; tail -n 1 $OUT/build.log; echo "($((SECONDS-T0))s)"
timeout 120 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -p no:cacheprovider -n 8 > $OUT/pytest.log 2>&1; echo "pytest rc=$?"; tail -n 2 $OUT/pytest.log
F="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 120 python3 .probe/hlo_copies.py 2>&1 | grep -v "$F" | tail -5
timeout $((560 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 1,8 --context 4096,32768 --variants jax_mea,jax-cudnn --budget-s $((500 - SECONDS + T0)) --out $OUT 2>&1 | grep -v "$F" > $OUT/model.log; tail -n 14 $OUT/model.log
echo "end $((SECONDS-T0))s"
