// The instantiation table of the tensor-core decode kernel, included once per
// element type by decode_mma_{bf16,f16}.cu (two files so they compile in parallel).
#pragma once

#include "kernels/decode_kernels.cuh"
#include "kernels/decode_mma.cuh"

namespace jax_mea::cuda::decode_impl {

template <typename T, int HP, int HVP, int NW, int BUDGET_KB, bool TMA = false>
KernelHandle MakeMmaHandle() {
  using Cfg = MmaConfig<HP, HVP, NW, BUDGET_KB, TMA>;
  KernelHandle h;
  h.func = reinterpret_cast<const void*>(&DecodeMmaKernel<T, HP, HVP, NW, BUDGET_KB, TMA>);
  h.smem_bytes = Cfg::kSmemBytes;
  h.rows_per_block = kMmaRows;
  h.threads = Cfg::kNumThreads;
  h.tile_keys = Cfg::kTileKeys;
  h.stages = Cfg::kStages;
  h.tma = TMA;
  return h;
}

template <typename T>
bool MmaKernel(int hp, int hvp, int config, KernelHandle* h) {
#define JAX_MEA_DECODE_CASE(A, B, NW, KB, ...)         \
  if (hp == A && hvp == B) {                             \
    *h = MakeMmaHandle<T, A, B, NW, KB, ##__VA_ARGS__>(); \
    return true;                                         \
  }
#define JAX_MEA_DECODE_PAIRS(NW, KB)   \
  JAX_MEA_DECODE_CASE(32, 32, NW, KB)   \
  JAX_MEA_DECODE_CASE(64, 64, NW, KB)   \
  JAX_MEA_DECODE_CASE(128, 128, NW, KB) \
  JAX_MEA_DECODE_CASE(192, 128, NW, KB) \
  JAX_MEA_DECODE_CASE(192, 192, NW, KB) \
  JAX_MEA_DECODE_CASE(256, 256, NW, KB)
  if (config == 0) {
    JAX_MEA_DECODE_PAIRS(4, 112)
  }
  if (config == 1) {
    JAX_MEA_DECODE_PAIRS(4, 220)
  }
  if (config == 2) {
    JAX_MEA_DECODE_CASE(64, 64, 8, 220)
    JAX_MEA_DECODE_CASE(128, 128, 8, 220)
    JAX_MEA_DECODE_CASE(192, 128, 8, 220)
  }
  if (config == 3) {
    JAX_MEA_DECODE_CASE(64, 64, 8, 220, true)
    JAX_MEA_DECODE_CASE(128, 128, 8, 220, true)
    JAX_MEA_DECODE_CASE(192, 128, 8, 220, true)
  }
#undef JAX_MEA_DECODE_PAIRS
#undef JAX_MEA_DECODE_CASE
  return false;
}

}  // namespace jax_mea::cuda::decode_impl
