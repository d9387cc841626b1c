set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s20; mkdir -p $D
for f in .probe/s20/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
nvidia-smi --query-gpu=name --format=csv,noheader
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
timeout 60 $D/bwd --quick > "$OUT/bwd_quick.log" 2>&1; echo "bwd --quick rc=$? $(tail -n 1 $OUT/bwd_quick.log)"
grep -B3 FAIL "$OUT/bwd_quick.log" | head -40
timeout 120 $D/bwd > "$OUT/bwd_check.log" 2>&1; echo "bwd_check rc=$? $(tail -n 1 $OUT/bwd_check.log)"
JAX_MEA_SM90_BACKWARD=0 timeout 60 $D/bwd --quick > "$OUT/bwd_quick_sm80.log" 2>&1; echo "sm80 --quick rc=$? $(tail -n 1 $OUT/bwd_quick_sm80.log)"
timeout 120 $D/bwd --bench "B2 S4096 N32" > "$OUT/bwd_bench.log" 2>&1; cut -c1-120 "$OUT/bwd_bench.log"
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd --quick > /tmp/m.log 2>&1
echo "memcheck rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"; grep -m 5 -A5 "Invalid\|Error" /tmp/m.log | head -30
timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd --quick > /tmp/r.log 2>&1
echo "racecheck rc=$? $(grep -i 'summary' /tmp/r.log)"
timeout 100 compute-sanitizer --tool synccheck --error-exitcode 1 $D/bwd --quick > /tmp/s.log 2>&1
echo "synccheck rc=$? $(grep -i 'summary' /tmp/s.log)"
cp /tmp/m.log "$OUT/memcheck.log"
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc; tail -n 5 /tmp/build.log
timeout $((570 - SECONDS + T0)) python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py \
  tests/test_cuda_backward_optin.py tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 8
echo "end at $((SECONDS - T0))s"
