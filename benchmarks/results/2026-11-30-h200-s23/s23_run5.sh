#!/usr/bin/env bash
# Session 23, call 5: every configuration and split count on the long streams where the
# model trails cuDNN most (the 32k points: B32 and B8 ctx32768; B32 ctx4096 N32/8), with
# the append, clean (shapes added to --bench for it). Carry [".probe/s23e"] (decode_check at the landed tree).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23e; mkdir -p $D
xz -dc .probe/s23e/dc.xz > $D/dc; chmod +x $D/dc
for sh in "B32 S32768 N16/4 H128/128 cap+64 len+1" "B8 S32768 N16/4 H128/128 cap+64 len+1" "B32 S4096 N32/8 H128/128 cap+64 len+1"; do
  timeout 150 $D/dc --bench --append --filter "$sh" > "$OUT/sweep_$(echo $sh | cut -d' ' -f1-2 | tr ' ' _)_$(echo $sh | cut -d' ' -f3 | tr / _).log" 2>&1
  echo "== $sh rc=$? t=$((SECONDS - T0))s"
done
for f in $OUT/sweep_*.log; do echo "--- $f"; cut -c1-170 $f | tail -n 40; done
