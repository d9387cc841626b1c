#!/usr/bin/env bash
# Session 12, device run 5: the persistent sm_90a launch (native checks only).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$SECONDS
B=.probe/bin
N=$OUT/native.log
run() { local lim=$1; shift; timeout $lim "$@" > /tmp/t.log 2>&1; local rc=$?; echo "## $* rc=$rc ($((SECONDS-T0))s)" | tee -a $N; grep -E "^FAIL" /tmp/t.log | head -n 8 | tee -a $N; tail -n ${TAILN:-2} /tmp/t.log | tee -a $N; }
run 25 $B/sm90_check --quick
( timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick --filter "3 CTAs" > /tmp/s1.log 2>&1; echo "## memcheck sm90 --quick 3 CTAs rc=$? $(grep 'ERROR SUMMARY' /tmp/s1.log)" >> $N ) &
sp=$!
TAILN=22 run 40 $B/sm90_check --bench --filter "N32 H128"
run 30 $B/sm90_check --filter "H128"
run 20 $B/kernel_check --quick
wait $sp; grep memcheck $N
echo "end at $((SECONDS-T0))s"
