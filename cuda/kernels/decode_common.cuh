// Device helpers of the split-KV decode kernels (decode.h): the rows of a CTA
// and their key ranges (the score layer's VisibleKeys), the split of a CTA's key
// range, and the epilogue that merges the warps' softmax states and writes `out` or the
// float32 partials. Everything lives in jax_mea::cuda::decode_impl so it never
// collides with the forward kernels' helpers.
#pragma once

#include <cuda.h>  // CUtensorMap
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "jax_mea/params.h"
#include "kernels/common.cuh"  // element conversions, async copies, ldmatrix
#include "kernels/decode_plan.h"

namespace jax_mea::cuda::decode_impl {

constexpr int kThreads = 128;  // 4 warps per CTA, both kernels
constexpr int kWarps = kThreads / 32;
using decode_plan::kMaxClusterSplits;  // most splits merged inside a cluster
using decode_plan::kMaxSplits;

// What the host decided, passed to every decode kernel by value.
struct DecodeArgs {
  int num_splits = 1;       // grid z: the most splits a group uses
  // Balanced splits (per-row kv lengths, fewer groups than CTA slots): > 0 is the
  // GPU's CTA slots, and each group takes splits by its share of the keys
  // (GroupSplits); rows of equal length use uniform_splits. 0: every group uses
  // num_splits.
  int balance_slots = 0;
  int uniform_splits = 1;
  int tile_keys = 1;        // the kernel's keys per tile: splits are multiples of it
  int rows_per_block = 16;  // query rows (group heads x positions) per CTA
  int row_blocks = 1;       // ceil(group * q_len / rows_per_block)
  int64_t num_rows = 0;     // batch * num_heads * q_len: rows of the partials
  float* ws_ml = nullptr;   // [num_splits][num_rows][2]: (max in log2 units, sum)
  float* ws_o = nullptr;    // [num_splits][num_rows][v_head_size]: unnormalised out
  // Non-null: the last CTA of each (batch, kv head, row block) to finish merges
  // the splits itself (no combine kernel). One counter per such group, zero
  // between calls: atomicInc wraps it back to 0 on the group's last split.
  unsigned* counters = nullptr;
  // With counters, where the whole grid runs at once (a cooperative launch): every
  // split of a group waits on its counter for the others' partials, then merges a
  // slice of the group's out (Epilogue, GroupBarrier), instead of the last one
  // merging all.
  bool spread_merge = false;
  // The splits of each group are one thread-block cluster (sm_90, grid z =
  // cluster z = num_splits <= kMaxClusterSplits): the partials stay in each CTA's
  // shared memory and the cluster merges them there (ClusterMerge); no workspace,
  // no counters.
  bool cluster_merge = false;
  // Fused append (a decode step): new token t of batch b goes to cache position
  // append_starts[b] + t (dropped at or past kv_capacity); the cache is p.k / p.v.
  // Each CTA writes the new rows inside its key range before it reads them
  // (AppendNewRows; CTAs of other row blocks store the same values), so a step
  // needs no copy kernel. append_num_new == 0: nothing to append.
  const void* append_k = nullptr;  // [batch, kv head, token, head_size] via strides
  const void* append_v = nullptr;  // [batch, kv head, token, v_head_size]
  TensorStrides append_k_strides, append_v_strides;
  const int32_t* append_starts = nullptr;
  int append_num_new = 0;
  bool* append_overflowed = nullptr;  // KvCopyParams::overflowed (MarkAppendOverflow)
  // MMA configuration 3 (sm_90): K and V as 4-D tensor maps (head dim, kv
  // position, kv head, batch) with boxes of 64 x tile_keys elements and 128-byte
  // swizzle; the kernel takes DecodeArgs as a __grid_constant__ parameter.
  CUtensorMap tmap_k;
  CUtensorMap tmap_v;
#ifdef JAX_MEA_DECODE_TRACE
  // Diagnostics build only (decode_check --trace): kTraceSlots stamps per CTA.
  unsigned long long* trace = nullptr;
#endif
};

// Diagnostics (a build with -DJAX_MEA_DECODE_TRACE; decode_check --trace reads
// them): thread 0 of each CTA stamps %globaltimer at the kernel's phases into
// a.trace[cta * kTraceSlots + slot]: 0 entry, 1 keys and append done, 2 first
// tile landed, 3 last tile done, 4 exit; 5 the SM, 6 the CTA's tiles; inside the
// epilogue: 7 the warps' states in shared memory, 8 the rows' weights, 9 out or
// the partials written, 10 (fused combine) the group's counter taken, or (cluster
// or spread merge) its group barrier passed, 11 (cluster or spread merge) its
// slice of out written.
constexpr int kTraceSlots = 12;
#ifdef JAX_MEA_DECODE_TRACE
__device__ __forceinline__ void TraceStamp(const DecodeArgs& a, int slot,
                                           unsigned long long value = ~0ull) {
  if (a.trace == nullptr || threadIdx.x != 0) return;
  if (value == ~0ull) asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(value));
  const unsigned cta = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  a.trace[static_cast<size_t>(cta) * kTraceSlots + slot] = value;
}
__device__ __forceinline__ unsigned SmId() {
  unsigned id;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  return id;
}
#define JAX_MEA_TRACE(a, ...) TraceStamp(a, __VA_ARGS__)
#else
#define JAX_MEA_TRACE(a, ...) ((void)0)
#endif

// The CTA's place in the grid (num_kv_heads * row_blocks, batch, num_splits):
// splits vary slowest, so the first wave of CTAs spreads over all groups.
struct CtaCoord {
  int b, kv_head, row0, split;
  unsigned group;  // (batch, kv head, row block): index of its counters
  int nrows;       // valid rows of the block (<= rows_per_block)
  int splits;      // splits of the group: a.num_splits, or its share (CtaKeys)
};

__device__ __forceinline__ CtaCoord ThisCta(const AttentionParams& p, const DecodeArgs& a,
                                            int rows_per_block) {
  CtaCoord c;
  c.kv_head = blockIdx.x / a.row_blocks;
  c.row0 = (blockIdx.x - c.kv_head * a.row_blocks) * rows_per_block;
  c.b = blockIdx.y;
  c.split = blockIdx.z;
  c.group = blockIdx.y * gridDim.x + blockIdx.x;
  c.nrows = min(rows_per_block, p.group_size() * p.q_len - c.row0);
  c.splits = a.num_splits;
  return c;
}


// ------------------------------------------------------------------ rows and key ranges

// CTA row r (0-based in the kv head's rows) is query head kv_head * group + r / q_len
// at position r % q_len, as in the CPU kernel.
struct RowCoord {
  int head;
  int pos;  // query row index i in [0, q_len)
};

__device__ __forceinline__ RowCoord RowOf(const AttentionParams& p, int kv_head, int r) {
  // q_len 1 (a decode step): no division (a runtime divisor costs ~20 instructions,
  // and these sit on the path to a CTA's first load).
  if (p.q_len == 1) return {kv_head * p.group_size() + r, 0};
  return {kv_head * p.group_size() + r / p.q_len, r % p.q_len};
}

// Keys row `rc` may see (offset: the batch's query offset).
__device__ __forceinline__ KeyRange RowKeys(const AttentionParams& p, RowCoord rc, int kv_len,
                                            int offset) {
  return VisibleKeys(p, static_cast<int64_t>(rc.pos) + offset, kv_len);
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

// Keys [*lo, *hi) that any of the CTA's rows may see (the union of their
// ranges); *lo >= *hi when none.
__device__ __forceinline__ void GroupKeys(const AttentionParams& p, int kv_head, int row0,
                                          int nrows, int kv_len, int offset, int* lo, int* hi) {
  int ulo = kv_len, uhi = 0;
  if (p.q_len == 1 && nrows > 0) {
    // One position: every row sees the same keys (VisibleKeys does not depend on the
    // head), so the union is that range, without the loop over the rows (the path to
    // a decode CTA's first load, and GroupSplits' loop over the batch rows).
    const KeyRange keys = RowKeys(p, RowOf(p, kv_head, row0), kv_len, offset);
    *lo = keys.empty() ? ulo : keys.lo;
    *hi = keys.empty() ? uhi : keys.hi;
    return;
  }
  for (int r = 0; r < nrows; ++r) {
    const KeyRange keys = RowKeys(p, RowOf(p, kv_head, row0 + r), kv_len, offset);
    if (!keys.empty()) {
      ulo = min(ulo, keys.lo);
      uhi = max(uhi, keys.hi);
    }
  }
  *lo = ulo;
  *hi = uhi;
}

__device__ __forceinline__ int TilesOf(int lo, int hi, int tile) {
  return hi > lo ? (hi - lo + tile - 1) / tile : 0;
}

// Balanced splits: the number of splits of a group with `tiles` tiles. Rows of
// one length keep the host's plan (a.uniform_splits, which minds the waves of
// CTAs); otherwise each group gets ceil(tiles / target) splits (at most
// a.num_splits), with target half the work of one CTA slot: about two waves of
// CTAs of at most `target` tiles, the longest rows in the most of them, which
// the block scheduler packs (one wave of equal shares ran no faster than
// splitting by capacity: CTAs do not stream at one rate).
// The work is measured on each batch row's first row block (exact for q_len 1).
// All threads of the CTA call it (it synchronises them).
__device__ __forceinline__ int GroupSplits(const AttentionParams& p, const DecodeArgs& a,
                                           int tiles) {
  __shared__ int s_min, s_max;
  __shared__ unsigned long long s_sum;
  if (threadIdx.x == 0) {
    s_min = INT_MAX;
    s_max = 0;
    s_sum = 0;
  }
  __syncthreads();
  const int nrows0 = min(a.rows_per_block, p.group_size() * p.q_len);
  int mn = INT_MAX, mx = 0;
  unsigned long long sum = 0;
  for (int b = threadIdx.x; b < p.batch; b += blockDim.x) {
    int lo, hi;
    GroupKeys(p, 0, 0, nrows0, p.kv_length(b), p.query_offset(b), &lo, &hi);
    const int t = TilesOf(lo, hi, a.tile_keys);
    mn = min(mn, t);
    mx = max(mx, t);
    sum += t;
  }
  for (int o = 16; o > 0; o >>= 1) {
    mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, o));
    mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    sum += __shfl_xor_sync(0xffffffffu, sum, o);
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMin(&s_min, mn);
    atomicMax(&s_max, mx);
    atomicAdd(&s_sum, sum);
  }
  __syncthreads();
  if (s_min == s_max) return a.uniform_splits;
  const unsigned long long work = s_sum * p.num_kv_heads * a.row_blocks;
  const unsigned long long slots = a.balance_slots;
  const unsigned long long target = max(1ull, (work + 2 * slots - 1) / (2 * slots));
  return static_cast<int>(min(static_cast<unsigned long long>(a.num_splits),
                              max(1ull, (tiles + target - 1) / target)));
}

// This CTA's keys [*kb, *ke): split cta->split of the group's keys (contiguous
// chunks, multiples of a.tile_keys; an empty range gives *kb == *ke), and
// cta->splits. False where the CTA has no split (balanced splits: split >=
// the group's splits): it then returns at once, writing nothing. All threads
// of the CTA call it. Never false with a.cluster_merge (the host never
// balances then): every CTA of a cluster must reach ClusterMerge's barriers.
__device__ __forceinline__ bool CtaKeys(const AttentionParams& p, const DecodeArgs& a,
                                        CtaCoord* cta, int kv_len, int offset, int* kb,
                                        int* ke) {
  int ulo, uhi;
  GroupKeys(p, cta->kv_head, cta->row0, cta->nrows, kv_len, offset, &ulo, &uhi);
  const int tile = a.tile_keys;
  if (a.balance_slots > 0) {
    cta->splits = GroupSplits(p, a, TilesOf(ulo, uhi, tile));
    if (cta->split >= cta->splits) return false;
  }
  *kb = *ke = 0;
  if (ulo >= uhi) return true;
  const int len = uhi - ulo;
  int chunk = (len + cta->splits - 1) / cta->splits;
  chunk = (chunk + tile - 1) / tile * tile;
  const int64_t start = static_cast<int64_t>(ulo) + static_cast<int64_t>(cta->split) * chunk;
  if (start >= uhi) return true;
  *kb = static_cast<int>(start);
  *ke = static_cast<int>(min(static_cast<int64_t>(uhi), start + chunk));
  return true;
}

// The fused append's first cache position for batch b (DecodeArgs::append_starts),
// 0 without an append. Kernels read it at entry, beside the kv length: its load is
// then in flight with the length's instead of after the key range (a second global
// round trip before the first K/V load, ~0.5 us on the H200's decode CTAs).
__device__ __forceinline__ int AppendStart(const DecodeArgs& a, int b) {
  return a.append_num_new > 0 ? a.append_starts[b] : 0;
}

// The fused append's overflow flag of the CTA's batch row, set by one thread of
// the row's first CTA, which every plan launches (split 0 of kv head 0, row block
// 0). `start`: AppendStart. Called after CtaKeys, whose wait for the length covers
// the start's load. Session 23: 0.2-0.3 us a call with the SM's instruction cache
// cold (decode_check --pollute), none warm, and the same placed after the
// pipeline's first loads; the XLA kernel it replaces took 1.1-1.2 us.
__device__ __forceinline__ void MarkAppendOverflow(const AttentionParams& p, const DecodeArgs& a,
                                                   const CtaCoord& cta, int start) {
  if (threadIdx.x == 0 && blockIdx.x == 0 && cta.split == 0) {
    MarkOverflow(a.append_overflowed, cta.b, start, a.append_num_new, p.kv_capacity);
  }
}

// The cache positions in [kb, ke) that the fused append (DecodeArgs::append_*)
// writes, starting at `start` (AppendStart); empty where this CTA appends nothing.
__device__ __forceinline__ KeyRange AppendedKeys(const AttentionParams& p, const DecodeArgs& a,
                                                 int kb, int ke, int start) {
  if (a.append_num_new <= 0) return {0, 0};
  return {max(kb, start), min(min(ke, start + a.append_num_new), p.kv_capacity)};
}

// The fused append: the new tokens at cache positions `rows` (AppendedKeys) are
// stored into the cache by all threads of this CTA (start: AppendStart). The
// caller then publishes them with __syncthreads (after FenceProxyAsyncGlobal
// where the copy engine reads the cache) before the CTA's first read of them.
template <typename T>
__device__ __forceinline__ void AppendNewRows(const AttentionParams& p, const DecodeArgs& a,
                                              int b, int kv_head, KeyRange rows, int start) {
  auto copy = [&](const void* src_ptr, const TensorStrides& ss, const void* dst_ptr,
                  const TensorStrides& ds, int dim) {
    const T* src = static_cast<const T*>(src_ptr) + b * ss.batch + kv_head * ss.head;
    T* dst = static_cast<T*>(const_cast<void*>(dst_ptr)) + b * ds.batch + kv_head * ds.head;
    for (int i = threadIdx.x; i < (rows.hi - rows.lo) * dim; i += blockDim.x) {
      const int j = rows.lo + i / dim, d = i % dim;
      dst[static_cast<int64_t>(j) * ds.seq + d] = src[static_cast<int64_t>(j - start) * ss.seq + d];
    }
  };
  if (rows.lo >= rows.hi) return;
  copy(a.append_k, a.append_k_strides, p.k, p.k_strides, p.head_size);
  copy(a.append_v, a.append_v_strides, p.v, p.v_strides, p.v_head_size);
}

// A decode step's new tokens of (b, kv_head), one 16-byte chunk per thread,
// loaded at the kernel's entry: their load is then in flight before the CTA's
// tiles queue up in the memory system, and the store after the first tiles'
// loads waits for nothing. Steps whose T x (H + Hv) elements fit the CTA's
// threads in aligned chunks (Fits); AppendNewRows takes the others.
template <typename T, int kThreads>
struct StagedAppend {
  uint4 chunk;

  static __device__ __forceinline__ bool Fits(const AttentionParams& p, const DecodeArgs& a) {
    const TensorStrides &ks = a.append_k_strides, &vs = a.append_v_strides;
    return a.append_num_new > 0 && p.head_size % 8 == 0 && p.v_head_size % 8 == 0 &&
           a.append_num_new * (p.head_size + p.v_head_size) <= 8 * kThreads &&
           Aligned16(a.append_k) && Aligned16(a.append_v) && ks.batch % 8 == 0 &&
           ks.head % 8 == 0 && ks.seq % 8 == 0 && vs.batch % 8 == 0 && vs.head % 8 == 0 &&
           vs.seq % 8 == 0;
  }

  // Chunk `c` (this thread's) is token c / row_chunks, K then V columns.
  __device__ __forceinline__ void Load(const AttentionParams& p, const DecodeArgs& a, int b,
                                       int kv_head, int c) {
    const int row_chunks = (p.head_size + p.v_head_size) / 8;
    const int t = c / row_chunks, x = (c - t * row_chunks) * 8;
    chunk = make_uint4(0u, 0u, 0u, 0u);
    if (t >= a.append_num_new) return;
    const bool is_v = x >= p.head_size;
    const TensorStrides& ss = is_v ? a.append_v_strides : a.append_k_strides;
    const T* src = static_cast<const T*>(is_v ? a.append_v : a.append_k) + b * ss.batch +
                   kv_head * ss.head + static_cast<int64_t>(t) * ss.seq + (is_v ? x - p.head_size : x);
    chunk = *reinterpret_cast<const uint4*>(src);
  }

  // Stores the chunk where its position (start + token) lies in `rows`
  // (AppendedKeys); the caller publishes the rows as for AppendNewRows.
  __device__ __forceinline__ void Store(const AttentionParams& p, int b, int kv_head, KeyRange rows,
                                        int start, int c) const {
    const int row_chunks = (p.head_size + p.v_head_size) / 8;
    const int t = c / row_chunks, x = (c - t * row_chunks) * 8, j = start + t;
    if (j < rows.lo || j >= rows.hi) return;
    const bool is_v = x >= p.head_size;
    const TensorStrides& ds = is_v ? p.v_strides : p.k_strides;
    T* dst = static_cast<T*>(const_cast<void*>(is_v ? p.v : p.k)) + b * ds.batch +
             kv_head * ds.head + static_cast<int64_t>(j) * ds.seq + (is_v ? x - p.head_size : x);
    *reinterpret_cast<uint4*>(dst) = chunk;
  }
};

// ------------------------------------------------------------------ split merge

// Softmax merge weights by one warp: lane entries e[i] = (max in log2 units, sum)
// of N states a lane, over groups of kWidth lanes (kWidth a power of 2 <= 32; lanes
// of other groups reduce among themselves). Each e[i].x becomes its weight
// exp2(m_i - M), 0 where the group saw no key (M = -inf); returns (M, sum of w l).
// Shuffle reductions, no serial chain over the states: the callers' code runs once
// per CTA and is cold in the SM's instruction cache inside a model.
template <int kWidth, int N>
__device__ __forceinline__ float2 WarpMergeWeights(float2 (&e)[N]) {
  static_assert(kWidth >= 1 && kWidth <= 32 && (kWidth & (kWidth - 1)) == 0,
                "groups of a power of 2 lanes within the warp");
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < N; ++i) mx = fmaxf(mx, e[i].x);
#pragma unroll
  for (int o = kWidth / 2; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    e[i].x = mx == -INFINITY ? 0.f : exp2f(e[i].x - mx);  // exp2(-inf) = 0 for m_i = -inf
    sum += e[i].x * e[i].y;
  }
#pragma unroll
  for (int o = kWidth / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  return make_float2(mx, sum);
}

// One row's split weights, by one warp: t[s * stride] = (max in log2 units, sum) of
// split s; its .x becomes w_s / sum_s' w_s' l_s' with w_s = exp2(m_s - max_s' m_s'),
// 0 where no split saw a key (the row's output is then 0). Lanes take splits lane,
// lane + 32 (S <= 64).
__device__ __forceinline__ void SplitWeightsWarp(float2* t, int S, int stride) {
  static_assert(kMaxSplits <= 64, "two splits a lane");
  const int lane = threadIdx.x & 31;
  float2 e[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int sp = lane + 32 * i;
    e[i] = sp < S ? t[sp * stride] : make_float2(-INFINITY, 0.f);
  }
  const float sum = WarpMergeWeights<32>(e).y;
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int sp = lane + 32 * i;
    if (sp < S) t[sp * stride].x = e[i].x * inv;
  }
}

// Shared memory MergeGroup needs (floats) for R rows of v head size up to HVP: the
// (max, sum) table of every split, an accumulator and one split's values.
template <int R, int HVP>
constexpr int kMergeScratchFloats = 2 * R * kMaxSplits + 2 * R * HVP;

// Merges the cta.splits partials of a group's rows into `out` (elements [first,
// first + count) of the group's nrows * Hv; count < 0: all): row r's output
// is sum_s w_s o_s / sum_s w_s l_s with w_s = exp2(m_s - max_s m_s) (0 where
// no split saw a key). The group's rows are consecutive partial rows, so each
// split's values are one block of nrows * Hv floats: cp.async copies as many
// splits' blocks as `scratch` holds into shared memory with the (max, sum)
// table, all in flight at once (one L2 round trip for up to scratch's share),
// then each row's weights are computed once and every output element is summed
// over the splits from shared memory. The loops stay rolled on purpose: this code
// runs once per group at the end of a launch, and inside a model it is cold in
// the SM's instruction cache (session 21: the unrolled merge took 2.4 us after
// the same kernel, 6.9 us after another kernel's code), so its length is its
// cost. The partials are read through L2 (other CTAs wrote them). `scratch`:
// scratch_floats >= kMergeScratchFloats<R, Hv> floats of shared memory, 16-byte
// aligned. All NT threads call it.
template <typename T, int R, int NT>
__device__ __forceinline__ void MergeGroup(const AttentionParams& p, const DecodeArgs& a,
                                           const CtaCoord& cta, float* scratch,
                                           int scratch_floats, int first = 0,
                                           int count = -1) {
  __shared__ int64_t s_out_offset[R];
  const int tid = threadIdx.x, S = cta.splits, Hv = p.v_head_size, nrows = cta.nrows;
  // The elements merged here: one split's block of them is n consecutive floats.
  const int n = count < 0 ? nrows * Hv : count;
  const int64_t row0 = PartialRow(p, cta.b, RowOf(p, cta.kv_head, cta.row0));
  float2* table = reinterpret_cast<float2*>(scratch);   // [S][R]: (max, sum), then weights
  float* acc = scratch + 2 * R * kMaxSplits;             // [n], where a second round is needed
  float* vals = acc + n;                                 // [chunk][n]
  const int chunk = max(1, min(S, (scratch_floats - 2 * R * kMaxSplits - n) / max(n, 1)));
  const bool by16 = Hv % 4 == 0 && first % 4 == 0 && n % 4 == 0 && Aligned16(a.ws_o);
  // Splits [s0, s0 + chunk) into vals: 16-byte cp.async where aligned, else 4-byte loads.
  auto load_values = [&](int s0) {
    const int cs = min(chunk, S - s0);
    const float* src = a.ws_o + (static_cast<int64_t>(s0) * a.num_rows + row0) * Hv + first;
    const int64_t split_stride = static_cast<int64_t>(a.num_rows) * Hv;
    if (by16) {
      const int pieces = n / 4;
#pragma unroll 1
      for (int i = tid; i < cs * pieces; i += NT) {
        const int sp = i / pieces, c = i - sp * pieces;
        CpAsync16(SmemAddr(vals + sp * n + 4 * c), src + sp * split_stride + 4 * c, 16);
      }
    } else {
#pragma unroll 1
      for (int i = tid; i < cs * n; i += NT) {
        const int sp = i / n, c = i - sp * n;
        vals[sp * n + c] = __ldcg(src + sp * split_stride + c);
      }
    }
    CpAsyncCommit();
  };
  load_values(0);
  const float2* ws_ml = reinterpret_cast<const float2*>(a.ws_ml);
#pragma unroll 1
  for (int i = tid; i < nrows * S; i += NT) {
    const int sp = i / nrows, r = i - sp * nrows;
    table[sp * R + r] = __ldcg(ws_ml + sp * a.num_rows + row0 + r);
  }
  if (tid < nrows) {
    s_out_offset[tid] = OutRow<T>(p, cta.b, RowOf(p, cta.kv_head, cta.row0 + tid)) -
                        static_cast<T*>(p.out);
  }
  CpAsyncWait<0>();
  __syncthreads();
  for (int r = tid >> 5; r < nrows; r += NT / 32) SplitWeightsWarp(table + r, S, R);
  __syncthreads();
#pragma unroll 1
  for (int s0 = 0;;) {
    const int cs = min(chunk, S - s0);
    const bool last = s0 + cs >= S;
#pragma unroll 1
    for (int idx = tid; idx < n; idx += NT) {
      const int r = (first + idx) / Hv;
      float o = s0 > 0 ? acc[idx] : 0.f;
#pragma unroll 4
      for (int sp = 0; sp < cs; ++sp) o += table[(s0 + sp) * R + r].x * vals[sp * n + idx];
      if (last) {
        static_cast<T*>(p.out)[s_out_offset[r] + (first + idx - r * Hv)] = FromF32<T>(o);
      } else {
        acc[idx] = o;
      }
    }
    if (last) break;
    s0 += cs;
    __syncthreads();  // vals read
    load_values(s0);
    CpAsyncWait<0>();
    __syncthreads();
  }
}

// A barrier of a group's `splits` CTAs through its counter, by one thread of each
// after a CTA barrier that follows the CTA's partial stores (the fence releases them,
// as in the fused combine). Only where every CTA of the grid runs at once (a
// cooperative launch: DecodeArgs::spread_merge), or a waiting CTA could hold the
// slot another needs. The counter counts arrivals, then departures: it reaches
// `splits` only after every arrival, and the last departure (every CTA past its
// wait) sets it back to 0 for the next launch on this bank.
__device__ __forceinline__ void GroupBarrier(unsigned* counter, unsigned splits) {
  asm volatile(
      "fence.acq_rel.gpu;\n"
      "red.relaxed.gpu.global.add.u32 [%0], 1;\n" ::"l"(counter)
      : "memory");
  unsigned seen;
  do {
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(seen) : "l"(counter) : "memory");
  } while (seen < splits);
  if (atomicAdd(counter, 1u) == 2 * splits - 1) atomicExch(counter, 0u);
}

// ------------------------------------------------------------------ cluster merge

// Merges a group's splits inside its thread-block cluster (DecodeArgs::
// cluster_merge; the CTA of split s is the cluster's rank s) by push: CTA k owns
// the slice [k * slice, (k + 1) * slice) of the group's nrows * Hv elements, and
// every split stores its value of each element, and its rows' (max, sum), straight
// into the owner's receive buffer (ClusterRecv) in the owner's shared memory. One
// cluster barrier then publishes every store; each CTA merges its slice from its
// own shared memory and leaves. No CTA reads a peer's shared memory, so none waits
// at the end for its peers (a pull merge's second barrier: 0.83 us of a 7.3 us CTA
// at B1 S1024, H200, session 27). The buffer is shared memory no CTA touches before
// its epilogue, since a peer pushes as soon as its own keys are done; the kernel's
// early ClusterArriveRelaxed, waited for before the first push, proves every peer
// has started.
struct ClusterRecv {
  float2* table;  // [R][kMaxClusterSplits]: each split's (max, sum) of row r
  float* vals;    // [splits][slice]: each split's values of this CTA's slice

  template <int R>
  static constexpr int kFloats(int hvp) {
    return 2 * R * kMaxClusterSplits + R * hvp + kMaxClusterSplits;
  }
  template <int R>
  static __device__ __forceinline__ ClusterRecv At(float* base) {
    return {reinterpret_cast<float2*>(base), base + 2 * R * kMaxClusterSplits};
  }
  // The owner of element idx holds it at vals[split * slice + idx % slice].
  static __device__ __forceinline__ int Slice(int n, int splits) {
    return (n + splits - 1) / splits;
  }
};

// After every CTA pushed: the barrier, then this CTA's slice of the group's out,
// row r's element sum_s w_s o_s / sum_s w_s l_s with w_s = exp2(m_s - max_s m_s) (0
// where no split saw a key). `out_offset[r]` is row r's offset in `out`. All NT
// threads of every CTA of the cluster call it.
template <typename T, int R, int NT>
__device__ __forceinline__ void ClusterMerge(const AttentionParams& p, const DecodeArgs& a,
                                             const CtaCoord& cta, ClusterRecv recv,
                                             const int64_t* out_offset) {
  const int tid = threadIdx.x, S = cta.splits, Hv = p.v_head_size, nrows = cta.nrows;
  ClusterSync();  // every split's pushes are in their owners' shared memory
  JAX_MEA_TRACE(a, 10);
#pragma unroll 1
  for (int r = tid >> 5; r < nrows; r += NT / 32) {
    SplitWeightsWarp(recv.table + r * kMaxClusterSplits, S, 1);
  }
  __syncthreads();
  const int n = nrows * Hv, slice = ClusterRecv::Slice(n, S), first = cta.split * slice;
  int r = 0, d = first + tid;  // element first + j = r * Hv + d, kept by steps (Epilogue)
#pragma unroll 1
  for (int j = tid; j < slice && first + j < n; j += NT, d += NT) {
#pragma unroll 1
    while (d >= Hv) d -= Hv, ++r;
    const float2* w = recv.table + r * kMaxClusterSplits;
    float o = 0.f;
#pragma unroll 1
    for (int sp = 0; sp < S; ++sp) o += w[sp].x * recv.vals[sp * slice + j];
    static_cast<T*>(p.out)[out_offset[r] + d] = FromF32<T>(o);
  }
  JAX_MEA_TRACE(a, 11);
}

// ------------------------------------------------------------------ epilogue

// The warps' states are in shared memory: ep_m / ep_l [NW][R] (max in log2
// units, sum) and ep_acc [NW][R][acc_stride]. Merges them per row and writes
// either `out` (one split: normalised, fully masked rows 0) or the partials;
// with a.counters, the group's last CTA then merges the splits (MergeGroup, in
// merge_scratch: merge_floats floats, free once the partials are written), or with
// a.spread_merge every split merges a slice after a group barrier; with
// a.cluster_merge the partials go to their owners' `cluster_recv` (ClusterRecv::
// kFloats floats, used for nothing else) and the cluster merges them
// (ClusterMerge; the kernel arrived on the cluster barrier at its start). ep_m is overwritten
// with the warps' weights. kSpread: the kernel has the spread merge's code (the
// host sets a.spread_merge only then). All NW * 32 threads call it.
template <typename T, int R, int NW = kWarps, bool kSpread = true>
__device__ __forceinline__ void Epilogue(const AttentionParams& p, const DecodeArgs& a,
                                         float* ep_m, const float* ep_l, float* ep_acc,
                                         int acc_stride, const CtaCoord& cta,
                                         float* merge_scratch, int merge_floats,
                                         float* cluster_recv = nullptr) {
  constexpr int NT = NW * 32;
  __shared__ int64_t s_dst[R];  // where row r's values go: out or the partials
  __shared__ float2 s_ml[R];    // cluster merge: row r's (max, sum)
  const int tid = threadIdx.x, Hv = p.v_head_size, nrows = cta.nrows;
  const bool split = cta.splits > 1;
  const bool in_cluster = split && a.cluster_merge;
  const bool to_partials = split && !in_cluster;  // the workspace
  const ClusterRecv recv = ClusterRecv::At<R>(cluster_recv);
  if (in_cluster) ClusterWait();  // every peer has started: its buffer may be written
  // ep_m[w][r] becomes warp w's weight for row r: one warp per row, lane w holding
  // warp w's (max, sum) (WarpMergeWeights over groups of NW lanes).
  static_assert(NW <= 32 && (NW & (NW - 1)) == 0, "lanes < NW reduce among themselves");
  const int lane = tid & 31;
#pragma unroll 1
  for (int r = tid >> 5; r < nrows; r += NW) {
    float2 e[1] = {lane < NW ? make_float2(ep_m[lane * R + r], ep_l[lane * R + r])
                             : make_float2(-INFINITY, 0.f)};
    const float2 ml = WarpMergeWeights<NW>(e);
    const float mx = ml.x, sum = ml.y;
    const float scale = split ? 1.f : (sum > 0.f ? 1.f / sum : 0.f);
    if (lane < NW) ep_m[lane * R + r] = e[0].x * scale;
    if (lane == 0) {
      const RowCoord rc = RowOf(p, cta.kv_head, cta.row0 + r);
      if (to_partials) {
        const int64_t slot = static_cast<int64_t>(cta.split) * a.num_rows + PartialRow(p, cta.b, rc);
        s_dst[r] = slot * Hv;
        a.ws_ml[2 * slot] = mx;
        a.ws_ml[2 * slot + 1] = sum;
      } else {
        s_dst[r] = OutRow<T>(p, cta.b, rc) - static_cast<T*>(p.out);
        s_ml[r] = make_float2(mx, sum);
      }
    }
  }
  __syncthreads();
  JAX_MEA_TRACE(a, 8);
  // The loops below stay rolled and divide nothing: this code runs once per CTA, cold
  // in the SM's instruction cache, where its length is its cost (session 28: the
  // cluster pushes' table loop, unrolled 4x with a division each, and the value loop
  // took 0.86 us; the same stores into the CTA's own memory from a shorter loop 0.42).
  if (in_cluster && tid < cta.splits) {  // owner tid's table: this split's rows
#pragma unroll 1
    for (int r = 0; r < nrows; ++r) {
      StPeerShared(recv.table + r * kMaxClusterSplits + cta.split, tid, s_ml[r]);
    }
  }
  // Element idx = r * Hv + d; in the cluster it goes to its owner, owner * cl_slice +
  // pos = idx. All three kept by steps.
  const int cl_slice = in_cluster ? ClusterRecv::Slice(nrows * Hv, cta.splits) : 1;
  int owner = 0, pos = tid, r = 0, d = tid;
#pragma unroll 1
  for (int idx = tid; idx < nrows * Hv; idx += NT, pos += NT, d += NT) {
#pragma unroll 1
    while (d >= Hv) d -= Hv, ++r;
    float o = 0.f;
#pragma unroll
    for (int w = 0; w < NW; ++w) o += ep_m[w * R + r] * ep_acc[(w * R + r) * acc_stride + d];
    if (in_cluster) {  // to the element's owner
#pragma unroll 1
      while (pos >= cl_slice) pos -= cl_slice, ++owner;
      StPeerShared(recv.vals + cta.split * cl_slice + pos, owner, o);
    } else if (to_partials) {
      a.ws_o[s_dst[r] + d] = o;
    } else {
      static_cast<T*>(p.out)[s_dst[r] + d] = FromF32<T>(o);
    }
  }
  JAX_MEA_TRACE(a, 9);
  if (in_cluster) {
    ClusterMerge<T, R, NT>(p, a, cta, recv, s_dst);
    return;
  }
  if (!split || a.counters == nullptr) return;

  // Fused combine: publish the partials, count this CTA; the last one of the group
  // merges every split's partials from L2. One thread fences, after a CTA barrier that
  // follows every thread's partial stores (the release covers them through the
  // barrier, as PassTurn in attention_bwd.cuh and CUTLASS's semaphores do), instead of
  // a fence per thread; the last CTA's thread 0 fences again after the count (acquire:
  // the other splits' partials before its CTA's reads, which follow the next barrier).
  // With a.spread_merge every split merges its slice of the n elements after the group
  // barrier, [split * slice, + slice) in multiples of 4 (16-byte copies); else the
  // last CTA merges all of them. One MergeGroup call either way (code size).
  __shared__ int s_merge;
  const bool spread = kSpread && a.spread_merge;
  const int n = nrows * Hv;
  const int slice = spread ? ((n + cta.splits - 1) / cta.splits + 3) / 4 * 4 : n;
  const int first = spread ? cta.split * slice : 0;
  __syncthreads();
  if (tid == 0) {
    bool merge;
    if (spread) {
      GroupBarrier(&a.counters[cta.group], static_cast<unsigned>(cta.splits));
      merge = first < n;
    } else {
      asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
      const unsigned old =
          atomicInc(&a.counters[cta.group], static_cast<unsigned>(cta.splits - 1));
      merge = old == static_cast<unsigned>(cta.splits - 1);
      if (merge) asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
    }
    s_merge = merge;
  }
  __syncthreads();
  JAX_MEA_TRACE(a, 10);
  if (s_merge) {
    MergeGroup<T, R, NT>(p, a, cta, merge_scratch, merge_floats, first, min(slice, n - first));
  }
  if (spread) JAX_MEA_TRACE(a, 11);
}

}  // namespace jax_mea::cuda::decode_impl
