#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 20, not run).
# Before it, on the development machine (about 4 minutes):
#   mkdir -p .probe/s21 && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s21/dc &&
#   for v in 0014 0015 0016; do git apply pending/$v-*.patch && ninja -C build/cuda decode_check &&
#     cp build/cuda/tests/native/decode_check .probe/s21/dc$v && git checkout cuda/kernels; done &&
#   git apply pending/0014-*.patch pending/0015-*.patch pending/0016-*.patch &&
#   ninja -C build/cuda decode_check && cp build/cuda/tests/native/decode_check .probe/s21/dcall &&
#   git checkout cuda/kernels && ninja -C build/cuda decode_check &&
#   ninja -C build/trace decode_check && cp build/trace/tests/native/decode_check .probe/s21/dctrace &&
#   xz -6 -T2 .probe/s21/*
# then run it with carry [".probe/s21"] (about 400 s):
#   1. decode_check's checks of the three patches together (dcall; each changes a few lines);
#   2. the bench of the large model's layer shapes, alternating main (dc) and each patch:
#      0014 (the epilogue writes only the CTA's real rows: 4 of 16 for a GQA group of 4),
#      0015 (the kv length loaded at the kernel's entry, before the append and Q loads),
#      0016 (the fused combine fences once per CTA, not once per thread) and all three.
#      Session 20's q_len 1 fast paths (f981d46) took 0.2-0.6 us off every shape by
#      trimming the path to the first tile load; these trim it and the epilogue further;
#   3. main's per-CTA timeline (decode_check --trace) at B1 S1024 and B8 S4096: session 20's
#      B1 trace did not come back (too many files under $OUT), so the phases of a one-tile
#      CTA (entry, first load, epilogue, cluster merge) are still unmeasured.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s21; mkdir -p $D
for f in .probe/s21/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
timeout 200 $D/dcall > "$OUT/dcall_check.log" 2>&1; echo "all three: decode_check rc=$? $(tail -n 1 $OUT/dcall_check.log)"
grep -m 10 FAIL "$OUT/dcall_check.log" | cut -c1-200
S="B1 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S1024 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 cap+64"
for v in dc dc0014 dc0015 dc0016 dcall dcall dc0016 dc0015 dc0014 dc; do echo "== $v"; timeout 60 $D/$v --bench --append --filter "$S" | grep -E "^B.*(ctas[0-9]+ +[0-9])"; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2} /^B/{split($0,a,"ctas"); n=split(a[2],f," "); print v, substr($0,1,32), f[2]}' "$OUT/bench.log" | sort -k2,6 -s
for s in "B1 S1024 N16/4 H128/128 cap+64" "B8 S4096 N16/4 H128/128 cap+64"; do
  timeout 30 $D/dctrace --bench --trace --append --filter "$s" 2>&1 | head -80
done > "$OUT/trace.log" 2>&1; grep -iE "median|p90|entry|merge" "$OUT/trace.log" | head -30 | cut -c1-160
echo "end at $((SECONDS - T0))s"
