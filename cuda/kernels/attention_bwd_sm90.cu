// Host side of the backward's Hopper main kernel (attention_bwd_sm90.cuh): what it
// takes, its tensor maps and its launch. Compiled for sm_90a only (CMakeLists.txt);
// RunBwd (attention_bwd.cuh) calls it when BwdTakesSm90 (attention_bwd.cu).
#include <string>

#include "kernels/attention_bwd_sm90.cuh"
#include "kernels/launch_utils.h"
#include "kernels/tensor_map.h"

namespace jax_mea::cuda {

std::string BwdSm90Unsupported(const AttentionBackwardParams& bp) {
  const AttentionParams& p = bp.fwd;
  if (p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return "float16 / bfloat16 only";
  }
  // Every 64-column box of a tile at least partly in bounds: both head sizes in one
  // instance's (64 x 64 or 128 x 128) upper half. The workspace's dq_stride (max(H, Hv)
  // rounded up to 64) is then the instance's.
  auto fits = [](int d, int lo, int hi) { return d > lo && d <= hi && d % 8 == 0; };
  const bool h64 = fits(p.head_size, 0, 64) && fits(p.v_head_size, 0, 64);
  const bool h128 = fits(p.head_size, 64, 128) && fits(p.v_head_size, 64, 128);
  if (!h64 && !h128) {
    return "head sizes: multiples of 8, both up to 64 or both in (64, 128] (got q/k " +
           std::to_string(p.head_size) + ", v " + std::to_string(p.v_head_size) + ")";
  }
  if (p.q_len <= 0 || p.kv_capacity <= 0) return "empty sequences take the sm_80 kernel";
  if (!Aligned16Strided(p.q, p.q_strides) || !Aligned16Strided(p.k, p.k_strides) ||
      !Aligned16Strided(p.v, p.v_strides) || !Aligned16Strided(bp.dout, bp.dout_strides)) {
    return "q, k, v and dout need 16-byte aligned addresses and strides";
  }
  return {};
}

namespace {

template <int kHeadDim>
cudaError_t LaunchBwdMainSm90For(const AttentionBackwardParams& bp, const BwdArgs& a,
                                 unsigned ctas, cudaStream_t stream) {
  using Tr = BwdSm90Traits<kHeadDim>;
  const AttentionParams& p = bp.fwd;
  const bool bf16 = p.dtype == DType::kBFloat16;
  auto kernel = bf16 ? BwdSm90Kernel<__nv_bfloat16, kHeadDim> : BwdSm90Kernel<__half, kHeadDim>;
  static DeviceFlags smem_set_bf16, smem_set_f16;
  if (cudaError_t err =
          EnsureDynamicSmem(kernel, Tr::kSmemBytes, bf16 ? smem_set_bf16 : smem_set_f16);
      err != cudaSuccess) {
    return err;
  }
  BwdSm90Maps maps;
  if (!EncodeBoxMap(&maps.q, p.dtype, p.q, p.batch, p.num_heads, p.q_len, p.head_size,
                    p.q_strides, Tr::kBlockM) ||
      !EncodeBoxMap(&maps.dout, p.dtype, bp.dout, p.batch, p.num_heads, p.q_len, p.v_head_size,
                    bp.dout_strides, Tr::kBlockM) ||
      !EncodeBoxMap(&maps.k, p.dtype, p.k, p.batch, p.num_kv_heads, p.kv_capacity, p.head_size,
                    p.k_strides, Tr::kBlockN) ||
      !EncodeBoxMap(&maps.v, p.dtype, p.v, p.batch, p.num_kv_heads, p.kv_capacity,
                    p.v_head_size, p.v_strides, Tr::kBlockN)) {
    return cudaErrorNotSupported;  // BwdSm90Unsupported should have said no
  }
  kernel<<<ctas, Tr::kThreads, Tr::kSmemBytes, stream>>>(bp, a, maps);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchBwdMainSm90(const AttentionBackwardParams& bp, const BwdArgs& a, unsigned ctas,
                              cudaStream_t stream) {
  const AttentionParams& p = bp.fwd;
  return p.head_size <= 64 && p.v_head_size <= 64 ? LaunchBwdMainSm90For<64>(bp, a, ctas, stream)
                                                  : LaunchBwdMainSm90For<128>(bp, a, ctas, stream);
}

}  // namespace jax_mea::cuda
