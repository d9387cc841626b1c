#!/usr/bin/env bash
# session 16 run 5: ncu of torch's FlashAttention-2 backward (B2 S4096 N32 H128 bf16) beside
# session 16's ncu of ours (call 2), the same sections, and FA2's SASS opcode mix.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/s16e
timeout 200 ncu --clock-control none --set full -k regex:flash_bwd --launch-skip 2 --launch-count 1 \
  -o "$OUT/fa2_bwd" python3 $D/fa2_bwd.py > /tmp/ncu.log 2>&1; echo "ncu rc=$?"; grep -E "PROF" /tmp/ncu.log | tail -n 3
for r in "$OUT/fa2_bwd.ncu-rep" "$D/ours_bwd.ncu-rep"; do
  echo "==== $r"
  ncu --import "$r" --page details --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WarpStateStats --section SchedulerStats --section InstructionStats \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis 2>&1 \
    | grep -vE "^\s*-+\s*$|^\s*$|OPT|INF|WRN|Estimated|----" | head -n 90
done
ncu --import "$OUT/fa2_bwd.ncu-rep" --page source --csv --print-source sass > "$OUT/fa2_sass.csv" 2>&1
echo "sass csv $(wc -l < "$OUT/fa2_sass.csv")"; rm -f "$OUT/fa2_bwd.ncu-rep"
echo "end at $((SECONDS - T0))s"
