// The float32 SIMT split-KV decode kernel (any dtype, any head size <= kMaxHeadSize, any
// alignment), see decode.h. Same CTA decomposition as the MMA kernel with 8
// rows per CTA: each warp takes kU keys at a time (interleaved with the other
// warps), lanes split the head dimension (element d = lane + 32 * jj, loads
// coalesced across the warp), dot products are reduced with butterfly shuffles
// and every lane keeps the rows' online-softmax state and its slice of the
// accumulators. q is widened and multiplied by the scale first, like the CPU
// kernel, so float32 inputs match it to rounding.
#pragma once

#include "kernels/decode_common.cuh"

namespace jax_mea::cuda::decode_impl {

constexpr int kSimtRows = 8;

template <int DJ>  // DJ = HP / 32 of the SIMT row of the head-dim table (head_dims.h)
struct SimtConfig {
  static constexpr int kD = DJ * 32;
  static constexpr int kU = DJ >= 8 ? 2 : 4;  // keys per warp per step
  static constexpr int kQBytes = kSimtRows * kD * 4;
  static constexpr int kEpiBytes =
      (kWarps * kSimtRows * kD + 2 * kWarps * kSimtRows) * 4;
  static constexpr int kRowBytes = kSimtRows * 16;  // lo, hi, mask offset
  static constexpr int kSmemBytes = kQBytes + kEpiBytes + kRowBytes;
};

template <typename T, int DJ>
__global__ void __launch_bounds__(kThreads) DecodeSimtKernel(const AttentionParams p,
                                                             const DecodeArgs a) {
  using Cfg = SimtConfig<DJ>;
  constexpr int R = kSimtRows, U = Cfg::kU, D = Cfg::kD;
  extern __shared__ __align__(16) unsigned char smem[];
  float* q_s = reinterpret_cast<float*>(smem);                       // [R][D]
  float* ep_acc = reinterpret_cast<float*>(smem + Cfg::kQBytes);     // [kWarps][R][D]
  float* ep_m = ep_acc + kWarps * R * D;
  float* ep_l = ep_m + kWarps * R;
  int64_t* row_mask = reinterpret_cast<int64_t*>(smem + Cfg::kQBytes + Cfg::kEpiBytes);
  KeyRange* row_keys = reinterpret_cast<KeyRange*>(row_mask + R);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  CtaCoord cta = ThisCta(p, a, R);
  const int kv_head = cta.kv_head, row0 = cta.row0, b = cta.b, nrows = cta.nrows;
  const int H = p.head_size, Hv = p.v_head_size;
  const int append_start = AppendStart(a, b);
  const int kv_len = p.kv_length(b);
  const int offset = p.query_offset(b);

  int kb, ke;
  if (!CtaKeys(p, a, &cta, kv_len, offset, &kb, &ke)) return;
  MarkAppendOverflow(p, a, cta, append_start);  // after the length's wait, not before
  // The fused append: published by the __syncthreads below, before any K/V read.
  AppendNewRows<T>(p, a, b, kv_head, AppendedKeys(p, a, kb, ke, append_start), append_start);
  const Logits logits = MakeLogits(p, kLog2e, /*q_scaled=*/true);

  for (int idx = tid; idx < R * D; idx += kThreads) {
    const int r = idx / D, d = idx - r * D;
    float x = 0.f;
    if (r < nrows && d < H) {
      const RowCoord rc = RowOf(p, kv_head, row0 + r);
      const T* q = static_cast<const T*>(p.q) + b * p.q_strides.batch +
                   rc.head * p.q_strides.head + static_cast<int64_t>(rc.pos) * p.q_strides.seq;
      x = ToF32<T>(q[d]) * p.scale;
    }
    q_s[idx] = x;
  }
  if (tid < R) {
    KeyRange keys = {0, 0};  // inside the split's keys [kb, ke)
    int64_t mo = 0;
    if (tid < nrows) {
      const RowCoord rc = RowOf(p, kv_head, row0 + tid);
      keys = RowKeys(p, rc, kv_len, offset);
      keys = {max(keys.lo, kb), min(keys.hi, ke)};
      mo = MaskRow(p, b, rc.head, rc.pos);
    }
    row_keys[tid] = keys;
    row_mask[tid] = mo;
  }
  __syncthreads();

  const T* k_base = static_cast<const T*>(p.k) + b * p.k_strides.batch + kv_head * p.k_strides.head;
  const T* v_base = static_cast<const T*>(p.v) + b * p.v_strides.batch + kv_head * p.v_strides.head;
  const int64_t kss = p.k_strides.seq, vss = p.v_strides.seq;

  float m[R], l[R], acc[R][DJ];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int jj = 0; jj < DJ; ++jj) acc[r][jj] = 0.f;
  }

  for (int j0 = kb + warp * U; j0 < ke; j0 += kWarps * U) {
    float kr[U][DJ], vr[U][DJ];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + u;
#pragma unroll
      for (int jj = 0; jj < DJ; ++jj) {
        const int d = lane + 32 * jj;
        kr[u][jj] = (j < ke && d < H) ? ToF32<T>(k_base[static_cast<int64_t>(j) * kss + d]) : 0.f;
        vr[u][jj] = (j < ke && d < Hv) ? ToF32<T>(v_base[static_cast<int64_t>(j) * vss + d]) : 0.f;
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (r >= nrows) break;  // uniform
      float sc[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float part = 0.f;
#pragma unroll
        for (int jj = 0; jj < DJ; ++jj) part += q_s[r * D + lane + 32 * jj] * kr[u][jj];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
        sc[u] = KeyLogit<T>(p, logits, part, row_keys[r], row_mask[r], j0 + u);
      }
      float mx = sc[0];
#pragma unroll
      for (int u = 1; u < U; ++u) mx = fmaxf(mx, sc[u]);
      const float m_new = fmaxf(m[r], mx);
      const float m_use = SoftmaxShift(m_new);
      const float alpha = exp2f(m[r] - m_use);
      m[r] = m_new;
      float pr[U];
      float psum = 0.f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        pr[u] = exp2f(sc[u] - m_use);
        psum += pr[u];
      }
      l[r] = l[r] * alpha + psum;
#pragma unroll
      for (int jj = 0; jj < DJ; ++jj) {
        float x = acc[r][jj] * alpha;
#pragma unroll
        for (int u = 0; u < U; ++u) x += pr[u] * vr[u][jj];
        acc[r][jj] = x;
      }
    }
  }

  // Every lane holds the full (m, l) of each row; lane owns acc columns lane + 32 jj.
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int jj = 0; jj < DJ; ++jj) ep_acc[(warp * R + r) * D + lane + 32 * jj] = acc[r][jj];
    if (lane == 0) {
      ep_m[warp * R + r] = m[r];
      ep_l[warp * R + r] = l[r];
    }
  }
  __syncthreads();
  // MergeGroup's scratch: Q and the warps' states, free once the partials are written.
  constexpr int kScratchFloats = (Cfg::kQBytes + Cfg::kEpiBytes) / 4;
  static_assert(kScratchFloats >= kMergeScratchFloats<R, D>, "Q and ep_acc hold MergeGroup's scratch");
  Epilogue<T, R, kWarps, /*kSpread=*/false>(p, a, ep_m, ep_l, ep_acc, D, cta, q_s, kScratchFloats);
}

}  // namespace jax_mea::cuda::decode_impl
