// Tile-configuration variants of the tensor-core attention forward, compiled
// into kernel_check only (kernel_check --bench times them next to the shipped
// configuration; `--bench` with --filter picks some). Not part of the library.
#include "kernels/attention_fwd.cuh"
#include "kernel_check_variants.h"

namespace jax_mea::cuda {

const std::vector<FwdVariant>& FwdVariants() {
  // Never the shipped configurations (FwdConfig): one kernel instance must live
  // in one translation unit only.
  using B = __nv_bfloat16;
  static const std::vector<FwdVariant> v = {
      {"bf16 64x64 w4 mt2 n32 qreg", 64, 64, LaunchFwdKernel<B, 64, 64, 4, 2, 32, true>},
      {"bf16 128x128 w8 mt1 n64 qreg (old default)", 128, 128,
       LaunchFwdKernel<B, 128, 128, 8, 1, 64, true>},
      {"bf16 192x128 w8 mt1 n64 qreg", 192, 128, LaunchFwdKernel<B, 192, 128, 8, 1, 64, true>},
      {"bf16 256x256 w4 mt1 n32 qsmem", 256, 256, LaunchFwdKernel<B, 256, 256, 4, 1, 32, false>},
  };
  return v;
}

}  // namespace jax_mea::cuda
