// Instantiations of the tensor-core decode kernel for __nv_bfloat16 (see decode_mma.cuh).
#include "kernels/decode_mma_instances.cuh"

namespace jax_mea::cuda::decode_impl {
template bool MmaKernel<__nv_bfloat16>(int hp, int hvp, int config, KernelHandle* h);
}  // namespace jax_mea::cuda::decode_impl
