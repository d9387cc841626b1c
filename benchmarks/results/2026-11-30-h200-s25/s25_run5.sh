#!/usr/bin/env bash
# Session 25, call 5: after 0024 (H128 TMA at 2 stages) landed, (a) the H64 TMA row at
# smaller budgets (220 KB = 6 stages on main, 150 = 4, 100 = 3), and (b) pending 0025 on
# top of it, against main: --small of each, memcheck of p25, the bench alternating clean
# and polluted. Binaries built on the development machine into .probe/s25b (carry it):
#   cur: main (1b3e789); h64b150 / h64b100: kTmaBudgetKb for HP == 64 set to 150 / 100;
#   p25: main + pending/0025.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s25b; mkdir -p $D
for v in cur h64b150 h64b100 p25; do xz -dc .probe/s25b/$v.xz > $D/$v; chmod +x $D/$v; done
for v in h64b150 h64b100 p25; do
  timeout 60 $D/$v --small > "$OUT/check_small_$v.log" 2>&1; echo "$v --small rc=$? $(tail -n 1 $OUT/check_small_$v.log | cut -c1-80)"
done
timeout 90 compute-sanitizer --tool memcheck $D/p25 --small > "$OUT/memcheck_p25.log" 2>&1
echo "p25 memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_p25.log) t=$((SECONDS - T0))s"
H="B1 S32768 N32/8 H64/64 cap+64 len+1,B16 S8192 N32/8 H64/64 cap+64 len+1,B8 S4096 N32/8 H64/64 cap+64 len+1,B1 S4096 N32/8 H64/64 cap+64 len+1"  # no such shapes in decode_check: the H64 part matched nothing; call 6 ran it on the grid names
P="B8 S4096 N16/4 H128/128 cap+64 len+1,B1 S32768 N32/8 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+4096,B32 S2048 N16/4 H128/128 cap+64 len+1,B8 S1024 N16/4 H128/128 cap+64 len+1"
for v in cur h64b150 h64b100 h64b100 h64b150 cur; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$H" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench_h64.log" 2>&1
for v in cur p25 p25 cur; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$P" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench_p25.log" 2>&1
for f in bench_h64 bench_p25; do
  awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/$f.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-110
done
grep -h "^B" "$OUT/bench_h64.log" | awk '{for(i=1;i<=NF;i++) if($i ~ /stages|smem|splits|ctas/) printf "%s ", $i; print $1,$2,$3,$4}' | sort -u | head -12
echo "end t=$((SECONDS - T0))s"
