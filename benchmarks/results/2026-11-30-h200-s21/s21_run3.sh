#!/usr/bin/env bash
# Session 21, call 3 (issue 11): main + pending 0014 and 0016 (the tree sent). The full
# decode_check of that tree (dcall's binary is 0014+0015+0016; this one is built here);
# ncu of one decode launch inside the large model (B8 ctx4096) beside the same shape in
# decode_check, both without cache flushes: whether the model's 30 us per layer against
# the kernel's 24-25 us alone is cold caches (instruction, constant, TLB, L2) or the call;
# jax_timeline's per-layer times in the model.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
pkill -9 -f ncu; for f in .probe/s21/*.xz; do n=$D/$(basename "$f" .xz); [ -x "$n" ] || { xz -dc "$f" > "$n"; chmod +x "$n"; }; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=14 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 170 $D/dc16b > "$OUT/dc_check.log" 2>&1; echo "0014+0016 decode_check rc=$? $(tail -n 1 $OUT/dc_check.log | cut -c1-100)"
grep -c PASS "$OUT/dc_check.log"; grep -m 5 FAIL "$OUT/dc_check.log" | cut -c1-200
S8="B8 S4096 N16/4 H128/128 cap+64"
SEC="--section SpeedOfLight --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats"
timeout 60 ncu --clock-control none --cache-control none $SEC -k regex:DecodeMma --launch-skip 30 --launch-count 1 \
  $D/dc16b --bench --append --filter "$S8" > $D/ncu_alone.log 2>&1; echo "ncu alone rc=$?"
wait $BUILD; cat /tmp/build.rc; tail -n 3 /tmp/build.log
timeout -s KILL 200 ncu --clock-control none --cache-control none $SEC -k regex:DecodeMma --launch-skip 300 --launch-count 1 \
  python3 .probe/s21/ncu_model.py > $D/ncu_model.log 2>&1; echo "ncu model rc=$?"; pkill -9 -f ncu_model
for w in alone model; do grep -vE "^==PROF==|^\s*$|----|OPT|INF |WRN|Estimated" $D/ncu_$w.log | tail -n 80 > "$OUT/ncu_$w.log"; done
paste <(grep -E "^    [A-Z]" "$OUT/ncu_alone.log" | cut -c1-75) <(grep -E "^    [A-Z]" "$OUT/ncu_model.log" | awk '{print $NF}') | head -80
echo "t=$((SECONDS - T0))s"
timeout 200 python3 tools/jax_timeline.py --model large --batch 8 --context 4096 --steps 32 > "$OUT/timeline_b8.log" 2>&1
echo "timeline rc=$?"; grep -vE "Warning|slow_operation|^$" "$OUT/timeline_b8.log" | head -40 | cut -c1-160
echo "end at $((SECONDS - T0))s"
