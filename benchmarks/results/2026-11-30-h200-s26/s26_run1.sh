#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 25, not run).
# What it learns, on main after session 25 (the TMA configuration at a 150 KB budget):
#   1. where a small cache's call spends its ~10 us (the scan line: jax xla's scan runs
#      B1 S1024 N32/8 in 8.5 us a step against our 15.8): decode_check --trace, polluted,
#      with the append, now with the cluster merge's own stamps (its first barrier, its
#      slice of out, its last barrier to the exit);
#   2. the per-layer kernel time in the model on the 67 MB one-wave layers (the 85%-of-
#      copy line; 52-61% before 0024): tools/jax_timeline.py;
#   3. decode.py --scan again on the shapes 0024 and the H64 budget should have moved
#      (H64, the small caches);
#   4. (first, after the trace) ncu's per-instruction table of one B1 S1024 launch
#      (tools/sass_stats.py: executions and stall reasons by code region), to see how
#      much of a small call is instruction fetch of code run once (session 20: "no
#      instruction" 18-21% of the stall samples) and how much waits on memory/barriers.
# Binary (.probe/ is git-ignored; build it first, about 5 minutes here on 2 cores):
#   cmake -S . -B build/trace -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF \
#     -DCMAKE_CUDA_FLAGS=-DJAX_MEA_DECODE_TRACE -DCMAKE_CXX_FLAGS=-DJAX_MEA_DECODE_TRACE &&
#   ninja -C build/trace decode_check && mkdir -p .probe/s26 &&
#   cp build/trace/tests/native/decode_check .probe/s26/dctrace &&
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/s26/dc &&
#   xz -6 -T2 -f .probe/s26/dctrace .probe/s26/dc
# Run with carry [".probe/s26"] (about 480 s).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s26; mkdir -p $D
for v in dctrace dc; do xz -dc .probe/s26/$v.xz > $D/$v; chmod +x $D/$v; done
for sh in "B1 S1024 N16/4 H128/128 cap+64 len+1" "B8 S1024 N16/4 H128/128 cap+64 len+1" \
          "B1 S4096 N32/8 H128/128 cap+64 len+1" "B1 S32768 N16/4 H128/128 cap+64 len+1"; do
  timeout 40 $D/dctrace --bench --trace --append --pollute --filter "$sh" 2>&1
done > "$OUT/trace.log"
# Each shape's first block: its default plan (the others force 1, 2, 4, 8, 16 splits).
awk '/: event/{key = $1 " " $2 " " $3 " " $4; show = key != prev; prev = key} show' "$OUT/trace.log" | cut -c1-170
echo "trace t=$((SECONDS - T0))s"
S="B1 S1024 N16/4 H128/128 cap+64 len+1"
timeout 120 ncu --clock-control none --set full -k regex:DecodeMma --launch-skip 5 --launch-count 1 \
  -o $D/dec_b1 $D/dc --bench --append --pollute --filter "$S" > "$OUT/ncu_b1.log" 2>&1; echo "ncu rc=$?"
ncu --import $D/dec_b1.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/dec_b1.csv
python3 tools/sass_stats.py $D/dec_b1.csv --regions > "$OUT/sass_stats_b1.log" 2>&1; head -n 40 "$OUT/sass_stats_b1.log" | cut -c1-160
xz -6 -c $D/dec_b1.csv > "$OUT/dec_sass_b1.csv.xz"
echo "ncu t=$((SECONDS - T0))s"
JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
echo "build rc=$? t=$((SECONDS - T0))s"
for run in "large 1 32768" "8b 1 32768" "large 8 4096"; do
  set -- $run
  timeout 90 python3 tools/jax_timeline.py --model $1 --batch $2 --context $3 --steps 32 \
    > "$OUT/timeline_$1_b$2.log" 2>&1
  echo "timeline $run rc=$? t=$((SECONDS - T0))s"; grep -A5 "^=== " "$OUT/timeline_$1_b$2.log" | cut -c1-160
done
timeout $((590 - SECONDS + T0)) python3 benchmarks/decode.py --grid small --scan --contenders jax_mea \
  --only "H64,B1 S1024,B8 S1024,B1 S4096,B1 S8192,B1 S32768 N32/8 H128" > "$OUT/scan.log" 2>&1
echo "scan rc=$? t=$((SECONDS - T0))s"; grep -vE "^  decode|^  \(" "$OUT/scan.log" | tail -n 20 | cut -c1-200
