#!/usr/bin/env bash
# Session 14, run 2: decode_check (full) and memcheck after the decode step lost its
# lengths operand (session 13); pending/validate_decode.sh (0003 against main, the
# epilogue stamps); then prefill under sustained load: clock and power (.probe/power.py).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
timeout 170 $B/dc_main > $OUT/decode_check.log 2>&1; echo "decode_check rc=$? ($((SECONDS-T0))s)"; grep -E "^FAIL" $OUT/decode_check.log | head -5; tail -n 1 $OUT/decode_check.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/dc_main --small > /tmp/memcheck.log 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/memcheck.log) ($((SECONDS-T0))s)"
mkdir -p /tmp/vd; OUT=/tmp/vd bash pending/validate_decode.sh > $OUT/validate_decode.log 2>&1; echo "validate_decode rc=$? ($((SECONDS-T0))s)"; tar czf $OUT/vd.tgz -C /tmp vd
wait $bp; tail -n 1 $OUT/build.log; echo "($((SECONDS-T0))s)"
F="Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %"
timeout 90 python3 .probe/power.py 2>&1 | grep -v "$F"
JAX_MEA_SM90_PINGPONG=1 timeout 60 python3 .probe/power.py jax_mea 2>&1 | grep -v "$F" | sed 's/^/pingpong /'
timeout 90 python3 .probe/power.py causal 2>&1 | grep -v "$F" | sed 's/^/causal /'
echo "end $((SECONDS-T0))s"
