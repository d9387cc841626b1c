#!/usr/bin/env bash
# session 16 run 2: the persistent sm_90a forward (kPersistent; H64/H128 grids of more
# than one wave whose rows all see every key): checks, sanitizers, A/B against main.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
D=.probe/s16b
timeout 150 $D/sm90_new > "$OUT/check.log" 2>&1; echo "sm90_check rc=$?"; tail -n 1 "$OUT/check.log"
grep -c "persistent3" "$OUT/check.log"; grep "^FAIL" "$OUT/check.log" | head
timeout 60 $D/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check --quick rc=$?"; tail -n 1 /tmp/kc.log
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $D/sm90_new --quick --filter persistent3 > /tmp/mc.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log) $(tail -n 1 /tmp/mc.log)"
timeout 150 compute-sanitizer --tool racecheck --error-exitcode 1 $D/sm90_new --quick --filter "H128/128 persistent3" > /tmp/rc.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/rc.log)"
timeout 150 compute-sanitizer --tool synccheck --error-exitcode 1 $D/sm90_new --quick --filter "H64/64 persistent3" > /tmp/sc.log 2>&1
echo "synccheck rc=$? $(grep -i 'summary' /tmp/sc.log)"
for v in old new new old; do
  : > /tmp/b.log
  for f in "B2 S512 N32" "B2 S1024 N32" "wave" "S4096 N32 H128 bf16" "B4 S4096 N32 H64 bf16" "S4096 N16 H256 bf16" "S4096 N32 H128 f16"; do
    timeout 60 $D/sm90_$v --bench --filter "$f" >> /tmp/b.log 2>&1
  done
  echo "== $v"; grep -E "^B[0-9]|^  (persistent|wg2)" /tmp/b.log | grep -v "left1024\|softcap\|mask"
done
echo "end at $((SECONDS - T0))s"
