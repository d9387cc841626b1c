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
# Since 0009 landed (session 17) the backward's walk reads VisibleKeys too: bwd_0010 is
# bwd_check with the patch, bwd_main main's. The binaries travel as one archive:
#   (cd .probe && tar cf - v0010 | xz -T2 -3 > v0010x/v0010.tar.xz)   (29 MB)
# device: bash pending/validate_0010.sh   (carry .probe/v0010x; ~7 minutes)
# CPU (before or after): with the patch applied, PYTHONPATH=$PWD python3 -m pytest -q
#   tests/test_score_parity.py  (the new test fails on main, passes with the patch)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=.probe/v0010
[ -d $D ] || (cd .probe && xz -dc v0010x/v0010.tar.xz | tar xf -)
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$? ($((SECONDS-T0))s)" >> "$OUT/build.log" ) &
bp=$!
timeout 150 $D/sm90_0010 > "$OUT/sm90_check.log" 2>&1; echo "sm90_check rc=$?"
grep "^FAIL" "$OUT/sm90_check.log" | head -5; tail -n 1 "$OUT/sm90_check.log"
timeout 60 $D/kernel_check_0010 --quick > /tmp/kc.log 2>&1; echo "kernel_check --quick rc=$?"; tail -n 1 /tmp/kc.log
timeout 120 $D/dc_0010 --small > /tmp/dc.log 2>&1; echo "decode_check --small rc=$?"; tail -n 1 /tmp/dc.log
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $D/sm90_0010 --quick --filter H128 > /tmp/m.log 2>&1
echo "memcheck sm90 rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/dc_0010 --small > /tmp/md.log 2>&1
echo "memcheck decode rc=$? $(grep 'ERROR SUMMARY' /tmp/md.log)"
timeout 120 $D/bwd_0010 > "$OUT/bwd_check.log" 2>&1; echo "bwd_check rc=$?"; tail -n 1 "$OUT/bwd_check.log"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_0010 --quick > /tmp/mb.log 2>&1
echo "memcheck bwd rc=$? $(grep 'ERROR SUMMARY' /tmp/mb.log)"
for v in main 0010 0010 main; do
  : > /tmp/b.log
  for f in "B2 S512 N32" "B2 S1024 N32" "S4096 N32 H128 bf16" "S4096 N32/8 H128 bf16 causal" \
           "B4 S4096 N32 H64 bf16" "S4096 N16 H256 bf16" "S4096 N32 H192/Hv128 bf16" " T"; do
    timeout 60 $D/sm90_$v --bench --filter "$f" >> /tmp/b.log 2>&1
  done
  echo "== $v"; grep -E "^B[0-9]" /tmp/b.log | grep -v "left1024\|softcap\|mask"
done
for v in main 0010; do echo "== bwd $v"; timeout 60 $D/bwd_$v --bench 2>&1 | grep -E "^B"; done
wait $bp; tail -n 1 "$OUT/build.log"
timeout $((590 - SECONDS + T0)) python3 -m pytest -q tests/test_score_parity.py \
  tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1; echo "pytest rc=$?"; tail -n 2 "$OUT/pytest.log"
echo "end at $((SECONDS - T0))s"
