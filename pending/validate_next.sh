#!/usr/bin/env bash
# The next session's first device calls (written at the end of session 15, which had no
# device time left). Build here first (2-core machine, ~5 minutes):
#
#   cmake -S . -B build/cuda -G Ninja -DJAX_MEA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#     -DJAX_MEA_NATIVE_TESTS=ON -DJAX_MEA_NATIVE_ARCH=OFF
#   ninja -C build/cuda sm90_check kernel_check bwd_check
#   mkdir -p .probe/bin && cp build/cuda/tests/native/{sm90_check,kernel_check,bwd_check} .probe/bin/
#
# device: bash pending/validate_next.sh fwd   (carry .probe/bin; ~4 minutes)
#   issue 15: the packed sm_90a instances as landed (11ab08b: a kPacked template
#   flag; session 15 ran the same logic chosen at run time, not these instances):
#   every packed case, memcheck and racecheck; packed against JAX_MEA_SM90_PACK=0;
#   then where a short sequence's time goes (S = 512 runs at 0.66x cuDNN): the
#   bench's S512 / S1024 rows and an ncu of the S512 launch.
#         bash pending/validate_next.sh bwd   (carry .probe/bin; ~3 minutes)
#   issue 14: ncu of the backward's main kernel with source counters (the build has
#   -lineinfo): which SASS lines issue and stall most (HMMA is ~11% of its 1.57 G
#   issued instructions at H128; session 15, run 1).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PART=${1:-fwd}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$SECONDS
B=.probe/bin

if [ "$PART" = fwd ]; then
  timeout 60 $B/sm90_check --filter packed > "$OUT/packed.log" 2>&1; echo "sm90_check packed rc=$?"
  grep -E "^FAIL" "$OUT/packed.log" | head; tail -n 1 "$OUT/packed.log"
  timeout 60 $B/sm90_check --quick > /tmp/q.log 2>&1; echo "sm90_check --quick rc=$?"; tail -n 1 /tmp/q.log
  timeout 60 $B/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check rc=$?"; tail -n 1 /tmp/kc.log
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick --filter packed \
    > /tmp/mc.log 2>&1; echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
  timeout 90 compute-sanitizer --tool racecheck --error-exitcode 1 $B/sm90_check --quick --filter packed \
    > /tmp/rc.log 2>&1; echo "racecheck rc=$? $(grep -i 'summary' /tmp/rc.log)"
  for v in 1 0 0 1; do
    JAX_MEA_SM90_PACK=$v timeout 60 $B/sm90_check --bench --filter " T" > /tmp/b.log 2>&1
    echo "== JAX_MEA_SM90_PACK=$v"; grep -E "^B[0-9]" /tmp/b.log
  done
  timeout 60 $B/sm90_check --bench --filter "S4096 N32 H128 bf16" > /tmp/b.log 2>&1
  echo "== H128 (5421559: 0.847-0.849 ms, causal 0.474-0.476)"; grep -E "^B[0-9]" /tmp/b.log | head -n 2
  timeout 60 $B/sm90_check --bench --filter "B2 S512 N32" > /tmp/b1.log 2>&1
  timeout 60 $B/sm90_check --bench --filter "B2 S1024 N32" >> /tmp/b1.log 2>&1
  echo "== short sequences"; grep -E "^B[0-9]" /tmp/b1.log
  timeout 120 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section SchedulerStats --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis \
    -k regex:AttentionFwdSm90 --launch-skip 30 --launch-count 1 \
    $B/sm90_check --bench --filter "B2 S512 N32" > "$OUT/ncu_s512.log" 2>&1; echo "ncu s512 rc=$?"
  grep -E "Duration|Throughput|Eligible|Issue Slots|Warp Cycles|Waves|Achieved" "$OUT/ncu_s512.log" | head -n 30
  echo "end at $((SECONDS - T0))s"
  exit 0
fi

if [ "$PART" = bwd ]; then
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
echo "usage: $0 fwd|bwd"; exit 2
