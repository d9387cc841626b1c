#!/usr/bin/env bash
# Next device call for pending 0011 (not run in session 17: no device time left): the persistent kernel on the plain plan's own decomposition
# (128 CTAs: B1 S32768 N32/8 H64 = 8 groups x 16 CTAs of 16 whole tiles, one run each,
# as the plain plan's 16 splits; B8 S4096 N32/8 H64 = 2 CTAs per group): is its loop slower?
set -uo pipefail
D=.probe/s17; F="B1 S32768 N32/8 H64/64,B8 S4096 N32/8 H64/64,B1 S32768 N32/8 H128/128"
for c in 128 0; do
  echo "== JAX_MEA_DECODE_PERSISTENT_CTAS=$c"
  JAX_MEA_DECODE_PERSISTENT_CTAS=$c timeout 60 $D/dc_new --bench --persistent 1 --filter "$F" 2>&1 | tail -n 4 | cut -c1-36,88-
done
