#!/usr/bin/env bash
# Session 21, call 2 (issue 11): call 1's parts that found the GPU's memory taken (ncu's
# JAX process outlived its timeout): 0014-0016 checked together and timed against main;
# then ncu's launch statistics of jax.nn's cuDNN decode kernels (filtered, no preallocation).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
pkill -9 -f ncu_cudnn_decode; pkill -9 -f ncu; sleep 2; nvidia-smi --query-gpu=memory.used --format=csv
for f in .probe/s21/*.xz; do n=$D/$(basename "$f" .xz); [ -x "$n" ] || { xz -dc "$f" > "$n"; chmod +x "$n"; }; done
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
timeout 150 $D/dcall > "$OUT/dcall_check.log" 2>&1; echo "all three: decode_check rc=$? $(tail -n 1 $OUT/dcall_check.log)"
grep -m 10 FAIL "$OUT/dcall_check.log" | cut -c1-200
for v in dc dcall dc0014 dc0015 dc0016 dcall dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -E "^B.*(ctas[0-9]+ +[0-9])"; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{split($0,a,"ctas"); n=split(a[2],f," "); print v, substr($0,1,32), f[2]}' "$OUT/bench.log" | sort -k2,6 -s
echo "t=$((SECONDS - T0))s"
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout -s KILL 200 ncu --clock-control none --section LaunchStats --section SpeedOfLight --section Occupancy \
  -k regex:"cudnn|reduc|sdpa" --launch-count 4 python3 .probe/s21/ncu_cudnn_decode.py > $D/ncu_cudnn.log 2>&1; echo "ncu rc=$?"
pkill -9 -f ncu_cudnn_decode
grep -vE "^==PROF==|^\s*$|----" $D/ncu_cudnn.log | tail -n 120 > "$OUT/ncu_cudnn.log"; grep -E "^  [a-zA-Z_].*\(|Duration|Registers Per|Grid Size|Block Size|Dynamic Shared|Static Shared|DRAM Through|Waves Per|Achieved Occ|Theoretical Occ|Block Limit" "$OUT/ncu_cudnn.log" | cut -c1-160 | head -60
echo "end at $((SECONDS - T0))s"
