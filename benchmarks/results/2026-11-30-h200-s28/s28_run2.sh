#!/usr/bin/env bash
# Session 28 call 2 (issue 11): the cluster merge by bulk copies, first run.
# Binaries carried in .probe/s28 (git-ignored): dc = main (5de7459, the push merge),
# dcbulk = the working tree (`ninja -C build/cuda decode_check`), dcbulktrace = the
# same with -DJAX_MEA_DECODE_TRACE (build/trace).
# Checks (--small, memcheck, the full list), the trace, then an A/B on cluster shapes.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s28; mkdir -p $D
for v in dc dcbulk dcbulktrace; do xz -dc .probe/s28/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/dcbulk --small > "$OUT/check_small.log" 2>&1; echo "bulk --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -3 | cut -c1-200
timeout 90 compute-sanitizer --tool memcheck $D/dcbulk --small > "$OUT/memcheck.log" 2>&1
echo "bulk memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1"
timeout 60 $D/dcbulktrace --bench --trace --append --filter "$S" > "$OUT/trace.log" 2>&1
echo "trace rc=$?"; grep -E "^B1|epilogue|CTA total|ep:" "$OUT/trace.log" | grep -B1 -A9 "cluster ctas72\|cluster ctas64" | cut -c1-150 | head -24
S="B1 S1024 N32/8 H128/128 cap+64 len+1,B1 S4096 N32/8 H128/128 cap+64 len+1,B8 S1024 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1,B1 S4096 N32/8 H256/256"
for v in dc dcbulk dcbulk dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -A30 "^shape" | grep "^B"; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{printf "%-7s %s\n", v, $0}' "$OUT/bench.log" | sort -s -k2 | sed -E 's/ +/ /g' | cut -c1-200
echo "checks, bench t=$((SECONDS - T0))s"
timeout $((280 - SECONDS + T0)) $D/dcbulk > "$OUT/check_full.log" 2>&1; echo "bulk full check rc=$? PASS $(grep -c PASS $OUT/check_full.log) FAIL $(grep -c FAIL $OUT/check_full.log)"
grep -m 5 FAIL "$OUT/check_full.log" | cut -c1-220; grep -c "cluster" "$OUT/check_full.log"
echo "end t=$((SECONDS - T0))s"
