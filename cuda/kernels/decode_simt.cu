// Instantiations of the SIMT decode kernel (see decode_simt.cuh).
#include "kernels/decode_kernels.cuh"
#include "kernels/decode_simt.cuh"

namespace jax_mea::cuda::decode_impl {

namespace {
template <typename T, int DJ>
KernelHandle Make() {
  KernelHandle h;
  h.func = reinterpret_cast<const void*>(&DecodeSimtKernel<T, DJ>);
  h.smem_bytes = SimtConfig<DJ>::kSmemBytes;
  h.rows_per_block = kSimtRows;
  h.threads = kThreads;
  h.tile_keys = kWarps * SimtConfig<DJ>::kU;
  return h;
}

}  // namespace

bool SimtKernel(DType dtype, int d, KernelHandle* out) {
  return HeadDimSwitch(d, d, [&](auto row) {
    using Row = decltype(row);
    if constexpr (Row::kSimt) {
      constexpr int DJ = Row::kHP / 32;
      switch (dtype) {
        case DType::kFloat32: *out = Make<float, DJ>(); return true;
        case DType::kFloat16: *out = Make<__half, DJ>(); return true;
        case DType::kBFloat16: *out = Make<__nv_bfloat16, DJ>(); return true;
      }
    }
    return false;
  });
}

}  // namespace jax_mea::cuda::decode_impl
