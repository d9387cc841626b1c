#!/usr/bin/env bash
# session 16 run 1: the packing rule by waves (sm90_check: packed cases forced on),
# one-wave latency rows, ncu source counters of the S512 launch.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
B=.probe/s16/sm90_check
timeout 60 $B --filter packed > "$OUT/packed.log" 2>&1; echo "packed rc=$?"; tail -n 1 "$OUT/packed.log"
grep -c "^PASS" "$OUT/packed.log"
timeout 100 $B --quick > "$OUT/quick.log" 2>&1; echo "quick rc=$?"; tail -n 1 "$OUT/quick.log"
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B --quick --filter packed > /tmp/mc.log 2>&1
echo "memcheck packed rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
for r in 1 2; do
  timeout 90 $B --bench --filter " T" > /tmp/b.log 2>&1; echo "== T rows round $r"; grep -E "^B[0-9]|^  pack" /tmp/b.log
  timeout 90 $B --bench --filter "wave" > /tmp/w.log 2>&1; echo "== one wave round $r"; grep -E "^B[0-9]" /tmp/w.log
  timeout 60 $B --bench --filter "B2 S512 N32" > /tmp/s.log 2>&1; grep -E "^B[0-9]" /tmp/s.log
done
timeout 200 ncu --clock-control none --set full --import-source yes -k regex:AttentionFwdSm90 \
  --launch-skip 10 --launch-count 1 -o "$OUT/s512" $B --bench --filter "B2 S512 N32" > /tmp/ncu.log 2>&1
echo "ncu rc=$?"; tail -n 2 /tmp/ncu.log
ncu --import "$OUT/s512.ncu-rep" --page source --csv --print-source sass > "$OUT/s512_sass.csv" 2>&1
echo "sass csv $(wc -l < "$OUT/s512_sass.csv") lines"
echo "end at $((SECONDS - T0))s"
