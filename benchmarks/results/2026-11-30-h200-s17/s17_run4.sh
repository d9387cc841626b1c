#!/usr/bin/env bash
# Session 17, device call 4: the persistent decode kernel as runs (stream-K): checks,
# kernel bench against the plain plan, then the large model with it on and off.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/s17
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=10 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$? ($((SECONDS-T0))s)" >> "$OUT/build.log" ) &
bp=$!
JAX_MEA_DECODE_PERSISTENT=1 timeout 150 $D/dc_new > "$OUT/dc_p1.log" 2>&1; echo "persistent full rc=$? $(tail -n 1 $OUT/dc_p1.log)"
grep -E "FAIL" "$OUT/dc_p1.log" | head -5
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 100 $D/dc_new --small > "$OUT/dc_p1c3.log" 2>&1
echo "persistent ctas=3 --small rc=$? $(tail -n 1 $OUT/dc_p1c3.log)"; grep FAIL "$OUT/dc_p1c3.log" | head -5
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_new --small > /tmp/m.log 2>&1
echo "memcheck c3 rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
JAX_MEA_DECODE_PERSISTENT=1 timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/dc_new --small > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'SUMMARY' /tmp/r.log)"
timeout 120 $D/dc_new --bench --persistent 1 > "$OUT/bench_persistent.log" 2>&1; echo "bench rc=$?"
cut -c1-28,88- "$OUT/bench_persistent.log"
echo "at $((SECONDS - T0))s"
wait $bp; tail -n 1 "$OUT/build.log"
for pv in 1 0; do
  JAX_MEA_DECODE_PERSISTENT=$pv timeout $((590 - SECONDS + T0)) python3 benchmarks/decode_model.py --config large \
    --batch 1,8 --context 4096,32768 --steps 32 --repeats 5 --no-profile \
    --variants $([ $pv = 1 ] && echo jax_mea || echo jax_mea,jax-cudnn) --out "$OUT/model_p$pv" > "$OUT/model_p$pv.log" 2>&1
  echo "model persistent=$pv rc=$?"; grep -vE "^\s*$" "$OUT/model_p$pv.log" | tail -n 12
done
echo "end at $((SECONDS - T0))s"
