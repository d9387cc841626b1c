#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 26, not run).
# On main after session 26 (the spread merge):
#   1. decode_check --trace on the two spread shapes, clean and polluted: how much of the
#      spread merge's slice (2.7-3.7 us polluted for 16 elements x 33 splits, session 26
#      call 2) is cold code and how much its L2 round trips, and how long the group
#      barrier waits for the slowest split;
#   2. decode.py --scan --rounds 3 on the small caches and the B1 S32768 capacities (the
#      scan line; contenders interleaved, medians: these shapes moved ~10% between
#      sessions 25 and 26, e.g. B1 S32768 N32/8 cap65536 43.4 against 53.2 us).
# Binary (.probe/ is git-ignored; build it first, about 2 minutes here):
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF \
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE &&
#   ninja -C build/trace decode_check && mkdir -p .probe/s27 &&
#   cp build/trace/tests/native/decode_check .probe/s27/dctrace && xz -6 -T2 -f .probe/s27/dctrace
# Run with carry [".probe/s27"] (about 500 s). Keep $OUT to 8 files or fewer: a ninth
# does not come back.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s27; mkdir -p $D
xz -dc .probe/s27/dctrace.xz > $D/dctrace; chmod +x $D/dctrace
for m in --pollute ""; do
  for sh in "B1 S32768 N16/4 H128/128 cap+64 len+1" "B1 S32768 N32/8 H128/128 cap+64 len+1"; do
    echo "== ${m:-clean}"; timeout 40 $D/dctrace --bench --trace --append $m --filter "$sh" 2>&1 | grep -A14 -m1 ": event"
    timeout 40 $D/dctrace --bench --trace --append --nospread $m --filter "$sh" 2>&1 | grep -A14 -m1 ": event"
  done
done > "$OUT/trace.log" 2>&1
grep -E "^==|: event|group bar|slice|merge \(last\)|fence" "$OUT/trace.log" | cut -c1-170
echo "trace t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 120 python3 -m pytest tests/test_gpu_large.py -q -x -p no:cacheprovider -k "test_large_decode and (32800 or 32768)" > "$OUT/pytest.log" 2>&1
echo "pytest (the spread shapes through JAX) rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
timeout $((580 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan --contenders jax_mea --budget-s 300 \
  --rounds 3 --only "B1 S1024,B8 S1024,B1 S4096,B1 S8192,B1 S32768 N32/8 H128" > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan.log" | tail -n 60 | cut -c1-200
