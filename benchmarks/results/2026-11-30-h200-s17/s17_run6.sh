#!/usr/bin/env bash
# Session 17, device call 6: per-CTA phase stamps (decode_check --trace, a build with
# -DJAX_MEA_DECODE_TRACE) of the plain and the persistent decode kernel.
set -uo pipefail
D=.probe/s17
for F in "B8 S4096 N16/4 H128/128 cap+64" "B8 S4096 N32/8 H64/64"; do
  for pv in 0 1; do
    echo "=== $F persistent=$pv"
    JAX_MEA_DECODE_PERSISTENT=$pv timeout 60 $D/dc_trace --bench --trace --filter "$F" 2>&1 | head -16
  done
done
