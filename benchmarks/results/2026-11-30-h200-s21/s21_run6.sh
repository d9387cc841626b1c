#!/usr/bin/env bash
# Session 21, call 6 (issue 11): MergeGroup compact (rolled loops; the group's partials
# copied into shared memory by cp.async in one round trip), against call 5's main (dcp).
# Checks (--small, then the full list for what time allows); the default plans timed
# clean and after --pollute, alternating with dcp; the polluted trace at B8 S4096.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/dc*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 60 $D/dcm --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep -m 5 FAIL "$OUT/check_small.log" | cut -c1-200
S="B8 S4096 N16/4 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
for v in dcp dcm dcm dcp; do for m in "" --pollute; do echo "== $v ${m:-clean}"; timeout 100 $D/$v --bench --append $m --filter "$S" | grep -A8 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,32), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,7 -s -k1,2 | cut -c1-120
timeout 30 $D/dcmtrace --bench --trace --append --pollute --filter "B8 S4096 N16/4 H128/128 cap+64" 2>&1 | sed -n 3,16p > "$OUT/trace.log"; cut -c1-170 "$OUT/trace.log"
echo "t=$((SECONDS - T0))s"
timeout 150 $D/dcm > "$OUT/check.log" 2>&1; echo "full check (cut at 150 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end at $((SECONDS - T0))s"
