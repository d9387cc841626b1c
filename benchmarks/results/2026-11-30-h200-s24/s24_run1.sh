#!/usr/bin/env bash
# Issue 11: the next session's first device call (written in session 23, not run).
# Pending 0021 (second version): a decode step's new lengths written inside the call,
# the count's result waited on only at the CTA's end. Binaries (rebuild them if cuda/
# changed since the commit that last rebuilt them, session 23's last):
#   mkdir -p .probe/s24 && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s24/main &&
#   git apply pending/0021-*.patch && ninja -C build/cuda decode_check &&
#   cp build/cuda/tests/native/decode_check .probe/s24/p21 && git checkout cuda tests tools jax_mea &&
#   xz -6 -T2 -f .probe/s24/*
# Run with carry [".probe/s24"] (about 360 s; .probe/s24/p22 is 0022's build). It checks 0021 (--small, memcheck, the
# full list for what is left) and times it against main, clean and polluted. Session
# 23's first version cost 1.5-2.3 us a call polluted (it must cost well under the 1.1 us
# XLA kernel it removes to be worth landing). If it is: `next_s24b.sh`-style second
# call on a tree with 0021 applied: the package, GPU pytest of test_decode and
# test_examples, `tools/jax_timeline.py --model large --batch 8 --context 4096` and the
# large model's B1 / B8 points (benchmarks/results/2026-11-30-h200-s23/s23_run3.sh and
# s23_run6.sh are the commands).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s24; mkdir -p $D
for f in .probe/s24/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
# Main first: session 23's review fixes (MarkOverflow's num_new > 0, the new
# append-overflow-split case) compiled but never ran on a GPU.
timeout 60 $D/main --small > "$OUT/check_small_main.log" 2>&1; echo "main --small rc=$? $(tail -n 1 $OUT/check_small_main.log | cut -c1-80)"
grep FAIL "$OUT/check_small_main.log" | head -3 | cut -c1-220
timeout 90 compute-sanitizer --tool memcheck $D/main --small > "$OUT/memcheck_main.log" 2>&1
echo "main memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck_main.log)"
timeout 60 $D/p21 --small > "$OUT/check_small.log" 2>&1; echo "--small rc=$? $(tail -n 1 $OUT/check_small.log | cut -c1-80)"
grep FAIL "$OUT/check_small.log" | head -5 | cut -c1-220
timeout 90 compute-sanitizer --tool memcheck $D/p21 --small > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -m1 'ERROR SUMMARY' $OUT/memcheck.log)"
S="B1 S4096 N16/4 H128/128 cap+64 len+1,B8 S4096 N16/4 H128/128 cap+64 len+1,B32 S2048 N16/4 H128/128 cap+64 len+1,B1 S32768 N16/4 H128/128 cap+64 len+1"
for v in main p21 p21 main; do for m in --pollute ""; do echo "== $v ${m:-clean}"; timeout 60 $D/$v --bench --append $m --filter "$S" | grep -A20 "^shape" | grep "^B"; done; done > "$OUT/bench.log" 2>&1
awk '/^==/{v=$2" "$3} /^B/{print v, substr($0,1,44), $(NF-3), $NF}' "$OUT/bench.log" | sort -k3,9 -s -k2,2 -k1,1 | cut -c1-130
echo "bench t=$((SECONDS - T0))s"
# Pending 0022 (probes): configuration 3 with fewer bytes in flight (4: H128 2 stages of
# 64 KB against 3) and with more (5: 6 warps, 4 stages of 96-key tiles). 4 much slower
# and 5 faster on the long streams = they are bound by the bytes each SM keeps in
# flight (pending/README.md, 0022); neither moving = not.
for sh in "B32 S32768 N16/4 H128/128 cap+64 len+1" "B8 S32768 N16/4 H128/128 cap+64 len+1" "B8 S4096 N16/4 H128/128 cap+64 len+1"; do
  timeout 60 $D/p22 --bench --append --filter "$sh" 2>&1 | grep -E " c3 | c4 | c5 " | cut -c1-200
done > "$OUT/sweep_p22.log"; cat "$OUT/sweep_p22.log"; echo "probe t=$((SECONDS - T0))s"
timeout 60 $D/p22 --small > "$OUT/check_small_p22.log" 2>&1; echo "0022 --small rc=$? $(tail -n 1 $OUT/check_small_p22.log | cut -c1-80)"
grep FAIL "$OUT/check_small_p22.log" | head -3 | cut -c1-220
timeout $((340 - SECONDS + T0)) $D/p21 > "$OUT/check.log" 2>&1; echo "full check (cut) rc=$? PASS $(grep -c PASS $OUT/check.log) FAIL $(grep -c FAIL $OUT/check.log)"
grep -m 5 FAIL "$OUT/check.log" | cut -c1-220
echo "end t=$((SECONDS - T0))s"
