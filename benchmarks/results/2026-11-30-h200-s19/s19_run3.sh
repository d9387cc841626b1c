#!/usr/bin/env bash
# Session 19, call 3 (issue 14). bwd_final: main at 52bb67f (the committed kernel);
# bwd_pipe2: the same with WarpMma's fragments loaded one k step ahead
# (JAX_MEA_BWD_PIPE_FRAGS, a trial). Checks of both, then through JAX: the GPU gradient
# tests and prefill.py's backward and forward + backward against jax cuDNN and torch.
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; T0=$SECONDS; D=/tmp/s19; mkdir -p $D
for f in .probe/s19/*.xz; do n=$D/$(basename "$f" .xz); xz -dc "$f" > "$n"; chmod +x "$n"; done
( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=12 \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > /tmp/build.log 2>&1
  echo "build rc=$? at $((SECONDS - T0))s" > /tmp/build.rc ) &
BUILD=$!
F="B2 S4096 N32 H128 bf16"
{ for v in final pipe2 pipe2 final; do
    echo "== $v"; timeout 60 $D/bwd_$v --bench "$F" | grep -E "^B"
  done
  for v in final pipe2; do echo "== $v all"; timeout 90 $D/bwd_$v --bench "bf16" | grep -E "^B"; done
  echo "== final unordered"; timeout 60 $D/bwd_final --bench "unordered dQ" | grep -E "unord"
} > "$OUT/bwd_bench.log" 2>&1
cut -c1-100 "$OUT/bwd_bench.log"
for v in final pipe2; do
  timeout 100 $D/bwd_$v > "$OUT/check_$v.log" 2>&1; echo "bwd_$v check rc=$? $(tail -n 1 $OUT/check_$v.log)"
  timeout 100 compute-sanitizer --tool memcheck --error-exitcode 1 $D/bwd_$v --quick > /tmp/m.log 2>&1
  echo "memcheck $v rc=$? $(grep 'ERROR SUMMARY' /tmp/m.log)"
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 1 $D/bwd_$v --quick > /tmp/r.log 2>&1
  echo "racecheck $v rc=$? $(grep -i 'summary' /tmp/r.log)"
done
echo "t=$((SECONDS - T0))s"
wait $BUILD; cat /tmp/build.rc
timeout 150 python3 -m pytest -q -p no:cacheprovider -n 8 tests/test_gradients.py \
  tests/test_cuda_backward_optin.py tests/test_backward_walk.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at $((SECONDS - T0))s"; grep -E "^FAILED|passed|failed" "$OUT/pytest.log" | tail -n 5
left=$((570 - SECONDS + T0))
timeout $left python3 benchmarks/prefill.py --passes backward,fwd+bwd --rounds 2 --only "N32 H128" \
  --contenders jax_mea,jax-cudnn,torch-flash,torch-cudnn --out "$OUT/pf" --budget-s $((left - 60)) \
  > "$OUT/prefill_bwd.log" 2>&1
echo "prefill rc=$?"; grep -A5 "^case" "$OUT/prefill_bwd.log" | cut -c1-170
echo "end at $((SECONDS - T0))s"
