#!/usr/bin/env bash
# Session 20, call 3 (issue 14): the sm_90a backward with every consumer thread
# arriving on q_empty (racecheck followed only the per-warp arrival's own lane):
# bwd_check, the sanitizers, the bench.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 120 $D/bwd > "$OUT/bwd_check.log" 2>&1; echo "bwd_check rc=$? $(tail -n 1 $OUT/bwd_check.log)"
for tool in memcheck racecheck synccheck; do
  timeout 100 compute-sanitizer --tool $tool --error-exitcode 1 --print-limit 20 $D/bwd --quick > /tmp/$tool.log 2>&1
  echo "$tool rc=$? $(grep -i 'summary' /tmp/$tool.log)"; head -c 20000 /tmp/$tool.log > "$OUT/$tool.log"
done
grep -m 3 -A3 "hazard" /tmp/racecheck.log | cut -c1-200
timeout 120 $D/bwd --bench "B2 S4096 N32" > "$OUT/bwd_bench.log" 2>&1; cut -c1-120 "$OUT/bwd_bench.log"
echo "end at $((SECONDS - T0))s"
