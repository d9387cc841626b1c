#!/usr/bin/env bash
# Builds tools/kernel_check: the CUDA kernels (cuda/kernels, not decode*) against
# the CPU kernels (cuda/cpu, g++), without jax at run time.
#   tools/build_kernel_check.sh [OUT_DIR]     (default build/kernel_check)
# Env: CUDA_ARCHS (default "90"; e.g. "80 90"), NVCC, CXX, JOBS.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/build/kernel_check}"
NVCC="${NVCC:-nvcc}"
CXX="${CXX:-g++}"
ARCHS="${CUDA_ARCHS:-90}"
JOBS="${JOBS:-$(nproc)}"
mkdir -p "$OUT/obj"

FFI_INC="${XLA_FFI_INCLUDE_DIR:-}"
if [[ -z "$FFI_INC" ]]; then
  FFI_INC="$(python3 -c 'import jax.ffi; print(jax.ffi.include_dir())' 2>/dev/null || true)"
fi
INC=(-I"$ROOT/cuda" -I"$ROOT/cuda/include")
[[ -n "$FFI_INC" ]] && INC+=(-isystem "$FFI_INC")

GENCODE=()
for a in $ARCHS; do GENCODE+=(-gencode "arch=compute_$a,code=sm_$a"); done
NVFLAGS=(-std=c++17 -O3 --expt-relaxed-constexpr -lineinfo "${GENCODE[@]}" "${INC[@]}"
         -Xcompiler -fPIC)

objs=()
pids=()
# Newest header: an object older than it or than its source is rebuilt.
NEWEST_HDR="$(find "$ROOT/cuda" "$ROOT/tools" \( -name '*.h' -o -name '*.cuh' \) -printf '%T@\n' | sort -n | tail -1)"
compile() {  # src obj cmd...
  local src="$1" obj="$2"; shift 2
  if [[ -f "$obj" && "$obj" -nt "$src" ]] && \
     awk -v a="$(stat -c %Y "$obj")" -v b="$NEWEST_HDR" 'BEGIN{exit !(a > b)}'; then
    return 0
  fi
  "$@" -c "$src" -o "$obj" || { echo "FAILED: $src" >&2; return 1; }
}
run_limited() {
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n; done
  compile "$@" &
}

for src in "$ROOT"/cuda/cpu/*.cc; do
  obj="$OUT/obj/cpu_$(basename "${src%.cc}").o"; objs+=("$obj")
  run_limited "$src" "$obj" "$CXX" -std=c++17 -O3 -fopenmp-simd -fno-math-errno -fPIC "${INC[@]}"
done
for src in "$ROOT"/cuda/kernels/*.cu "$ROOT"/tools/kernel_check*.cu; do
  base="$(basename "$src")"
  [[ "$base" == decode* ]] && continue   # the decode kernel is built and tested separately
  obj="$OUT/obj/${base%.cu}.o"; objs+=("$obj")
  run_limited "$src" "$obj" "$NVCC" "${NVFLAGS[@]}"
done
fail=0
while (( $(jobs -rp | wc -l) > 0 )); do wait -n || fail=1; done
wait || fail=1
(( fail == 0 )) || { echo "build failed" >&2; exit 1; }
"$NVCC" "${GENCODE[@]}" -o "$OUT/kernel_check" "${objs[@]}" -lpthread
echo "built $OUT/kernel_check"
