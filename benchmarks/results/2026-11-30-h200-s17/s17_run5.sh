#!/usr/bin/env bash
# Session 17, device call 5: the persistent decode kernel with 32-bit run math and the
# group merges deferred to each CTA's end: checks, then the kernel against the plain plan.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/s17
JAX_MEA_DECODE_PERSISTENT=1 timeout 60 $D/dc_new --small > "$OUT/dc_p1.log" 2>&1; echo "persistent --small rc=$? $(tail -n 1 $OUT/dc_p1.log)"
grep FAIL "$OUT/dc_p1.log" | head -3
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 60 $D/dc_new --small > "$OUT/dc_p1c3.log" 2>&1
echo "persistent ctas=3 --small rc=$? $(tail -n 1 $OUT/dc_p1c3.log)"; grep FAIL "$OUT/dc_p1c3.log" | head -3
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_new --small > /tmp/m.log 2>&1
echo "memcheck c3 rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
F="B1 S32768 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64"
F="$F,B8 S1024 N16/4 H128/128 cap+64,B1 S4096 N16/4 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+4096"
F="$F,B8 S4096 N32/8 H64/64,B1 S32768 N32/8 H64/64,B16 S8192 N32/8 H128/128,B64 S4096 N32/8 H128/128 ragged"
timeout 150 $D/dc_new --bench --persistent 1 --filter "$F" > "$OUT/bench_persistent.log" 2>&1; echo "bench rc=$?"
cut -c1-36,88- "$OUT/bench_persistent.log"
echo "end at $((SECONDS - T0))s"
