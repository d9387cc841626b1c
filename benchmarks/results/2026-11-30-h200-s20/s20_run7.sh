#!/usr/bin/env bash
# Session 20, call 7 (issue 14): the sm_90a backward's 64 x 64 instance (dQ over each
# warpgroup's own keys, the two parts summed in order): bwd_check, the sm_80 kernel's
# quick check, the sanitizers, the bench at H64 and H128.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 90 $D/bwd > "$OUT/bwd_check.log" 2>&1; echo "bwd_check rc=$? $(tail -n 1 $OUT/bwd_check.log)"
grep -B4 "FAIL" "$OUT/bwd_check.log" | head -30 | cut -c1-160
JAX_MEA_SM90_BACKWARD=0 timeout 40 $D/bwd --quick > /tmp/q80.log 2>&1; echo "sm80 --quick rc=$? $(tail -n 1 /tmp/q80.log)"
for tool in memcheck racecheck synccheck; do
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 1 --print-limit 10 $D/bwd --quick > /tmp/$tool.log 2>&1
  echo "$tool rc=$? $(grep -i 'summary' /tmp/$tool.log)"; head -c 8000 /tmp/$tool.log > "$OUT/$tool.log"
done
timeout 60 $D/bwd --bench "H64" > "$OUT/bwd_bench.log" 2>&1
timeout 40 $D/bwd --bench "B2 S4096 N32 H128 bf16" >> "$OUT/bwd_bench.log" 2>&1; cut -c1-120 "$OUT/bwd_bench.log"
echo "end at $((SECONDS - T0))s"
