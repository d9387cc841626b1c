#!/usr/bin/env bash
# Next device call for pending 0011 (not run in session 17: no device time left): the persistent kernel on the plain plan's own decomposition
# (128 CTAs: B1 S32768 N32/8 H64 = 8 groups x 16 CTAs of 16 whole tiles, one run each,
# as the plain plan's 16 splits; B8 S4096 N32/8 H64 = 2 CTAs per group): is its loop slower?
#
# Binary (git-ignored; session 17 left it in .probe/s17/dc_new, rebuild if gone):
#   git apply pending/0011-persistent-decode-kernel.patch && ninja -C build/cuda decode_check
#   mkdir -p .probe/s17 && cp build/cuda/tests/native/decode_check .probe/s17/dc_new
#   git checkout -- cuda tests
# device: bash pending/next_0011_decomposition.sh   (carry .probe/s17; ~20 s)
set -uo pipefail
D=.probe/s17; F="B1 S32768 N32/8 H64/64,B8 S4096 N32/8 H64/64,B1 S32768 N32/8 H128/128"
for c in 128 0; do
  echo "== JAX_MEA_DECODE_PERSISTENT_CTAS=$c"
  JAX_MEA_DECODE_PERSISTENT_CTAS=$c timeout 60 $D/dc_new --bench --persistent 1 --filter "$F" 2>&1 | tail -n 4 | cut -c1-36,88-
done
