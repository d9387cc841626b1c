// Device helpers of the split-KV decode kernels (decode.h): element types, PTX
// wrappers, the per-row key ranges, the split of a CTA's key range, and the
// epilogue that merges the warps' softmax states and writes `out` or the
// float32 partials. Everything lives in jax_mea::cuda::decode_impl so it never
// collides with the forward kernels' helpers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "jax_mea/params.h"
#include "kernels/common.cuh"  // element conversions, async copies, ldmatrix

namespace jax_mea::cuda::decode_impl {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;  // 4 warps per CTA, both kernels
constexpr int kWarps = kThreads / 32;
constexpr int kMaxSplits = 64;

// What the host decided, passed to every decode kernel by value.
struct DecodeArgs {
  int num_splits = 1;
  int rows_per_block = 16;  // query rows (group heads x positions) per CTA
  int row_blocks = 1;       // ceil(group * q_len / rows_per_block)
  int64_t num_rows = 0;     // batch * num_heads * q_len: rows of the partials
  float* ws_ml = nullptr;   // [num_splits][num_rows][2]: (max in log2 units, sum)
  float* ws_o = nullptr;    // [num_splits][num_rows][v_head_size]: unnormalised out
  // Non-null: the last CTA of each (batch, kv head, row block) to finish merges
  // the splits itself (no combine kernel). One counter per such group, zero
  // between calls: atomicInc wraps it back to 0 on the last of num_splits.
  unsigned* counters = nullptr;
};


// ------------------------------------------------------------------ rows and key ranges

// CTA row r (0-based in the kv head's rows) is query head kv_head * group + r / q_len
// at position r % q_len, as in the CPU kernel.
struct RowCoord {
  int head;
  int pos;  // query row index i in [0, q_len)
};

__device__ __forceinline__ RowCoord RowOf(const AttentionParams& p, int kv_head, int r) {
  return {kv_head * p.group_size() + r / p.q_len, r % p.q_len};
}

// Keys [lo, hi) row `rc` of batch b may see, before the mask tensor's values.
__device__ __forceinline__ void RowKeys(const AttentionParams& p, RowCoord rc, int kv_len,
                                        int offset, int* lo, int* hi) {
  int first, last;
  p.visible_keys(rc.pos + offset, kv_len, &first, &last);
  if (p.mask_kind != MaskKind::kNone && last > p.mask_len) last = p.mask_len;
  if (last < first) last = first;
  *lo = first;
  *hi = last;
}

__device__ __forceinline__ int64_t MaskOffset(const AttentionParams& p, int b, RowCoord rc) {
  return static_cast<int64_t>(b) * p.mask_batch_stride +
         static_cast<int64_t>(rc.head) * p.mask_head_stride +
         static_cast<int64_t>(rc.pos) * p.mask_q_stride;
}

// Row of `out` for (batch b, row coordinate rc).
template <typename T>
__device__ __forceinline__ T* OutRow(const AttentionParams& p, int b, RowCoord rc) {
  return static_cast<T*>(p.out) + b * p.out_strides.batch + rc.head * p.out_strides.head +
         static_cast<int64_t>(rc.pos) * p.out_strides.seq;
}

// Row index of (b, rc) in the split partials: (b * num_heads + head) * q_len + pos.
__device__ __forceinline__ int64_t PartialRow(const AttentionParams& p, int b, RowCoord rc) {
  return (static_cast<int64_t>(b) * p.num_heads + rc.head) * p.q_len + rc.pos;
}

// The keys [kb, ke) this CTA (split `split` of the union of its rows' ranges)
// processes. Chunks are multiples of `tile` keys; an empty range gives kb == ke.
__device__ __forceinline__ void SplitRange(const AttentionParams& p, int b, int kv_head,
                                           int row0, int nrows, int kv_len, int offset,
                                           int split, int num_splits, int tile, int* kb,
                                           int* ke) {
  int ulo = kv_len, uhi = 0;
  for (int r = 0; r < nrows; ++r) {
    int lo, hi;
    RowKeys(p, RowOf(p, kv_head, row0 + r), kv_len, offset, &lo, &hi);
    if (lo < hi) {
      ulo = min(ulo, lo);
      uhi = max(uhi, hi);
    }
  }
  if (ulo >= uhi) {
    *kb = *ke = 0;
    return;
  }
  const int len = uhi - ulo;
  int chunk = (len + num_splits - 1) / num_splits;
  chunk = (chunk + tile - 1) / tile * tile;
  const int64_t start = static_cast<int64_t>(ulo) + static_cast<int64_t>(split) * chunk;
  if (start >= uhi) {
    *kb = *ke = 0;
    return;
  }
  *kb = static_cast<int>(start);
  *ke = static_cast<int>(min(static_cast<int64_t>(uhi), start + chunk));
}

// Score of key j for a row: range check, mask; returns log2-domain score or -inf.
// `x` is scale * q.k, already softcapped.
template <typename T>
__device__ __forceinline__ float MaskedScore(const AttentionParams& p, float x, int j, int lo,
                                             int hi, int64_t mask_off) {
  bool ok = j >= lo && j < hi;
  if (ok && p.mask_kind != MaskKind::kNone) {
    if (p.mask_kind == MaskKind::kBool) {
      ok = static_cast<const uint8_t*>(p.mask)[mask_off + j] != 0;
    } else {
      x += ToF32<T>(static_cast<const T*>(p.mask)[mask_off + j]);
    }
  }
  return ok ? x * kLog2e : -INFINITY;
}

__device__ __forceinline__ float Softcap(const AttentionParams& p, float x) {
  return p.softcap > 0.f ? p.softcap * tanhf(x / p.softcap) : x;
}

// ------------------------------------------------------------------ split merge

// Output element d of partials row `row`, merged over the splits:
// sum_s w_s o_s / sum_s w_s l_s with w_s = exp2(m_s - max_s m_s); 0 where no
// split saw a key. A chunk of kChunk splits' (max, sum) and out values is
// loaded at once (a row's (max, sum) loads hit one address across the warp) and
// folded into a running log-sum-exp: up to 16 splits cost one L2 round trip.
// The partials are read with ld.cg: other CTAs of this launch wrote them.
__device__ __forceinline__ float MergeSplits(const DecodeArgs& a, int64_t row, int d, int Hv) {
  constexpr int kChunk = 16;
  const float2* ws_ml = reinterpret_cast<const float2*>(a.ws_ml);
  float m_run = -INFINITY, l_run = 0.f, o_run = 0.f;
  for (int s0 = 0; s0 < a.num_splits; s0 += kChunk) {
    float2 ml[kChunk];
    float ov[kChunk];
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const int64_t slot = static_cast<int64_t>(s0 + i) * a.num_rows + row;
      const bool ok = s0 + i < a.num_splits;
      ml[i] = ok ? __ldcg(ws_ml + slot) : make_float2(-INFINITY, 0.f);
      ov[i] = ok ? __ldcg(a.ws_o + slot * Hv + d) : 0.f;
    }
    float mx = m_run;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) mx = fmaxf(mx, ml[i].x);
    if (mx == -INFINITY) continue;          // no key in these splits (yet)
    const float alpha = exp2f(m_run - mx);  // 0 while m_run is -inf
    l_run *= alpha;
    o_run *= alpha;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const float w = exp2f(ml[i].x - mx);  // 0 for a split that saw no key
      l_run += w * ml[i].y;
      o_run += w * ov[i];
    }
    m_run = mx;
  }
  return l_run > 0.f ? o_run / l_run : 0.f;
}

// ------------------------------------------------------------------ epilogue

// The warps' states are in shared memory: ep_m / ep_l [NW][R] (max in log2
// units, sum) and ep_acc [NW][R][acc_stride]. Merges them per row and writes
// either `out` (one split: normalised, fully masked rows 0) or the partials.
// `row_ml` is scratch of 2 * R floats. All NW * 32 threads call it.
template <typename T, int R, int NW = kWarps>
__device__ __forceinline__ void Epilogue(const AttentionParams& p, const DecodeArgs& a,
                                         const float* ep_m, const float* ep_l,
                                         float* ep_acc, int acc_stride, float* row_ml,
                                         int b, int kv_head, int row0, int nrows, int split) {
  const int tid = threadIdx.x;
  if (tid < nrows) {
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; ++w) mx = fmaxf(mx, ep_m[w * R + tid]);
    float sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < NW; ++w) sum += exp2f(ep_m[w * R + tid] - mx) * ep_l[w * R + tid];
    }
    row_ml[2 * tid] = mx;
    row_ml[2 * tid + 1] = sum;
  }
  __syncthreads();
  const int Hv = p.v_head_size;
  for (int idx = tid; idx < nrows * Hv; idx += NW * 32) {
    const int r = idx / Hv, d = idx - r * Hv;
    const float mx = row_ml[2 * r];
    float o = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < NW; ++w) {
        o += exp2f(ep_m[w * R + r] - mx) * ep_acc[(w * R + r) * acc_stride + d];
      }
    }
    const RowCoord rc = RowOf(p, kv_head, row0 + r);
    if (a.num_splits == 1) {
      const float sum = row_ml[2 * r + 1];
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      OutRow<T>(p, b, rc)[d] = FromF32<T>(o * inv);
    } else {
      const int64_t slot = static_cast<int64_t>(split) * a.num_rows + PartialRow(p, b, rc);
      a.ws_o[slot * Hv + d] = o;
      if (d == 0) {
        a.ws_ml[2 * slot] = mx;
        a.ws_ml[2 * slot + 1] = row_ml[2 * r + 1];
      }
    }
  }
  if (a.num_splits == 1 || a.counters == nullptr) return;

  // Fused combine (threadFenceReduction pattern): publish the partials, count
  // this CTA; the last one of the group reads every split's partials from L2.
  __shared__ int s_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    const unsigned group = blockIdx.z * gridDim.y + blockIdx.y;
    const unsigned old = atomicInc(&a.counters[group], static_cast<unsigned>(a.num_splits - 1));
    s_last = old == static_cast<unsigned>(a.num_splits - 1);
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int idx = tid; idx < nrows * Hv; idx += NW * 32) {
    const int r = idx / Hv, d = idx - r * Hv;
    const RowCoord rc = RowOf(p, kv_head, row0 + r);
    OutRow<T>(p, b, rc)[d] = FromF32<T>(MergeSplits(a, PartialRow(p, b, rc), d, Hv));
  }
}

}  // namespace jax_mea::cuda::decode_impl
