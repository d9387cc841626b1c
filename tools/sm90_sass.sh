#!/usr/bin/env bash
# The order of events in one sm_90a forward instance's SASS: HGMMA issues, wgmma waits
# (WARPGROUP.DEPBAR), softmax instructions, barriers and branches, runs of the same
# kind merged ("HGMMA.64x128x16.F32.BF16:8(a7f0)": 8 in a row from address a7f0).
# It shows where ptxas put each wait relative to the arithmetic. In session 14 this
# showed the wait for P V hoisted above the softmax (benchmarks/RESULTS.md).
# No GPU needed: nvcc compiles the one instance, cuobjdump reads it.
#
#   bash tools/sm90_sass.sh [T H HV CONSUMERS PIPELINED MASK PINGPONG]
#   default: __nv_bfloat16 128 128 2 true false false
#
# cuobjdump: $CUOBJDUMP, else on PATH, else from the CUDA toolkit (pip: nvidia-cuda-cuobjdump).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-__nv_bfloat16}; H=${2:-128}; HV=${3:-128}; WG=${4:-2}
PIPE=${5:-true}; MASK=${6:-false}; PP=${7:-false}
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/one.cu" <<CU
#include "kernels/attention_fwd_sm90.cuh"
namespace jax_mea::cuda {
template __global__ void AttentionFwdSm90Kernel<$T, $H, $HV, $WG, $PIPE, $MASK, $PP>(
    const __grid_constant__ AttentionParams, const __grid_constant__ Sm90FwdArgs);
}
CU
nvcc -Icuda -Icuda/include -O3 -DNDEBUG -std=c++17 --expt-relaxed-constexpr \
  "--generate-code=arch=compute_90a,code=[sm_90a]" -Xptxas -v -c "$tmp/one.cu" -o "$tmp/one.o" 2>&1 |
  grep -E "error|spill" | sed 's/ptxas info    ://'
"$CUOBJDUMP" -sass "$tmp/one.o" | grep -E "^\s+/\*[0-9a-f]+\*/" |
  sed -E 's/^\s*\/\*([0-9a-f]+)\*\/\s+(@!?U?P[0-9T] )?([A-Z0-9._]+).*/\1 \3/' |
  grep -E " (HGMMA|WARPGROUP|MUFU.EX2|FMNMX|F2FP|FMUL|FFMA|BAR|SHFL|BRA|SYNCS)" |
  awk '{n = $2; a = $1} n != prev {if (prev != "") printf "%s:%d(%s) ", prev, c, pa; prev = n; c = 0; pa = a}
       {c++} END {printf "%s:%d(%s)\n", prev, c, pa}' | fold -w 120
