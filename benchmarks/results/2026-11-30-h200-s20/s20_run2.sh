#!/usr/bin/env bash
# Session 20, call 2 (issue 14): the sm_90a backward (7c0e826): what racecheck reports,
# the JAX tests around it, prefill.py's backward and forward + backward against the peers.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 100 compute-sanitizer --tool racecheck --racecheck-report all --print-limit 60 $D/bwd --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"; head -c 60000 /tmp/r.log > "$OUT/racecheck.log"
grep -E "hazard|Warning|Error" /tmp/r.log | sort | uniq -c | sort -rn | head -12 | cut -c1-200
wait $BUILD; cat /tmp/build.rc
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_examples.py tests/test_dot_product_attention.py \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
left=$((560 - SECONDS + T0))
timeout $left python3 benchmarks/prefill.py --passes backward,fwd+bwd --rounds 2 --only "N32 H128" \
  --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out "$OUT/pf" --budget-s $((left - 60)) \
  > "$OUT/prefill_bwd.log" 2>&1
echo "prefill rc=$?"; grep -A7 "^case" "$OUT/prefill_bwd.log" | cut -c1-170
echo "end at $((SECONDS - T0))s"
