#!/usr/bin/env bash
# Issue 11, session 26 call 2: the spread merge (every split of a one-wave group merges
# a slice of its out after a barrier on the group's counter, a cooperative launch)
# against main's last-CTA merge. Binaries: .probe/s26b/{dc,dctrace} built from the
# working tree, dcmain = .probe/s26/dc (main at 0fbe01d). Carry [".probe/s26b"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s26b; mkdir -p $D
for v in dc dctrace dcmain; do xz -dc .probe/s26b/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dc --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep -E "FAIL|spread" "$OUT/check_small.log" | head -6 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dc --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
echo "checks t=$((SECONDS - T0))s"
S="B1 S32768 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+32768"
S="$S,B1 S32768 N32/8 H64/64,B8 S4096 N16/4 H128/128 cap+64 len+1,B1 S8192 N32/8 H128/128 cap+64 len+1"
for v in dcmain dc nos nos dc dcmain; do for m in --pollute ""; do echo "== $v ${m:-clean}"
  if [ $v = nos ]; then b="$D/dc --nospread"; else b=$D/$v; fi
  timeout 60 $b --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
for sh in "B1 S32768 N16/4 H128/128 cap+64 len+1" "B1 S32768 N32/8 H128/128 cap+64 len+1"; do
  timeout 40 $D/dctrace --bench --trace --append --pollute --filter "$sh" 2>&1 | head -n 16
done > "$OUT/trace.log"; cut -c1-170 "$OUT/trace.log"
echo "trace t=$((SECONDS - T0))s"
timeout $((560 - SECONDS + T0)) $D/dc > "$OUT/check_full.log" 2>&1; echo "full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
