// The attention forward's steps between S = Q K^T and O += P V, on the m16n8
// MMA accumulator fragment: shared by the sm_80 kernel (attention_fwd.cuh,
// mma.sync) and the sm_90a kernel (attention_fwd_sm90.cuh, wgmma, whose
// accumulators have the same layout tiled along N).
//
// A thread's S tile is s[kMT][kNT][4]: kMT m16 row tiles x kNT n8 key tiles; it
// holds rows g and g + 8 of each m16 tile (g = lane / 4; row r = 2 mt + k) in
// s[mt][t][2k], s[mt][t][2k + 1], at keys 8t + 2 tig + {0, 1} (tig = lane % 4).
// O tiles acc[kMT][kDT][4] have the same layout over value columns. A row's
// values sit in the 4 threads of a quad, so a row reduction is 2 shuffles.
#pragma once

#include "kernels/common.cuh"

namespace jax_mea::cuda {

// Whether a tile's scale can wait for the softmax's exponent (SoftmaxStep's in):
// plain logits with a positive scale (the max of the raw scores is then the max of
// the logits) and no mask tensor (its values are added to logits).
__device__ __forceinline__ bool FoldScale(const Logits& lg, bool mask_tensor) {
  return !mask_tensor && !lg.capped() && lg.in > 0.f;
}

// Raw scores to logits in log2 units (scale and softcap: the score layer's Logits).
template <int kMT, int kNT>
__device__ __forceinline__ void ScoresToLogits(float (&s)[kMT][kNT][4], const Logits& lg) {
  if (lg.capped()) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int t = 0; t < kNT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][t][e] = lg.Capped(s[mt][t][e]);
  } else {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int t = 0; t < kNT; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][t][e] = lg.Plain(s[mt][t][e]);
  }
}

// Visibility and mask of the tile at keys [j0, j0 + 8 kNT): -inf outside each
// row's visible keys (rows[r]), else the masked logit. row_base: this thread's
// first row (m16 tile 0, k = 0) in the batch/head's query rows; mask_bh: MaskRow
// of (b, h, 0). Only for tiles KeysAllVisible does not clear. kMaskTensor
// false: a kernel that never takes a mask tensor (visibility only; fewer registers).
template <typename T, int kMT, int kNT, bool kMaskTensor = true>
__device__ __forceinline__ void MaskLogits(float (&s)[kMT][kNT][4], const AttentionParams& p,
                                           const Logits& lg, const KeyRange (&rows)[2 * kMT],
                                           int64_t mask_bh, int row_base, int tig, int j0) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = 2 * mt + k;
      const int64_t mrow =
          mask_bh + static_cast<int64_t>(row_base + 16 * mt + 8 * k) * p.mask_q_stride;
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
#pragma unroll
        for (int e2 = 0; e2 < 2; ++e2) {
          const int j = j0 + t * 8 + tig * 2 + e2;
          float& v = s[mt][t][2 * k + e2];
          if constexpr (kMaskTensor) {
            v = j < rows[r].lo || j >= rows[r].hi ? kNegInf : MaskLogit<T>(p, lg, v, mrow, j);
          } else {
            v = j < rows[r].lo || j >= rows[r].hi ? kNegInf : v;
          }
        }
      }
    }
  }
}

// The online softmax of one tile, without touching O: updates each row's
// running max and (this thread's partial) sum, turns s into P (the unnormalised
// probabilities exp2(logit - shift)), and gives the factor corr[r] by which the
// row's O accumulators must be scaled (RescaleRows) before P's products are added.
// s holds the logits divided by `in` (> 0): the logits themselves (in = 1), or
// raw scores with the scale folded into the exponent's FMA (FlashAttention's
// exp2(s * in - shift)), one multiply per score fewer (Logits::Plain's in; -inf
// where masked either way).
// slack (log2 units, >= 0): a row keeps its running max while the tile's max
// exceeds it by at most this much (FlashAttention-4's conditional rescaling):
// corr is then 1 and O needs no rescale, at the price of probabilities up to
// 2^slack before the final normalisation (exact: the sum and O share the shift).
// 0: the max follows every increase.
template <int kMT, int kNT>
__device__ __forceinline__ void SoftmaxStep(float (&s)[kMT][kNT][4], float (&row_max)[2 * kMT],
                                            float (&row_sum)[2 * kMT], float (&corr)[2 * kMT],
                                            float in = 1.f, float slack = 0.f) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = 2 * mt + k;
      float mx = kNegInf;
#pragma unroll
      for (int t = 0; t < kNT; ++t) mx = fmaxf(mx, fmaxf(s[mt][t][2 * k], s[mt][t][2 * k + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float seen = fmaxf(row_max[r], mx * in);
      // (false for a first finite max: +inf or NaN against -inf)
      const float new_max = slack > 0.f && seen - row_max[r] <= slack ? row_max[r] : seen;
      const float m_use = SoftmaxShift(new_max);
      // exp2(-inf) = 0; a kept max gives exactly 1 (WarpNeedsRescale tests for it)
      corr[r] = slack > 0.f && new_max == row_max[r] ? 1.f : Exp2(row_max[r] - m_use);
      row_max[r] = new_max;
      row_sum[r] *= corr[r];
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        s[mt][t][2 * k] = Exp2(fmaf(s[mt][t][2 * k], in, -m_use));
        s[mt][t][2 * k + 1] = Exp2(fmaf(s[mt][t][2 * k + 1], in, -m_use));
        row_sum[r] += s[mt][t][2 * k] + s[mt][t][2 * k + 1];
      }
    }
  }
}

// Whether any row of the warp has a correction other than 1 (warp-uniform).
template <int kRows>
__device__ __forceinline__ bool WarpNeedsRescale(const float (&corr)[kRows]) {
  bool need = false;
#pragma unroll
  for (int r = 0; r < kRows; ++r) need |= corr[r] != 1.f;
  return __any_sync(0xffffffffu, need);
}

template <int kMT, int kDT>
__device__ __forceinline__ void RescaleRows(float (&acc)[kMT][kDT][4],
                                            const float (&corr)[2 * kMT]) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int k = 0; k < 2; ++k)
#pragma unroll
      for (int d = 0; d < kDT; ++d) {
        acc[mt][d][2 * k] *= corr[2 * mt + k];
        acc[mt][d][2 * k + 1] *= corr[2 * mt + k];
      }
}

// Both, for a kernel whose O accumulators are free now.
template <int kMT, int kNT, int kDT>
__device__ __forceinline__ void OnlineSoftmax(float (&s)[kMT][kNT][4], float (&acc)[kMT][kDT][4],
                                              float (&row_max)[2 * kMT],
                                              float (&row_sum)[2 * kMT], float in = 1.f) {
  float corr[2 * kMT];
  SoftmaxStep(s, row_max, row_sum, corr, in);
  RescaleRows(acc, corr);
}

// P's k16 step kk (keys 16 kk .. 16 kk + 15) of m16 tile mt as the A fragment of
// the next MMA (m16n8k16's, and wgmma's register A): a relabelling, no shuffles.
template <typename T, int kMT, int kNT>
__device__ __forceinline__ void PFragment(uint32_t (&a)[4], const float (&s)[kMT][kNT][4], int mt,
                                          int kk) {
  a[0] = Pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
  a[1] = Pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
  a[2] = Pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
  a[3] = Pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
}

// A row's full sum from its quad's partial sums.
__device__ __forceinline__ float QuadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  x += __shfl_xor_sync(0xffffffffu, x, 2);
  return x;
}

// 1 / sum, 0 for a row that saw no key (its output is 0).
__device__ __forceinline__ float RowScale(float sum) { return sum > 0.f ? 1.f / sum : 0.f; }

}  // namespace jax_mea::cuda
