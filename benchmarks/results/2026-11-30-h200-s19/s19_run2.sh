#!/usr/bin/env bash
# Session 19, call 2 (issue 14). bwd_new: LoadTile's whole-row passes (one base and a
# constant step per thread), the elementwise pass chosen once per tile, dQ addresses
# from the query block's index; bwd_dv: the same with the dQ adds issued inside dV's
# GEMM (JAX_MEA_BWD_ADDS_IN_DV); bwd_main: main. kc: kernel_check (LoadTile is the
# sm_80 forward's too). Carry .probe/s19.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
F="B2 S4096 N32 H128 bf16"
{ for v in main new dv dv new main; do
    echo "== $v"; timeout 60 $D/bwd_$v --bench "$F" | grep -E "^B"
  done
  for v in new main; do echo "== $v all"; timeout 90 $D/bwd_$v --bench "bf16" | grep -E "^B"; done
} > "$OUT/bwd_bench.log" 2>&1
cut -c1-100 "$OUT/bwd_bench.log"
echo "t=$((SECONDS - T0))s"
for v in new dv; do
  timeout 100 $D/bwd_$v > "$OUT/check_$v.log" 2>&1; echo "bwd_$v check rc=$? $(tail -n 1 $OUT/check_$v.log)"
done
timeout 120 $D/kc --quick > "$OUT/kc.log" 2>&1; echo "kernel_check rc=$? $(tail -n 1 $OUT/kc.log)"
echo "t=$((SECONDS - T0))s"
for v in new dv; do
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_$v --quick > /tmp/m.log 2>&1
  echo "memcheck $v rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd_$v --quick > /tmp/r.log 2>&1
  echo "racecheck $v rc=$? $(grep -i 'summary' /tmp/r.log)"
  echo "t=$((SECONDS - T0))s"
done
wait $BUILD; cat /tmp/build.rc
timeout $((570 - SECONDS + T0)) python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py \
  tests/test_cuda_backward_optin.py tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
echo "end at $((SECONDS - T0))s"
