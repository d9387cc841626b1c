#!/usr/bin/env bash
# Device run 2: the decode path after the plan fix and the fused append (issue 11).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
left() { echo $(( ${1} - SECONDS + T0 )); }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
DC=build/dc/decode_check
timeout 60 $DC --small > $OUT/check_small.log 2>&1; echo "check --small rc=$?"; tail -n 1 $OUT/check_small.log
timeout 45 $DC --bench --filter "B8 S4096 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+4096" > $OUT/kbench.log 2>&1; tail -n 4 $OUT/kbench.log
wait $bp; tail -n 1 $OUT/build.log; echo "build done at $((SECONDS-T0))s"
timeout 100 python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -x -p no:cacheprovider -n 8 > $OUT/pytest.log 2>&1; echo "pytest rc=$?"; tail -n 2 $OUT/pytest.log
timeout $(left 330) python3 benchmarks/decode_model.py --config large,small --budget-s $(left 300) --out $OUT 2>&1 | grep -v "Warning\|slow_operation\|Constant folding\|This isn't\|If you'd like\|^$\|^  %" > $OUT/model.log; tail -n 40 $OUT/model.log
timeout $(left 420) python3 tools/jax_timeline.py --model large --batch 8 --context 4096 > $OUT/timeline.log 2>&1; tail -n 30 $OUT/timeline.log
timeout $(left 585) python3 benchmarks/decode.py --grid small --scan --only "S4096 N16/4,S4096 N32/8,B1 S32768" --contenders jax_mea,jax_mea-step,jax-xla,jax-cudnn --budget-s $(left 560) --out $OUT > $OUT/scan.log 2>&1; tail -n 30 $OUT/scan.log
echo "end at $((SECONDS-T0))s"
