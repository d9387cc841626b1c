#!/usr/bin/env bash
# Builds tools/decode_check (the split-KV decode kernel's check and benchmark)
# with nvcc; the CPU kernel (the reference) and the decode planner are compiled by
# the host compiler.
#   tools/build_decode_check.sh [output dir, default build/decode_check] [arch, default 90]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/decode_check}
ARCH=${2:-90}
NVCC=${NVCC:-nvcc}
CXX=${CXX:-g++}
mkdir -p "$OUT"
INC="-Icuda -Icuda/include"
NVFLAGS="-std=c++17 -O3 -arch=sm_${ARCH} --expt-relaxed-constexpr -lineinfo $INC ${NVFLAGS_EXTRA:-}"
pids=()
for f in cuda/kernels/decode*.cu tools/decode_check.cu; do
  o="$OUT/$(basename "${f%.cu}").o"
  $NVCC $NVFLAGS -c "$f" -o "$o" &
  pids+=($!)
done
# No -march=native: the binary may run on another x86-64 machine.
for f in cuda/cpu/attention_cpu.cc cuda/kernels/decode_plan.cc; do
  $CXX -std=c++17 -O3 -fopenmp-simd -fno-math-errno $INC -c "$f" -o "$OUT/$(basename "${f%.cc}").o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
$NVCC -arch=sm_${ARCH} "$OUT"/*.o -o "$OUT/decode_check" -lpthread
echo "built $OUT/decode_check"
