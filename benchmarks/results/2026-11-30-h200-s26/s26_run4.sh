#!/usr/bin/env bash
# Issue 11, session 26 call 4: the spread merge compiled into the 8-warp kernels only
# (configurations 2 and 3; call 3's build had it in the 4-warp ones too, where one
# register went to the stack and B64 S1024 ran 1-1.5% slower). Checks (--small,
# memcheck, the full list) and the kernel A/B against main (dcmain, 0fbe01d).
# Carry [".probe/s26b"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s26b; mkdir -p $D
for v in dc dcmain; do xz -dc .probe/s26b/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dc --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dc --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S32768 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H64/64,B64 S1024 N32/8 H128/128,B64 S1024 N32/32 H128/128"
for v in dcmain dc dc dcmain dcmain dc; do for m in --pollute ""; do echo "== $v ${m:-clean}"
  timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
timeout $((500 - SECONDS + T0)) $D/dc > "$OUT/check_full.log" 2>&1; echo "full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220; grep -c "spread" "$OUT/check_full.log"
echo "end t=$((SECONDS - T0))s"
