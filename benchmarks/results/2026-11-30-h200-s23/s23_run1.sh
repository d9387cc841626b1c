#!/usr/bin/env bash
# Session 23, call 1 (written in session 22 as pending/next_s23.sh): pending 0020 checked and timed against main.
# Binaries (built at the commit that added this file; rebuild them if cuda/ changed):
#   mkdir -p .probe/s23 && ninja -C build/cuda decode_check && ninja -C build/trace decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s23/dc &&
#   cp build/trace/tests/native/decode_check .probe/s23/dctrace &&
#   git apply pending/0020-*.patch && ninja -C build/cuda decode_check && ninja -C build/trace decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s23/dc20 &&
#   cp build/trace/tests/native/decode_check .probe/s23/dc20trace && git checkout cuda/kernels &&
#   xz -6 -T2 -f .probe/s23/*
# Run with carry [".probe/s23"] (about 300 s). It
#   1. checks 0020 (split chunks of equal keys, not whole tiles): --small, memcheck on
#      --small (main's too), the full list for 120 s;
#   2. times main and 0020 alternately, clean and polluted, on lengths at S and 1 and 17
#      past it (a decode loop's lengths: decode_model's ctx 4096 steps run 4097-4128);
#   3. traces both polluted at B8 S4096 N16/4 len+17.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s23; mkdir -p $D
for f in .probe/s23/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 60 $D/dc20 --small > "$OUT/check_small.log" 2>&1; echo "0020 --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
for v in dc dc20; do  # main too: 0018 landed in session 22 without memcheck
  timeout 100 compute-sanitizer --tool memcheck $D/$v --small > "$OUT/memcheck_$v.log" 2>&1
  echo "$v memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_$v.log)"
done
S=""
for sh in "B8 S4096 N16/4" "B8 S4096 N32/8" "B1 S32768 N16/4" "B32 S2048 N16/4" "B8 S1024 N16/4" "B1 S4096 N16/4"; do
  for l in "" " len+1" " len+17"; do S="$S,$sh H128/128 cap+64$l"; done
done
S=${S#,}
for v in dc dc20 dc20 dc; do for m in "" --pollute; do echo "== $v ${m:-clean}"; timeout 100 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k1,2 | cut -c1-130
for v in dctrace dc20trace; do echo "== $v"; timeout 30 $D/$v --bench --trace --append --pollute --filter "B8 S4096 N16/4 H128/128 cap+64 len+17" 2>&1 | sed -n 3,16p; done > "$OUT/trace.log" 2>&1
cut -c1-170 "$OUT/trace.log"
echo "t=$((SECONDS - T0))s"
timeout 120 $D/dc20 > "$OUT/check.log" 2>&1; echo "0020 full check (cut at 120 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end at $((SECONDS - T0))s"
