#!/usr/bin/env bash
# Session 25, call 6: call 5's H64 part again on names decode_check has (the full-cache
# grid shapes, without the append): main (6 stages, 195 KB) against budgets 150 (4
# stages, 131 KB) and 100 (3 stages, 99 KB, 2 CTAs per SM). Carry [".probe/s25b"].
D=/tmp/s25b; mkdir -p $D; for v in cur h64b150 h64b100; do xz -dc .probe/s25b/$v.xz > $D/$v; chmod +x $D/$v; done
H="B1 S32768 N32/8 H64/64,B16 S8192 N32/8 H64/64,B8 S4096 N32/8 H64/64,B1 S4096 N32/8 H64/64"
for v in cur h64b150 h64b100 h64b100 h64b150 cur; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 40 $D/$v --bench $m --filter "$H" | grep -A20 "^shape" | grep "^B"; done; done > $OUT/bench_h64.log 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,30), $(NF-3), $NF}' $OUT/bench_h64.log | sort -k3,9 -s -k2,2 -k1,1
