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
  // Both 64-column boxes of every tile at least partly in bounds; the workspace's
  // dq_stride (max(H, Hv) rounded up to 64) is then the kernel's 128.
  auto fits = [](int d) { return d > 64 && d <= BwdSm90Traits::kD && d % 8 == 0; };
  if (!fits(p.head_size) || !fits(p.v_head_size)) {
    return "head sizes: multiples of 8 in (64, 128] (got q/k " + std::to_string(p.head_size) +
           ", v " + std::to_string(p.v_head_size) + ")";
  }
  if (p.q_len <= 0 || p.kv_capacity <= 0) return "empty sequences take the sm_80 kernel";
  if (!Aligned16Strided(p.q, p.q_strides) || !Aligned16Strided(p.k, p.k_strides) ||
      !Aligned16Strided(p.v, p.v_strides) || !Aligned16Strided(bp.dout, bp.dout_strides)) {
    return "q, k, v and dout need 16-byte aligned addresses and strides";
  }
  return {};
}

cudaError_t LaunchBwdMainSm90(const AttentionBackwardParams& bp, const BwdArgs& a, unsigned ctas,
                              cudaStream_t stream) {
  using Tr = BwdSm90Traits;
  const AttentionParams& p = bp.fwd;
  const bool bf16 = p.dtype == DType::kBFloat16;
  auto kernel = bf16 ? BwdSm90Kernel<__nv_bfloat16> : BwdSm90Kernel<__half>;
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

}  // namespace jax_mea::cuda
