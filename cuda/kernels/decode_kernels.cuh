// Internal to the decode kernels: how decode.cu finds a compiled kernel. Each
// decode_*.cu file instantiates its kernels and returns them as KernelHandles,
// so the instantiations compile in parallel and decode.cu stays host code.
#pragma once

#include <cuda_runtime.h>

#include "jax_mea/params.h"

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
};

// MMA kernel configurations (warps per CTA, shared-memory budget per CTA):
//   0: 4 warps, 112 KB (two CTAs per SM on sm_90, fits sm_80)
//   1: 4 warps, 220 KB (one CTA per SM, deeper pipeline; sm_90 only)
//   2: 8 warps, 220 KB (padded head sizes 64, 128, 192/128 only; sm_90 only)
//   3: as 2, with K / V tiles by the copy engine (TMA, tensor maps; sm_90 only)
constexpr int kNumMmaConfigs = 4;

// Padded head sizes of the MMA kernel: each of H, Hv is padded to the next of
// 32, 64, 128, 192, 256; a pair not instantiated uses (max, max).
inline int PadHeadDim(int d) {
  return d <= 32 ? 32 : d <= 64 ? 64 : d <= 128 ? 128 : d <= 192 ? 192 : 256;
}

// False where (hp, hvp) is not instantiated for that dtype.
// T: __nv_bfloat16 or __half (instantiated in decode_mma_{bf16,f16}.cu).
template <typename T>
bool MmaKernel(int hp, int hvp, int config, KernelHandle* h);
// dj in {2, 4, 8}: the SIMT kernel for max(H, Hv) <= 32 * dj.
bool SimtKernel(DType dtype, int dj, KernelHandle* h);

}  // namespace jax_mea::cuda::decode_impl
