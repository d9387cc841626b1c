// Attention forward instantiations for padded head dims 128 x 128 (one file per
// head-dim group so that the build compiles them in parallel).
#include "kernels/attention_fwd.cuh"

namespace jax_mea::cuda {

template cudaError_t RunFwd<__half, 128, 128>(const AttentionParams&, cudaStream_t);
template cudaError_t RunFwd<__nv_bfloat16, 128, 128>(const AttentionParams&, cudaStream_t);

}  // namespace jax_mea::cuda
