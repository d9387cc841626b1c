#!/usr/bin/env bash
# Session 13, run 2: where a decode CTA's time goes (phase stamps), and ncu on the
# in-model layer shape B8 S4096 N16/4 cap+64.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
B=.probe/bin
SH="B8 S4096 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens,B16 S8192 N32/8 H128/128"
timeout 120 $B/decode_check_trace --bench --trace --filter "$SH" > $OUT/trace.log 2>&1; echo "trace rc=$?"
grep -v "^ *p10" $OUT/trace.log | head -c 20000
timeout 200 ncu --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
  --section MemoryWorkloadAnalysis -k regex:Decode --launch-skip 4 --launch-count 1 \
  $B/decode_check --bench --filter "B8 S4096 N16/4 H128/128 cap+64" > $OUT/ncu.log 2>&1; echo "ncu rc=$?"
grep -v "^ *\[\|sweep\|^B[0-9]" $OUT/ncu.log | grep -v "^ *$" | head -120
