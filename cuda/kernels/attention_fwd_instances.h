// Declarations of the attention forward instantiations, each compiled in its own
// file (attention_fwd_hdim*.cu, attention_fwd_f32.cu); attention_fwd.cu picks one.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "jax_mea/params.h"

namespace jax_mea::cuda {

// Tensor-core kernel for head dims padded to kD x kDv (defined in attention_fwd.cuh).
template <typename T, int kD, int kDv>
cudaError_t RunFwd(const AttentionParams& p, cudaStream_t stream);

extern template cudaError_t RunFwd<__half, 32, 32>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 32, 32>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 64, 64>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 64, 64>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 96, 96>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 96, 96>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 128, 128>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 128, 128>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 192, 128>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 192, 128>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 192, 192>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 192, 192>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__half, 256, 256>(const AttentionParams&, cudaStream_t);
extern template cudaError_t RunFwd<__nv_bfloat16, 256, 256>(const AttentionParams&, cudaStream_t);

// float32 SIMT kernel, any head dims up to kMaxHeadSize (attention_fwd_f32.cu).
cudaError_t LaunchAttentionForwardF32(const AttentionParams& p, cudaStream_t stream);

}  // namespace jax_mea::cuda
