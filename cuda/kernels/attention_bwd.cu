// Attention backward dispatcher (see attention_bwd.cuh): dtype and
// head dims -> one compiled instance, for the BWD rows of the head-dim table
// (kernels/head_dims.h); on Hopper, the sm_90a main kernel where it takes the call
// (attention_bwd_sm90.cuh). float32 and additive masks are not taken here (Python
// lowers them in XLA, jax_mea/_unfused.py).
#include <climits>
#include <cstdlib>
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

// workspace.h's dq_stride, max(H, Hv) rounded up to 64, is the head dim of the BWD
// row that takes (H, Hv) while the rows are square multiples of 64 with none
// skipped (64, 128); RunBwd refuses a call where it is not.
#define JAX_MEA_BWD_ROW_SQUARE(HP, HVP, FWD, DEC, DEC8, SIMT, BWD, SM90) \
  &&(!(BWD) || ((HP) == (HVP) && (HP) % 64 == 0))
static_assert(true JAX_MEA_HEAD_DIMS(JAX_MEA_BWD_ROW_SQUARE), "square BWD rows of 64 columns");
#undef JAX_MEA_BWD_ROW_SQUARE

template <typename T>
cudaError_t DispatchBwd(const AttentionBackwardParams& p, void* workspace, cudaStream_t stream) {
  const bool sm90 = BwdTakesSm90(p);
  cudaError_t err = cudaErrorInvalidValue;  // no row holds (H, Hv)
  BwdRowSwitch(p.fwd.head_size, p.fwd.v_head_size, [&](auto row) {
    using Row = decltype(row);
    err = RunBwd<T, Row::kHP, Row::kHVP>(p, workspace, stream, BwdLaunches::kAll,
                                         /*allow_split=*/true, kBwdHeadGroup, sm90);
  });
  return err;
}

}  // namespace

bool Sm90BackwardEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("JAX_MEA_SM90_BACKWARD");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

bool BwdTakesSm90(const AttentionBackwardParams& bp) {
#if defined(JAX_MEA_HAVE_SM90_FORWARD)
  return Sm90BackwardEnabled() && CurrentDeviceMajor() == 9 && BwdSm90Unsupported(bp).empty();
#else
  (void)bp;
  return false;
#endif
}

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
  if (!BwdGridOf(f).ok()) {
    return "too many query rows or key blocks (batch * heads * q_len / 8 and batch * kv heads"
           " * kv_len / 128 must stay below 2^31)";
  }
  return {};
}

cudaError_t LaunchAttentionBackward(const AttentionBackwardParams& p, void* workspace,
                                    cudaStream_t stream) {
  const AttentionParams& f = p.fwd;
  if (f.batch == 0 || f.num_heads == 0 || f.num_kv_heads == 0) return cudaSuccess;
  switch (f.dtype) {
    case DType::kFloat16: return DispatchBwd<__half>(p, workspace, stream);
    case DType::kBFloat16: return DispatchBwd<__nv_bfloat16>(p, workspace, stream);
    case DType::kFloat32: break;
  }
  return cudaErrorInvalidValue;
}

}  // namespace jax_mea::cuda
