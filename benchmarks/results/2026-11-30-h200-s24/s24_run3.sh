set -uo pipefail
OUT=${OUT:-/tmp/out}; D=/tmp/s24; mkdir -p $D
for v in main promo; do xz -dc .probe/s24/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 60 $D/promo --small > "$OUT/check_small_promo.log" 2>&1; echo "promo --small rc=$? $(tail -n 1 $OUT/check_small_promo.log | cut -c1-80)"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1,B8 S32768 N16/4 H128/128 cap+64 len+1,B32 S32768 N16/4 H128/128 cap+64 len+1,B32 S4096 N32/8 H128/128 cap+64 len+1"
for v in main promo promo main; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 90 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
