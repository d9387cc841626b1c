#!/usr/bin/env bash
# Session 21, call 1 (issue 11): pending/next_s21.sh (0014-0016 checked together and
# timed against main on the large model's layer shapes; main's per-CTA trace at B1 S1024
# and B8 S4096), plus ncu's launch statistics of jax.nn's cuDNN decode kernels at B8 S4096.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for s in "B1 S1024 N16/4 H128/128 cap+64" "B8 S4096 N16/4 H128/128 cap+64"; do
  timeout 30 $D/dctrace --bench --trace --append --filter "$s" 2>&1 | head -60
done > "$OUT/trace.log" 2>&1; cut -c1-170 "$OUT/trace.log" | head -90
echo "t=$((SECONDS - T0))s"
timeout 150 ncu --clock-control none --section LaunchStats --section SpeedOfLight --section Occupancy \
  --launch-skip 0 --launch-count 40 python3 .probe/s21/ncu_cudnn_decode.py > $D/ncu_cudnn.log 2>&1; echo "ncu rc=$?"
grep -E "^  [a-zA-Z_].*\(|Duration|Registers Per|Grid Size|Block Size|Dynamic Shared|Static Shared|Memory Throughput|DRAM Through|Waves Per|Achieved Occ|Theoretical Occ" $D/ncu_cudnn.log | tail -n 60 > "$OUT/ncu_cudnn.log"; cut -c1-150 "$OUT/ncu_cudnn.log" | tail -n 45
echo "t=$((SECONDS - T0))s"
timeout 150 $D/dcall > "$OUT/dcall_check.log" 2>&1; echo "all three: decode_check rc=$? $(tail -n 1 $OUT/dcall_check.log)"
grep -m 10 FAIL "$OUT/dcall_check.log" | cut -c1-200
for v in dc dcall dc0014 dc0015 dc0016 dcall dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -E "^B.*(ctas[0-9]+ +[0-9])"; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{split($0,a,"ctas"); n=split(a[2],f," "); print v, substr($0,1,32), f[2]}' "$OUT/bench.log" | sort -k2,6 -s
echo "end at $((SECONDS - T0))s"
