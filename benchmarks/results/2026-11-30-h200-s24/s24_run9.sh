#!/usr/bin/env bash
# Session 24, call 9: the decode kernels as programmatic dependent launches (PDL).
# decode_check now runs every case on its own stream right after a kernel that writes
# the query and the lengths late (LateCopy): .probe/s24/pdl is the tree, nowait the
# same without the MMA kernel's WaitForPriorGrid (the check must fail there). Then
# the package: GPU pytest, and the model with JAX_MEA_DECODE_PDL=0 / on, alternated.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s24; mkdir -p $D
for v in pdl nowait; do xz -dc .probe/s24/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/pdl --small > "$OUT/check_small.log" 2>&1; echo "pdl --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 60 $D/nowait --small > "$OUT/check_small_nowait.log" 2>&1; echo "nowait --small rc=$? (must fail) $(tail -n 1 $OUT/check_small_nowait.log | cut -c1-80)"
timeout 100 compute-sanitizer --tool memcheck $D/pdl --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log) t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 150 python3 -m pytest tests/test_decode.py tests/test_examples.py -q -x -p no:cacheprovider > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
for pdl in 0 1 0 1; do
  JAX_MEA_DECODE_PDL=$pdl timeout $((585 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large --batch 1,8 --context 32768,4096 --steps 32 \
    --variants jax_mea > "$OUT/model_pdl$pdl.log" 2>&1
  echo "== PDL=$pdl rc=$? t=$((SECONDS - T0))s"; grep -E "^large" "$OUT/model_pdl$pdl.log" | cut -c1-60
done
