#!/usr/bin/env bash
# Session 19, call 6 (issue 14, the last device minutes): with the grid in groups of 8,
# run 5's bench had the late dQ (kBwdEarlyDq = false) 2% faster. bwd_final: main
# (early dQ); bwd_late: main with kBwdEarlyDq = false. Early and late dQ timed twice in
# one binary, and bwd_late's checks.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
for i in 1 2; do timeout 40 $D/bwd_final --bench "N32 H128" | grep -vE "unord|unsplit|split:|group 1"; done > "$OUT/bench.log" 2>&1
cut -c1-90 "$OUT/bench.log"
timeout 60 $D/bwd_late > "$OUT/check_late.log" 2>&1; echo "bwd_late check rc=$? $(tail -n 1 $OUT/check_late.log)"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_late --quick > /tmp/m.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
timeout 40 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd_late --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"
echo "end at $((SECONDS - T0))s"
