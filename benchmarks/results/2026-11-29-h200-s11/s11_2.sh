#!/usr/bin/env bash
# Session 11, device run 2: forward lse in the CUDA kernels + backward kernel on by
# default: whole GPU pytest (failing names), kernel_check (lse vs CPU), the grad
# timing, and the decode model's per-kernel timeline (issue 11's non-attention gap).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
( timeout 240 $B/kernel_check > $OUT/kernel_check.log 2>&1; echo "kernel_check rc=$?" >> $OUT/kernel_check.log ) &
kp=$!
wait $bp; tail -n 2 $OUT/build.log; echo "build done at $((SECONDS-T0))s"
timeout 270 python3 -m pytest tests -q -p no:cacheprovider -n 14 -rf > $OUT/pytest.log 2>&1; echo "pytest rc=$? at $((SECONDS-T0))s"; grep -E "passed|failed" $OUT/pytest.log | tail -n 2; grep -E "^FAILED|^ERROR" $OUT/pytest.log | head -n 25
wait $kp; grep -E "cases passed|rc=" $OUT/kernel_check.log; grep -E "^FAIL|lse row" $OUT/kernel_check.log | head -n 10
IMPLS=jax_mea TORCH=0 timeout 100 python3 .probe/bwd_bench.py 2>&1 | grep -v -i warn | tee $OUT/bwd_bench.log
timeout $((590-SECONDS+T0)) python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --variants jax_mea,jax-cudnn --top 25 > $OUT/timeline.log 2>&1; echo "timeline rc=$?"; tail -n 60 $OUT/timeline.log
echo "end at $((SECONDS-T0))s"
