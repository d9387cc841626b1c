#!/usr/bin/env bash
# session 16 run 3: the persistent forward as it lands (two consumer warpgroups only):
# checks and sanitizers; the extension built from the tree; GPU pytest; issue 15's
# sequence table (prefill.py, as session 15's run 5).
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS
D=.probe/s16c
(JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
  python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/build.log" 2>&1; echo "build rc=$? ($((SECONDS-T0))s)" > /tmp/build_rc) &
BUILD=$!
timeout 60 $D/sm90_check --quick > /tmp/q.log 2>&1; echo "sm90_check --quick rc=$?"; tail -n 1 /tmp/q.log; grep -c persistent3 /tmp/q.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/sm90_check --quick --filter persistent3 > /tmp/mc.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/mc.log) $(tail -n 1 /tmp/mc.log)"
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/sm90_check --quick --filter persistent3 > /tmp/rc.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/rc.log) $(tail -n 1 /tmp/rc.log)"
wait $BUILD; cat /tmp/build_rc
timeout 150 python3 -m pytest -q -x tests/test_dot_product_attention.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? ($((SECONDS-T0))s)"; tail -n 2 "$OUT/pytest.log"
timeout $((590 - SECONDS + T0)) python3 benchmarks/prefill.py --passes forward --rounds 2 \
  --seqs 512,1024,2048,4096,8192,16384 --only "N32 H128" --dtypes bfloat16,float16 \
  --contenders jax_mea,jax-cudnn,torch-cudnn --out "$OUT/pf" \
  --budget-s $((560 - SECONDS + T0)) > "$OUT/prefill_seqs.log" 2>&1
echo "prefill rc=$?"; grep -A16 "^case" "$OUT/prefill_seqs.log"; tar czf "$OUT/pf.tgz" -C "$OUT" pf; rm -rf "$OUT/pf"
echo "end at $((SECONDS - T0))s"
