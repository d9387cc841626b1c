#!/usr/bin/env bash
# Session 20, call 6: decode's GroupSplits per warp for up to 32 batch rows (no shared
# memory, no barrier) and ThisCta without a division for one row block per kv head
# (dcq2) against the q_len 1 fast paths alone (dcq, f981d46): decode_check, the bench
# alternating both; then the package built on the device and GPU pytest of the decode,
# gradient and example tests at this tree.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/dc*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 200 $D/dcq2 > "$OUT/dcq2_check.log" 2>&1; echo "dcq2 decode_check rc=$? $(tail -n 1 $OUT/dcq2_check.log)"
grep -m 10 FAIL "$OUT/dcq2_check.log" | cut -c1-200
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for v in dcq dcq2 dcq2 dcq dcq dcq2; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -E "^B.*(ctas[0-9]+ +[0-9])"; done > "$OUT/dcq2_bench.log" 2>&1
cut -c1-60,128-150 "$OUT/dcq2_bench.log"
wait $BUILD; cat /tmp/build.rc
timeout $((580 - SECONDS + T0)) python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_decode.py tests/test_gpu_large.py \
  tests/test_gradients.py tests/test_examples.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 8
echo "end at $((SECONDS - T0))s"
