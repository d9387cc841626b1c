#!/usr/bin/env bash
# Issue 11: the next session's second device call (written in session 26, not run),
# after next_s27.sh (apply pending 0026 first if it passed there, so the package has it):
# the package build, the GPU pytest of the two decode shapes that take the spread merge
# through JAX (tests/test_gpu_large.py, new in session 26, never run), then the scan line:
# decode.py --scan --rounds 3 on the small caches and the B1 S32768 capacities
# (contenders interleaved, medians: these shapes moved ~10% between sessions 25 and 26,
# e.g. B1 S32768 N32/8 cap65536 43.4 against 53.2 us). About 560 s.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
timeout 120 python3 -m pytest tests/test_gpu_large.py -q -x -p no:cacheprovider -k "test_large_decode and (32800 or 32768)" > "$OUT/pytest.log" 2>&1
echo "pytest (the spread shapes through JAX) rc=$? t=$((SECONDS - T0))s $(tail -n 1 $OUT/pytest.log)"
timeout $((580 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan --contenders jax_mea --budget-s 260 \
  --rounds 3 --only "B1 S1024,B8 S1024,B1 S4096,B1 S8192,B1 S32768 N32/8 H128" > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan.log" | tail -n 40 | cut -c1-200
