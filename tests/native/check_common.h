// Shared by the native kernel checks (tests/native/*.cu): CUDA error checks,
// device and host buffers, dtype helpers, launch timing and
// the AttentionParams of a shape, the one place these tools fill its
// dimensions and strides (each tool sets the rest: pointers, masks, lengths).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/cpu_types.h"
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

// Host tensors of any dtype as bytes.
struct HostTensor {
  DType dt = DType::kFloat32;
  std::vector<uint8_t> bytes;
  HostTensor() = default;
  HostTensor(DType d, size_t n) : dt(d), bytes(n * DTypeBytes(d)) {}
  size_t size() const { return bytes.size() / DTypeBytes(dt); }
  float get(size_t i) const {
    switch (dt) {
      case DType::kFloat32: { float f; std::memcpy(&f, &bytes[i * 4], 4); return f; }
      case DType::kFloat16: { cpu::Half h; std::memcpy(&h, &bytes[i * 2], 2); return cpu::ToFloat(h); }
      default: { cpu::BFloat16 h; std::memcpy(&h, &bytes[i * 2], 2); return cpu::ToFloat(h); }
    }
  }
  void set(size_t i, float f) {
    switch (dt) {
      case DType::kFloat32: std::memcpy(&bytes[i * 4], &f, 4); break;
      case DType::kFloat16: { auto h = cpu::FromFloat<cpu::Half>(f); std::memcpy(&bytes[i * 2], &h, 2); break; }
      default: { auto h = cpu::FromFloat<cpu::BFloat16>(f); std::memcpy(&bytes[i * 2], &h, 2); break; }
    }
  }
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

using LaunchFn = cudaError_t (*)(const AttentionParams&, cudaStream_t);

// Median of 20 timed launches (after 3 warm-ups), in ms; min in *min_ms.
inline double TimeLaunch(const AttentionParams& p, LaunchFn fn, double* min_ms) {
  cudaEvent_t e0, e1;
  CHECK_CUDA(cudaEventCreate(&e0));
  CHECK_CUDA(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) CHECK_CUDA(fn(p, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    CHECK_CUDA(cudaEventRecord(e0));
    CHECK_CUDA(fn(p, 0));
    CHECK_CUDA(cudaEventRecord(e1));
    CHECK_CUDA(cudaEventSynchronize(e1));
    float t;
    CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  CHECK_CUDA(cudaEventDestroy(e0));
  CHECK_CUDA(cudaEventDestroy(e1));
  *min_ms = ms.front();
  return ms[ms.size() / 2];
}

// Relative L2 difference of two device outputs of n elements.
inline double RelDiff(const void* a, const void* b, size_t n, DType dt) {
  HostTensor ha(dt, n), hb(dt, n);
  CHECK_CUDA(cudaMemcpy(ha.bytes.data(), a, ha.bytes.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(hb.bytes.data(), b, hb.bytes.size(), cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = ha.get(i), y = hb.get(i);
    num += (x - y) * (x - y);
    den += y * y;
  }
  return std::sqrt(num / den);
}

}  // namespace jax_mea::check
