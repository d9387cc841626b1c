// The native checks' second oracle: attention in float64, naively (every score,
// then the softmax), reading host AttentionParams with its own reading of the
// semantics (params.h), not the score layer's: the checks compare each CUDA
// kernel with the CPU kernel *and* with this, so that a bug shared by the CPU
// kernel and the score layer does not pass unseen.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/cpu_types.h"
#include "jax_mea/params.h"

namespace jax_mea::check {

inline double HostValue(DType t, const void* base, int64_t i) {
  switch (t) {
    case DType::kFloat32: return static_cast<const float*>(base)[i];
    case DType::kFloat16: return cpu::ToFloat(static_cast<const cpu::Half*>(base)[i]);
    case DType::kBFloat16: return cpu::ToFloat(static_cast<const cpu::BFloat16*>(base)[i]);
  }
  return 0;
}

// out[((b * num_heads + h) * q_len + i) * v_head_size + d]; rows that see no key are 0.
// lse (optional): the row log-sum-exp of the logits, [(b * num_heads + h) * q_len + i],
// -inf for a row that sees no key.
inline std::vector<double> Reference64(const AttentionParams& p,
                                       std::vector<double>* lse = nullptr) {
  const int B = p.batch, N = p.num_heads, Sq = p.q_len, H = p.head_size, Hv = p.v_head_size;
  std::vector<double> out(static_cast<size_t>(B) * N * Sq * Hv, 0.0);
  if (lse != nullptr) lse->assign(static_cast<size_t>(B) * N * Sq, -INFINITY);
  std::vector<double> s(p.kv_capacity);
  std::vector<char> seen(p.kv_capacity);
  for (int b = 0; b < B; ++b) {
    const int len = p.kv_lengths ? p.kv_lengths[b] + p.kv_length_bias : p.kv_capacity;
    const int kv_len = std::max(0, std::min(len, p.kv_capacity));
    const int64_t offset = p.causal_offsets ? p.causal_offsets[b] : p.causal_offset;
    for (int h = 0; h < N; ++h) {
      const int kvh = h / (N / p.num_kv_heads);
      for (int i = 0; i < Sq; ++i) {
        const int64_t pos = i + offset;
        const int64_t qi = b * p.q_strides.batch + h * p.q_strides.head + i * p.q_strides.seq;
        const int64_t mrow = b * p.mask_batch_stride + h * p.mask_head_stride +
                             static_cast<int64_t>(i) * p.mask_q_stride;
        double mx = -INFINITY;
        for (int j = 0; j < kv_len; ++j) {
          seen[j] = 0;
          if (p.mask_kind != MaskKind::kNone && j >= p.mask_len) continue;
          if (p.is_causal && j > pos) continue;
          if (p.left_window != kUnboundedWindow && j < pos - p.left_window) continue;
          if (p.right_window != kUnboundedWindow && j > pos + p.right_window) continue;
          if (p.mask_kind == MaskKind::kBool && !static_cast<const uint8_t*>(p.mask)[mrow + j]) {
            continue;
          }
          const int64_t kj = b * p.k_strides.batch + kvh * p.k_strides.head + j * p.k_strides.seq;
          double x = 0;
          for (int d = 0; d < H; ++d) x += HostValue(p.dtype, p.q, qi + d) * HostValue(p.dtype, p.k, kj + d);
          x *= p.scale;
          if (p.softcap > 0) x = p.softcap * std::tanh(x / p.softcap);
          if (p.mask_kind == MaskKind::kAdditive) x += HostValue(p.dtype, p.mask, mrow + j);
          s[j] = x;
          seen[j] = 1;
          mx = std::max(mx, x);
        }
        if (mx == -INFINITY) continue;  // no key: 0
        double sum = 0;
        double* o = &out[((static_cast<size_t>(b) * N + h) * Sq + i) * Hv];
        for (int j = 0; j < kv_len; ++j) {
          if (!seen[j]) continue;
          const double w = std::exp(s[j] - mx);
          sum += w;
          const int64_t vj = b * p.v_strides.batch + kvh * p.v_strides.head + j * p.v_strides.seq;
          for (int d = 0; d < Hv; ++d) o[d] += w * HostValue(p.dtype, p.v, vj + d);
        }
        for (int d = 0; d < Hv; ++d) o[d] /= sum;
        if (lse != nullptr) (*lse)[(static_cast<size_t>(b) * N + h) * Sq + i] = mx + std::log(sum);
      }
    }
  }
  return out;
}

// max |out - ref| and the relative L2 difference of an output in p's out
// layout (dtype p.dtype at `out`) against Reference64's.
struct Diff64 {
  double max_abs = 0, rel = 0;
};
inline Diff64 Compare64(const AttentionParams& p, const void* out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  Diff64 r;
  for (int b = 0; b < p.batch; ++b)
    for (int h = 0; h < p.num_heads; ++h)
      for (int i = 0; i < p.q_len; ++i) {
        const int64_t o = b * p.out_strides.batch + h * p.out_strides.head + i * p.out_strides.seq;
        const double* e = &ref[((static_cast<size_t>(b) * p.num_heads + h) * p.q_len + i) * p.v_head_size];
        for (int d = 0; d < p.v_head_size; ++d) {
          const double diff = HostValue(p.dtype, out, o + d) - e[d];
          num += diff * diff;
          den += e[d] * e[d];
          r.max_abs = std::max(r.max_abs, std::isnan(diff) ? INFINITY : std::fabs(diff));
        }
      }
  r.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return r;
}

// Bounds against the float64 reference (outputs are averages of values in
// [-2, 2]): float32 to rounding, 16-bit inputs to their P and output rounding.
inline double MaxAbs64(DType t) {
  return t == DType::kFloat32 ? 1e-4 : (t == DType::kFloat16 ? 1e-2 : 6e-2);
}
inline double Rel64(DType t) {
  return t == DType::kFloat32 ? 2e-5 : (t == DType::kFloat16 ? 3e-3 : 1.2e-2);
}

}  // namespace jax_mea::check
