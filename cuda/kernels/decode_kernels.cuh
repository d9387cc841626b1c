// Internal to the decode kernels: how decode.cu finds a compiled kernel. Each
// decode_*.cu file instantiates its kernels and returns them as KernelHandles,
// so the instantiations compile in parallel and decode.cu stays host code.
#pragma once

#include <cuda_runtime.h>

#include "jax_mea/params.h"
#include "kernels/head_dims.h"

namespace jax_mea::cuda::decode_impl {

struct KernelHandle {
  const void* func = nullptr;  // __global__ void(const AttentionParams, const DecodeArgs)
  int smem_bytes = 0;          // dynamic shared memory per CTA
  int rows_per_block = 0;
  int threads = 0;             // per CTA
  int tile_keys = 0;           // keys per pipeline step (the split granularity)
  int stages = 0;              // cp.async pipeline depth (MMA kernel; 0: SIMT)
  int config = -1;             // MMA configuration that was picked (-1: SIMT)
  bool tma = false;            // K / V through tensor maps (DecodeArgs::tmap_k, tmap_v)
  int key_elems = 0;           // K and V elements one key costs (padded head dims; 0: H + Hv)
  bool spread_merge = false;   // has the spread merge's code (DecodeArgs::spread_merge)
  int cluster_smem_bytes = 0;  // smem_bytes of a launch that merges in clusters (with
                               // ClusterRecv past the rest; 0: never merges in clusters)
};

// MMA kernel configurations (warps per CTA, shared-memory budget per CTA):
//   0: 4 warps, 112 KB (two CTAs per SM on sm_90, fits sm_80)
//   1: 4 warps, 220 KB (one CTA per SM, deeper pipeline; sm_90 only)
//   2: 8 warps, 220 KB (the DEC8 rows of the head-dim table only; sm_90 only)
//   3: 8 warps, 150 KB, K / V tiles by the copy engine (TMA, tensor maps; sm_90 only;
//      fewer stages than 220 KB would hold: faster where other kernels run between two
//      calls, as in a model; RESULTS.md, session 25)
constexpr int kNumMmaConfigs = 4;

// The MMA kernel of head sizes (h, hv) in `config`: the first DEC row of the
// head-dim table that holds them. False where `config` does not have that row.
// T: __nv_bfloat16 or __half (instantiated in decode_mma_{bf16,f16}.cu).
template <typename T>
bool MmaKernel(int h, int hv, int config, KernelHandle* out);
// The SIMT kernel for max(H, Hv) = d: the first SIMT row that holds it.
bool SimtKernel(DType dtype, int d, KernelHandle* out);

}  // namespace jax_mea::cuda::decode_impl
