// The score layer of jax-mea: what every attention kernel (CPU, CUDA forward,
// CUDA decode, and the kernels to come) does between the dot product q.k and
// the softmax, written once (compare FlashAttention's mask.h and flashinfer's
// attention variants: a new mask kind or logits transform is a change here).
//
//   1. VisibleKeys: the keys a query row may see at all, from positions: kv
//      length, causal, window, mask length. Kernels loop over that range only,
//      so keys outside it are never read.
//   2. Logits: scale and softcap of the raw score, in the kernel's exponent base.
//   3. MaskLogit: the mask tensor. A False bool entry drops the key whatever its
//      score (NaN included); an additive value is added.
//   4. SoftmaxShift: the running max a kernel subtracts before exp.
//   5. RowLogSumExp: the row's log-sum-exp (the forward's optional lse result).
//
// NaN: a NaN in q, or in a key or value the row sees, reaches the row's output
// (as in jax.nn); a row that sees no key gives 0, never NaN. Kernels keep a
// NaN-dropping max (fmaxf) for speed: a NaN logit still gives a NaN
// probability through SoftmaxShift, so the row's sum and output are NaN.
#pragma once

#include <cstdint>

#include "jax_mea/params.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace jax_mea {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kNegInf = -__builtin_inff();

// Widens a kernel's element type to float; each platform specialises it for its
// 16-bit types (cpu/cpu_types.h, kernels/common.cuh).
template <typename T>
struct Widen;
template <>
struct Widen<float> {
  static MEA_HOST_DEVICE float Apply(float x) { return x; }
};

// ------------------------------------------------------------------ 1. visibility

// Keys [lo, hi) of a row, both ends in [0, kv_len]; hi <= lo: none.
struct KeyRange {
  int lo, hi;
  MEA_HOST_DEVICE bool empty() const { return hi <= lo; }
};

// The keys query position `pos` (row i + query_offset(b)) may see in a batch of
// kv length `kv_len` (p.kv_length(b)): j < kv_len, j < mask_len (with a mask),
// j <= pos (causal), pos - left_window <= j <= pos + right_window (window sizes
// read literally: right_window = -1 excludes the diagonal; kUnboundedWindow is
// unbounded). 64-bit arithmetic, so no window size can overflow. Both ends are
// non-decreasing in pos: a block of rows sees at most
// [VisibleKeys(first).lo, VisibleKeys(last).hi) and every key of
// [VisibleKeys(last).lo, VisibleKeys(first).hi) is seen by all its rows.
MEA_HOST_DEVICE KeyRange VisibleKeys(const AttentionParams& p, int64_t pos, int kv_len) {
  int64_t hi = kv_len;
  if (p.mask_kind != MaskKind::kNone && p.mask_len < hi) hi = p.mask_len;
  if (p.is_causal && pos + 1 < hi) hi = pos + 1;
  if (pos + p.right_window + 1 < hi) hi = pos + p.right_window + 1;
  int64_t lo = pos - p.left_window;
  lo = lo < 0 ? 0 : (lo > kv_len ? kv_len : lo);
  return {static_cast<int>(lo), static_cast<int>(hi < 0 ? 0 : hi)};
}

// The keys of a block of query rows at positions [first, last]: `any`, outside which
// no row sees a key, and `all`, each key of which every row sees. Both ends of
// VisibleKeys grow with the position, so the first and the last row decide.
struct BlockKeys {
  KeyRange any, all;
};
MEA_HOST_DEVICE BlockKeys RowBlockKeys(const AttentionParams& p, int64_t first, int64_t last,
                                       int kv_len) {
  const KeyRange f = VisibleKeys(p, first, kv_len);
  const KeyRange l = VisibleKeys(p, last, kv_len);
  return {{f.lo, l.hi}, {l.lo, f.hi}};
}

// Whether every row of a batch (query offset off, kv length kv_len) sees exactly the
// keys [0, kv_len): no causal mask, window or mask tensor, and an offset that does not
// reach the unbounded windows' ends (VisibleKeys reads kUnboundedWindow literally: a
// row at a position past INT_MAX, or below kv_len - 2^31, still loses keys).
MEA_HOST_DEVICE bool AllRowsSeeAllKeys(const AttentionParams& p, int64_t off, int kv_len) {
  if (p.is_causal || p.left_window != kUnboundedWindow ||
      p.right_window != kUnboundedWindow || p.mask_kind != MaskKind::kNone) {
    return false;
  }
  const KeyRange all = RowBlockKeys(p, off, p.q_len - 1 + off, kv_len).all;
  return all.lo == 0 && all.hi == kv_len;
}

// True when a kernel may skip the per-key checks on keys [j0, j0 + n): no mask
// tensor, and every key in `all`, the range every row concerned sees.
MEA_HOST_DEVICE bool KeysAllVisible(const AttentionParams& p, KeyRange all, int j0, int n) {
  return p.mask_kind == MaskKind::kNone && j0 >= all.lo && j0 + n <= all.hi;
}

// ------------------------------------------------------------------ 2. scale and softcap

// tanh of the softcap: the one place it is spelled.
MEA_HOST_DEVICE float SoftcapTanh(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return std::tanh(x);
#endif
}

// The logit of a raw score s = q.k (or (scale q).k, for kernels that scale q
// first), in units of the kernel's exponent: unit 1 (exp) or log2(e) (exp2).
// Without softcap: s * scale * unit. With softcap c > 0 (0: off; a negative one
// never gets here, the FFI layer rejects it): c * unit * tanh(s * scale / c).
struct Logits {
  float in = 1.f;    // s * in (includes the unit without softcap)
  float cap = 0.f;   // softcap * unit; 0: no softcap
  float unit = 1.f;  // additive mask values are scaled by it too

  MEA_HOST_DEVICE bool capped() const { return cap > 0.f; }
  MEA_HOST_DEVICE float Plain(float s) const { return s * in; }
  MEA_HOST_DEVICE float Capped(float s) const { return cap * SoftcapTanh(s * in); }
  MEA_HOST_DEVICE float operator()(float s) const { return capped() ? Capped(s) : Plain(s); }

  // The logit of s and d logit / d s (the backward's chain rule): `in`, or the
  // softcap's cap * in * (1 - tanh^2).
  struct WithSlope {
    float logit, slope;
  };
  MEA_HOST_DEVICE WithSlope Slope(float s) const {
    if (!capped()) return {Plain(s), in};
    const float th = SoftcapTanh(s * in);
    return {cap * th, cap * in * (1.f - th * th)};
  }
};

MEA_HOST_DEVICE Logits MakeLogits(const AttentionParams& p, float unit, bool q_scaled) {
  const float scale = q_scaled ? 1.f : p.scale;
  Logits l;
  l.unit = unit;
  if (p.softcap > 0.f) {
    l.in = scale / p.softcap;
    l.cap = p.softcap * unit;
  } else {
    l.in = scale * unit;
  }
  return l;
}

// ------------------------------------------------------------------ 3. the mask tensor

// Element offset of the mask row of (batch b, query head h, query row i); keys
// are contiguous in it. Read only with a mask (p.mask_kind != kNone).
MEA_HOST_DEVICE int64_t MaskRow(const AttentionParams& p, int b, int h, int i) {
  return static_cast<int64_t>(b) * p.mask_batch_stride +
         static_cast<int64_t>(h) * p.mask_head_stride + static_cast<int64_t>(i) * p.mask_q_stride;
}

// Logit of key j after the mask (row offset `row`): -inf where a bool mask is
// False, logit + unit * value with an additive mask (an additive -inf with a
// NaN logit stays NaN, as jax.nn's logits + bias), the logit without a mask.
// T: the element type of an additive mask (the inputs').
template <typename T>
MEA_HOST_DEVICE float MaskLogit(const AttentionParams& p, const Logits& lg, float logit,
                                int64_t row, int j) {
  if (p.mask_kind == MaskKind::kNone) return logit;
  if (p.mask_kind == MaskKind::kBool) {
    return static_cast<const uint8_t*>(p.mask)[row + j] ? logit : kNegInf;
  }
  return logit + lg.unit * Widen<T>::Apply(static_cast<const T*>(p.mask)[row + j]);
}

// Everything at once for key j of a row that sees `keys`, from its raw score s:
// -inf outside the range, else the masked logit.
template <typename T>
MEA_HOST_DEVICE float KeyLogit(const AttentionParams& p, const Logits& lg, float s, KeyRange keys,
                               int64_t mask_row, int j) {
  if (j < keys.lo || j >= keys.hi) return kNegInf;
  return MaskLogit<T>(p, lg, lg(s), mask_row, j);
}

// ------------------------------------------------------------------ 4. the softmax's shift

// What a row subtracts from its logits before exp, given its running max
// (NaN-dropping; -inf while the row has seen only dropped keys): 0 then, so that
// a dropped key's exp(-inf - 0) is 0, not exp(-inf + inf) = NaN, while a NaN
// logit still gives a NaN probability.
MEA_HOST_DEVICE float SoftmaxShift(float row_max) { return row_max == kNegInf ? 0.f : row_max; }

// ------------------------------------------------------------------ 5. the row's log-sum-exp

// log(sum_j exp(logit_j)), natural units, from a kernel's final running max and sum:
// -inf for a row that saw no key (sum 0), NaN where the sum is. `log2_units`: the
// kernel's logits were scaled by kLog2e (it used exp2), as the backward reads it back
// in natural units.
MEA_HOST_DEVICE float RowLogSumExp(float row_max, float row_sum, bool log2_units = false) {
  return log2_units ? (SoftmaxShift(row_max) + log2f(row_sum)) / kLog2e
                    : SoftmaxShift(row_max) + logf(row_sum);
}

}  // namespace jax_mea
