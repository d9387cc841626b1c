// Instantiations of the SIMT decode kernel (see decode_simt.cuh).
#include "kernels/decode_kernels.cuh"
#include "kernels/decode_simt.cuh"

namespace jax_mea::cuda::decode_impl {

namespace {
template <typename T, int DJ>
KernelHandle Make() {
  return {reinterpret_cast<const void*>(&DecodeSimtKernel<T, DJ>), SimtConfig<DJ>::kSmemBytes,
          kSimtRows, kThreads, kWarps * SimtConfig<DJ>::kU};
}

template <typename T>
bool Pick(int dj, KernelHandle* h) {
  switch (dj) {
    case 2: *h = Make<T, 2>(); return true;
    case 4: *h = Make<T, 4>(); return true;
    case 8: *h = Make<T, 8>(); return true;
    default: return false;
  }
}
}  // namespace

bool SimtKernel(DType dtype, int dj, KernelHandle* h) {
  switch (dtype) {
    case DType::kFloat32: return Pick<float>(dj, h);
    case DType::kFloat16: return Pick<__half>(dj, h);
    case DType::kBFloat16: return Pick<__nv_bfloat16>(dj, h);
  }
  return false;
}

}  // namespace jax_mea::cuda::decode_impl
