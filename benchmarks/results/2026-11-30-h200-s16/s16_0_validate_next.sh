#!/usr/bin/env bash
# The next session's first device calls (written at the end of session 15, which had no
# device time left). Binaries built here (2-core machine), carried one folder a call
# (a call carries at most 64 MiB):
#
#   cmake -S . -B build/cuda -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#   .probe/fwd: sm90_main (main), sm90_0007 and kernel_check_0007 (main + pending 0007)
#   .probe/dec: dc_main (main's decode_check), dc_0007 (main + 0007)
#   .probe/bwd: bwd_check (main + pending 0008, the 4-warp backward)
#   (ninja -C build/cuda sm90_check kernel_check decode_check bwd_check; git apply
#   pending/0007-prefetch-tensor-maps.patch for the 0007 builds and
#   pending/0008-backward-4-warp-ctas.patch for bwd_check, then git apply -R each)
#
# device: bash pending/validate_next.sh fwd   (carry .probe/fwd; ~5 minutes)
#   issue 15: the packed sm_90a instances as landed (11ab08b: a kPacked template
#   flag; session 15 ran the same logic chosen at run time, not these instances):
#   every packed case, memcheck and racecheck; packed against JAX_MEA_SM90_PACK=0.
#   pending 0007 (tensor maps prefetched at kernel entry): checks, memcheck, and the
#   bench against main, short sequences (S = 512 runs at 0.66x cuDNN) included; an ncu
#   of main's S512 launch.
#         bash pending/validate_next.sh dec   (carry .probe/dec; ~3 minutes)
#   issue 11: 0007 in the decode kernels: decode_check --small, memcheck, nine shapes
#   against main in both orders.
#         bash pending/validate_next.sh bwd   (carry .probe/bwd; ~5 minutes)
#   issue 14: the 4-warp backward (64 keys per CTA, two CTAs per SM; pending 0008, not
#   dispatched): bwd_check --warps4 (bitwise over two runs), racecheck, memcheck, and
#   bwd_check --bench's "4 warps" rows; then ncu of the default kernel with source
#   counters (which SASS lines issue and stall most).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PART=${1:-fwd}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$SECONDS
B=.probe/$PART

if [ "$PART" = fwd ]; then
  timeout 60 $B/sm90_main --filter packed > "$OUT/packed.log" 2>&1; echo "sm90_check packed rc=$?"
  grep -E "^FAIL" "$OUT/packed.log" | head; tail -n 1 "$OUT/packed.log"
  timeout 60 $B/sm90_main --quick > /tmp/q.log 2>&1; echo "sm90_check --quick rc=$?"; tail -n 1 /tmp/q.log
  timeout 60 $B/kernel_check_0007 --quick > /tmp/kc.log 2>&1; echo "kernel_check 0007 rc=$?"; tail -n 1 /tmp/kc.log
  timeout 60 $B/sm90_0007 --quick > /tmp/q7.log 2>&1; echo "sm90_check 0007 --quick rc=$?"; tail -n 1 /tmp/q7.log
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_0007 --quick --filter H128 \
    > /tmp/mc7.log 2>&1; echo "memcheck 0007 rc=$? $(grep 'ERROR SUMMARY' /tmp/mc7.log)"
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_main --quick --filter packed \
    > /tmp/mc.log 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
  timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 $B/sm90_main --quick --filter packed \
    > /tmp/rc.log 2>&1; echo "racecheck rc=$? $(grep -i 'summary' /tmp/rc.log)"
  for v in 1 0 0 1; do
    JAX_MEA_SM90_PACK=$v timeout 60 $B/sm90_main --bench --filter " T" > /tmp/b.log 2>&1
    echo "== JAX_MEA_SM90_PACK=$v"; grep -E "^B[0-9]" /tmp/b.log
  done
  # main against 0007, each twice in both orders (5421559, H128: 0.847-0.849 ms, causal 0.474-0.476)
  for v in main 0007 0007 main; do
    : > /tmp/b1.log
    for f in "B2 S512 N32" "B2 S1024 N32" "S4096 N32 H128 bf16" "S4096 N16 H256" "B4 S4096 N32 H64 bf16"; do
      timeout 40 $B/sm90_$v --bench --filter "$f" >> /tmp/b1.log 2>&1
    done
    echo "== $v"; grep -E "^B[0-9]" /tmp/b1.log | grep -v "left1024\|softcap\|mask"
  done
  timeout 120 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section SchedulerStats --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis \
    -k regex:AttentionFwdSm90 --launch-skip 30 --launch-count 1 \
    $B/sm90_main --bench --filter "B2 S512 N32" > "$OUT/ncu_s512.log" 2>&1; echo "ncu s512 rc=$?"
  grep -E "Duration|Throughput|Eligible|Issue Slots|Warp Cycles|Waves|Achieved" "$OUT/ncu_s512.log" | head -n 30
  echo "end at $((SECONDS - T0))s"
  exit 0
fi

if [ "$PART" = dec ]; then
  timeout 120 $B/dc_0007 --small > /tmp/d7.log 2>&1; echo "dc_0007 --small rc=$?"; tail -n 1 /tmp/d7.log
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/dc_0007 --small > /tmp/dm7.log 2>&1
  echo "memcheck 0007 rc=$? $(grep 'ERROR SUMMARY' /tmp/dm7.log)"
  SH="B1 S4096 N16/4 H128/128 cap+64,B1 S4096 N32/8 H128/128 cap+64,B1 S1024 N16/4 H128/128 cap+64"
  SH="$SH,B1 S32768 N16/4 H128/128 cap+64,B1 S32768 N32/8 H128/128 cap+64,B8 S4096 N16/4 H128/128 cap+64"
  SH="$SH,B8 S1024 N16/4 H128/128 cap+64,B32 S2048 N16/4 H128/128 cap+64,B8 S4096 N32/8 H128/128 lens"
  for round in 1 2; do
    for v in main 0007 0007 main; do
      timeout 60 $B/dc_$v --bench --filter "$SH" > /tmp/db.log 2>&1
      echo "== $v round $round"; grep -E "^B[0-9]+ S[0-9]+ N[0-9/]+ H128/128 (cap\+[0-9]+|lens) +mma" \
        /tmp/db.log | sed 's/ mma-tma cfg3 warps8 stages3 tile128 smem197K 1\/SM//'
    done
  done
  echo "end at $((SECONDS - T0))s"
  exit 0
fi

if [ "$PART" = bwd ]; then
  timeout 120 $B/bwd_check --warps4 > "$OUT/bwd_warps4.log" 2>&1; echo "bwd_check --warps4 rc=$?"
  grep -E "FAIL" "$OUT/bwd_warps4.log" | head; tail -n 1 "$OUT/bwd_warps4.log"
  timeout 120 compute-sanitizer --tool racecheck --error-exitcode 1 $B/bwd_check --warps4 --quick \
    > /tmp/r4.log 2>&1; echo "racecheck warps4 rc=$? $(grep -i 'summary' /tmp/r4.log)"
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $B/bwd_check --warps4 --quick \
    > /tmp/m4.log 2>&1; echo "memcheck warps4 rc=$? $(grep 'ERROR SUMMARY' /tmp/m4.log)"
  timeout 100 $B/bwd_check --bench > "$OUT/bwd_bench.log" 2>&1; echo "bwd_check --bench rc=$?"
  grep -E "^B|4 warps|unordered" "$OUT/bwd_bench.log"
  timeout 200 ncu --clock-control none --kill yes --set full --import-source yes \
    -k regex:BwdKernel --launch-skip 2 --launch-count 1 -o "$OUT/bwd" \
    $B/bwd_check --bench > /tmp/ncu.log 2>&1; echo "ncu rc=$?"; tail -n 3 /tmp/ncu.log
  # Per-SASS-line counters (issued instructions, stall samples), as CSV; the largest first.
  ncu --import "$OUT/bwd.ncu-rep" --page source --csv --print-source sass > "$OUT/bwd_sass.csv" 2>&1
  echo "source page rc=$? ($(wc -l < "$OUT/bwd_sass.csv") lines)"; head -n 3 "$OUT/bwd_sass.csv"
  python3 - "$OUT/bwd_sass.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = next((i for i, r in enumerate(rows) if any("Source" in c for c in r)), None)
if head is None:
    sys.exit("no header")
h = rows[head]
def col(name):
    return next((i for i, c in enumerate(h) if name in c), None)
src, samp, inst = col("Source"), col("Warp Stall Sampling (All"), col("Instructions Executed")
def num(r, i):
    try:
        return float(r[i].replace(",", ""))
    except (TypeError, ValueError, IndexError):
        return 0.0
body = rows[head + 1:]
for key, label in ((samp, "stall samples"), (inst, "instructions executed")):
    if key is None:
        continue
    total = sum(num(r, key) for r in body) or 1
    print(f"== top 40 SASS lines by {label} (total {total:.0f})")
    for r in sorted(body, key=lambda r: -num(r, key))[:40]:
        print(f"{100 * num(r, key) / total:5.1f}%  {r[src][:110]}")
PY
  echo "end at $((SECONDS - T0))s"
  exit 0
fi
echo "usage: $0 fwd|dec|bwd"; exit 2
