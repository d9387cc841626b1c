#!/usr/bin/env bash
# The GPU check, in one call on the lent GPU machine:
#   build      pip-install jax-mea with the CUDA kernels (JAX_MEA_CUDA=ON), and the
#              standalone kernel checks (tools/build_*_check.sh)
#   kernels    the standalone checks: every CUDA kernel against the CPU kernel
#   tests      the whole pytest suite on the GPU (the CPU semantic tests + gpu-marked ones)
#   sanitizer  compute-sanitizer memcheck over the standalone checks and a pytest subset
#   kbench     tools/decode_check --bench: the decode kernel alone over its grid (events)
#   profile    Nsight Compute on the decode kernel (B1 S1024 and S32768, B16 S8192)
#   bench      benchmarks/decode.py (small grid), prefill.py, decode_model.py
#
#   bash tools/gpu_check.sh [stage ...]     (default: all, in that order)
#
# Logs go to $OUT (the device tool's output folder) or build/gpu_check; a table of
# stage results is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
JOBS=$(nproc)
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build kernels tests sanitizer kbench bench)
summary=()

run_stage() {  # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "=== $name: $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  summary+=("$(printf '%-22s rc=%-4s %5ss' "$name" "$rc" $((SECONDS - t0)))")
  return $rc
}

build() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  JAX_MEA_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=$JOBS \
    python3 -m pip install --no-build-isolation --no-deps -q -v -e . 2>&1 | grep -E "ptxas|error|warning|jax-mea" | tail -n 80
  python3 -c "import jax, jax_mea; assert jax_mea.cuda_available(), 'CUDA kernels not registered'; print(jax.devices())" &&
  JOBS=$JOBS CUDA_ARCHS=90 bash tools/build_kernel_check.sh build/kernel_check &&
  bash tools/build_decode_check.sh build/decode_check 90
}

kernels() {
  build/kernel_check/kernel_check && build/decode_check/decode_check
}

sanitizer() {
  local rc=0
  compute-sanitizer --tool memcheck --error-exitcode 1 build/kernel_check/kernel_check --quick || rc=1
  compute-sanitizer --tool memcheck --error-exitcode 1 build/decode_check/decode_check --small || rc=1
  compute-sanitizer --tool memcheck --error-exitcode 1 --target-processes all \
    python3 -m pytest tests/test_decode.py -q -x -p no:cacheprovider -k "steps_match and float16" || rc=1
  return $rc
}

profile() {
  for shape in "B1 S1024 N32/8 H128/128" "B1 S32768 N32/8 H128/128" "B16 S8192 N32/8 H128/128"; do
    echo "### $shape"
    ncu --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
      --section MemoryWorkloadAnalysis -k regex:Decode --launch-skip 4 --launch-count 1 \
      build/decode_check/decode_check --bench --filter "$shape" 2>&1 | grep -v "^ *\[\|sweep\|^B[0-9]"
  done
}

for stage in "${stages[@]}"; do
  case $stage in
    build) run_stage build 600 bash -c "$(declare -f build); JOBS=$JOBS build" ;;
    kernels) run_stage kernels 600 bash -c "$(declare -f kernels); kernels" ;;
    tests) run_stage tests 480 python3 -m pytest tests -q -p no:cacheprovider -n 4 --durations=15 ;;
    sanitizer) run_stage sanitizer 600 bash -c "$(declare -f sanitizer); sanitizer" ;;
    kbench) run_stage kbench 400 build/decode_check/decode_check --bench ;;
    profile) run_stage profile 300 bash -c "$(declare -f profile); profile" ;;
    bench)
      run_stage bench_decode 400 python3 benchmarks/decode.py --grid small --out "$OUT"
      run_stage bench_prefill 300 python3 benchmarks/prefill.py --out "$OUT"
      run_stage bench_model 300 python3 benchmarks/decode_model.py --out "$OUT" ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done

echo "=== summary ($(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
printf '%s\n' "${summary[@]}"
