#!/usr/bin/env bash
# The short GPU call, for a session with little device time left (one call of a
# few minutes): tools/gpu_check.sh's checks cut to the decode path.
#   1. decode_check (tests/native), built on this machine beforehand through CMake
#      and carried (`cmake -S . -B build/dc -DJAX_MEA_CUDA=ON -DJAX_MEA_NATIVE_TESTS=ON
#      -DJAX_MEA_NATIVE_ARCH=OFF -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build/dc
#      --target decode_check`; device tool: carry ["build/dc/tests/native/decode_check"]):
#      every case, then --small under memcheck, then --bench --filter on the named
#      kernel shapes;
#   2. meanwhile jax-mea builds for sm_90 only, in the background;
#   3. the decode-path GPU tests through JAX (command buffers included);
#   4. benchmarks/decode.py on the named shapes against the named peers.
# Stages stop at a deadline (DEADLINE seconds from the start, default 540) so
# that the logs come back inside the call.
#
#   bash tools/gpu_quick.sh "<kernel shapes, comma separated>" "<decode.py --only parts>"
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu_quick}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
KSHAPES=${1:-"B1 S1024 N32/8 H128/128,B1 S32768 N32/8 H128/128"}
ONLY=${2:-"B1 S1024,B1 S32768"}
CONTENDERS=${CONTENDERS:-jax_mea,jax-cudnn,torch-cudnn}
DEADLINE=${DEADLINE:-540}
DC=build/dc/tests/native/decode_check
summary=()

stage() {  # name log limit command...: runs it under the smaller of limit and the deadline
  local name=$1 log=$2 limit=$3; shift 3
  local left=$((DEADLINE - SECONDS - 5))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    summary+=("$(printf '%-12s skipped (deadline)' "$name")")
    return
  fi
  local t0=$SECONDS
  echo "=== $name: $* (limit ${limit}s)" | tee -a "$OUT/$log"
  timeout "$limit" "$@" >> "$OUT/$log" 2>&1
  local rc=$?
  tail -n 12 "$OUT/$log"
  summary+=("$(printf '%-12s rc=%-4s %4ss' "$name" "$rc" $((SECONDS - t0)))")
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/check.log"
[ "${JAX:-1}" != 0 ] && ( JAX_MEA_CUDA=ON CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    nice python3 -m pip install --no-build-isolation --no-deps -q -e . > "$OUT/jax.log" 2>&1
  echo "build rc=$?" >> "$OUT/jax.log" ) &
build_pid=$!

stage kbench kbench.log 120 "$DC" --bench --filter "$KSHAPES"
stage check check.log 300 "$DC"
[ "${MEMCHECK:-1}" != 0 ] && stage memcheck check.log 150 compute-sanitizer --tool memcheck --error-exitcode 1 "$DC" --small
if [ "${JAX:-1}" = 0 ]; then  # JAX=0: the kernel stages only
  printf '%s\n' "${summary[@]}"; grep -E "cases passed|ERROR SUMMARY" "$OUT/check.log"; exit 0
fi
t0=$SECONDS  # the build, waited for until a minute before the deadline
while kill -0 "$build_pid" 2>/dev/null && [ "$SECONDS" -lt $((DEADLINE - 60)) ]; do sleep 2; done
summary+=("$(printf '%-12s %s %4ss' build "$(grep -o 'build rc=[0-9]*' "$OUT/jax.log" || echo 'not finished')" $((SECONDS - t0)))")
stage tests jax.log 180 python3 -m pytest tests/test_gpu_large.py tests/test_decode.py -q -x \
  -p no:cacheprovider -n 8
stage bench decode.log 200 python3 benchmarks/decode.py --grid small --only "$ONLY" \
  --contenders "$CONTENDERS" --out "$OUT"

echo "=== summary ($(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
printf '%s\n' "${summary[@]}"
grep -E "cases passed|ERROR SUMMARY" "$OUT/check.log"
grep -E "passed|failed" "$OUT/jax.log" | tail -n 2
