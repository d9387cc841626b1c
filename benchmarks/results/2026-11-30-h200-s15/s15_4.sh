#!/usr/bin/env bash
# Session 15, run 4: the sm_90a forward's O through shared memory and a TMA store
# (issue 15 item 4). .probe/bin: sm90_main / kernel_check_main (main f7e17a8), sm90_check /
# kernel_check (the tree). Checks, memcheck, A/B bench (alternating), then prefill.py's
# whole table in both dtypes, two alternating rounds, with the extension built from the tree.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; B=.probe/bin
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1
  echo "build rc=$?" >> "$OUT/build.log" ) &
bp=$!
timeout 150 $B/sm90_check > "$OUT/sm90_check.log" 2>&1; echo "sm90_check rc=$? ($((SECONDS-T0))s)"
grep -E "^FAIL" "$OUT/sm90_check.log" | head; tail -n 1 "$OUT/sm90_check.log"
for f in --pingpong --simple; do
  timeout 60 $B/sm90_check --quick $f > /tmp/q.log 2>&1; echo "sm90_check --quick $f rc=$?"; tail -n 1 /tmp/q.log
done
timeout 60 $B/kernel_check --quick > /tmp/kc.log 2>&1; echo "kernel_check rc=$?"; tail -n 1 /tmp/kc.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $B/sm90_check --quick > /tmp/mc.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log)"
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $B/sm90_check --quick --filter H128 > /tmp/rc.log 2>&1
echo "racecheck rc=$? $(grep 'ERROR SUMMARY' /tmp/rc.log)"
for v in sm90_main sm90_check sm90_check sm90_main; do
  timeout 60 $B/$v --bench > /tmp/b.log 2>&1; echo "== $v"; grep -E "^B[0-9]" /tmp/b.log | head -n 12
done
wait $bp; tail -n 1 "$OUT/build.log"
timeout $((590 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward --rounds 2 \
  --dtypes bfloat16,float16 --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((560 - SECONDS + T0)) > "$OUT/prefill.log" 2>&1
echo "prefill rc=$?"; grep -A12 "^case" "$OUT/prefill.log"; tar czf "$OUT/pf.tgz" -C "$OUT" pf; rm -rf "$OUT/pf"
echo "end at $((SECONDS - T0))s"
