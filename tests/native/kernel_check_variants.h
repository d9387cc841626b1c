// Tile-configuration variants for kernel_check --bench (kernel_check_variants.cu).
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "jax_mea/params.h"

namespace jax_mea::cuda {

struct FwdVariant {
  const char* name;
  int head_size, v_head_size;  // padded dims of the instance
  cudaError_t (*launch)(const AttentionParams&, cudaStream_t);
};

const std::vector<FwdVariant>& FwdVariants();

}  // namespace jax_mea::cuda
