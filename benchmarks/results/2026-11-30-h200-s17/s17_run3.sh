#!/usr/bin/env bash
# Session 17, device call 3: the persistent decode kernel (issue 11). Checks: the plain
# kernels (refactored, SASS rescheduled), the persistent kernel on every check case
# (items of 1 tile) and with 3 CTAs walking every item (memcheck, racecheck); then the
# bench: persistent (items of 1, 2, 4 tiles) against the plain plan, and main's plain.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/s17
timeout 100 $D/dc_new --small > "$OUT/dc_plain_small.log" 2>&1; echo "plain --small rc=$? $(tail -n 1 $OUT/dc_plain_small.log)"
JAX_MEA_DECODE_PERSISTENT=1 timeout 150 $D/dc_new > "$OUT/dc_p1.log" 2>&1; echo "persistent=1 full rc=$? $(tail -n 1 $OUT/dc_p1.log)"
grep -E "FAIL" "$OUT/dc_p1.log" | head -5
JAX_MEA_DECODE_PERSISTENT=2 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 100 $D/dc_new --small > "$OUT/dc_p2c3.log" 2>&1
echo "persistent=2 ctas=3 --small rc=$? $(tail -n 1 $OUT/dc_p2c3.log)"; grep FAIL "$OUT/dc_p2c3.log" | head -5
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_new --small > /tmp/m.log 2>&1
echo "memcheck p1 c3 rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
JAX_MEA_DECODE_PERSISTENT=1 JAX_MEA_DECODE_PERSISTENT_CTAS=3 timeout 120 compute-sanitizer --tool racecheck --error-exitcode 1 $D/dc_new --small > /tmp/r.log 2>&1
echo "racecheck p1 c3 rc=$? $(grep -i 'SUMMARY' /tmp/r.log)"; cp /tmp/r.log /tmp/m.log "$OUT/" 2>/dev/null
echo "checks done at $((SECONDS - T0))s"
timeout 200 $D/dc_new --bench --persistent 1,2,4 > "$OUT/bench_persistent.log" 2>&1; echo "bench rc=$?"
cat "$OUT/bench_persistent.log"
echo "at $((SECONDS - T0))s"
for v in main new; do
  timeout $((590 - SECONDS + T0)) $D/dc_$v --bench > "$OUT/bench_$v.log" 2>&1; echo "bench $v rc=$?"
  grep -E "^cfg-1" "$OUT/bench_$v.log" | head -60
done
echo "end at $((SECONDS - T0))s"
