// Attention forward dispatcher: dtype and head dims -> one compiled instance;
// on compute capability 9.x, the sm_90a kernel where it takes the call (unless
// JAX_MEA_SM90_FORWARD=0).
//
// Tensor-core instances: the FWD rows of the head-dim table (kernels/head_dims.h),
// each for float16 and bfloat16. Any H, Hv <= kMaxHeadSize runs on the first row
// that holds both (zero-padded columns): e.g. 80 -> 96x96, (24, 8) -> 32x32,
// (48, 96) -> 96x96, (160, 100) -> 192x128, (100, 150) -> 192x192.
#include <climits>
#include <cstdlib>
#include <string>

#include "kernels/attention.h"
#include "kernels/attention_fwd_instances.h"
#include "kernels/launch_utils.h"

namespace jax_mea::cuda {
namespace {

template <typename T>
cudaError_t DispatchHeadDims(const AttentionParams& p, cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;  // no row holds (H, Hv)
  HeadDimSwitch(p.head_size, p.v_head_size, [&](auto row) {
    using Row = decltype(row);
    if constexpr (Row::kFwd) {
      err = RunFwd<T, Row::kHP, Row::kHVP>(p, stream);
      return true;
    } else {
      return false;
    }
  });
  return err;
}

}  // namespace

std::string AttentionForwardUnsupported(const AttentionParams& p) {
  if (p.head_size < 0 || p.v_head_size < 0 || p.head_size > kMaxHeadSize ||
      p.v_head_size > kMaxHeadSize) {
    return "head sizes up to " + std::to_string(kMaxHeadSize) + " are supported (got q/k " +
           std::to_string(p.head_size) + ", v " + std::to_string(p.v_head_size) + ")";
  }
  // Grid: one CTA per (batch, head, 16-row block) at the smallest block size.
  const int64_t blocks = static_cast<int64_t>((p.q_len + 15) / 16) * p.num_heads * p.batch;
  if (blocks > INT_MAX) {
    return "too many query blocks (batch * heads * q_len / 16 must stay below 2^31)";
  }
  return {};
}

cudaError_t LaunchAttentionForwardSm80(const AttentionParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::kFloat16: return DispatchHeadDims<__half>(p, stream);
    case DType::kBFloat16: return DispatchHeadDims<__nv_bfloat16>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

bool Sm90ForwardEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("JAX_MEA_SM90_FORWARD");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

cudaError_t LaunchAttentionForward(const AttentionParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.num_heads == 0 || p.q_len == 0 || p.v_head_size == 0) {
    return cudaSuccess;  // empty output
  }
  if (p.dtype == DType::kFloat32) return LaunchAttentionForwardF32(p, stream);
#if defined(JAX_MEA_HAVE_SM90_FORWARD)
  if (Sm90ForwardEnabled() && CurrentDeviceMajor() == 9 && Sm90ForwardUnsupported(p).empty()) {
    const cudaError_t err = LaunchAttentionForwardSm90(p, stream);
    if (err != cudaErrorNotSupported) return err;
  }
#endif
  return LaunchAttentionForwardSm80(p, stream);
}

}  // namespace jax_mea::cuda
