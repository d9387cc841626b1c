// Attention forward instantiations for padded head dims 192 x 128 (asymmetric,
// e.g. MLA-style q/k 192 with v 128) and 192 x 192.
#include "kernels/attention_fwd.cuh"

namespace jax_mea::cuda {

template cudaError_t RunFwd<__half, 192, 128>(const AttentionParams&, cudaStream_t);
template cudaError_t RunFwd<__nv_bfloat16, 192, 128>(const AttentionParams&, cudaStream_t);
template cudaError_t RunFwd<__half, 192, 192>(const AttentionParams&, cudaStream_t);
template cudaError_t RunFwd<__nv_bfloat16, 192, 192>(const AttentionParams&, cudaStream_t);

}  // namespace jax_mea::cuda
