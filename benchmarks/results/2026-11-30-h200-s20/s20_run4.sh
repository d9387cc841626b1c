#!/usr/bin/env bash
# Session 20, call 4 (issue 11): where a decode launch's time goes. The trace of the B1
# S1024 default plan; ncu --set full SASS tables (per instruction: executions and stall
# reasons) of one launch at B1 S1024 and B8 S4096 (N16/4 H128 cap+64, the large model's
# layer, with the append); pending 0013 checked and timed against main (dc).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/dc*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
S1="B1 S1024 N16/4 H128/128 cap+64"; S8="B8 S4096 N16/4 H128/128 cap+64"
timeout 30 $D/dc_trace --bench --trace --append --filter "$S1" > "$OUT/trace_b1.log" 2>&1; head -50 "$OUT/trace_b1.log" | cut -c1-160
for s in b1 b8; do
  [ $s = b1 ] && S="$S1" || S="$S8"
  timeout 120 ncu --clock-control none --set full -k regex:DecodeMma --launch-skip 5 --launch-count 1 \
    -o $D/dec_$s $D/dc --bench --append --filter "$S" > /tmp/ncu_$s.log 2>&1; echo "ncu $s rc=$?"
  ncu --import $D/dec_$s.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/dec_$s.csv
  ncu --import $D/dec_$s.ncu-rep --page details 2>/dev/null > "$OUT/ncu_details_$s.log"
  python3 tools/sass_stats.py $D/dec_$s.csv > "$OUT/sass_stats_$s.log" 2>&1; head -n 30 "$OUT/sass_stats_$s.log" | cut -c1-160
  xz -6 -c $D/dec_$s.csv > "$OUT/dec_sass_$s.csv.xz"
done
grep -E "Duration|Registers|Achieved Occupancy|Memory Throughput|Block Size|Grid Size|Dynamic Shared" "$OUT"/ncu_details_*.log | cut -c1-150
echo "t=$((SECONDS - T0))s"
timeout 150 $D/dc13 > "$OUT/dc13_check.log" 2>&1; echo "0013 decode_check rc=$? $(tail -n 1 $OUT/dc13_check.log)"
S2="B8 S4096 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64"
for v in dc dc13 dc13 dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S2" | grep -E "^B"; done > "$OUT/dc13_bench.log" 2>&1
cut -c1-150 "$OUT/dc13_bench.log"
echo "end at $((SECONDS - T0))s"
