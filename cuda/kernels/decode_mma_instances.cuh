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
  h.cluster_smem_bytes = Cfg::kClusterSmemBytes;
  h.rows_per_block = kMmaRows;
  h.threads = Cfg::kNumThreads;
  h.tile_keys = Cfg::kTileKeys;
  h.stages = Cfg::kStages;
  h.tma = TMA;
  h.spread_merge = Cfg::kSpreadMerge;
  h.key_elems = HP + HVP;
  return h;
}

template <typename T>
bool MmaKernel(int h, int hv, int config, KernelHandle* out) {
  bool found = false;
  HeadDimSwitch(h, hv, [&](auto row) {
    using Row = decltype(row);
    if constexpr (!Row::kDec) {
      return false;  // not a decode row: the next one
    } else {
      constexpr int HP = Row::kHP, HVP = Row::kHVP;
      found = true;
      if (config == 0) {
        *out = MakeMmaHandle<T, HP, HVP, 4, 112>();
      } else if (config == 1) {
        *out = MakeMmaHandle<T, HP, HVP, 4, 220>();
      } else if constexpr (Row::kDec8) {
        if (config == 2) *out = MakeMmaHandle<T, HP, HVP, 8, 220>();
        // TMA: a 150 KB budget, H128 2 stages of 64 KB (133 KB of shared memory, not 197),
        // H64 4 stages of 32 KB (131 KB, not 195), 192/128 its 2 either way. As fast on
        // long streams, and faster where other kernels run between two calls, as in a
        // model (H200, --pollute: B8 S4096 N16/4 27.4 against 30.4 us, B1 S32768 N32/8
        // 43.7 against 46.7, H64 29.1 against 34.4); in the model 1-2.5% a step
        // (RESULTS.md, session 25).
        constexpr int kTmaBudgetKb = 150;
        if (config == 3) *out = MakeMmaHandle<T, HP, HVP, 8, kTmaBudgetKb, true>();
        found = config == 2 || config == 3;
      } else {
        found = false;
      }
      return true;  // the row of (h, hv), whether `config` has it or not
    }
  });
  return found;
}

}  // namespace jax_mea::cuda::decode_impl
