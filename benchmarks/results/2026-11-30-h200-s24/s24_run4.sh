set -uo pipefail
OUT=${OUT:-/tmp/out}; D=/tmp/s24; mkdir -p $D; T0=$SECONDS
for v in promo p22promo sm90_main sm90_promo; do xz -dc .probe/s24/$v.xz > $D/$v; chmod +x $D/$v; done
timeout 90 compute-sanitizer --tool memcheck $D/promo --small > "$OUT/memcheck_promo.log" 2>&1
echo "promo memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_promo.log)"
for sh in "B32 S32768 N16/4 H128/128 cap+64 len+1" "B8 S32768 N16/4 H128/128 cap+64 len+1" "B32 S4096 N32/8 H128/128 cap+64 len+1" "B8 S4096 N16/4 H128/128 cap+64 len+1"; do
  timeout 60 $D/p22promo --bench --append --filter "$sh" 2>&1 | grep -E " c[0-5] " | cut -c1-200
done > "$OUT/sweep_p22promo.log"; cat "$OUT/sweep_p22promo.log"; echo "sweep t=$((SECONDS - T0))s"
timeout 60 $D/p22promo --small > "$OUT/check_small_p22.log" 2>&1; echo "0022 --small rc=$? $(tail -n 1 $OUT/check_small_p22.log | cut -c1-80)"
for v in sm90_main sm90_promo sm90_promo sm90_main; do echo "== $v"; timeout 100 $D/$v --bench 2>&1; done > "$OUT/sm90_bench.log"
echo "sm90 t=$((SECONDS - T0))s"
awk '/^==/{v=$2} /^[a-zA-Z].* [0-9]+\.[0-9]+ +[0-9]+\.[0-9] /{print v, $0}' "$OUT/sm90_bench.log" | sort -k2,2 -s | cut -c1-120 | head -80
