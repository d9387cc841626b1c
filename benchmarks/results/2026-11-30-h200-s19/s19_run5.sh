#!/usr/bin/env bash
# Session 19, call 5 (issue 14): main with the backward's grid in groups of 8 (batch,
# head) rows (kBwdHeadGroup; bwd_final is that tree's bwd_check). Checks (bitwise
# over two runs inside bwd_check, memcheck, racecheck), the bench beside head group 1,
# the JAX gradient tests on the GPU, prefill.py's backward against the peers.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 100 $D/bwd_final > "$OUT/check.log" 2>&1; echo "bwd_check rc=$? $(tail -n 1 $OUT/check.log)"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_final --quick > /tmp/m.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd_final --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"
timeout 120 $D/bwd_final --bench > "$OUT/bwd_bench.log" 2>&1; cut -c1-100 "$OUT/bwd_bench.log"
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc
timeout 150 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py \
  tests/test_cuda_backward_optin.py tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
left=$((540 - SECONDS + T0))
timeout $left python3 benchmarks/prefill.py --passes backward,fwd+bwd --rounds 2 --only "N32 H128,H64" \
  --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out "$OUT/pf" --budget-s $((left - 90)) \
  > "$OUT/prefill_bwd.log" 2>&1
echo "prefill rc=$?"; grep -A7 "^case" "$OUT/prefill_bwd.log" | cut -c1-170
echo "end at $((SECONDS - T0))s"
