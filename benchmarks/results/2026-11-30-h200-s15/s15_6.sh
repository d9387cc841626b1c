#!/usr/bin/env bash
# Session 15, run 6: GQA packing in the sm_90a forward (issue 15 item 5: several query heads of
# a kv group per CTA when q_len <= 64). .probe/bin: sm90_check and kernel_check of the tree.
# Checks (the packed cases among them), memcheck and racecheck of the packed cases, the
# packed bench rows against JAX_MEA_SM90_PACK=0 (alternating), GPU pytest through JAX.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$?" >> "$OUT/build.log" ) &
bp=$!
timeout 150 $B/sm90_check > "$OUT/sm90_check.log" 2>&1; echo "sm90_check rc=$? ($((SECONDS-T0))s)"
grep -E "^FAIL" "$OUT/sm90_check.log" | head; grep -c "packed" "$OUT/sm90_check.log"; tail -n 1 "$OUT/sm90_check.log"
for f in --pingpong --simple; do
  timeout 60 $B/sm90_check --quick $f > /tmp/q.log 2>&1; echo "sm90_check --quick $f rc=$?"; tail -n 1 /tmp/q.log
done
timeout 60 $B/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check rc=$?"; tail -n 1 /tmp/kc.log
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick --filter packed > /tmp/mc.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 1 $B/sm90_check --quick --filter packed > /tmp/rc.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/rc.log)"
for v in 1 0 0 1; do
  JAX_MEA_SM90_PACK=$v timeout 60 $B/sm90_check --bench --filter " T" > /tmp/b.log 2>&1
  echo "== JAX_MEA_SM90_PACK=$v"; grep -E "^B[0-9]" /tmp/b.log
done
timeout 40 $B/sm90_check --bench --filter "S4096 N32 H128 bf16" > /tmp/b.log 2>&1; echo "== unpacked rows"; grep -E "^B[0-9]" /tmp/b.log
wait $bp; tail -n 1 "$OUT/build.log"
timeout $((560 - SECONDS + T0)) python3 -m pytest -q -x tests/test_dot_product_attention.py \
  tests/test_onnx_attention.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? ($((SECONDS-T0))s)"; tail -n 3 "$OUT/pytest.log"
echo "end at $((SECONDS - T0))s"
