#!/usr/bin/env bash
# First device probe of the session: decode planning fix (issue 11).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$?" >> $OUT/build.log ) &
bp=$!
DC=build/dc/decode_check
timeout 170 $DC --bench --filter "B8 S4096 N32/8 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+4096" > $OUT/kbench.log 2>&1
echo "kbench rc=$? at $((SECONDS-T0))s"; tail -n 12 $OUT/kbench.log
timeout 60 $DC --small > $OUT/check_small.log 2>&1; echo "check --small rc=$?"; tail -n 3 $OUT/check_small.log
wait $bp; tail -n 3 $OUT/build.log; echo "build done at $((SECONDS-T0))s"
for cap in 64 0; do
  SHAPES='8,4096,32,8,128,128;1,32768,16,4,128,128;8,4096,16,4,128,128;1,4096,32,8,128,128;32,2048,16,4,128,128' CAP_EXTRA=$cap timeout 150 python3 .probe/scan_decode.py 2>&1 | grep -v Warning | tee -a $OUT/scan.log
done
echo "scan done at $((SECONDS-T0))s"
timeout $((585-SECONDS+T0)) python3 -m pytest tests/test_decode.py tests/test_gpu_large.py -q -x -p no:cacheprovider -n 8 > $OUT/pytest.log 2>&1; echo "pytest rc=$?"; tail -n 3 $OUT/pytest.log
