#!/usr/bin/env bash
# Session 25, call 8: the package with kTmaBudgetKb = 150 for every TMA row, and the
# GPU pytest of the decode step.
T0=$SECONDS; JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 python3 -m pip install --no-build-isolation --no-deps -q -e . > $OUT/build.log 2>&1; echo "build rc=$? t=$((SECONDS-T0))"
timeout $((230 - SECONDS + T0)) python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider > $OUT/pytest.log 2>&1; echo "pytest rc=$? t=$((SECONDS-T0)) $(tail -n1 $OUT/pytest.log)"
