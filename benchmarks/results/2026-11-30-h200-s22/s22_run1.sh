#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 21, not run).
# Before it, on the development machine (about 3 minutes):
#   mkdir -p .probe/s22 && ninja -C build/cuda decode_check && ninja -C build/trace decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s22/dc &&
#   cp build/trace/tests/native/decode_check .probe/s22/dctrace &&
#   git apply pending/0017-*.patch && ninja -C build/cuda decode_check && ninja -C build/trace decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s22/dc17 &&
#   cp build/trace/tests/native/decode_check .probe/s22/dc17trace && git checkout cuda/kernels &&
#   git apply pending/0018-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s22/dc18 && git checkout cuda/kernels &&
#   git apply pending/0019-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s22/dc19 && git checkout cuda/kernels &&
#   ninja -C build/cuda decode_check && xz -6 -T2 .probe/s22/*
# then run it with carry [".probe/s22"] (about 300 s). It
#   1. checks 0017 (every stage's tile loaded at the start: --small, then the full list
#      for 150 s), 0018 (the epilogue's weights by one warp a row) and 0019 (the merge
#      without runtime divisions): --small;
#   2. times main, 0017, 0018 and 0019 alternately, clean and after --pollute (a model's
#      other code between two calls: session 21 found the model's extra time there);
#   3. traces both polluted at B8 S4096 (the first tile: 3.5 us polluted against 2.4
#      clean in session 21);
#   4. takes ncu's SASS table of one polluted launch of main at B8 S4096 (per
#      instruction: executions and "no instruction" stall samples), to find the cold
#      code that is left (tools/sass_stats.py summarises it).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s22; mkdir -p $D
for f in .probe/s22/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 60 $D/dc17 --small > "$OUT/check_small.log" 2>&1; echo "0017 --small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
timeout 60 $D/dc18 --small > "$OUT/check_small18.log" 2>&1; echo "0018 --small rc=$? $(tail -n 1 $OUT/check_small18.log | cut -c1-80)"
timeout 60 $D/dc19 --small > "$OUT/check_small19.log" 2>&1; echo "0019 --small rc=$? $(tail -n 1 $OUT/check_small19.log | cut -c1-80)"
S="B8 S4096 N16/4 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64"
for v in dc dc17 dc18 dc19 dc19 dc18 dc17 dc; do for m in "" --pollute; do echo "== $v ${m:-clean}"; timeout 100 $D/$v --bench --append $m --filter "$S" | grep -A8 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,32), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,7 -s -k1,2 | cut -c1-120
for v in dctrace dc17trace; do echo "== $v"; timeout 30 $D/$v --bench --trace --append --pollute --filter "B8 S4096 N16/4 H128/128 cap+64" 2>&1 | sed -n 3,16p; done > "$OUT/trace.log" 2>&1
cut -c1-170 "$OUT/trace.log"
timeout 120 ncu --clock-control none --cache-control none --set full -k regex:DecodeMma --launch-skip 40 --launch-count 1 \
  -o $D/dec_pol $D/dc --bench --append --pollute --filter "B8 S4096 N16/4 H128/128 cap+64" > /tmp/ncu.log 2>&1; echo "ncu rc=$?"
ncu --import $D/dec_pol.ncu-rep --page source --csv --print-source sass 2>/dev/null > $D/dec_pol.csv
python3 tools/sass_stats.py $D/dec_pol.csv --regions > "$OUT/sass_stats.log" 2>&1; head -n 50 "$OUT/sass_stats.log" | cut -c1-160
xz -6 -c $D/dec_pol.csv > "$OUT/dec_pol_sass.csv.xz"
echo "t=$((SECONDS - T0))s"
timeout 150 $D/dc17 > "$OUT/check.log" 2>&1; echo "0017 full check (cut at 150 s) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end at $((SECONDS - T0))s"
