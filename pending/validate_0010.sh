#!/usr/bin/env bash
# Device call for pending 0010 (kUnboundedWindow bounds nothing at any query offset:
# VisibleKeys in score.h, shared by every kernel). The change is two compares, but it
# moves the main loops of most sm_90a instances (ptxas reschedules), so the forward is
# timed against main's build before it lands.
#
# Binaries (git-ignored; built in session 16 on the development machine, rebuild if
# gone): .probe/v0010/sm90_main (main's sm90_check, session 16 run 3's validated build;
# its 82 instances are main's SASS), and with the patch applied (git apply
# pending/0010-unbounded-windows-at-any-offset.patch; ninja -C build/cuda sm90_check
# kernel_check decode_check): sm90_0010, kernel_check_0010, dc_0010.
# device: bash pending/validate_0010.sh   (carry .probe/v0010, 54 MB; ~6 minutes)
# CPU (before or after): with the patch applied, PYTHONPATH=$PWD python3 -m pytest -q
#   tests/test_score_parity.py  (the new test fails on main, passes with the patch)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/v0010
timeout 150 $D/sm90_0010 > "$OUT/sm90_check.log" 2>&1; echo "sm90_check rc=$?"
grep "^FAIL" "$OUT/sm90_check.log" | head -5; tail -n 1 "$OUT/sm90_check.log"
timeout 60 $D/kernel_check_0010 --quick > /tmp/kc.log 2>&1; echo "kernel_check --quick rc=$?"; tail -n 1 /tmp/kc.log
timeout 120 $D/dc_0010 --small > /tmp/dc.log 2>&1; echo "decode_check --small rc=$?"; tail -n 1 /tmp/dc.log
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $D/sm90_0010 --quick --filter H128 > /tmp/m.log 2>&1
echo "memcheck sm90 rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_0010 --small > /tmp/md.log 2>&1
echo "memcheck decode rc=$? $(grep 'ERROR SUMMARY' /tmp/md.log)"
for v in main 0010 0010 main; do
  : > /tmp/b.log
  for f in "B2 S512 N32" "B2 S1024 N32" "S4096 N32 H128 bf16" "S4096 N32/8 H128 bf16 causal" \
           "B4 S4096 N32 H64 bf16" "S4096 N16 H256 bf16" "S4096 N32 H192/Hv128 bf16" " T"; do
    timeout 60 $D/sm90_$v --bench --filter "$f" >> /tmp/b.log 2>&1
  done
  echo "== $v"; grep -E "^B[0-9]" /tmp/b.log | grep -v "left1024\|softcap\|mask"
done
echo "end at $((SECONDS - T0))s"
