#!/usr/bin/env bash
# Session 17, device call 9: ncu of the plain and the persistent decode kernel on
# B8 S4096 N32/8 H64 (whole tiles, all TMA): why the persistent loop's tiles are slower.
set -uo pipefail
D=.probe/s17; F="B8 S4096 N32/8 H64/64"
for k in DecodeMmaKernel DecodePersistentKernel; do
  echo "=== $k"
  timeout 100 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --section WarpStateStats --section InstructionStats --section SchedulerStats --metrics \
    smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_membar_per_issue_active.ratio,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_sleeping_per_issue_active.ratio,dram__bytes_read.sum \
    -k regex:$k --launch-skip 6 --launch-count 1 $D/dc_new --bench --persistent 1 --filter "$F" 2>&1 \
    | grep -E "Duration|DRAM Throughput|Executed Instructions  |Warp Cycles Per Issued|stalled|dram__bytes|L2 Hit|Mem Busy|Max Bandwidth|Issue Slots Busy|Eligible Warps" | head -24
done
