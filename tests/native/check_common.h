// Shared by the native kernel checks (tests/native/kernel_check.cu,
// tests/native/decode_check.cu): CUDA error checks, device buffers, dtype helpers and
// the AttentionParams of a shape, the one place these tools fill its
// dimensions and strides (each tool sets the rest: pointers, masks, lengths).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "jax_mea/params.h"

#define CHECK_CUDA(x)                                                                   \
  do {                                                                                  \
    cudaError_t err_ = (x);                                                             \
    if (err_ != cudaSuccess) {                                                          \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(err_),      \
                   __FILE__, __LINE__, cudaGetErrorString(err_));                       \
      std::exit(2);                                                                     \
    }                                                                                   \
  } while (0)

namespace jax_mea::check {

inline const char* DTypeName(DType t) {
  return t == DType::kFloat32 ? "f32" : t == DType::kFloat16 ? "f16" : "bf16";
}
inline size_t ElemBytes(DType t) { return t == DType::kFloat32 ? 4 : 2; }

// Beside the relative L2 error, an average that one bad row barely moves: the
// largest element error, relative to the largest |reference| value, within
// kMaxAbsFactor times the same bound (noise-like errors keep the two ratios close;
// a wrong row or element does not).
constexpr double kMaxAbsFactor = 4.0;
inline bool MaxAbsOk(double max_abs, double ref_max, double rel_tol) {
  return max_abs <= kMaxAbsFactor * rel_tol * (ref_max > 1e-6 ? ref_max : 1e-6);
}

// A device allocation freed with its owner; optionally filled from the host.
struct DevBuf {
  void* ptr = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n) CHECK_CUDA(cudaMalloc(&ptr, n));
  }
  DevBuf(const void* host, size_t n) : DevBuf(n) {
    if (n) CHECK_CUDA(cudaMemcpy(ptr, host, n, cudaMemcpyHostToDevice));
  }
  ~DevBuf() {
    if (ptr) cudaFree(ptr);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

// Axis order of a rank-4 tensor: [B, S, N, D] or [B, N, S, D].
enum Layout { kBSNH = 0, kBNSH = 1 };

inline TensorStrides Strides(Layout l, int64_t N, int64_t S, int64_t D) {
  if (l == kBSNH) return {S * N * D, D, N * D};
  return {N * S * D, S * D, D};
}

// Dimensions, strides and the default scale 1/sqrt(H) of an attention call with
// q [B, Nq, q_len, H], k [B, Nkv, kv_cap, H], v [B, Nkv, kv_cap, Hv] and out
// [B, Nq, q_len, Hv] in the given layouts.
inline AttentionParams ShapeParams(DType dtype, int B, int Nq, int Nkv, int q_len, int kv_cap,
                                   int H, int Hv, Layout q_layout, Layout kv_layout,
                                   Layout out_layout) {
  AttentionParams p;
  p.dtype = dtype;
  p.batch = B;
  p.num_heads = Nq;
  p.num_kv_heads = Nkv;
  p.q_len = q_len;
  p.kv_capacity = kv_cap;
  p.head_size = H;
  p.v_head_size = Hv;
  p.q_strides = Strides(q_layout, Nq, q_len, H);
  p.k_strides = Strides(kv_layout, Nkv, kv_cap, H);
  p.v_strides = Strides(kv_layout, Nkv, kv_cap, Hv);
  p.out_strides = Strides(out_layout, Nq, q_len, Hv);
  p.scale = 1.f / std::sqrt(static_cast<float>(H));
  return p;
}

}  // namespace jax_mea::check
