#!/usr/bin/env bash
# Session 28 call 6 (issue 11): the epilogue's loops rolled and without divisions
# ("diet": its code runs once per CTA, cold). Binaries carried in .probe/s28
# (git-ignored): dc = main (5de7459), dcdiet = the working tree (`ninja -C build/cuda
# decode_check`), dcdiettrace = the same with -DJAX_MEA_DECODE_TRACE (build/trace).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s28; mkdir -p $D
for v in dc dcdiet dcdiettrace; do xz -dc .probe/s28/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dcdiet --small > "$OUT/check_small.log" 2>&1; echo "diet --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dcdiet --small > "$OUT/memcheck.log" 2>&1
echo "diet memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1"
timeout 60 $D/dcdiettrace --bench --trace --append --filter "$S" > "$OUT/trace.log" 2>&1
echo "trace rc=$?"; grep -E "^B1|epilogue|CTA total|ep:" "$OUT/trace.log" | grep -A9 "cluster ctas72" | cut -c1-150 | head -22
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in dc dcdiet dcdiet dc; do for pol in "" --pollute; do echo "== $v$pol"; timeout 60 $D/$v --bench --append $pol --filter "$S" | grep -A30 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-16s %s\n", v, $0}' "$OUT/bench.log" | sort -s -k2,9 | sed -E 's/ +/ /g' | awk '{printf "%s %s %s %s %s %s %s | %s\n", $1, $2, $3, $4, $5, $6, $7, $(NF-3)}'
echo "checks, bench t=$((SECONDS - T0))s"
timeout $((250 - SECONDS + T0)) $D/dcdiet > "$OUT/check_full.log" 2>&1; echo "diet full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
