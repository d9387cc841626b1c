// Declarations of the attention forward instantiations: two per FWD row of the
// head-dim table (kernels/head_dims.h), each row compiled in its own file that
// CMakeLists.txt generates (attention_fwd_<HP>x<HVP>.cu), and the float32 kernel
// (attention_fwd_f32.cu); attention_fwd.cu picks one.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "jax_mea/params.h"
#include "kernels/head_dims.h"

namespace jax_mea::cuda {

// Tensor-core kernel for head dims padded to kD x kDv (defined in attention_fwd.cuh).
template <typename T, int kD, int kDv>
cudaError_t RunFwd(const AttentionParams& p, cudaStream_t stream);

// The instances of one row (PREFIX: `extern` for the declarations, empty in the
// generated file that defines them).
#define JAX_MEA_FWD_INSTANCES(PREFIX, HP, HVP)                                                 \
  PREFIX template cudaError_t RunFwd<__half, HP, HVP>(const AttentionParams&, cudaStream_t); \
  PREFIX template cudaError_t RunFwd<__nv_bfloat16, HP, HVP>(const AttentionParams&, cudaStream_t);
#define JAX_MEA_FWD_EXTERN_1(HP, HVP) JAX_MEA_FWD_INSTANCES(extern, HP, HVP)
#define JAX_MEA_FWD_EXTERN_0(HP, HVP)
#define JAX_MEA_FWD_EXTERN(HP, HVP, FWD, ...) JAX_MEA_FWD_EXTERN_##FWD(HP, HVP)
JAX_MEA_HEAD_DIMS(JAX_MEA_FWD_EXTERN)
#undef JAX_MEA_FWD_EXTERN

// float32 SIMT kernel, any head dims up to kMaxHeadSize (attention_fwd_f32.cu).
cudaError_t LaunchAttentionForwardF32(const AttentionParams& p, cudaStream_t stream);

}  // namespace jax_mea::cuda
