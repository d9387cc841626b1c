#!/usr/bin/env bash
# Session 23, call 4: the overflow mark moved after the pipeline start (.probe/s23c/dc)
# against main before the flags (.probe/s23/dc, 2e9d9f6) and the first placement
# (.probe/s23b/dc, after CtaKeys); --small and memcheck of the new one.
# Carry [".probe/s23", ".probe/s23b", ".probe/s23c"].
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23d; mkdir -p $D
xz -dc .probe/s23/dc.xz > $D/old; xz -dc .probe/s23b/dc.xz > $D/first; xz -dc .probe/s23c/dc.xz > $D/moved
chmod +x $D/*
timeout 60 $D/moved --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
timeout 100 compute-sanitizer --tool memcheck $D/moved --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1"
for v in old moved first moved old first; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "end t=$((SECONDS - T0))s"
