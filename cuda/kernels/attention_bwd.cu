// Attention backward dispatcher (see attention_bwd.cuh): dtype and
// head dims -> one compiled instance, for the BWD rows of the head-dim table
// (kernels/head_dims.h). float32 and additive masks are not taken here (Python
// lowers them in XLA, jax_mea/_unfused.py).
#include <climits>
#include <string>

#include "kernels/attention.h"
#include "kernels/attention_bwd.cuh"

namespace jax_mea::cuda {
namespace {

// The BWD row that holds (H, Hv), if any: fn(row) on it.
template <typename Fn>
bool BwdRowSwitch(int h, int hv, Fn&& fn) {
  return HeadDimSwitch(h, hv, [&](auto row) {
    if constexpr (decltype(row)::kBwd) {
      fn(row);
      return true;
    } else {
      return false;
    }
  });
}

template <typename T>
cudaError_t DispatchBwd(const AttentionBackwardParams& p, float* delta, cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;  // no row holds (H, Hv)
  BwdRowSwitch(p.fwd.head_size, p.fwd.v_head_size, [&](auto row) {
    using Row = decltype(row);
    err = RunBwd<T, Row::kHP, Row::kHVP>(p, delta, stream);
  });
  return err;
}

}  // namespace

std::string AttentionBackwardUnsupported(const AttentionBackwardParams& p) {
  const AttentionParams& f = p.fwd;
  if (f.dtype == DType::kFloat32) return "the CUDA backward kernel takes float16 / bfloat16 only";
  if (f.mask_kind == MaskKind::kAdditive || p.dmask != nullptr) {
    return "the CUDA backward kernel does not compute an additive mask's gradient";
  }
  if (f.head_size < 0 || f.v_head_size < 0 ||
      !BwdRowSwitch(f.head_size, f.v_head_size, [](auto) {})) {
    return "no backward kernel instance holds head sizes q/k " + std::to_string(f.head_size) +
           ", v " + std::to_string(f.v_head_size);
  }
  const int64_t blocks = static_cast<int64_t>((f.q_len + 15) / 16) * f.num_heads * f.batch;
  const int64_t kv_blocks =
      static_cast<int64_t>((f.kv_capacity + 15) / 16) * f.num_kv_heads * f.batch;
  if (blocks > INT_MAX || kv_blocks > INT_MAX) {
    return "too many query or key blocks (batch * heads * length / 16 must stay below 2^31)";
  }
  return {};
}

cudaError_t LaunchAttentionBackward(const AttentionBackwardParams& p, void* workspace,
                                    cudaStream_t stream) {
  const AttentionParams& f = p.fwd;
  if (f.batch == 0 || f.num_heads == 0 || f.num_kv_heads == 0) return cudaSuccess;
  float* delta = static_cast<float*>(workspace);
  switch (f.dtype) {
    case DType::kFloat16: return DispatchBwd<__half>(p, delta, stream);
    case DType::kBFloat16: return DispatchBwd<__nv_bfloat16>(p, delta, stream);
    case DType::kFloat32: break;
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_mea::cuda
